"""Huge bodies cannot fill the server's memory: anonymous callers may send no more than a
sign-in form, signed-in callers a few MB outside the upload route, and either is refused
with a 413 before the body is read, whatever its size."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import httpx

from app.auth import service as auth_service
from app.auth.models import Role
from app.core.config import get_settings
from app.core.db import session_scope
from tests.factories import create_user

BIG = 96 * 1024**2  # what took the process from 326 MB to 1.77 GB before its 401
CHUNK = 1024**2
PAGE = 4096


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def _json_stream(size: int) -> Iterator[bytes]:
    """A valid JSON document of ``size`` bytes, produced as it is sent."""
    yield b'{"points": ['
    sent = 12
    item = b"[1.0, 2.0, 2],"
    while sent + CHUNK < size:
        yield item * (CHUNK // len(item))
        sent += CHUNK // len(item) * len(item)
    yield b"[0, 0, 0]]}"


def _send_big(base_url: str, credentials: str, declared: bool) -> int:
    """PUT a ``BIG`` JSON body over a raw socket, stopping when the server cuts it off; the
    status line's code."""
    host, port = base_url.removeprefix("http://").split(":")
    framing = f"Content-Length: {BIG}" if declared else "Transfer-Encoding: chunked"
    auth = f"Authorization: {credentials}\r\n" if credentials else ""
    head = (
        f"PUT /api/tracks/1/frames/0 HTTP/1.1\r\nHost: test\r\n{auth}"
        f"Content-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in _json_stream(BIG):
                sock.sendall(chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # refused before the end: what we want
        reply = sock.recv(65536)
    return int(reply.split(b" ", 2)[1])


def test_oversized_bodies_are_refused_before_they_are_read(live_api: str) -> None:
    with session_scope() as s:
        user = create_user(s, Role.annotator, username=f"big-{uuid.uuid4().hex[:8]}")
        token = auth_service.create_api_token(s, user, "big")[1]
    peak = [_rss_bytes()]
    start = peak[0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            done.wait(0.01)

    watcher = threading.Thread(target=sample)
    watcher.start()
    answers = {}
    try:
        for who, credentials in (("anonymous", ""), ("signed in", f"Bearer {token}")):
            for declared in (True, False):  # with a Content-Length, and chunked
                answers[who, declared] = _send_big(live_api, credentials, declared)
    finally:
        done.set()
        watcher.join()
    assert set(answers.values()) == {413}, answers
    # The 96 MB never sat in memory (the sender's chunks are 1 MB).
    assert peak[0] - start < 48 * 1024**2, f"grew by {(peak[0] - start) / 1024**2:.0f} MB"


def test_a_sign_in_form_and_a_normal_save_still_fit(live_api: str) -> None:
    settings = get_settings()
    assert settings.max_anonymous_body_bytes >= 4096
    with httpx.Client(base_url=live_api, timeout=30) as client:
        assert (
            client.post("/login", data={"username": "x" * 1000, "password": "y"}).status_code != 413
        )
