"""`cellabel agreement report|recompute`: the same service calls as the dashboard and workers."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from app.agreement.dashboard import rollups
from app.agreement.recompute import agreement_clip_ids, recompute_clip, recompute_rollups
from app.auth.models import User
from app.batches.models import Batch
from app.core.cli_output import JsonFlag, console, fail, print_rows
from app.core.db import session_scope
from app.core.errors import DomainError
from app.projects.service import get_project_by_name

agreement_cli = typer.Typer(help="Inter-annotator agreement.", no_args_is_help=True)
ProjectName = Annotated[str, typer.Option("--project", help="Project name")]


@agreement_cli.command("report")
def report(project: ProjectName, as_json: JsonFlag = False) -> None:
    """The project's stored rollups: per project, batch and annotator, per level and metric."""
    try:
        with session_scope() as session:
            found = get_project_by_name(session, project)
            rows = rollups(session, found.id)
            users = dict(session.execute(select(User.id, User.username)).all())
            batches = dict(
                session.execute(select(Batch.id, Batch.name).where(Batch.project_id == found.id))
                .tuples()
                .all()
            )
    except DomainError as exc:
        raise fail(exc.message) from exc
    names = {"project": {found.id: found.name}, "batch": batches, "annotator": users}
    print_rows(
        [
            {
                "scope": r.scope,
                "who": names[r.scope].get(r.scope_id or 0, str(r.scope_id)),
                "level": r.level,
                "metric": r.metric,
                "value": None if r.value is None else round(r.value, 4),
                "n": r.n,
            }
            for r in rows
        ],
        ["scope", "who", "level", "metric", "value", "n"],
        f"Agreement in {found.name}",
        as_json,
    )


@agreement_cli.command("recompute")
def recompute(project: ProjectName) -> None:
    """Recompute every overlapped or gold clip of the project here, then its rollups."""
    try:
        with session_scope() as session:
            found = get_project_by_name(session, project)
            clip_ids = agreement_clip_ids(session, found.id)
        below = 0
        for clip_id in clip_ids:
            with session_scope() as session:
                below += recompute_clip(session, clip_id).needs_adjudication
        with session_scope() as session:
            stored = recompute_rollups(session, found.id)
    except DomainError as exc:
        raise fail(exc.message) from exc
    console.print(
        f"Scored {len(clip_ids)} clips ({below} below the threshold); {stored} rollups stored."
    )
