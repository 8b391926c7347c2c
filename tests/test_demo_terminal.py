"""`cellabel demo` in a terminal: the accounts again once the server is up (and in a file only
its owner may read), and log lines a person reads, or JSON lines with LOG_FORMAT=json."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.test_smoke_embedded import CELLABEL, embedded_env, free_port

ACCOUNT_ROW = re.compile(r"│ (\w+)\s+│ (\w+)\s+│ (\S+)\s+│")


def _wait_for(found: Callable[[], str | None], what: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (hit := found()) is not None:
            return hit
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@contextmanager
def _running(args: list[str], cwd: Path, env: dict[str, str]) -> Iterator[tuple[Path, Path]]:
    """The command in the background, its stdout and stderr going to files we can read."""
    out, err = cwd / f"{args[0]}.out", cwd / f"{args[0]}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([*CELLABEL, *args], cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    try:
        yield out, err
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _line(path: Path, needle: str) -> Callable[[], str | None]:
    return lambda: next((ln for ln in path.read_text().splitlines() if needle in ln), None)


def test_demo_shows_accounts_when_up_keeps_them_private_and_logs_readable_lines(
    tmp_path: Path,
) -> None:
    env = embedded_env(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with _running(["demo", "--clips", "1", "--port", str(port)], tmp_path, env) as (out, err):
        done = f"Demo clips done: 1 ready, 0 failed. Sign in at {base} with:"
        _wait_for(_line(out, done), "the accounts once the demo clip is through the pipeline")
        _wait_for(lambda: out.read_text().count("(also in ") == 2 or None, "the whole table")
        first, up, settled = re.split(
            r"\n(?:CelLabel is ready\.|Demo clips done:).*\n", out.read_text()
        )
        assert f"CelLabel is ready. Sign in at {base} with:" in out.read_text()
        accounts = ACCOUNT_ROW.findall(first)
        users = {user for user, _, _ in accounts}
        assert users == {"admin", "reviewer", "annotator1", "annotator2"}
        assert ACCOUNT_ROW.findall(up) == accounts  # the same table once the server is up
        assert ACCOUNT_ROW.findall(settled) == accounts  # and once the worker's lines stop
        assert httpx.get(f"{base}/healthz").status_code == 200  # "ready" meant it

        saved = tmp_path / "cellabel-data" / "demo-accounts.txt"
        assert saved.stat().st_mode & 0o777 == 0o600
        text = saved.read_text()
        assert f"{base}/login" in text
        for user, role, password in accounts:
            assert re.search(rf"^{user}\s+{role}\s+{re.escape(password)}$", text, re.M), text

        request = _wait_for(_line(err, "cellabel.http"), "the request's log line")
        assert re.fullmatch(
            r"\d\d:\d\d:\d\d INFO +cellabel\.http +GET /healthz 200 [\d.]+ ms  request_id=\w+",
            request,
        )
        logs = err.read_text().splitlines()
        assert not [ln for ln in logs if ln.lstrip().startswith("{")]
        assert not [ln for ln in logs if "GET /healthz HTTP/1.1" in ln]  # logged once, not twice

    env["LOG_FORMAT"] = "json"
    port = free_port()
    with _running(["serve", "--port", str(port)], tmp_path, env) as (out, err):
        _wait_for(_line(out, "CelLabel on"), "the server to start")

        def logged_request() -> str | None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.HTTPError:
                return None
            return _line(err, '"path": "/healthz"')()

        record = json.loads(_wait_for(logged_request, "a JSON request line"))
        assert record["level"] == "INFO" and record["name"] == "cellabel.http"
        assert record["status"] == 200 and record["method"] == "GET" and record["request_id"]
