"""Export pages for admins (list, create, progress, download) and the exports JSON API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import AdminOnly, Principal
from app.clips.models import ClipState
from app.core.deps import DB
from app.core.forms import FormState, form_page, with_form
from app.core.templating import render
from app.export import service, target
from app.export.formats.registry import FORMAT_LABELS
from app.export.models import ExportSnapshot
from app.export.schemas import ExportCreate, ExportForm, ExportRead
from app.projects import service as project_service
from app.projects.models import Subset

router = APIRouter()
api = APIRouter(prefix="/api", tags=["exports"])


def _read(snapshot: ExportSnapshot) -> ExportRead:
    read = ExportRead.model_validate(snapshot)
    read.clips = len(snapshot.annotation_versions or {})
    return read


def _download(db: DB, export_id: int) -> Response:
    """From a bucket, a redirect to a short-lived presigned URL (not to be cached: it
    expires); from the local folder, the file streamed."""
    snapshot = service.get_export(db, export_id)
    url = service.archive_url(db, snapshot)
    if url is not None:
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    return FileResponse(
        service.archive_path(snapshot),
        media_type="application/zip",
        filename=service.download_name(db, snapshot),
    )


def _exports_list(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    projects = {p.id: p for p in project_service.list_projects(db)}
    context: dict[str, object] = {
        "exports": [(s, projects[s.project_id]) for s in service.list_exports(db)],
        "projects": list(projects.values()),
        "formats": FORMAT_LABELS,
        "subsets": list(Subset),
        "states": list(ClipState),
        "target_offered": target.offered(),
        "target_example": target.EXAMPLE,
    }
    return render(request, "export/list.html", with_form(context, form))


@router.get("/exports", response_class=HTMLResponse)
def exports_page(request: Request, db: DB, principal: AdminOnly) -> Response:
    return _exports_list(request, db, principal)


@router.post("/exports")
@form_page("export", _exports_list)
def exports_create(db: DB, principal: AdminOnly, form: Annotated[ExportForm, Form()]) -> Response:
    snapshot = service.create_export(db, form.to_create(), principal.user)
    return RedirectResponse(f"/exports/{snapshot.id}", status_code=303)


@router.get("/exports/{export_id}", response_class=HTMLResponse)
def export_page(request: Request, db: DB, principal: AdminOnly, export_id: int) -> Response:
    snapshot = service.get_export(db, export_id)
    project = project_service.get_project(db, snapshot.project_id)
    context = {"snapshot": _read(snapshot), "project": project, "formats": FORMAT_LABELS}
    return render(request, "export/detail.html", context)


@router.get("/exports/{export_id}/progress", response_class=HTMLResponse)
def export_progress(request: Request, db: DB, principal: AdminOnly, export_id: int) -> Response:
    """The progress fragment the detail page polls until the build is over."""
    snapshot = _read(service.get_export(db, export_id))
    return render(request, "export/_progress.html", {"snapshot": snapshot})


@router.get("/exports/{export_id}/download")
def export_download(db: DB, principal: AdminOnly, export_id: int) -> Response:
    return _download(db, export_id)


@api.get("/exports")
def api_exports(db: DB, principal: AdminOnly, project_id: int | None = None) -> list[ExportRead]:
    return [_read(s) for s in service.list_exports(db, project_id)]


@api.post("/exports", status_code=201)
def api_export_create(db: DB, principal: AdminOnly, data: ExportCreate) -> ExportRead:
    return _read(service.create_export(db, data, principal.user))


@api.get("/exports/{export_id}")
def api_export(db: DB, principal: AdminOnly, export_id: int) -> ExportRead:
    return _read(service.get_export(db, export_id))


DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/zip": {}}, "description": "The zip (media on local disk)."},
    303: {"description": "Media in a bucket: Location is a short-lived presigned URL of it."},
}


@api.get("/exports/{export_id}/download", responses=DOWNLOAD_RESPONSES)
def api_export_download(db: DB, principal: AdminOnly, export_id: int) -> Response:
    return _download(db, export_id)
