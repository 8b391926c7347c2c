"""Bucket sources of a project: the admin page (register, sync, delete) and the API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import AdminOnly, Principal
from app.clips import bucket_sources as sources
from app.clips.models import SyncState
from app.clips.schemas import SourceCreate, SourceRead
from app.core.deps import DB
from app.core.forms import FormState, form_page, with_form
from app.core.templating import render
from app.pipeline import source_processing
from app.projects import service as projects

router = APIRouter()
api = APIRouter(prefix="/api", tags=["clips"])


def _sources_page(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    """The sources page of the project in the path (for HTMX, its sources table)."""
    project = projects.get_project(db, int(request.path_params["project_id"]))
    listed = sources.list_sources(db, project.id)
    busy = any(s.state in (SyncState.queued, SyncState.syncing, SyncState.processing)
               for s in listed)  # fmt: skip
    context = {"project": project, "sources": listed, "busy": busy,
               "unprocessed": sources.unprocessed_counts(db, project.id),
               "notice": request.query_params.get("notice", "")[:300]}  # fmt: skip
    return render(request, "clips/sources.html", with_form(context, form),
                  partial="clips/_sources.html")  # fmt: skip


def _back(project_id: int, notice: str) -> RedirectResponse:
    url = f"/projects/{project_id}/sources?{urlencode({'notice': notice})}"
    return RedirectResponse(url, status_code=303)


@router.get("/projects/{project_id}/sources", response_class=HTMLResponse)
def sources_page(request: Request, db: DB, principal: AdminOnly, project_id: int) -> Response:
    return _sources_page(request, db, principal)


@router.post("/projects/{project_id}/sources", response_class=HTMLResponse)
@form_page("source", _sources_page)
def register_source(
    db: DB,
    principal: AdminOnly,
    project_id: int,
    url: Annotated[str, Form()] = "",
    endpoint_url: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
    access_key_id: Annotated[str, Form()] = "",
    secret_access_key: Annotated[str, Form()] = "",
) -> Response:
    """Register a bucket prefix and queue its first listing."""
    project = projects.get_project(db, project_id)
    data = SourceCreate.model_validate(
        {"url": url, "endpoint_url": endpoint_url, "region": region,
         "access_key_id": access_key_id, "secret_access_key": secret_access_key}
    )  # fmt: skip
    source = sources.register_source(db, project, data, principal.user)
    sources.request_sync(db, source.id)
    return _back(project_id, f"Registered {source.url}; listing it now.")


@router.post("/projects/{project_id}/sources/{source_id}/sync")
@form_page("source-action", _sources_page)
def sync_source(db: DB, principal: AdminOnly, project_id: int, source_id: int) -> Response:
    source = sources.request_sync(db, source_id, project_id)
    return _back(project_id, f"Listing {source.url} for new objects.")


@router.post("/projects/{project_id}/sources/{source_id}/process")
@form_page("source-action", _sources_page)
def process_source(db: DB, principal: AdminOnly, project_id: int, source_id: int) -> Response:
    """Queue the pipeline, in the background, for the clip records the source's syncs created."""
    url = sources.get_source(db, source_id, project_id).url
    waiting = source_processing.request_processing(db, source_id, project_id)
    if not waiting:
        return _back(project_id, f"Every clip of {url} is processed or queued already.")
    return _back(
        project_id,
        f"Processing {waiting} clip{'s' if waiting != 1 else ''} of {url} in the background: "
        "To process counts down as the pipeline takes them.",
    )


@router.post("/projects/{project_id}/sources/{source_id}/delete")
@form_page("source-action", _sources_page)
def delete_source(db: DB, principal: AdminOnly, project_id: int, source_id: int) -> Response:
    url = sources.get_source(db, source_id, project_id).url
    sources.delete_source(db, source_id, project_id)
    return _back(project_id, f"Deleted {url} and its clips (the bucket is untouched).")


@api.get("/projects/{project_id}/sources", response_model=list[SourceRead])
def api_sources(db: DB, principal: AdminOnly, project_id: int) -> list[SourceRead]:
    projects.get_project(db, project_id)
    return [SourceRead.model_validate(s) for s in sources.list_sources(db, project_id)]


@api.post("/projects/{project_id}/sources", response_model=SourceRead, status_code=201)
def api_register_source(
    db: DB, principal: AdminOnly, project_id: int, body: SourceCreate
) -> SourceRead:
    """Register a bucket prefix (422 with the field when it cannot be listed) and queue its
    first listing."""
    source = sources.register_source(db, projects.get_project(db, project_id), body, principal.user)
    return SourceRead.model_validate(sources.request_sync(db, source.id))


@api.post("/sources/{source_id}/sync", response_model=SourceRead)
def api_sync_source(db: DB, principal: AdminOnly, source_id: int) -> SourceRead:
    """Queue a listing that adds the objects not seen before."""
    return SourceRead.model_validate(sources.request_sync(db, source_id))


@api.post("/sources/{source_id}/process", response_model=SourceRead, status_code=202)
def api_process_source(db: DB, principal: AdminOnly, source_id: int) -> SourceRead:
    """Queue the pipeline, in the background, for the source's clips not processed yet (state
    ``processing`` until all are queued; 409 while the source is being listed)."""
    source_processing.request_processing(db, source_id)
    return SourceRead.model_validate(sources.get_source(db, source_id))


@api.delete("/sources/{source_id}", status_code=204)
def api_delete_source(db: DB, principal: AdminOnly, source_id: int) -> Response:
    """Delete a source and its clips (409 while some are in batches); the bucket is untouched."""
    sources.delete_source(db, source_id)
    return Response(status_code=204)
