"""Server settings: command-line flags, an optional TOML file, and safe defaults.

Precedence: flags over the config file over defaults. The data folder holds everything the
server writes: the job ledger, saved workflows, outputs and uploaded inputs. The cost budget
(`memory_budget_bytes`, `device_memory_budget_bytes`, `work_budget_megapixel_steps`) is
derived from the machine when unset (`engine/setup.py`): 75% of RAM, 90% of GPU memory,
100,000 megapixel-steps.

Tokens are checked here (16 to 512 cookie-safe characters, or "auto", which `latentloom serve`
turns into a generated one), so a bad one in the config file fails at start with the reason.
A server with a token on a non-loopback address also answers to the machine's own names,
and on a wildcard address to each of its interface addresses (`machine_addresses.py`).
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from latentloom.fast_path import FastPathSettings, compile_cache_dir
from latentloom.server.machine_addresses import reachable_names
from latentloom.server.security import is_loopback
from latentloom.server.tokens import AUTO_TOKEN, check_token

DEFAULT_PORT = 8188


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    models: list[Path] = Field(
        default_factory=list, description="model folders (ComfyUI or A1111 layout)"
    )
    data: Path = Path("data")
    token: str | None = None
    device: str | None = None
    allowed_hosts: list[str] = Field(
        default_factory=list, description="extra Host values to accept"
    )
    allowed_origins: list[str] = Field(default_factory=list, description="extra Origins to accept")
    demo_checkpoint: bool = True  # write a tiny demo checkpoint when no model is found
    max_queue: int = Field(1000, ge=1)
    max_runs_per_request: int = Field(100, ge=1)
    max_upload_bytes: int = Field(32 * 2**20, ge=1)
    max_request_bytes: int = Field(16 * 2**20, ge=1)
    max_image_pixels: int = Field(64 * 2**20, ge=1)
    previews_per_second: float = Field(4.0, gt=0)
    history_limit: int = Field(1000, ge=1)
    max_attempts: int = Field(3, ge=1)
    memory_budget_bytes: int | None = Field(
        None, ge=1, description="the most RAM one job may need (default: 75% of RAM)"
    )
    device_memory_budget_bytes: int | None = Field(
        None, ge=1, description="the most GPU memory one job may need (default: 90% of it)"
    )
    work_budget_megapixel_steps: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="steps x images x megapixels (100,000)"
    )
    frontend_dist: Path | None = None  # the built editor; default: frontend/dist in the repo
    worker: Literal["process", "thread"] = Field(
        "process", description="run jobs in one child process (default) or a server thread"
    )
    node_packs: list[Path] = Field(default_factory=list, description="extra node pack folders")
    worker_memory_limit_bytes: int | None = Field(
        None, ge=1, description="address space the worker may map beyond its warm size"
    )
    ray: str | None = Field(
        None, description="run jobs on Ray: 'auto' starts a local instance, else a cluster address"
    )
    ray_workers: int | None = Field(
        None, ge=1, description="Ray worker actors (default: one per GPU in the cluster)"
    )
    ray_dashboard: bool = False  # Ray's dashboard, on 127.0.0.1, for a local instance
    channels_last: bool = Field(
        False, description="store each loaded UNet channels-last (CUDA only; fast_path.py)"
    )
    compile_unet: bool = Field(
        False, description="torch.compile each loaded UNet, kernels cached in the data folder"
    )

    @field_validator("token")
    @classmethod
    def _token_is_strong(cls, token: str | None) -> str | None:
        if token is not None and token != AUTO_TOKEN:
            check_token(token)
        return token

    @property
    def ledger_path(self) -> Path:
        return self.data / "ledger.sqlite3"

    @property
    def workflows_dir(self) -> Path:
        return self.data / "workflows"

    @property
    def output_dir(self) -> Path:
        return self.data / "output"

    @property
    def input_dir(self) -> Path:
        return self.data / "input"

    @property
    def demo_models_dir(self) -> Path:
        return self.data / "models"

    def cost_budget(self) -> dict[str, Any]:
        """The configured cost budget, as `make_engine` keywords (None: derived)."""
        return {
            "memory_budget_bytes": self.memory_budget_bytes,
            "device_memory_budget_bytes": self.device_memory_budget_bytes,
            "work_budget_megapixel_steps": self.work_budget_megapixel_steps,
        }

    def fast_path(self) -> FastPathSettings:
        """What the engine does to each loaded UNet (CUDA only: fast_path.py)."""
        return FastPathSettings(
            channels_last=self.channels_last,
            compile=self.compile_unet,
            cache_dir=compile_cache_dir(self.data),
        )

    def cookie_name(self) -> str:
        """The login cookie's name, one per instance: browsers share cookies across ports."""
        folder = str(self.data.expanduser().resolve())
        digest = hashlib.sha256(f"{self.port}:{folder}".encode()).hexdigest()[:10]
        return f"latentloom_{self.port}_{digest}"

    def hosts(self) -> set[str]:
        """Host header values the server answers to: its loopback names, its bind address, extras,
        and with a token on a non-loopback bind the machine's names (and addresses)."""
        names = ["127.0.0.1", "localhost", "[::1]"]
        if self.host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""):
            names.append(f"[{self.host}]" if ":" in self.host else self.host)
        if self.token and not is_loopback(self.host):
            names += reachable_names(self.host)
        return {f"{name}:{self.port}" for name in names} | set(self.allowed_hosts)

    def origins(self) -> set[str]:
        """The origins the server's own pages have (one per host it answers to), plus extras."""
        own = self.hosts() - set(self.allowed_hosts)
        return {f"http://{host}" for host in own} | set(self.allowed_origins)


def load_settings(config_file: Path | None, overrides: dict[str, Any]) -> ServerSettings:
    """Settings from a TOML file (keys as the field names) with command-line overrides on top."""
    values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as file:
            values.update(tomllib.load(file))
    values.update({key: value for key, value in overrides.items() if value not in (None, [])})
    return ServerSettings.model_validate(values)
