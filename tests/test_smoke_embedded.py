"""The embedded default end to end: `cellabel demo` on SQLite, `cellabel serve`, sign in."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CELLABEL = [sys.executable, "-c", "from app.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[1]


def embedded_env(workdir: Path) -> dict[str, str]:
    configured = {"DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "DATA_DIR", "SECRET_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in configured}
    env["COLUMNS"] = "200"
    env["PYTHONPATH"] = str(ROOT)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = embedded_env(tmp_path)
    out = subprocess.run(
        [*CELLABEL, "demo", "--no-serve", "--clips", "4"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    passwords = dict(re.findall(r"│ (\w+)\s+│ \w+\s+│ (\S+)\s+│", out.stdout))
    assert set(passwords) >= {"admin", "reviewer", "annotator1", "annotator2"}, out.stdout
    assert (tmp_path / "cellabel-data" / "cellabel.db").exists()
    port = free_port()
    server = subprocess.Popen(
        [*CELLABEL, "serve", "--port", str(port)], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("cellabel serve did not come up")
        yield base, passwords
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_demo_then_serve_on_sqlite_lets_each_role_sign_in(
    demo_server: tuple[str, dict[str, str]],
) -> None:
    base, passwords = demo_server
    health = httpx.get(f"{base}/healthz").json()
    assert health["database"] == "ok" and "embedded" in health["redis"]
    for user, marker in (("admin", 'href="/admin/users"'), ("annotator1", 'href="/queue"'),
                         ("reviewer", 'href="/review"')):  # fmt: skip
        with httpx.Client(base_url=base) as browser:
            page = browser.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            form = {"username": user, "password": passwords[user], "csrf_token": token.group(1)}
            done = browser.post("/login", data=form)
            assert done.status_code == 303
            home = browser.get("/")
            assert home.status_code == 200 and marker in home.text, user


def test_refusals_on_the_real_server_are_clean_4xx_pages(
    demo_server: tuple[str, dict[str, str]],
) -> None:
    """Error pages render after the request's transaction rolled back (no 500s)."""
    base, passwords = demo_server
    with httpx.Client(base_url=base) as browser:
        page = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {
            "username": "annotator1",
            "password": passwords["annotator1"],
            "csrf_token": token.group(1),
        }
        assert browser.post("/login", data=form).status_code == 303
        forbidden = browser.get("/admin/users")
        assert forbidden.status_code == 403 and "annotator1" in forbidden.text
        assert browser.get("/clips/999999/view").status_code == 404
        assert browser.get("/api/annotations/999999").status_code == 404
