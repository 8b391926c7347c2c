"""Clip pages, uploads, pipeline progress, and frame-exact media for the browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.clips import service
from app.clips.models import ClipState
from app.clips.schemas import ClipDetail, ClipRead, FolderImport, ImportResult, JobRead, PipelineRun
from app.core.deps import DB, AdminOnly, AnyUser, Staff
from app.core.errors import Invalid, NotFound, TooLarge
from app.core.templating import render
from app.media.framecache import open_frame_cache
from app.pipeline import service as pipeline
from app.projects import service as projects

router = APIRouter()
api = APIRouter(prefix="/api", tags=["clips"])

MEDIA_FILES = {
    "preview.mp4": "video/mp4",
    "thumb.jpg": "image/jpeg",
    "filmstrip.jpg": "image/jpeg",
}
PAGE = 100


def _clip_table_context(db: DB, project_id: int, after: int) -> dict[str, object]:
    clips = service.list_clips(db, project_id, after_id=after, limit=PAGE)
    return {
        "clips": clips,
        "counts": service.state_counts(db, project_id),
        "next_after": clips[-1].id if len(clips) == PAGE else None,
        "busy": any(c.state in (ClipState.uploaded, ClipState.processing) for c in clips),
        "project_id": project_id,
        "after": after,
    }


@router.get("/clips", response_class=HTMLResponse)
def clips_page(
    request: Request, db: DB, principal: AdminOnly, project: int | None = None, after: int = 0
) -> Response:
    all_projects = projects.list_projects(db)
    current = next(
        (p for p in all_projects if p.id == project), all_projects[0] if all_projects else None
    )
    context: dict[str, object] = {"projects": all_projects, "project": current}
    if current is not None:
        context.update(_clip_table_context(db, current.id, after))
    return render(request, "clips/list.html", context, partial="clips/_table.html")


@router.get("/clips/{clip_id}", response_class=HTMLResponse)
def clip_page(request: Request, db: DB, principal: Staff, clip_id: int) -> Response:
    clip = service.get_clip(db, clip_id)
    context = {"clip": clip, "jobs": pipeline.clip_jobs(db, clip_id), "media": _media_state(clip)}
    return render(request, "clips/detail.html", context, partial="clips/_jobs.html")


@router.post("/clips/{clip_id}/pipeline", response_class=HTMLResponse)
def clip_rerun(
    request: Request, db: DB, principal: AdminOnly, clip_id: int, steps: Annotated[str, Form()] = ""
) -> Response:
    clip = service.get_clip(db, clip_id)
    pipeline.queue_pipeline(db, clip, pipeline.parse_steps(steps))
    return clip_page(request, db, principal, clip_id)


@router.get("/clips/{clip_id}/view", response_class=HTMLResponse)
def clip_viewer(
    request: Request, db: DB, principal: AnyUser, clip_id: int, frame: int = 0
) -> Response:
    clip = service.get_visible_clip(db, principal.user, clip_id)
    if clip.state != ClipState.ready:
        raise Invalid("This clip is not ready to view yet (its pipeline has not finished).")
    return render(request, "clips/viewer.html", {"clip": clip, "frame": frame})


def _media_state(clip: object) -> dict[str, bool]:
    folder = service.clip_media_dir(clip)  # type: ignore[arg-type]
    return {name: (folder / name).exists() for name in (*MEDIA_FILES, "frames/index.json")}


@router.get("/media/clips/{clip_id}/frames/{frame}.jpg")
def frame_image(request: Request, db: DB, principal: AnyUser, clip_id: int, frame: int) -> Response:
    """Exactly frame N of the clip's file, from the decode-once chunk cache."""
    clip = service.get_visible_clip(db, principal.user, clip_id)
    try:
        cache = open_frame_cache(service.clip_media_dir(clip) / "frames")
    except FileNotFoundError as exc:
        raise NotFound("The frames of this clip are not ready yet.") from exc
    if not 0 <= frame < len(cache):
        raise NotFound(f"Frame {frame} is outside this clip (0-{len(cache) - 1}).")
    etag = cache.etag(frame)
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(cache.read_frame(frame), media_type=cache.info.mime, headers=headers)


@router.get("/media/clips/{clip_id}/waveform.json")
def clip_waveform(db: DB, principal: AnyUser, clip_id: int) -> Response:
    """Audio peaks (100 per second, 0..1) for the speech editor, computed once and kept."""
    clip = service.get_visible_clip(db, principal.user, clip_id)
    return Response(
        service.waveform_json(clip),
        media_type="application/json",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get("/media/clips/{clip_id}/{name}")
def clip_media(db: DB, principal: AnyUser, clip_id: int, name: str) -> Response:
    """Preview video, thumbnail and filmstrip (a fixed list: no other file can be asked for)."""
    clip = service.get_visible_clip(db, principal.user, clip_id)
    media_type = MEDIA_FILES.get(name)
    if media_type is None:
        raise NotFound("No such media file.")
    path = service.clip_media_dir(clip) / name
    if not path.is_file():
        raise NotFound("This media file is not ready yet.")
    return FileResponse(
        path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"}
    )


@api.get("/clips", response_model=list[ClipRead])
def api_clips(
    db: DB,
    principal: Staff,
    project_id: int,
    after: int = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    state: ClipState | None = None,
) -> list[ClipRead]:
    projects.get_project(db, project_id)
    clips = service.list_clips(db, project_id, state=state, after_id=after, limit=limit)
    return [ClipRead.model_validate(c) for c in clips]


@api.get("/clips/{clip_id}", response_model=ClipDetail)
def api_clip(db: DB, principal: AnyUser, clip_id: int) -> ClipDetail:
    clip = service.get_visible_clip(db, principal.user, clip_id)
    jobs = [JobRead.model_validate(j) for j in pipeline.clip_jobs(db, clip_id)]
    return ClipDetail.model_validate({**ClipRead.model_validate(clip).model_dump(), "jobs": jobs})


@api.post("/projects/{project_id}/clips", response_model=ImportResult)
def api_upload(
    db: DB,
    principal: AdminOnly,
    project_id: int,
    file: Annotated[UploadFile, File()],
    subsets: Annotated[str, Form()] = "",
) -> ImportResult:
    """One file per request (the browser sends several in parallel with per-file progress).

    Retrying is safe: the same content is reported as a duplicate, never stored twice."""
    project = projects.get_project(db, project_id)
    spec = service.ClipSpec(subsets=[s.value for s in projects.parse_subsets(subsets)])
    outcome = service.import_stream(db, project, file.file, file.filename or "upload", spec)
    if outcome.status == "error":  # refused: nothing was stored
        raise (TooLarge if outcome.refusal == "too_large" else Invalid)(outcome.message)
    return ImportResult(**outcome.as_dict())


@api.post("/projects/{project_id}/clips/import-folder", response_model=list[ImportResult])
def api_import_folder(
    db: DB, principal: AdminOnly, project_id: int, body: FolderImport
) -> list[ImportResult]:
    """Import from a folder on the server, which must lie under the configured import root."""
    project = projects.get_project(db, project_id)
    spec = service.ClipSpec(subsets=body.subsets)
    outcomes = service.import_from_server(db, project, body.path, spec)
    return [ImportResult(**o.as_dict()) for o in outcomes]


@api.post("/clips/{clip_id}/pipeline", response_model=list[JobRead])
def api_rerun(db: DB, principal: AdminOnly, clip_id: int, body: PipelineRun) -> list[JobRead]:
    clip = service.get_clip(db, clip_id)
    only = pipeline.parse_steps(",".join(body.steps)) if body.steps else None
    return [JobRead.model_validate(j) for j in pipeline.queue_pipeline(db, clip, only)]
