"""Private services and processes for the fault tests, so the shared ones are never touched.

* ``private_redis``: a throwaway ``redis-server`` on a free port (no persistence), which a test
  may flush, stop and start again;
* ``private_postgres``: a throwaway PostgreSQL cluster (``initdb`` as the postgres user) that a
  test may stop and start while a web process uses it;
* ``start_worker`` / ``run_cli``: a real ``celery worker`` or ``cellabel`` subprocess with the
  test settings plus overrides (another broker, a short ``JOB_STALE_AFTER_S``);
* ``live_api``: uvicorn with the app in a thread on the test database, for concurrent HTTP.

Everything that another process must see is committed (``session_scope``) under unique names.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import uvicorn
from celery import Celery
from fastapi import FastAPI
from sqlalchemy import Engine

from app.core.config import Settings
from app.core.jobs import celery_config
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CELLABEL = Path(sys.executable).with_name("cellabel")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: object, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    """Poll ``check()`` until it is truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------- Redis


@dataclass
class PrivateRedis:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(up, 10, "the private redis-server")

    def stop(self) -> None:
        """Kill the server: without persistence every queued message is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------- PostgreSQL


@dataclass
class PrivatePostgres:
    port: int
    folder: Path

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"),
             "-D", str(self.folder / "data"), *args],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL 15 cluster of our own (trust auth on 127.0.0.1), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="cellabel-rel-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(folder / "data"),
         "--auth=trust", "-U", "postgres", "--no-sync"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = PrivatePostgres(free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------- worker and CLI


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The test process's settings (database, media, secret) with ``overrides``."""
    return {**os.environ, **overrides}


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    name: str

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class WorkerPool:
    """Workers started by a test; all stopped at its end."""

    folder: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(
        self,
        env: Mapping[str, str],
        *,
        loglevel: str = "INFO",
        beat: bool = False,
        queues: str = "cheap,model",
    ) -> WorkerProcess:
        """A solo worker on ``queues``; with ``beat`` it also runs the periodic tasks (the
        reconciler)."""
        name = f"cellabel-rel-{uuid.uuid4().hex[:8]}@localhost"
        log = self.folder / f"{name.split('@')[0]}.log"
        schedule = ["-B", "-s", str(self.folder / f"{name.split('@')[0]}.beat")] if beat else []
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                 "--pool=solo", "-Q", queues, f"--loglevel={loglevel}", "-n", name,
                 *schedule],
                cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        worker = WorkerProcess(process, log, name)
        self.started.append(worker)
        control = broker_app(env["REDIS_URL"]).control

        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the worker exited:\n{worker.tail()}")
            try:
                replies = control.ping(destination=[name], timeout=0.5)
            except redis.ConnectionError:  # a pooled connection to a restarted broker
                return False
            return any(name in reply for reply in replies)

        wait_for(answers, 60, "the Celery worker to answer a ping", interval_s=0.2)
        return worker


@pytest.fixture
def workers(engine: Engine, tmp_path: Path) -> Iterator[WorkerPool]:
    """Start workers with ``workers.start(env)`` (the schema exists by then)."""
    pool = WorkerPool(tmp_path)
    try:
        yield pool
    finally:
        for worker in pool.started:
            worker.stop()


def broker_app(redis_url: str) -> Celery:
    """A Celery producer on ``redis_url`` configured like the app's own."""
    app = Celery("cellabel-rel")
    app.conf.update(celery_config(Settings(redis_url=redis_url)))
    return app


def run_cli(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``cellabel ARGS`` in a subprocess; fails the test with its output on error."""
    done = subprocess.run(
        [str(CELLABEL), *args], cwd=ROOT, env=dict(env), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"cellabel {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


# ---------------------------------------------------------------------- live web


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 20, "the live server")
    assert thread.is_alive(), "the live server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_api(engine: Engine) -> Iterator[str]:
    """Base URL of the app served by uvicorn in a thread on the test database."""
    with serve(create_app()) as url:
        yield url
