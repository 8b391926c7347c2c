"""`cellabel batches create|assign|status|list|next`: the same service calls as the web."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, time
from typing import Annotated

import typer

from app.annotations.opening import claim_next_clip
from app.auth.models import Role
from app.batches import assignments, sampling, service
from app.batches.progress_cache import batch_progress
from app.batches.schemas import AssignConfig, BatchCreate
from app.clips.filters import ClipFilter
from app.clips.models import ClipState
from app.core.cli_output import JsonFlag, console, fail, print_json, print_rows
from app.core.db import session_scope
from app.core.errors import DomainError
from app.core.migrate import upgrade_database
from app.projects.models import Subset
from app.projects.service import get_project_by_name

batches_cli = typer.Typer(
    help="Batches: create, assign, status, and the next clip.", no_args_is_help=True
)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


@batches_cli.command("create")
def create(
    name: str,
    project: Annotated[str, typer.Option("--project", help="Project name")],
    subset: Annotated[Subset | None, typer.Option(help="Only clips of this subset")] = None,
    state: Annotated[ClipState | None, typer.Option(help="Only clips in this state")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value source tag; repeatable")] = None,
    clip_ids: Annotated[str, typer.Option(help="Hand-picked clip ids, comma list")] = "",
    limit: Annotated[int | None, typer.Option(min=1, help="Batch size")] = None,
    priority: int = 0,
    due: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Due date")] = None,
    lease_minutes: Annotated[int, typer.Option(min=1)] = 60,
) -> None:
    """Create a batch from a filter (or from hand-picked clip ids)."""
    upgrade_database()
    tags = dict(t.split("=", 1) for t in (tag or []) if "=" in t)
    if len(tags) != len(tag or []):
        raise fail("Tags are written key=value.")
    due_at = datetime.combine(due.date(), time(23, 59, 59), UTC) if due else None
    try:
        with session_scope() as session:
            data = BatchCreate(
                name=name,
                project_id=get_project_by_name(session, project).id,
                filter=ClipFilter(
                    subset=subset, state=state, tags=tags, limit=limit,
                    clip_ids=[int(i) for i in _names(clip_ids)],
                ),
                priority=priority, due_at=due_at, lease_minutes=lease_minutes,
            )  # fmt: skip
            batch = service.create_batch(session, data)
            size = batch_progress(session, batch.id).clips
            console.print(f"Created batch [bold]{batch.name}[/] (id {batch.id}) with {size} clips")
    except (DomainError, ValueError) as exc:
        raise fail(getattr(exc, "message", str(exc))) from exc


@batches_cli.command("assign")
def assign(
    batch: Annotated[str, typer.Argument(help="Batch id or name")],
    annotators: Annotated[str, typer.Option(help="Comma list of usernames")] = "",
    reviewers: Annotated[str, typer.Option(help="Comma list of usernames")] = "",
    overlap_k: Annotated[int, typer.Option(min=1, max=10)] = 1,
    overlap_pct: Annotated[float, typer.Option(min=0, max=100)] = 0.0,
    gold_pct: Annotated[float, typer.Option(min=0, max=100)] = 0.0,
    seed: int = 0,
) -> None:
    """Add annotators/reviewers to a batch's pool; set overlap (k on x %) and gold (g %)."""
    config = AssignConfig(
        annotators=_names(annotators), reviewers=_names(reviewers), overlap_k=overlap_k,
        overlap_pct=overlap_pct, gold_pct=gold_pct, seed=seed,
    )  # fmt: skip
    try:
        with session_scope() as session:
            result = sampling.assign_batch(session, service.find_batch(session, batch).id, config)
    except DomainError as exc:
        raise fail(exc.message) from exc
    console.print(
        f"Pool: {result.annotators} annotators, {result.reviewers} reviewers; "
        f"{result.overlapped} clips overlapped, {result.gold} gold clips"
        + (
            f" ({result.gold_shortfall} short: too few approved clips)"
            if result.gold_shortfall
            else ""
        )
    )


@batches_cli.command("status")
def status(
    batch: Annotated[str, typer.Argument(help="Batch id or name")], as_json: JsonFlag = False
) -> None:
    """Progress per annotator: states, submissions in the last hour, median time per clip."""
    try:
        with session_scope() as session:
            progress = batch_progress(session, service.find_batch(session, batch).id)
    except DomainError as exc:
        raise fail(exc.message) from exc
    if as_json:
        print_json(asdict(progress))
        return
    console.print(
        f"{progress.clips} clips ({progress.overlapped_clips} overlapped, {progress.gold_clips} "
        f"gold); {progress.handed_out} of {progress.slots} annotator slots claimed"
    )
    columns = ["annotator", *progress.overall.counts, "last_hour", "median_s"]
    rows = [
        {
            "annotator": p.label,
            **p.counts,
            "last_hour": p.submitted_last_hour,
            "median_s": "-" if p.median_seconds is None else round(p.median_seconds),
        }
        for p in [*progress.annotators, progress.overall]
    ]
    rows[-1]["annotator"] = "(all)"
    print_rows(rows, columns, f"Batch {progress.overall.label}", False)


@batches_cli.command("list")
def list_cmd(as_json: JsonFlag = False) -> None:
    """Batches with size and claimed slots."""
    with session_scope() as session:
        rows = [
            {"id": s.batch.id, "name": s.batch.name, "project": s.project_name,
             "priority": s.batch.priority, "clips": s.clips, "slots": s.slots,
             "handed_out": s.handed_out}
            for s in service.list_batches(session)
        ]  # fmt: skip
    print_rows(rows, list(rows[0]) if rows else ["id", "name"], "Batches", as_json)


@batches_cli.command("next")
def next_cmd(
    username: str,
    batch: Annotated[str | None, typer.Option(help="Only this batch (id or name)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Take and start the next clip for an annotator (as the web's Next clip button)."""
    try:
        with session_scope() as session:
            user = service.user_by_name(session, username, [Role.annotator])
            batch_id = service.find_batch(session, batch).id if batch else None
            assignment = claim_next_clip(session, user, batch_id=batch_id)
            entries = (
                assignments.own_assignments(session, user, only_id=assignment.id)
                if assignment
                else []
            )
    except DomainError as exc:
        raise fail(exc.message) from exc
    if not entries:
        raise fail(f"No clips are waiting for {username}.")
    entry = entries[0]
    if as_json:
        print_json(entry.model_dump())
        return
    console.print(
        f"Assignment {entry.id}: clip {entry.clip_id} ({entry.filename}) from batch "
        f"{entry.batch_name}, lease until {entry.leased_until:%Y-%m-%d %H:%M} UTC"
        if entry.leased_until
        else f"Assignment {entry.id}: clip {entry.clip_id} ({entry.filename})"
    )
