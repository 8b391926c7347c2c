"""Test set-up on one of two stacks, chosen by ``CELLABEL_TEST_STACK``:

- ``postgres`` (default): a real PostgreSQL database built by `alembic upgrade head`, real
  Redis and a `celery worker` subprocess.
- ``embedded``: exactly what `cellabel demo` runs: no DATABASE_URL, REDIS_URL or MEDIA_ROOT,
  so a SQLite file, local media and the folder broker under DATA_DIR, migrated the same way,
  and the worker `cellabel serve` starts. The browser and end-to-end suites run on both
  (`make test`); tests marked ``postgres_only`` are deselected here.

Each test runs inside a transaction that is rolled back; code under test may commit (it
commits a SAVEPOINT). Tests that need committed data visible to another process (a worker,
a server) use the `committed_db` fixtures in their own modules.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="cellabel-tests-"))
TEST_STACK = os.environ.get("CELLABEL_TEST_STACK", "postgres")
if TEST_STACK not in ("postgres", "embedded"):
    raise RuntimeError(f"CELLABEL_TEST_STACK must be postgres or embedded, not {TEST_STACK!r}")
EMBEDDED = TEST_STACK == "embedded"
PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TEST_DB_NAME = os.environ.get("TEST_DB_NAME", "cellabel_test")
TEST_DB_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + TEST_DB_NAME
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# Settings are read once: point them at the test services before the app is imported.
os.environ["DATA_DIR"] = str(_TMP / "data")
if EMBEDDED:  # the defaults `cellabel demo` uses, inside DATA_DIR
    for name in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "SECRET_KEY"):
        os.environ.pop(name, None)
else:
    os.environ["DATABASE_URL"] = TEST_DB_URL
    os.environ["REDIS_URL"] = TEST_REDIS_URL
    os.environ["MEDIA_ROOT"] = str(_TMP / "media")
    os.environ["SECRET_KEY"] = "test-secret-key-not-for-production"

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from playwright.sync_api import Browser, sync_playwright  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.core import deps, storage  # noqa: E402
from app.core.config import get_settings  # noqa: E402
from app.core.db import AppSession, get_engine  # noqa: E402
from app.core.migrate import upgrade_database  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.object_store import SeaweedServer  # noqa: E402


def recreate_database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the embedded stack, leave out what only PostgreSQL (or Redis) can run."""
    if not EMBEDDED:
        return
    kept = [item for item in items if item.get_closest_marker("postgres_only") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if EMBEDDED:
        settings = get_settings()
        if not (settings.embedded and settings.effective_database_url.startswith("sqlite")):
            raise RuntimeError("the embedded test stack got DATABASE_URL or REDIS_URL (.env?)")
        upgrade_database()  # what `cellabel demo` does: creates DATA_DIR/cellabel.db
    else:
        recreate_database(TEST_DB_NAME)
        upgrade_database(TEST_DB_URL)
    yield get_engine()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, even if the code commits.
    PostgreSQL only: pysqlite cannot nest the code's SAVEPOINTs in the outer transaction."""
    if EMBEDDED:
        pytest.fail("the rolled-back `db` session needs PostgreSQL: mark the test postgres_only")
    connection = engine.connect()
    outer = connection.begin()
    session = AppSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def app(db: Session):  # type: ignore[no-untyped-def]
    application = create_app()

    def _test_session() -> Iterator[Session]:
        db.commit()  # keep the test's own set-up when the request rolls back
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise

    application.dependency_overrides[deps.db_session] = _test_session
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def media_root() -> Path:
    return Path(os.environ["MEDIA_ROOT"])


# --- a real Celery worker (tests/workers, tests/browser) --------------------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import redis  # noqa: E402
from celery.utils.nodenames import host_format  # noqa: E402
from sqlalchemy import select  # noqa: E402

from app.cli import EMBEDDED_WORKER_NAME, start_embedded_worker  # noqa: E402
from app.clips.models import Clip, ClipState  # noqa: E402
from app.core.db import session_scope  # noqa: E402
from app.core.jobs import producer  # noqa: E402
from app.pipeline.models import Job, JobState  # noqa: E402

WORKER_START_TIMEOUT_S = 60
SETTLE_TIMEOUT_S = 300


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    name: str

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _ping_worker(name: str) -> bool:
    replies = producer().control.ping(destination=[name], timeout=1.0)
    return any(name in reply for reply in replies)


def other_workers(name: str) -> list[str]:
    """Workers on the test broker besides ours: they would steal our messages and run them
    against their own database (jobs then stay queued here)."""
    replies = producer().control.ping(timeout=1.0)
    return sorted(n for reply in replies for n in reply if n != name)


@pytest.fixture(scope="session")
def celery_worker(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """A `celery worker` subprocess on both queues with the test settings, started once the
    schema exists: on PostgreSQL a worker of its own on the emptied Redis test database, on the
    embedded stack the one `cellabel serve` starts, on the folder broker. Data it must see has
    to be committed (``session_scope``), not written through the rolled-back ``db`` fixture."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    if EMBEDDED:
        for message in (get_settings().broker_dir / "queue").glob("*"):
            message.unlink()  # like the Redis flush: no messages of earlier tests' data
        name = host_format(EMBEDDED_WORKER_NAME)
        with log.open("wb") as out:
            process = start_embedded_worker(out)
    else:
        redis.Redis.from_url(TEST_REDIS_URL).flushdb()
        name = f"cellabel-tests-{uuid.uuid4().hex[:8]}@localhost"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                 "--pool=solo", "-Q", "cheap,model", "--loglevel=WARNING", "-n", name],
                cwd=Path(__file__).resolve().parents[1], env=dict(os.environ),
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
    worker = Worker(process, log, name)
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while not _ping_worker(name):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{worker.tail()}")
        if strangers := other_workers(name):
            raise RuntimeError(
                f"other Celery workers consume from {producer().conf.broker_url}: "
                f"{', '.join(strangers)}; point TEST_REDIS_URL at an unused Redis database"
            )
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_settled(
    worker: Worker, clip_ids: Sequence[int], timeout_s: float = SETTLE_TIMEOUT_S
) -> None:
    """Poll the job rows until every clip is ready or failed and no job is left to run."""
    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope() as session:
            states = set(session.scalars(select(Clip.state).where(Clip.id.in_(clip_ids))))
            busy = session.scalars(
                select(Job).where(
                    Job.clip_id.in_(clip_ids), Job.state.in_((JobState.queued, JobState.running))
                )
            ).all()
            pending = [f"clip {j.clip_id} {j.step} {j.state.value}" for j in busy]
        if states <= {ClipState.ready, ClipState.failed} and not pending:
            return
        if worker.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"--- worker log ---\n{worker.tail()}\nclips did not settle: {pending}\n"
                f"other workers on the broker: {other_workers(worker.name) or 'none'}"
            )
        time.sleep(0.5)


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium driven by Playwright (Playwright never fetches a browser of its own)."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def object_store() -> Iterator[SeaweedServer]:
    """A real SeaweedFS S3 gateway for the whole session, started by the first test asking."""
    server = SeaweedServer(_TMP / "seaweedfs")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def use_object_store(
    object_store: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SeaweedServer]:
    """While active, this process's settings and `get_storage()` (the in-process live server
    too) put media in the SeaweedFS bucket under a fresh prefix, cached in a fresh folder."""
    env = object_store.settings_env(f"test-{uuid.uuid4().hex[:12]}")
    env["STORAGE_CACHE_DIR"] = str(tmp_path / "media-cache")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    storage.bucket_store_changed()
    yield object_store
    monkeypatch.undo()
    get_settings.cache_clear()
    storage.bucket_store_changed()
