"""Clip pages, uploads, pipeline progress, and frame-exact media for the browser."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.deps import AdminOnly, AnyUser, Principal, Staff
from app.batches import service as batch_service
from app.batches.assignments import get_visible_clip
from app.batches.schemas import BatchCreate
from app.clips import service
from app.clips.filters import ClipFilter
from app.clips.models import Clip, ClipState
from app.clips.paths import clip_frames, direct_media_url, frames_ready, media_key
from app.clips.schemas import (
    BulkAction,
    BulkForm,
    ClipDetail,
    ClipListQuery,
    ClipRead,
    FolderImport,
    JobRead,
    PipelineRun,
)
from app.core.config import get_settings
from app.core.deps import DB
from app.core.errors import Conflict, Invalid, NotFound, StorageUnavailable, TooLarge, about_field
from app.core.forms import FormState, form_page, with_form
from app.core.storage import get_storage
from app.core.templating import render
from app.pipeline import intake, uploads
from app.pipeline import service as pipeline
from app.pipeline.intake import ImportOutcome
from app.projects import service as projects

router = APIRouter()
api = APIRouter(prefix="/api", tags=["clips"])

MEDIA_FILES = {
    "preview.mp4": "video/mp4",
    "thumb.jpg": "image/jpeg",
    "filmstrip.jpg": "image/jpeg",
}
PAGE = 50


def _clips_context(db: DB, query: ClipListQuery, **extra: object) -> dict[str, object]:
    """The clips page of ``query``: its project, filters, one page of clips and the pager."""
    all_projects = projects.list_projects(db)
    current = next(
        (p for p in all_projects if p.id == query.project),
        all_projects[0] if all_projects else None,
    )
    context: dict[str, object] = {"projects": all_projects, "project": current, **extra}
    if current is None:
        return context
    query = query.model_copy(update={"project": current.id})
    page = service.ClipPage([], None, None)
    try:
        before, after = query.cursors()
        flt = query.list_filter()
        page = service.page_clips(db, current.id, flt, before=before, after=after, limit=PAGE)
    except Invalid as exc:
        context["filter_error"] = exc.message
    context.update(
        query=query,
        page=page,
        here_url=query.url(),
        newer_url=query.url(after=page.newer_than) if page.newer_than else None,
        older_url=query.url(before=page.older_than) if page.older_than else None,
        counts=service.state_counts(db, current.id),
        batches=batch_service.project_batches(db, current.id),
        states=list(ClipState),
        busy=any(c.state in (ClipState.uploaded, ClipState.processing) for c in page.clips),
        direct_upload=get_settings().object_store,
    )
    return context


@router.get("/clips", response_class=HTMLResponse)
def clips_page(
    request: Request,
    db: DB,
    principal: AdminOnly,
    query: Annotated[ClipListQuery, Query()],
    notice: str = "",
) -> Response:
    context = _clips_context(db, query, notice=notice[:300])
    return render(request, "clips/list.html", context, partial="clips/_table.html")


def _back_to_list(back: str, notice: str) -> RedirectResponse:
    """Post/redirect/get to the list page the action came from (same filter and page)."""
    url = ClipListQuery.from_url(back).url()
    joiner = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{joiner}{urlencode({'notice': notice})}", status_code=303)


def _outcome_notice(verb: str, outcome: service.BulkOutcome) -> str:
    notice = f"{verb} {len(outcome.done)} clip{'s' if len(outcome.done) != 1 else ''}."
    if outcome.refused:
        reasons = " ".join(outcome.refused.values())
        notice += f" {len(outcome.refused)} left alone: {reasons}"
    return notice


def _batch_from(form: BulkForm) -> BatchCreate:
    """The batch of exactly the selected clips (created by the batches service, as any batch)."""
    if not form.clip_ids:  # an empty hand-picked list would mean every clip of the project
        raise Invalid("Select at least one clip first.")
    name = form.batch_name.strip()
    if not name:
        raise Invalid("Give the new batch a name.")
    try:
        return BatchCreate(
            name=name, project_id=form.project, filter=ClipFilter(clip_ids=form.clip_ids)
        )
    except ValidationError as exc:
        raise Invalid(f"Batch name: {exc.errors()[0]['msg']}.") from exc


@router.post("/clips/bulk", response_class=HTMLResponse)
def clips_bulk(
    request: Request, db: DB, principal: AdminOnly, form: Annotated[BulkForm, Form()]
) -> Response:
    """Retry, delete (after a confirmation page) or batch the clips selected in the list."""
    try:
        if form.action == "retry":
            outcome = intake.retry_pipelines(db, form.project, form.clip_ids)
            return _back_to_list(
                form.back, _outcome_notice("Queued the pipeline again for", outcome)
            )
        if form.action == "delete":
            if not form.confirm:
                clips = service.project_clips(db, form.project, form.clip_ids)
                back_url = ClipListQuery.from_url(form.back).url()
                context = {"clips": clips, "bulk": form, "back_url": back_url}
                return render(request, "clips/confirm_delete.html", context)
            outcome = service.delete_clips(db, form.project, form.clip_ids)
            return _back_to_list(form.back, _outcome_notice("Deleted", outcome))
        batch = batch_service.create_batch(db, _batch_from(form), created_by=principal.user)
    except (Invalid, Conflict) as exc:
        db.rollback()
        query = ClipListQuery.from_url(form.back).model_copy(update={"project": form.project})
        context = _clips_context(
            db,
            query,
            bulk_error=exc.message,
            selected=set(form.clip_ids),
            batch_name=form.batch_name,
        )
        return render(request, "clips/list.html", context, status_code=exc.status_code)
    notice = f"Batch {batch.name!r} created from {len(set(form.clip_ids))} selected clips."
    return RedirectResponse(f"/batches/{batch.id}?{urlencode({'notice': notice})}", status_code=303)


def _clip_context(db: Session, clip_id: int) -> dict[str, object]:
    clip = service.get_clip(db, clip_id)
    media: dict[str, bool] = {}
    media_error = None
    try:
        media = _media_state(clip)
    except StorageUnavailable as exc:  # the page still shows the pipeline and why it waits
        media_error = exc.message
    return {
        "clip": clip,
        "jobs": pipeline.clip_jobs(db, clip_id),
        "media": media,
        "media_error": media_error,
    }


@router.get("/clips/{clip_id}", response_class=HTMLResponse)
def clip_page(request: Request, db: DB, principal: Staff, clip_id: int) -> Response:
    context = _clip_context(db, clip_id)
    return render(request, "clips/detail.html", context, partial="clips/_jobs.html")


def _clip_actions(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    """The clip page (for HTMX, its pipeline section) after an action on the clip."""
    context = with_form(_clip_context(db, int(request.path_params["clip_id"])), form)
    return render(request, "clips/detail.html", context, partial="clips/_pipeline.html")


@router.post("/clips/{clip_id}/pipeline", response_class=HTMLResponse)
@form_page("rerun", _clip_actions)
def clip_rerun(
    request: Request, db: DB, principal: AdminOnly, clip_id: int, steps: Annotated[str, Form()] = ""
) -> Response:
    clip = service.get_clip(db, clip_id)
    with about_field("steps"):
        only = pipeline.parse_steps(steps)
    pipeline.queue_pipeline(db, clip, only)
    return _clip_actions(request, db, principal)


@router.post("/clips/{clip_id}/retry")
@form_page("retry", _clip_actions)
def clip_retry(db: DB, principal: AdminOnly, clip_id: int) -> Response:
    intake.retry_pipeline(db, clip_id)
    return RedirectResponse(f"/clips/{clip_id}", status_code=303)


@router.post("/clips/{clip_id}/delete")
@form_page("delete", _clip_actions)
def clip_delete(db: DB, principal: AdminOnly, clip_id: int) -> Response:
    project_id = service.get_clip(db, clip_id).project_id
    service.delete_clip(db, clip_id)
    return RedirectResponse(f"/clips?project={project_id}", status_code=303)


@router.get("/clips/{clip_id}/view", response_class=HTMLResponse)
def clip_viewer(
    request: Request, db: DB, principal: AnyUser, clip_id: int, frame: int = 0
) -> Response:
    clip = get_visible_clip(db, principal.user, clip_id)
    if clip.state != ClipState.ready:
        raise Invalid("This clip is not ready to view yet (its pipeline has not finished).")
    return render(request, "clips/viewer.html", {"clip": clip, "frame": frame})


def _media_state(clip: Clip) -> dict[str, bool]:
    storage = get_storage()
    state = {name: storage.exists(media_key(clip, name)) for name in MEDIA_FILES}
    return {**state, "frames/index.json": frames_ready(clip)}


@router.get("/media/clips/{clip_id}/frames/{frame}.jpg")
def frame_image(request: Request, db: DB, principal: AnyUser, clip_id: int, frame: int) -> Response:
    """Exactly frame N of the clip's file, from the decode-once chunk cache."""
    clip = get_visible_clip(db, principal.user, clip_id)
    try:
        cache = clip_frames(clip)
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
    clip = get_visible_clip(db, principal.user, clip_id)
    return Response(
        service.waveform_json(clip),
        media_type="application/json",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get("/media/clips/{clip_id}/{name}")
def clip_media(db: DB, principal: AnyUser, clip_id: int, name: str) -> Response:
    """Preview video, thumbnail and filmstrip (a fixed list: no other file can be asked for);
    the video from a bucket by a redirect to a presigned URL (paths.DIRECT_MEDIA)."""
    clip = get_visible_clip(db, principal.user, clip_id)
    media_type = MEDIA_FILES.get(name)
    if media_type is None:
        raise NotFound("No such media file.")
    try:
        url = direct_media_url(clip, name)
        if url is not None:
            # Kept by the browser for half the URL's life, so a cached one still works.
            keep = get_settings().presigned_url_seconds // 2
            headers = {"Cache-Control": f"private, max-age={keep}"}
            return RedirectResponse(url, status_code=307, headers=headers)
        path = get_storage().local_file(media_key(clip, name))
    except FileNotFoundError as exc:
        raise NotFound("This media file is not ready yet.") from exc
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
    clip = get_visible_clip(db, principal.user, clip_id)
    jobs = [JobRead.model_validate(j) for j in pipeline.clip_jobs(db, clip_id)]
    return ClipDetail.model_validate({**ClipRead.model_validate(clip).model_dump(), "jobs": jobs})


@api.post("/projects/{project_id}/clips", response_model=ImportOutcome)
def api_upload(
    db: DB,
    principal: AdminOnly,
    project_id: int,
    file: Annotated[UploadFile, File()],
    subsets: Annotated[str, Form()] = "",
) -> ImportOutcome:
    """One file per request (the browser sends several in parallel with per-file progress).

    Retrying is safe: the same content is reported as a duplicate, never stored twice."""
    project = projects.get_project(db, project_id)
    spec = service.ClipSpec(subsets=[s.value for s in projects.parse_subsets(subsets)])
    outcome = intake.import_stream(db, project, file.file, file.filename or "upload", spec)
    if outcome.status == "error":  # refused: nothing was stored
        raise (TooLarge if outcome.refusal == "too_large" else Invalid)(outcome.message)
    return outcome


@api.post("/projects/{project_id}/uploads", response_model=uploads.UploadRead, status_code=201)
def api_start_upload(
    db: DB, principal: AdminOnly, project_id: int, body: uploads.UploadStart
) -> uploads.UploadRead:
    """Open a multipart upload straight to the bucket (with STORAGE_URL=s3://...)."""
    project = projects.get_project(db, project_id)
    return uploads.start_upload(db, project, principal.user_id, body)


@api.get("/uploads/{upload_id}", response_model=uploads.UploadRead)
def api_upload_status(db: DB, principal: AdminOnly, upload_id: int) -> uploads.UploadRead:
    """The upload and the parts already in the store (a resumed browser sends the rest)."""
    return uploads.upload_status(db, uploads.get_upload(db, upload_id, principal.user_id))


@api.post("/uploads/{upload_id}/parts", response_model=uploads.PartUrls)
def api_upload_parts(
    db: DB, principal: AdminOnly, upload_id: int, body: uploads.PartNumbers
) -> uploads.PartUrls:
    """Presigned URLs the browser PUTs these parts to."""
    upload = uploads.get_upload(db, upload_id, principal.user_id)
    return uploads.part_urls(db, upload, body.parts)


@api.post("/uploads/{upload_id}/complete", response_model=ImportOutcome)
def api_complete_upload(db: DB, principal: AdminOnly, upload_id: int) -> ImportOutcome:
    """Every part is in the store: the upload becomes a clip and its pipeline is queued."""
    return uploads.complete_upload(db, uploads.get_upload(db, upload_id, principal.user_id))


@api.delete("/uploads/{upload_id}", status_code=204)
def api_abort_upload(db: DB, principal: AdminOnly, upload_id: int) -> Response:
    uploads.abort_upload(db, uploads.get_upload(db, upload_id, principal.user_id))
    return Response(status_code=204)


@api.post("/projects/{project_id}/clips/import-folder", response_model=list[ImportOutcome])
def api_import_folder(
    db: DB, principal: AdminOnly, project_id: int, body: FolderImport
) -> list[ImportOutcome]:
    """Import from a folder on the server, which must lie under the configured import root."""
    project = projects.get_project(db, project_id)
    spec = service.ClipSpec(subsets=body.subsets)
    return intake.import_from_server(db, project, body.path, spec)


@api.delete("/clips/{clip_id}", status_code=204)
def api_delete_clip(db: DB, principal: AdminOnly, clip_id: int) -> Response:
    """Delete a clip nobody has worked on (409 when it is in a batch or a step is running)."""
    service.delete_clip(db, clip_id)
    return Response(status_code=204)


@api.post("/clips/{clip_id}/retry", response_model=list[JobRead])
def api_retry(db: DB, principal: AdminOnly, clip_id: int) -> list[JobRead]:
    """Run the whole pipeline of a clip again (409 while a step is running)."""
    return [JobRead.model_validate(j) for j in intake.retry_pipeline(db, clip_id)]


@api.post("/clips/{clip_id}/pipeline", response_model=list[JobRead])
def api_rerun(db: DB, principal: AdminOnly, clip_id: int, body: PipelineRun) -> list[JobRead]:
    clip = service.get_clip(db, clip_id)
    only = pipeline.parse_steps(",".join(body.steps)) if body.steps else None
    return [JobRead.model_validate(j) for j in pipeline.queue_pipeline(db, clip, only)]


@api.post("/projects/{project_id}/clips/bulk", response_model=service.BulkOutcome)
def api_bulk(
    db: DB, principal: AdminOnly, project_id: int, body: BulkAction
) -> service.BulkOutcome:
    """Retry or delete many clips of a project; each clip that cannot be is listed with why."""
    projects.get_project(db, project_id)
    act = intake.retry_pipelines if body.action == "retry" else service.delete_clips
    return act(db, project_id, body.clip_ids)
