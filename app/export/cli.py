"""`cellabel export` and `cellabel import`, top-level commands registered by :func:`register`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.clips.filters import ClipFilter
from app.core.cli_output import JsonFlag, console, fail, print_json, print_rows
from app.core.config import get_settings
from app.core.db import session_scope, utcnow
from app.core.errors import DomainError
from app.core.migrate import upgrade_database
from app.export import build, importer, service
from app.export.archive import extract
from app.export.formats.registry import parse_formats
from app.export.options import ExportOptions
from app.export.schemas import ExportCreate
from app.projects.service import get_project_by_name

ProjectOpt = Annotated[str, typer.Option("--project", help="Project name")]


def _bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    )  # fmt: skip


def _build(snapshot_id: int) -> None:
    """Embedded mode builds here; with a broker, a worker builds and we watch the row."""
    with _bar() as bar:
        task = bar.add_task("export", total=None)
        if get_settings().embedded:
            build.run_build(
                snapshot_id,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
            return
        while True:
            with session_scope() as session:
                snap = service.get_export(session, snapshot_id)
                state, progress = snap.state, snap.progress
            bar.update(task, completed=round(progress * 100), total=100)
            if state in (service.DONE, service.FAILED):
                return
            time.sleep(0.5)


def _deliver(archive: Path, out: Path) -> None:
    """A path ending in .zip gets the archive; any other path becomes a folder of its files."""
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, out)
        return
    if out.exists() and any(out.iterdir()):
        raise fail(f"{out} is not empty; give an empty or new folder, or a .zip path.")
    extract(archive, out)


def export_cmd(
    project: ProjectOpt,
    formats: Annotated[
        str, typer.Option("--format", help="Comma list, e.g. coco_wholebody,captions")
    ],
    out: Annotated[Path, typer.Option("--out", help="A .zip file, or a folder to fill")],
    name: Annotated[
        str | None, typer.Option(help="Snapshot name (default: a UTC timestamp)")
    ] = None,
    subset: Annotated[str | None, typer.Option(help="Only clips of this subset")] = None,
    clip_ids: Annotated[str, typer.Option(help="Only these clip ids (comma list)")] = "",
    limit: Annotated[int | None, typer.Option(help="Only the first N matching clips")] = None,
    frames: Annotated[
        bool, typer.Option("--frames/--no-frames", help="Include the annotated frames' images")
    ] = True,
    image_format: Annotated[str, typer.Option(help="jpg or png")] = "jpg",
    jpeg_quality: Annotated[int, typer.Option(help="1..100 (88: the frame cache's)")] = 88,
    val_percent: Annotated[float, typer.Option(help="Clips in val, per stratum")] = 10.0,
    test_percent: Annotated[float, typer.Option(help="Clips in test (0: none)")] = 0.0,
    split_seed: Annotated[int, typer.Option(help="The same seed gives the same split")] = 0,
    licence: Annotated[str, typer.Option(help="Licence stated in the dataset card")] = "",
    source: Annotated[str, typer.Option(help="Source stated in the dataset card")] = "",
    target: Annotated[
        str, typer.Option(help="Also write the archive to s3://bucket/prefix/ (object store)")
    ] = "",
) -> None:
    """Snapshot the approved annotations of a project in one or more formats."""
    upgrade_database()
    try:
        options = ExportOptions.model_validate(
            {"frames": frames, "image_format": image_format, "jpeg_quality": jpeg_quality,
             "val_percent": val_percent, "test_percent": test_percent,
             "split_seed": split_seed, "licence": licence, "source": source}
        )  # fmt: skip
        flt = ClipFilter.model_validate(
            {
                "subset": subset,
                "limit": limit,
                "clip_ids": [c for c in clip_ids.split(",") if c.strip()],
            }
        )
        with session_scope() as session:
            proj = get_project_by_name(session, project)
            data = ExportCreate(
                project_id=proj.id,
                name=name or utcnow().strftime("%Y%m%dT%H%M%SZ"),
                formats=parse_formats(formats),
                filter=flt,
                options=options,
                target=target,
            )
            snapshot_id = service.create_export(
                session, data, None, send=not get_settings().embedded
            ).id
        _build(snapshot_id)
        with session_scope() as session:
            snap = service.get_export(session, snapshot_id)
            if snap.state == service.FAILED:
                raise fail(f"The export failed: {snap.error}")
            _deliver(service.archive_path(snap), out)
            row = {"snapshot": snap.name, "clips": len(snap.annotation_versions),
                   "bytes": snap.size_bytes, "sha256": snap.sha256, "out": str(out)}  # fmt: skip
            copied, copy_error = snap.target_object, snap.target_error
    except (DomainError, ValueError) as exc:
        raise fail(getattr(exc, "message", None) or str(exc)) from exc
    print_rows([row], list(row), "Export", False)
    if copied:
        console.print(f"Copy written to {copied}", soft_wrap=True)
    if copy_error:
        console.print(f"[yellow]{copy_error}[/]", soft_wrap=True)


def import_cmd(
    path: Annotated[Path, typer.Argument(help="Snapshot zip or folder, or the format's file")],
    project: ProjectOpt,
    fmt: Annotated[str, typer.Option("--format", help="cellabel, coco_wholebody or captions")],
    into: Annotated[str, typer.Option(help="captions: primary or model")] = "primary",
    as_json: JsonFlag = False,
) -> None:
    """Import a CelLabel snapshot (round trip), COCO-WholeBody drafts or captions JSONL."""
    upgrade_database()
    if fmt not in importer.IMPORT_FORMATS:
        raise fail(f"Import reads {', '.join(importer.IMPORT_FORMATS)}, not {fmt!r}.")
    try:
        with session_scope() as session:
            if fmt == "cellabel":
                report = importer.import_cellabel(session, project, path)
            elif fmt == "coco_wholebody":
                report = importer.import_coco(session, get_project_by_name(session, project), path)
            else:
                proj = get_project_by_name(session, project)
                report = importer.import_captions(session, proj, path, into=into)
    except DomainError as exc:
        raise fail(exc.message) from exc
    if as_json:
        print_json(report.model_dump())
        return
    data = report.model_dump()
    row = {k: v for k, v in data.items() if k not in ("skipped", "users_created")}
    row["users_created"] = ", ".join(report.users_created) or "—"
    print_rows([row], list(row), "Import", False)
    for reason in report.skipped:
        console.print(f"[yellow]Skipped:[/] {reason}")


def register(cli: typer.Typer) -> None:
    """Add `export` and `import` as top-level commands of the `cellabel` CLI."""
    cli.command("export")(export_cmd)
    cli.command("import")(import_cmd)
