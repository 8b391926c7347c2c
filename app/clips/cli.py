"""`cellabel clips import|list|show` and `cellabel pipeline run`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.clips import bucket_sources, records, service
from app.clips.models import Clip, ClipState
from app.clips.schemas import SourceCreate
from app.clips.source_sync import run_sync
from app.core.cli_output import JsonFlag, console, fail, print_json, print_rows
from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import DomainError
from app.core.migrate import upgrade_database
from app.pipeline import intake, uploads
from app.pipeline import service as pipeline
from app.pipeline.runner import run_queued_inline
from app.pipeline.source_processing import run_processing
from app.projects.service import get_project_by_name, parse_subsets

clips_cli = typer.Typer(help="Clips: import, list, show, delete, retry.", no_args_is_help=True)
pipeline_cli = typer.Typer(help="Pre-annotation pipeline.", no_args_is_help=True)

ProjectOpt = Annotated[str, typer.Option("--project", help="Project name")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Return when the pipeline has finished")]


def _progress() -> Progress:
    """A progress bar on stderr, so `--json` output on stdout stays parseable."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=Console(stderr=True),
    )  # fmt: skip


def wait_for_pipeline(clip_ids: list[int]) -> None:
    """Embedded mode runs the queued steps here; with a broker, watch the job rows."""
    if not clip_ids:
        return
    if get_settings().embedded:
        with _progress() as bar:
            task = bar.add_task("pipeline", total=None)
            run_queued_inline(
                clip_ids,
                progress=lambda job: bar.update(
                    task, advance=1, description=f"{job.step} clip {job.clip_id}"
                ),
            )
        return
    with _progress() as bar:
        task = bar.add_task("pipeline (workers)", total=len(clip_ids))
        while True:
            with session_scope() as session:
                states = [service.get_clip(session, cid).state for cid in clip_ids]
            done = sum(s in (ClipState.ready, ClipState.failed) for s in states)
            bar.update(task, completed=done)
            if done == len(clip_ids):
                return
            time.sleep(1)


@clips_cli.command("import")
def import_cmd(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files or folders, or one s3://bucket/prefix/")
    ] = None,
    project: ProjectOpt = "demo",
    manifest: Annotated[Path | None, typer.Option(help="CSV or JSONL manifest")] = None,
    subsets: Annotated[str, typer.Option(help="Subsets for files given as paths")] = "",
    records_only: Annotated[
        bool,
        typer.Option(
            "--records-only",
            help="Create clip rows from the manifest's "
            "metadata in bulk, without reading or copying media",
        ),
    ] = False,
    endpoint: Annotated[str, typer.Option(help="S3 endpoint (empty for AWS S3)")] = "",
    region: Annotated[str, typer.Option(help="S3 region")] = "",
    access_key_id: Annotated[str, typer.Option(envvar="AWS_ACCESS_KEY_ID")] = "",
    secret_access_key: Annotated[
        str, typer.Option(envvar="AWS_SECRET_ACCESS_KEY", help="Stored encrypted")
    ] = "",
    process: Annotated[
        bool, typer.Option("--process", help="s3:// only: queue the pipeline for its new records")
    ] = False,
    wait: WaitOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Import files, folders or a manifest; duplicates are reported, not stored twice. An
    s3:// prefix is registered as a bucket source (or, if it is one, synced again): its video
    objects become clip records, the media stay in the bucket (``--process`` queues the
    pipeline for the records not processed yet)."""
    upgrade_database()
    if not paths and manifest is None:
        raise fail("Give files or folders, or --manifest.")
    if paths and any(p.startswith("s3://") for p in paths):
        if len(paths) != 1 or manifest is not None or records_only:
            raise fail("An s3:// prefix is imported on its own (no other paths or --manifest).")
        source = SourceCreate(url=paths[0], endpoint_url=endpoint, region=region,
                              access_key_id=access_key_id,
                              secret_access_key=SecretStr(secret_access_key))  # fmt: skip
        _import_bucket(project, source, process, as_json)
        return
    if process:
        raise fail("--process queues the records of an s3:// prefix; files are queued anyway.")
    if records_only:
        if manifest is None or paths:
            raise fail("--records-only takes a --manifest and no paths.")
        _import_records(project, manifest, as_json)
        return
    outcomes = []
    try:
        with session_scope() as session:
            proj = get_project_by_name(session, project)
            spec = service.ClipSpec(subsets=[s.value for s in parse_subsets(subsets)])
            files = intake.expand_paths([Path(p) for p in paths or []])
            with _progress() as bar:
                task = bar.add_task("import", total=len(files) or None)
                advance = lambda outcome: bar.update(task, advance=1)  # noqa: E731
                if manifest is not None:
                    outcomes += intake.import_manifest(session, proj, manifest, progress=advance)
                outcomes += intake.import_paths(session, proj, files, spec, progress=advance)
    except DomainError as exc:
        raise fail(exc.message) from exc
    rows = [o.model_dump() for o in outcomes]
    print_rows(rows, ["name", "status", "clip_id", "message"], "Import", as_json)
    if wait:
        wait_for_pipeline([o.clip_id for o in outcomes if o.status == "created" and o.clip_id])


def _import_records(project: str, manifest: Path, as_json: bool) -> None:
    started = time.perf_counter()
    try:
        with session_scope() as session:
            rows = records.iter_manifest(manifest)
            result = records.import_records(session, get_project_by_name(session, project), rows)
    except DomainError as exc:
        raise fail(exc.message) from exc
    seconds = time.perf_counter() - started
    total = result.created + result.duplicates
    summary = {"rows": total, "created": result.created, "duplicates": result.duplicates,
               "seconds": round(seconds, 2)}  # fmt: skip
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"{result.created} clip records created, {result.duplicates} already present "
            f"({total} manifest rows in {seconds:.1f} s)."
        )


def _import_bucket(project: str, data: SourceCreate, process: bool, as_json: bool) -> None:
    started = time.perf_counter()
    try:
        with session_scope() as session:
            proj = get_project_by_name(session, project)
            source = bucket_sources.find_source(session, proj.id, data.url, data.endpoint_url)
            registered = source is None
            source = source or bucket_sources.register_source(session, proj, data)
            source_id, url = source.id, source.url
        with _progress() as bar:
            task = bar.add_task(f"listing {url}", total=None)
            result = run_sync(source_id, lambda s: bar.update(task, completed=s.object_count))
    except DomainError as exc:
        raise fail(exc.message) from exc
    assert result is not None  # registered just now, or found: not deleted meanwhile
    seconds = time.perf_counter() - started
    queued = run_processing(source_id) if process else 0
    summary = {"source_id": source_id, "url": url, "registered": registered,
               "listed": result.listed, "created": result.created,
               "seconds": round(seconds, 2), "queued": queued}  # fmt: skip
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"{'Registered' if registered else 'Synced'} {url}: {result.created} new clip "
            f"records of {result.listed} video objects ({seconds:.1f} s); the media stay in "
            "the bucket." + (f" Queued the pipeline for {queued} clip(s)." if process else "")
        )


def clip_row(clip: Clip) -> dict[str, Any]:
    return {
        "id": clip.id, "file": clip.filename, "state": clip.state.value,
        "subsets": ",".join(clip.subsets), "frames": clip.frame_count, "fps": clip.fps,
        "size": f"{clip.width}x{clip.height}" if clip.width else "", "error": clip.error or "",
    }  # fmt: skip


@clips_cli.command("list")
def list_cmd(project: ProjectOpt = "demo", limit: int = 1000, as_json: JsonFlag = False) -> None:
    """List a project's clips with their pipeline state."""
    with session_scope() as session:
        proj = get_project_by_name(session, project)
        rows = [clip_row(c) for c in service.list_clips(session, proj.id, limit=limit)]
    print_rows(
        rows, ["id", "file", "state", "subsets", "frames", "fps", "size", "error"], "Clips", as_json
    )


@clips_cli.command("show")
def show_cmd(clip_id: int, as_json: JsonFlag = False) -> None:
    """Probe values, jobs and state of one clip."""
    try:
        with session_scope() as session:
            clip = service.get_clip(session, clip_id)
            data = {**clip_row(clip), "probe": clip.probe, "has_audio": clip.has_audio,
                    "codec": clip.video_codec, "error_kind": clip.error_kind,
                    "jobs": [{"step": j.step, "state": j.state.value, "attempts": j.attempts,
                              "seconds": j.duration_s, "error": (j.error or "").splitlines()[:1]}
                             for j in pipeline.clip_jobs(session, clip_id)]}  # fmt: skip
    except DomainError as exc:
        raise fail(exc.message) from exc
    if as_json:
        print_json(data)
        return
    print_rows(
        [{k: v for k, v in data.items() if k != "jobs"}],
        list(clip_row(clip)),
        f"Clip {clip_id}",
        False,
    )
    print_rows(data["jobs"], ["step", "state", "attempts", "seconds", "error"], "Jobs", False)


ClipIds = Annotated[list[int], typer.Argument(help="One or more clip ids, of one project")]


def _each(act: Callable[..., service.BulkOutcome], clip_ids: list[int], verb: str) -> list[int]:
    """Run a bulk action as the list page does: each clip it leaves alone is said, with why."""
    try:
        with session_scope() as session:
            project_id = service.get_clip(session, clip_ids[0]).project_id
            outcome = act(session, project_id, clip_ids)
    except DomainError as exc:
        raise fail(exc.message) from exc
    for clip_id in outcome.done:
        console.print(f"{verb} clip {clip_id}.")
    for reason in outcome.refused.values():
        console.print(f"[red]Left alone:[/] {reason}")
    if outcome.refused:
        raise typer.Exit(code=1)
    return outcome.done


@clips_cli.command("delete")
def delete_cmd(clip_ids: ClipIds) -> None:
    """Delete clips nobody has worked on, with their media files."""
    _each(service.delete_clips, clip_ids, "Deleted")


@clips_cli.command("retry")
def retry_cmd(clip_ids: ClipIds, wait: WaitOpt = False) -> None:
    """Run clips' whole pipeline again (after a failure)."""
    done = _each(intake.retry_pipelines, clip_ids, "Queued the pipeline again for")
    if wait:
        wait_for_pipeline(done)


@clips_cli.command("allow-uploads-from")
def allow_uploads_cmd(
    origins: Annotated[list[str], typer.Argument(help="e.g. https://label.example.com")],
) -> None:
    """Let pages served from these addresses upload straight to the media bucket (sets the
    bucket's CORS rule; needs STORAGE_URL=s3://... and a key allowed PutBucketCors)."""
    try:
        uploads.allow_browser_origins(origins)
    except DomainError as exc:
        raise fail(exc.message) from exc
    console.print(f"Browser uploads allowed from {', '.join(origins)}.")


@pipeline_cli.command("run")
def run_cmd(
    project: ProjectOpt = "demo",
    clip: Annotated[int | None, typer.Option(help="Only this clip")] = None,
    steps: Annotated[str | None, typer.Option(help="Comma list of steps to re-run")] = None,
    wait: WaitOpt = False,
) -> None:
    """(Re)run the pipeline for a project's clips or one clip."""
    try:
        with session_scope() as session:
            proj = get_project_by_name(session, project)
            only = pipeline.parse_steps(steps)
            clips = (
                [service.get_clip(session, clip)]
                if clip
                else service.list_clips(session, proj.id, limit=10**9)
            )
            for c in clips:
                pipeline.queue_pipeline(session, c, only)
            ids = [c.id for c in clips]
    except DomainError as exc:
        raise fail(exc.message) from exc
    console.print(f"Queued {len(ids)} clip(s).")
    if wait:
        wait_for_pipeline(ids)
        with session_scope() as session:
            failed = sum(
                1 for cid in ids if service.get_clip(session, cid).state == ClipState.failed
            )
            console.print(f"Done: {len(ids) - failed} ready, {failed} failed.")


def reconcile_cmd(
    min_age_s: Annotated[
        int, typer.Option("--min-age", help="Seconds a job or a send must have waited")
    ] = 120,
    as_json: JsonFlag = False,
) -> None:
    """Re-send pipeline jobs that are queued in the database but gone from the broker, export
    builds whose worker died, and every task send still in the outbox; abort browser uploads
    abandoned for UPLOAD_ABANDONED_AFTER_HOURS; exits 1 when some
    send could not reach the broker (they stay in the outbox for the next run)."""
    from datetime import timedelta

    from app.reconcile import reconcile_all

    report = reconcile_all(min_age=timedelta(seconds=min_age_s))
    failed = report.sends.failed
    if as_json:
        print_json({"resent": report.jobs, "exports": report.exports,
                    "uploads_aborted": report.uploads,
                    "sent": report.sends.sent, "failed": failed})  # fmt: skip
    else:
        listed = ": " + ", ".join(map(str, report.jobs)) if report.jobs else ""
        console.print(
            f"Re-queued {len(report.jobs)} job(s){listed} and {len(report.exports)} export"
            f" build(s); aborted {len(report.uploads)} abandoned upload(s);"
            f" sent {len(report.sends.sent)} task(s)."
        )
        if failed:
            console.print(f"[red]Could not send {len(failed)} task(s); the broker is unreachable"
                          " and they stay in the outbox for the next run:[/]")  # fmt: skip
            for line in failed:
                console.print(f"  {line}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@pipeline_cli.command("import-predictions")
def import_predictions_cmd(
    file: Annotated[Path, typer.Argument(help="COCO-WholeBody JSON with track_id per annotation")],
    clip: Annotated[int, typer.Option("--clip", help="Clip the predictions belong to")],
    as_json: JsonFlag = False,
) -> None:
    """Import outside keypoint predictions as the clip's model drafts (one track per track_id)."""
    from app.annotations.drafts import import_coco_wholebody

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"Cannot read {file}: {exc}") from exc
    try:
        with session_scope() as session:
            summary = import_coco_wholebody(session, service.get_clip(session, clip), data)
    except DomainError as exc:
        raise fail(exc.message) from exc
    if as_json:
        print_json(summary)
        return
    console.print(
        f"Imported {summary['tracks']} track(s), {summary['frames']} frame(s) into clip {clip}."
    )
