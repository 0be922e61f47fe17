"""Tokens: the rules, the generated token file, /login rate limiting, per-instance cookies and
the Host names a server with a token on every interface answers to (real server where it
matters)."""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from latentloom.server.login import TOO_MANY, WRONG_TOKEN, LoginAttempts
from latentloom.server.machine_addresses import interface_addresses, machine_names
from latentloom.server.settings import ServerSettings, load_settings
from latentloom.server.tokens import TOKEN_FILE_NAME, TokenRefused, auto_token, check_token
from tests.server.api_server import running_server

TOKEN = "a-long-enough-test-token"
SHORT = (
    "the token is only {n} characters long; use at least 16 (a short token can be guessed), "
    "or pass --token auto to have one generated"
)


def settings(**values: Any) -> ServerSettings:
    return ServerSettings.model_validate(values)


# --- the rules ------------------------------------------------------------------------------


def test_short_and_unsafe_tokens_are_refused_with_the_fix() -> None:
    check_token("x" * 16)
    check_token("!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~")
    with pytest.raises(TokenRefused) as refused:
        check_token("hunter2")
    assert str(refused.value) == SHORT.format(n=7)
    for unsafe in ("spaces are not ok here", 'quote"is-not-ok-here', "x" * 513, ""):
        with pytest.raises(TokenRefused) as refused:
            check_token(unsafe)
        assert str(refused.value) == (
            "the token must be 16 to 512 printable ASCII characters without spaces, quotes, "
            "commas, semicolons or backslashes (it travels in a cookie); pass --token auto to "
            "have one generated"
        )


def test_settings_refuse_a_short_token_from_flags_or_the_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=re.escape(SHORT.format(n=9))):
        settings(token="too-short")
    config = tmp_path / "latentloom.toml"
    config.write_text('token = "0123456789"\n')
    with pytest.raises(ValidationError, match=re.escape(SHORT.format(n=10))):
        load_settings(config, {})
    assert load_settings(config, {"token": "auto"}).token == "auto"  # resolved by serve


# --- the generated token ----------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_auto_token_is_written_once_privately_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    previous = os.umask(0)  # even a permissive umask must not widen the file's mode
    try:
        token, path = auto_token(data)
    finally:
        os.umask(previous)
    assert path == data / TOKEN_FILE_NAME
    assert mode(path) == 0o600
    assert path.read_text() == token + "\n"
    check_token(token)
    assert len(token) >= 40
    assert auto_token(data) == (token, path)  # a restart keeps the token
    assert os.listdir(data) == [TOKEN_FILE_NAME]  # no temporary file left behind
    assert auto_token(tmp_path / "other")[0] != token


def test_servers_starting_at_once_agree_on_one_token(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def start() -> None:
        barrier.wait()
        tokens.append(auto_token(tmp_path)[0])

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert os.listdir(tmp_path) == [TOKEN_FILE_NAME]


AGAIN = "delete it and start with --token auto again to generate a new token"


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    _, path = auto_token(tmp_path)
    path.chmod(0o644)
    with pytest.raises(TokenRefused) as refused:
        auto_token(tmp_path)
    assert str(refused.value) == (
        f"{path} can be read by other users (mode 644); run `chmod 600 {path}`, or {AGAIN}"
    )


def test_a_planted_or_broken_token_file_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted.mkdir()
    secret = tmp_path / "attacker-known"
    secret.write_text("attacker-chosen-token-value\n")
    secret.chmod(0o600)
    (planted / TOKEN_FILE_NAME).symlink_to(secret)
    with pytest.raises(TokenRefused) as refused:
        auto_token(planted)
    assert (
        str(refused.value)
        == f"{planted / TOKEN_FILE_NAME} is a symlink, not the token file; {AGAIN}"
    )
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / TOKEN_FILE_NAME).symlink_to(tmp_path / "nowhere")
    with pytest.raises(TokenRefused, match="is a symlink, not the token file"):
        auto_token(dangling)
    assert not (tmp_path / "nowhere").exists()  # nothing was written through the link
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / TOKEN_FILE_NAME).write_text("short\n")
    (broken / TOKEN_FILE_NAME).chmod(0o600)
    with pytest.raises(TokenRefused) as refused:
        auto_token(broken)
    assert str(refused.value) == (
        f"{broken / TOKEN_FILE_NAME} does not hold a valid token (16 to 512 characters, "
        f"no spaces); {AGAIN}"
    )


# --- login attempts ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_login_attempts_slide_over_a_minute_per_address() -> None:
    clock = Clock()
    attempts = LoginAttempts(clock=clock)
    for _ in range(9):
        attempts.failed("10.0.0.1")
        clock.now += 1
    assert attempts.retry_after("10.0.0.1") is None
    attempts.failed("10.0.0.1")  # the tenth within a minute
    assert attempts.retry_after("10.0.0.1") == 51  # the first one is 9 s old
    assert attempts.retry_after("10.0.0.2") is None
    clock.now += 51
    assert attempts.retry_after("10.0.0.1") is None  # the oldest left the window
    attempts.failed("10.0.0.1")
    assert attempts.retry_after("10.0.0.1") == 1
    attempts.succeeded("10.0.0.1")
    assert attempts.retry_after("10.0.0.1") is None


def test_login_attempts_forget_quiet_addresses_beyond_their_cap() -> None:
    clock = Clock()
    attempts = LoginAttempts(clock=clock, max_clients=3)
    for number in range(10):
        attempts.failed(f"10.0.0.{number}")
        clock.now += 1
    assert len(attempts.failures) <= 3
    assert "10.0.0.9" in attempts.failures  # the most recent stays


# --- a real server with a token on every interface --------------------------------------------


@dataclass
class TokenServer:
    url: str
    port: int
    data: Path


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    data = tmp_path_factory.mktemp("tokens") / "data"
    # Configured as `--host 0.0.0.0 --token ...`, but listening on loopback only: the Host
    # check is what is tested, and nothing is exposed to the network.
    with running_server(models_dir, data, host="0.0.0.0", token=TOKEN) as url:
        yield TokenServer(url, int(url.rsplit(":", 1)[1]), data)


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127.x.y.z reaches loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address))


def test_login_is_rate_limited_per_address(server: TokenServer) -> None:
    with from_address("127.0.0.2") as guesser:
        for number in range(10):
            wrong = guesser.post(server.url + "/login", data={"token": f"guess-{number}"})
            assert wrong.status_code == 401 and WRONG_TOKEN in wrong.text
        limited = guesser.post(server.url + "/login", data={"token": "guess-10"})
        assert limited.status_code == 429
        wait = int(limited.headers["retry-after"])
        assert 1 <= wait <= 60
        assert TOO_MANY.format(failures=10, seconds=wait) in limited.text
        assert limited.headers["x-frame-options"] == "DENY"
        # Not even the right token is checked until the window has passed.
        right = guesser.post(server.url + "/login", data={"token": TOKEN})
        assert right.status_code == 429 and "set-cookie" not in right.headers
    with from_address("127.0.0.3") as someone_else:
        response = someone_else.post(server.url + "/login", data={"token": TOKEN})
        assert response.status_code == 303


def test_the_login_cookie_is_named_for_this_instance(server: TokenServer) -> None:
    name = settings(port=server.port, data=server.data).cookie_name()
    assert name.startswith(f"latentloom_{server.port}_")
    with from_address("127.0.0.4") as browser:
        response = browser.post(server.url + "/login", data={"token": TOKEN})
        assert response.headers["set-cookie"] == (
            f"{name}={TOKEN}; Path=/; HttpOnly; SameSite=Strict"
        )
        assert browser.get(server.url + "/api/jobs").status_code == 200
    # Another instance on this host (another port or data folder) uses another name, so
    # logging in there leaves this cookie alone; a cookie of that name means nothing here.
    other_port = settings(port=server.port + 1, data=server.data).cookie_name()
    other_data = settings(port=server.port, data=server.data / "other").cookie_name()
    assert len({name, other_port, other_data}) == 3
    foreign = httpx.get(server.url + "/api/jobs", cookies={other_port: TOKEN})
    assert foreign.status_code == 401
    assert f"(it sets the {name} cookie)" in foreign.json()["detail"]


def test_the_machines_own_names_and_addresses_are_accepted_as_host(server: TokenServer) -> None:
    names = machine_names() + interface_addresses(ipv4=True, ipv6=False)
    assert names, "the machine has a name and at least its loopback address"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for name in names:
        own = f"{name}:{server.port}"
        headers = {**bearer, "Host": own, "Origin": f"http://{own}"}
        response = httpx.get(server.url + "/api/system", headers=headers)
        assert response.status_code == 200, own
    evil = httpx.get(
        server.url + "/api/system", headers={**bearer, "Host": f"evil.example:{server.port}"}
    )
    assert evil.status_code == 421
    for name in names:  # the token is still required under every name
        response = httpx.get(server.url + "/api/system", headers={"Host": f"{name}:{server.port}"})
        assert response.status_code == 401


def test_only_a_server_with_a_token_on_a_network_address_answers_to_them() -> None:
    hostname = machine_names()[0]
    loopback = settings(host="127.0.0.1", port=9000).hosts()
    assert loopback == {"127.0.0.1:9000", "localhost:9000", "[::1]:9000"}
    everywhere = settings(host="0.0.0.0", port=9000, token=TOKEN).hosts()
    assert f"{hostname}:9000" in everywhere
    for address in interface_addresses(ipv4=True, ipv6=False):
        assert f"{address}:9000" in everywhere
    assert not any(host.startswith("[") and host != "[::1]:9000" for host in everywhere)
    both = settings(host="::", port=9000, token=TOKEN).hosts()
    assert everywhere <= both
    one = settings(host="192.0.2.7", port=9000, token=TOKEN).hosts()
    assert {"192.0.2.7:9000", f"{hostname}:9000"} <= one
    assert settings(host="0.0.0.0", port=9000, token=TOKEN).origins() == {
        f"http://{host}" for host in everywhere
    }
