"""`cellabel`: the command line, calling the same service functions as the web."""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.table import Table

from app.agreement.cli import agreement_cli
from app.auth import service as auth_service
from app.auth.models import Role
from app.batches.cli import batches_cli
from app.clips import service as clip_service
from app.clips.cli import clips_cli, pipeline_cli, reconcile_cmd, wait_for_pipeline
from app.clips.models import ClipState
from app.core.cli_output import JsonFlag, console, fail, print_rows
from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import DomainError
from app.core.migrate import upgrade_database
from app.core.observability import configure_logging
from app.export.cli import register as register_export
from app.pipeline import intake
from app.projects import service as project_service
from app.samples.cli import samples_app

cli = typer.Typer(help="CelLabel: build cartoon-animation datasets.", no_args_is_help=True)
users_cli = typer.Typer(help="Accounts and roles.", no_args_is_help=True)
projects_cli = typer.Typer(help="Projects (datasets).", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(projects_cli, name="projects")
cli.add_typer(db_cli, name="db")
cli.add_typer(clips_cli, name="clips")
cli.add_typer(pipeline_cli, name="pipeline")
cli.add_typer(samples_app, name="samples")
cli.command("reconcile")(reconcile_cmd)
cli.add_typer(batches_cli, name="batches")
cli.add_typer(agreement_cli, name="agreement")
register_export(cli)


DEMO_PROJECT = "demo"
DEMO_CLIPS = 12
DEMO_ACCOUNTS = (("admin", Role.admin), ("reviewer", Role.reviewer),
                 ("annotator1", Role.annotator), ("annotator2", Role.annotator))  # fmt: skip


@cli.command("config")
def config_cmd(as_json: JsonFlag = False) -> None:
    """Print the effective settings (secrets masked)."""
    view = get_settings().public_view()
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    print_rows(
        [{"setting": k, "value": v} for k, v in view.items()],
        ["setting", "value"],
        "Settings",
        False,
    )


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all Alembic migrations to the configured database."""
    upgrade_database()
    console.print("[green]Database is at the newest schema.[/]")


@users_cli.command("create")
def users_create(
    name: str,
    role: Annotated[Role, typer.Option(help="admin, reviewer or annotator")],
    password: Annotated[str | None, typer.Option(help="Generated and printed when omitted")] = None,
) -> None:
    """Create an account."""
    upgrade_database()
    plain = password or secrets.token_urlsafe(9)
    try:
        with session_scope() as session:
            auth_service.create_user(session, name, plain, role)
    except DomainError as exc:
        raise fail(exc.message) from exc
    console.print(
        f"Created {role.value} [bold]{name}[/]"
        + ("" if password else f" with password [bold]{plain}[/]")
    )


@users_cli.command("list")
def users_list(as_json: JsonFlag = False) -> None:
    """List accounts."""
    with session_scope() as session:
        rows = [
            {"id": u.id, "username": u.username, "role": u.role.value, "active": u.is_active}
            for u in auth_service.list_users(session)
        ]
    print_rows(rows, ["id", "username", "role", "active"], "Users", as_json)


@projects_cli.command("create")
def projects_create(
    name: str,
    subsets: Annotated[str, typer.Option(help="Comma list of i2v,pose,face_video,face_audio")] = (
        "i2v,pose,face_video,face_audio"
    ),
) -> None:
    """Create a project (one dataset)."""
    upgrade_database()
    try:
        with session_scope() as session:
            project = project_service.create_project(
                session, name, project_service.parse_subsets(subsets)
            )
            console.print(
                f"Created project [bold]{project.name}[/] (id {project.id}) "
                f"with {', '.join(project.subsets)}"
            )
    except DomainError as exc:
        raise fail(exc.message) from exc


@projects_cli.command("list")
def projects_list(as_json: JsonFlag = False) -> None:
    """List projects."""
    with session_scope() as session:
        rows = [
            {"id": p.id, "name": p.name, "subsets": ",".join(p.subsets)}
            for p in project_service.list_projects(session)
        ]
    print_rows(rows, ["id", "name", "subsets"], "Projects", as_json)


def ensure_demo_accounts() -> list[tuple[str, str, str]]:
    """Create (or reset the passwords of) the demo accounts; returns name, role, password."""
    printed: list[tuple[str, str, str]] = []
    with session_scope() as session:
        for name, role in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(9)
            user = auth_service.get_user_by_name(session, name)
            if user is None:
                auth_service.create_user(session, name, password, role)
            else:
                auth_service.set_password(session, user.id, password)
                auth_service.update_user(session, user.id, role=role, is_active=True)
            printed.append((name, role.value, password))
    return printed


def ensure_demo_project() -> int:
    with session_scope() as session:
        try:
            return project_service.get_project_by_name(session, DEMO_PROJECT).id
        except DomainError:
            return project_service.create_project(session, DEMO_PROJECT).id


def ensure_demo_clips(count: int = DEMO_CLIPS) -> list[int]:
    """Generate the sample clips once and import them (re-runs find them as duplicates)."""
    from app.samples.generator import make_samples
    from app.samples.manifest import write_samples_manifest

    folder = get_settings().data_dir / "samples"
    if not (folder / "manifest.jsonl").exists():
        with console.status(f"Drawing {count} sample cartoon clips into {folder} ..."):
            make_samples(folder, count, seed=0)
        write_samples_manifest(folder)
    with session_scope() as session:
        project = project_service.get_project_by_name(session, DEMO_PROJECT)
        outcomes = intake.import_manifest(session, project, folder / "manifest.jsonl")
    created = [o.clip_id for o in outcomes if o.status == "created" and o.clip_id]
    console.print(f"Demo clips: {len(created)} new, {len(outcomes) - len(created)} already there.")
    return created


DEMO_ACCOUNTS_FILE = "demo-accounts.txt"


def _accounts_table(accounts: list[tuple[str, str, str]]) -> Table:
    table = Table(title="Demo accounts (passwords are new on every `cellabel demo`)")
    for col in ("user", "role", "password"):
        table.add_column(col)
    for row in accounts:
        table.add_row(*row)
    return table


def write_demo_accounts(accounts: list[tuple[str, str, str]], url: str) -> Path:
    """The accounts in the data folder, readable by its owner only: they hold passwords."""
    path = get_settings().data_dir / DEMO_ACCOUNTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "CelLabel demo accounts (passwords are new on every `cellabel demo`)",
        f"Sign in at {url}/login",
        "",
        *(f"{user:<12} {role:<10} {password}" for user, role, password in accounts),
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an older run keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path.resolve()


def _browser_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host


@cli.command("demo")
def demo(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on (make demo PORT=...)")] = 8000,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    clips: Annotated[int, typer.Option(help="How many sample clips to draw")] = DEMO_CLIPS,
) -> None:
    """Embedded default: database, demo project, accounts, then serve with a worker."""
    settings = get_settings()
    upgrade_database()
    ensure_demo_project()
    created = ensure_demo_clips(clips)
    accounts = ensure_demo_accounts()
    url = f"http://{_browser_host(host)}:{port}"
    saved = write_demo_accounts(accounts, url)
    console.print(_accounts_table(accounts))
    console.print(f"Data folder: {settings.data_dir.resolve()}")
    console.print(f"The accounts are also in {saved} (readable only by you).")
    if not serve_after:
        wait_for_pipeline(created)
        return
    console.print("The worker beside the server runs the pipeline on the demo clips now.")

    def show_accounts(headline: str) -> None:  # log lines have pushed the first table away
        console.print(f"\n{headline} Sign in at [bold]{url}[/] with:")
        console.print(_accounts_table(accounts))
        console.print(f"(also in {saved})")

    def announce() -> None:
        show_accounts("CelLabel is ready.")
        if created:  # the worker's lines scroll by until the demo clips are through
            _when_settled(created, lambda counts: show_accounts(f"Demo clips done: {counts}."))

    _serve(host, port, announce=announce)


def _when_settled(clip_ids: list[int], then: Callable[[str], None]) -> None:
    """Call ``then("12 ready, 0 failed")`` from a background thread once no clip of
    ``clip_ids`` is waiting for the pipeline any more."""

    def wait() -> None:
        while True:
            time.sleep(2)
            with session_scope() as session:
                states = clip_service.clip_states(session, clip_ids)
            if all(s in (ClipState.ready, ClipState.failed) for s in states):
                ready = states.count(ClipState.ready)
                then(f"{ready} ready, {len(states) - ready} failed")
                return

    threading.Thread(target=wait, daemon=True, name="demo-clips").start()


def _die_with_parent() -> None:
    """Linux: the embedded worker gets SIGTERM when `cellabel serve` exits, however it exits."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


EMBEDDED_WORKER_NAME = "embedded@%h"
CELERY_APP = "workers.celery_app"


def start_embedded_worker(log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """The worker `cellabel serve` runs beside the web in embedded mode (the tests start the
    same one); its output goes to ``log`` when given, else to this terminal."""
    return subprocess.Popen(
        # --quiet: no start-up banner in the terminal the demo accounts were printed to
        [sys.executable, "-m", "celery", "-A", CELERY_APP, "--quiet", "worker",
         "--pool=solo", "--loglevel=INFO", "-Q", "cheap,model", "-n", EMBEDDED_WORKER_NAME],
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        preexec_fn=_die_with_parent,
    )  # fmt: skip


@cli.command("serve")
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the web app; in embedded mode (no REDIS_URL) also run a worker beside it."""
    _serve(host, port, workers)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _when_listening(host: str, port: int, then: Callable[[], None]) -> None:
    """Call ``then`` from a background thread once the server accepts connections."""
    target = _browser_host(host).strip("[]")

    def wait() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection((target, port), timeout=1).close()
            except OSError:
                time.sleep(0.2)
            else:
                then()
                return

    threading.Thread(target=wait, daemon=True, name="announce").start()


def _serve(
    host: str, port: int, workers: int = 1, announce: Callable[[], None] | None = None
) -> None:
    import uvicorn

    if _port_taken(host, port):
        raise fail(f"Port {port} is in use. Pick another: --port 8080 (or make demo PORT=8080).")
    upgrade_database()
    configure_logging()
    worker = start_embedded_worker() if get_settings().embedded else None
    console.print(
        f"CelLabel on [bold]http://{host}:{port}[/] ({get_settings().public_view()['mode']} mode)"
    )
    if announce is not None:
        _when_listening(host, port, announce)
    try:
        uvicorn.run(  # no access log: RequestContext logs each request once, with its id
            "app.main:app", host=host, port=port, workers=workers, log_config=None, access_log=False
        )
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)


@cli.command("worker")
def worker_cmd(
    queues: Annotated[str, typer.Option(help="Comma list of queues")] = "cheap,model",
    concurrency: int = 1,
) -> None:
    """Run a standalone Celery worker (by module name: ``app/`` never imports ``workers/``)."""
    os.execv(
        sys.executable,
        [sys.executable, "-m", "celery", "-A", CELERY_APP, "worker", "--loglevel=INFO",
         "-Q", queues, f"--concurrency={concurrency}"],
    )  # fmt: skip


def main() -> None:
    cli()
