"""The command line: run workflows, print the node catalog, make tiny checkpoints."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# Only light imports here: `latentloom serve` must open its socket before torch loads.
from latentloom.engine.events import NodeCached, NodeFailed, NodeFinished, NodeProgress, NodeStarted
from latentloom.models.tiny_kinds import TINY_KINDS

EXIT_INVALID = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentloom", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a workflow file")
    run.add_argument("workflow", type=Path)
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="override a literal input (VALUE is JSON, or else a plain string)",
    )
    _add_engine_options(run)
    run.set_defaults(handler=_run)

    nodes = commands.add_parser("nodes", help="print the node catalog")
    nodes.add_argument("--json", action="store_true", help="the full catalog as JSON")
    nodes.add_argument("--models", type=Path, action="append", default=[])
    nodes.add_argument("--input", type=Path, default=Path("input"))
    nodes.add_argument(
        "--nodes", type=Path, action="append", default=[], help="an extra node pack folder"
    )
    nodes.set_defaults(handler=_nodes)

    tiny = commands.add_parser("make-tiny-checkpoint", help="write a tiny random-weight checkpoint")
    tiny.add_argument("--family", choices=TINY_KINDS, default="sd15")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--v-prediction", action="store_true")
    tiny.add_argument("out", type=Path)
    tiny.set_defaults(handler=_make_tiny)

    serve = commands.add_parser("serve", help="start the HTTP/websocket server")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8188)")
    serve.add_argument(
        "--models", type=Path, action="append", default=[], help="a model folder; repeatable"
    )
    serve.add_argument(
        "--data", type=Path, help="where the ledger, workflows, outputs and inputs live"
    )
    serve.add_argument(
        "--token",
        help="require this token, 16+ characters (needed to bind a non-loopback address); "
        "'auto' generates one and keeps it in a private file in the data folder",
    )
    serve.add_argument("--device", choices=("cpu", "cuda", "mps"))
    _add_fast_path_options(serve)
    serve.add_argument("--config", type=Path, help="a TOML file with the same settings")
    serve.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run jobs on Ray worker actors: 'auto' starts a local instance, an address joins "
        "a cluster (needs the ray extra)",
    )
    serve.add_argument("--ray-workers", type=int, help="Ray worker actors (default: one per GPU)")
    serve.add_argument(
        "--ray-dashboard", action="store_true", default=None, help="start Ray's dashboard too"
    )
    serve.set_defaults(handler=_serve)

    typescript = commands.add_parser(
        "typescript", help="print TypeScript types of the events and API"
    )
    typescript.set_defaults(handler=lambda args: print(_typescript(), end=""))

    export_comfy = commands.add_parser(
        "export-comfy", help="write a workflow in ComfyUI's API or editor format"
    )
    export_comfy.add_argument("workflow", type=Path)
    export_comfy.add_argument("-o", "--output", type=Path, help="where to write (default stdout)")
    export_comfy.add_argument(
        "--format",
        choices=("api", "editor"),
        default="api",
        help="api: the prompt ComfyUI's /prompt runs (default); editor: what its canvas opens",
    )
    export_comfy.add_argument(
        "--nodes", type=Path, action="append", default=[], help="an extra node pack folder"
    )
    export_comfy.set_defaults(handler=_export_comfy)

    import_comfy = commands.add_parser(
        "import-comfy",
        help="turn a ComfyUI workflow (JSON, PNG or WebP) into a Latentloom workflow",
    )
    import_comfy.add_argument("input", type=Path, help="a .json, .png or .webp file")
    import_comfy.add_argument("-o", "--output", type=Path, help="where to write (default stdout)")
    import_comfy.add_argument(
        "--nodes", type=Path, action="append", default=[], help="an extra node pack folder"
    )
    import_comfy.set_defaults(handler=_import_comfy)

    schema = commands.add_parser("schema", help="print the workflow JSON Schema")
    schema.set_defaults(handler=lambda args: print(json.dumps(_workflow_schema(), indent=2)))
    return parser


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        type=Path,
        action="append",
        default=[],
        help="a model folder (ComfyUI or AUTOMATIC1111 layout); repeatable",
    )
    parser.add_argument("--output", type=Path, default=Path("output"))
    parser.add_argument("--input", type=Path, default=Path("input"))
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"))
    parser.add_argument(
        "--nodes", type=Path, action="append", default=[], help="an extra node pack folder"
    )
    _add_fast_path_options(parser)


def _add_fast_path_options(parser: argparse.ArgumentParser) -> None:
    # None when absent, so a server's config file decides (flags override it when given).
    parser.add_argument(
        "--channels-last",
        action="store_true",
        default=None,
        help="store each loaded UNet channels-last (CUDA only)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile each loaded UNet (CUDA only; minutes at first, kernels cached)",
    )


SERVER_SWITCH_INTERVAL_S = 0.001


def _serve(args: argparse.Namespace) -> int:
    import logging

    from latentloom.server.early_worker import spawn_early

    settings = _serve_settings(args)
    if settings is None:
        return EXIT_INVALID
    # The worker child imports torch and warms up while this process imports the web stack.
    early_worker = spawn_early(settings)

    import uvicorn

    from latentloom.server.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Request threads (parsing, validating, SQLite rows) hold the GIL in turns; the default
    # 5 ms turn makes the event loop wait a turn per waiting thread, several times per request.
    sys.setswitchinterval(SERVER_SWITCH_INTERVAL_S)
    # The sans-I/O websockets protocol: uvicorn's legacy one is deprecated.
    uvicorn.run(
        create_app(settings, early_worker=early_worker),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=16 * 2**20,
    )
    return 0


def _serve_settings(args: argparse.Namespace) -> Any:
    """The server's settings with `--token auto` resolved, after printing where to log in;
    None (after printing why) when they cannot be used."""
    from pydantic import ValidationError

    from latentloom.server.security import check_bind
    from latentloom.server.settings import load_settings
    from latentloom.server.tokens import AUTO_TOKEN, auto_token

    overrides = {
        "host": args.host,
        "port": args.port,
        "models": args.models,
        "data": args.data,
        "token": args.token,
        "device": args.device,
        "ray": args.ray,
        "ray_workers": args.ray_workers,
        "ray_dashboard": args.ray_dashboard,
        "channels_last": args.channels_last,
        "compile_unet": args.compile,
    }
    try:
        settings = load_settings(args.config, overrides)
        check_bind(settings.host, settings.token)
        token_file = None
        if settings.token == AUTO_TOKEN:
            token, token_file = auto_token(settings.data)
            settings = settings.model_copy(update={"token": token})
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            print(f"error: {where}: {message}", file=sys.stderr)
        return None
    except (ValueError, OSError) as error:  # BindRefused and TokenRefused are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return None
    print(_where_to_log_in(settings, token_file), file=sys.stderr, flush=True)
    return settings


def _where_to_log_in(settings: Any, token_file: Path | None) -> str:
    """The address to open; never the token itself (terminals get logged and shared)."""
    from latentloom.server.machine_addresses import machine_names
    from latentloom.server.security import is_loopback

    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    host = "127.0.0.1" if host in ("0.0.0.0", "[::]", "") else host
    lines = [f"Latentloom: open http://{host}:{settings.port}/ (Ctrl+C stops the server)"]
    if settings.token is not None:
        source = f"the token in {token_file}" if token_file else "the token you configured"
        lines.append(f"Latentloom: log in at /login with {source} (it is never printed)")
    if not is_loopback(settings.host) and settings.host in ("0.0.0.0", "::", ""):
        others = ", ".join(f"http://{name}:{settings.port}/" for name in machine_names())
        lines.append(f"Latentloom: on the network: {others}")
    return "\n".join(lines)


EXIT_UNEXPORTABLE = 3  # export-comfy wrote the file, but left out nodes ComfyUI cannot run


def _import_comfy(args: argparse.Namespace) -> int:
    """Exit 0 when every node mapped, 3 when some are placeholders, 2 on a malformed file."""
    from latentloom.interop.comfy.import_command import import_comfy

    return import_comfy(args.input, args.output, args.nodes)


def _export_comfy(args: argparse.Namespace) -> int:
    """Export a workflow for ComfyUI; the report goes to stderr, the document to -o or stdout."""
    from latentloom.graph.workflow import WorkflowFormatError, load_workflow_file
    from latentloom.interop.comfy.exporter import export_api, export_editor
    from latentloom.registry import RegistryError, build_registry

    try:
        workflow = load_workflow_file(args.workflow)
        registry = build_registry(args.nodes)
    except (OSError, WorkflowFormatError, RegistryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    export = export_api if args.format == "api" else export_editor
    document, report = export(workflow, registry)
    text = json.dumps(document, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    for node in report.exported:
        print(f"exported  {node.node}: {node.type} -> {node.comfy_class}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning   {warning}", file=sys.stderr)
    for left in report.unexportable:
        print(f"left out  {left.node}: {left.reason}", file=sys.stderr)
    if report.unexportable:
        print(
            f"{len(report.unexportable)} node(s) left out: ComfyUI cannot run them",
            file=sys.stderr,
        )
        return EXIT_UNEXPORTABLE
    return 0


def _typescript() -> str:
    from latentloom.server.typescript import generate

    return generate()


def _workflow_schema() -> dict[str, Any]:
    from latentloom.graph.workflow import workflow_json_schema

    return workflow_json_schema()


def parse_override(text: str) -> tuple[str, str, Any]:
    target, separator, raw = text.partition("=")
    node_id, dot, input_name = target.rpartition(".")
    if not separator or not dot or not node_id or not input_name:
        raise ValueError(f"--set {text!r}: expected NODE.INPUT=VALUE, e.g. --set 5.seed=42")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return node_id, input_name, value


def _run(args: argparse.Namespace) -> int:
    from latentloom.graph.workflow import WorkflowFormatError, load_workflow_file
    from latentloom.warmup import Warmup, cli_steps

    # As in the server's worker child (jobs/worker_spawn.py CHILD_ENVIRONMENT): OpenMP
    # threads that sleep while they wait, set before torch loads; a user's own choice stands.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # torch, diffusers and transformers import on a thread meanwhile; this thread imports
    # nothing of theirs until the warm-up says so (warmup.py: no two threads in one package).
    warmup = Warmup(cli_steps(args.device)).start()
    try:
        workflow = load_workflow_file(args.workflow)
        for override in args.set:
            workflow = workflow.with_input(*parse_override(override))
    except (WorkflowFormatError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    warmup.wait("engine")
    from latentloom.engine.context import Cancelled, CancelToken
    from latentloom.engine.executor import NodeExecutionError
    from latentloom.engine.read_ahead import ReadAhead, model_files
    from latentloom.engine.setup import make_engine
    from latentloom.fast_path import FastPathSettings
    from latentloom.graph.validate import WorkflowInvalid
    from latentloom.models import weight_prefetch

    engine = make_engine(
        model_dirs=args.models or [Path("models")],
        output_dir=args.output,
        input_dir=args.input,
        device=args.device,
        node_packs=args.nodes,
        fast_path=FastPathSettings(
            channels_last=bool(args.channels_last), compile=bool(args.compile)
        ),
    )
    # While diffusers imports, a valid workflow's checkpoints convert (models/weight_prefetch.py)
    # and its other model files come off a cold disk (engine/read_ahead.py).
    if not engine.validate(workflow):
        dtype = engine.settings.dtype
        files = model_files(workflow, engine.registry, engine.settings.folders)
        others = [path for path in files if weight_prefetch.start(path, dtype) is None]
        ReadAhead().start(lambda: others)
    cancel = CancelToken()
    signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    progress = _ProgressPrinter()

    def on_event(event: Any) -> None:
        # Validation is done when the first node starts: from here on nodes import the stack.
        if isinstance(event, (NodeStarted, NodeCached)):
            warmup.wait()
        progress(event)

    try:
        result = engine.run(workflow, on_event=on_event, cancel=cancel)
    except WorkflowInvalid as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except NodeExecutionError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        progress.close()
        weight_prefetch.stop_all()  # no conversion may run on while the interpreter exits
    _print_outputs(result.reports, engine.settings.output_dir)
    print(
        f"done in {result.seconds:.2f} s: {len(result.executed)} nodes executed, "
        f"{len(result.cached)} from cache",
        file=sys.stderr,
    )
    return 0


def _print_outputs(reports: dict[str, Any], output_dir: Path) -> None:
    """The files the run wrote; other report entries (Load Checkpoint's detection) are notes."""
    for report in reports.values():
        for entries in report.values():
            for entry in entries:
                if isinstance(entry, dict) and "filename" in entry:
                    print(output_dir / entry.get("subfolder", "") / entry["filename"])


class _ProgressPrinter:
    """Node lines and one progress bar per sampling node, on stderr.

    Progress arrives after each step (from 1), so a bar made at the first event would start
    its clock after the first step — the slowest one (first kernels, caches) — and report a
    rate that leaves it out. The bar is dated back to when its node started, and shows the
    plain average (steps / elapsed) rather than tqdm's smoothed recent rate."""

    def __init__(
        self, *, clock: Callable[[], float] = time.perf_counter, file: IO[str] | None = None
    ) -> None:
        from tqdm import tqdm

        self.new_bar = tqdm
        self.clock = clock
        self.file = file or sys.stderr
        self.bars: dict[str, Any] = {}
        self.started: dict[str, float] = {}  # node -> clock() when it started

    def __call__(self, event: Any) -> None:
        if isinstance(event, NodeStarted):
            self.started[event.node] = self.clock()
            print(f"[{event.node}] {event.type}", file=self.file)
        elif isinstance(event, NodeCached):
            print(f"[{event.node}] {event.type} (cached)", file=self.file)
        elif isinstance(event, NodeProgress):
            bar = self.bars.get(event.node)
            if bar is None:
                bar = self.bars[event.node] = self._new_bar(event.node, event.total)
            bar.update(event.step - bar.n)
        elif isinstance(event, (NodeFinished, NodeFailed)):
            self.started.pop(event.node, None)
            if event.node in self.bars:
                self.bars.pop(event.node).close()

    def _new_bar(self, node: str, total: int) -> Any:
        bar = self.new_bar(total=total, desc=f"[{node}]", file=self.file, unit="step", smoothing=0)
        # tqdm keeps its own clock: shift its start by what ours saw pass since the node began.
        since_start = self.clock() - self.started.get(node, self.clock())
        bar.start_t -= since_start
        bar.last_print_t = bar.start_t
        return bar

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _nodes(args: argparse.Namespace) -> int:
    from latentloom.catalog import catalog
    from latentloom.engine.folders import Folders
    from latentloom.models.folders import ModelFolders
    from latentloom.registry import build_registry

    folders = Folders(ModelFolders.of(args.models or [Path("models")]), args.input.resolve())
    entries = catalog(build_registry(args.nodes), folders.list)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for entry in entries:
        inputs = ", ".join(f"{i['name']}: {i['type']}" for i in entry["inputs"])
        outputs = ", ".join(f"{o['name']}: {o['type']}" for o in entry["outputs"])
        print(f"{entry['id']:<28} {entry['display_name']:<22} ({inputs}) -> ({outputs})")
    return 0


def _make_tiny(args: argparse.Namespace) -> int:
    from latentloom.models.tiny import make_tiny_checkpoint

    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_tiny_checkpoint(args.family, args.out, seed=args.seed, v_prediction=args.v_prediction)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
