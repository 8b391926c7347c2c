"""Project pages (list, create, settings, custom skeleton editor) and the projects JSON API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import AdminOnly, Principal
from app.core.deps import DB
from app.core.errors import Invalid, about_field
from app.core.forms import FormState, form_page, with_form
from app.core.templating import render
from app.projects import service
from app.projects.models import Subset
from app.projects.reasons import KINDS, reasons_by_kind
from app.projects.schemas import (
    ProjectCreate,
    ProjectRead,
    ProjectUpdate,
    SkeletonRead,
)
from app.projects.skeletons import BUILTIN_SKELETONS

router = APIRouter()
api = APIRouter(prefix="/api", tags=["projects"])


def _projects_list(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    context = {"projects": service.list_projects(db), "subsets": list(Subset)}
    return render(request, "projects/list.html", with_form(context, form))


@router.get("/projects", response_class=HTMLResponse)
def projects_page(request: Request, db: DB, principal: AdminOnly) -> Response:
    return _projects_list(request, db, principal)


@router.post("/projects")
@form_page("project", _projects_list)
def projects_create(
    db: DB,
    principal: AdminOnly,
    name: Annotated[str, Form()] = "",
    subsets: Annotated[list[Subset] | None, Form()] = None,
    description: Annotated[str, Form()] = "",
) -> Response:
    if not subsets:
        raise Invalid("Choose at least one subset.", field="subsets")
    data = ProjectCreate(name=name.strip(), subsets=subsets, description=description)
    project = service.create_project(db, data.name, data.subsets, data.description)
    return RedirectResponse(f"/projects/{project.id}", status_code=303)


def _project_context(db: Session, project_id: int, **extra: Any) -> dict[str, Any]:
    project = service.get_project(db, project_id)
    return {
        "project": project,
        "subsets": list(Subset),
        "known_levels": service.KNOWN_LEVELS,
        "vocabulary_text": service.mapping_text(project.tag_vocabulary),
        "levels_text": service.mapping_text(project.required_levels),
        "reasons_text": service.mapping_text(reasons_by_kind(project.rejection_reasons)),
        "reason_kinds": KINDS,
        "skeletons": service.list_skeletons(db, project.id),
        "builtin_skeletons": list(BUILTIN_SKELETONS.values()),
        "editor": {"name": "", "points": "", "edges": "", "symmetric": ""},
        **extra,
    }


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(
    request: Request, db: DB, principal: AdminOnly, project_id: int, edit: int | None = None
) -> Response:
    context = _project_context(db, project_id)
    if edit is not None:
        chosen = [s for s in context["skeletons"] if s.id == edit]
        if chosen:
            context["editor"] = service.skeleton_form(chosen[0].definition)
    return render(request, "projects/detail.html", context)


def _project_form_page(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    """The project page (or, for HTMX, the section of the refused form) showing ``form``."""
    context = with_form(_project_context(db, int(request.path_params["project_id"])), form)
    partial = "projects/_settings.html" if form and form.prefix == "settings" else (
        "projects/_skeletons.html"
    )  # fmt: skip
    return render(request, "projects/detail.html", context, partial=partial)


@router.post("/projects/{project_id}", response_class=HTMLResponse)
@form_page("settings", _project_form_page)
def project_settings(
    request: Request,
    db: DB,
    principal: AdminOnly,
    project_id: int,
    # Empty textareas arrive as missing fields: default them so the service explains what's wrong.
    subsets: Annotated[list[Subset] | None, Form()] = None,
    tag_vocabulary: Annotated[str, Form()] = "",
    emotion_labels: Annotated[str, Form()] = "",
    rejection_reasons: Annotated[str, Form()] = "",
    required_levels: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    caption_guide: Annotated[str, Form()] = "",
    agreement_threshold: Annotated[float | None, Form(ge=0, le=1)] = None,
    admin_acceptance: Annotated[bool, Form()] = False,
    allow_free_tags: Annotated[bool, Form()] = False,
    keypoint_confidence_floor: Annotated[float | None, Form(ge=0, le=1)] = None,
    approved_model_points_count: Annotated[bool, Form()] = False,
) -> Response:
    with about_field("tag_vocabulary"):
        vocabulary = service.parse_mapping(tag_vocabulary)
    with about_field("required_levels"):
        levels = service.parse_mapping(required_levels)
    with about_field("rejection_reasons"):
        reasons = service.parse_mapping(rejection_reasons)
    update = ProjectUpdate(
        description=description,
        subsets=subsets or [],
        tag_vocabulary=vocabulary,
        emotion_labels=service.parse_lines(emotion_labels),
        rejection_reasons=reasons,
        required_levels=levels,
        caption_guide=caption_guide,
        agreement_threshold=agreement_threshold,
        admin_acceptance=admin_acceptance,
        allow_free_tags=allow_free_tags,
        keypoint_confidence_floor=keypoint_confidence_floor,
        approved_model_points_count=approved_model_points_count,
    )
    service.update_project(db, project_id, update)
    context = _project_context(db, project_id, notice="Settings saved.")
    return render(request, "projects/detail.html", context, partial="projects/_settings.html")


@router.post("/projects/{project_id}/skeletons", response_class=HTMLResponse)
@form_page("skeleton", _project_form_page)
def project_skeleton_save(
    request: Request,
    db: DB,
    principal: AdminOnly,
    project_id: int,
    name: Annotated[str, Form()] = "",
    points: Annotated[str, Form()] = "",
    edges: Annotated[str, Form()] = "",
    symmetric: Annotated[str, Form()] = "",
) -> Response:
    definition = service.parse_skeleton_form(name, points, edges, symmetric)
    template = service.save_skeleton(db, project_id, definition)
    context = _project_context(db, project_id, skeleton_notice=f"Saved skeleton {template.name}.")
    return render(request, "projects/detail.html", context, partial="projects/_skeletons.html")


@router.post("/projects/{project_id}/skeletons/{skeleton_id}/delete", response_class=HTMLResponse)
@form_page("skeleton-delete", _project_form_page)
def project_skeleton_delete(
    request: Request, db: DB, principal: AdminOnly, project_id: int, skeleton_id: int
) -> Response:
    service.delete_skeleton(db, project_id, skeleton_id)
    context = _project_context(db, project_id, skeleton_notice="Skeleton deleted.")
    return render(request, "projects/detail.html", context, partial="projects/_skeletons.html")


@api.get("/projects", response_model=list[ProjectRead])
def api_projects(db: DB, principal: AdminOnly) -> list[ProjectRead]:
    return [ProjectRead.model_validate(p) for p in service.list_projects(db)]


@api.post("/projects", response_model=ProjectRead, status_code=201)
def api_projects_create(body: ProjectCreate, db: DB, principal: AdminOnly) -> ProjectRead:
    project = service.create_project(db, body.name, body.subsets, body.description)
    return ProjectRead.model_validate(project)


@api.get("/projects/{project_id}", response_model=ProjectRead)
def api_project(project_id: int, db: DB, principal: AdminOnly) -> ProjectRead:
    return ProjectRead.model_validate(service.get_project(db, project_id))


@api.patch("/projects/{project_id}", response_model=ProjectRead)
def api_project_update(
    project_id: int, body: ProjectUpdate, db: DB, principal: AdminOnly
) -> ProjectRead:
    return ProjectRead.model_validate(service.update_project(db, project_id, body))


@api.get("/projects/{project_id}/skeletons", response_model=list[SkeletonRead])
def api_skeletons(project_id: int, db: DB, principal: AdminOnly) -> list[SkeletonRead]:
    service.get_project(db, project_id)
    return [SkeletonRead.model_validate(s) for s in service.list_skeletons(db, project_id)]


@api.post("/projects/{project_id}/skeletons", response_model=SkeletonRead, status_code=201)
def api_skeleton_save(
    project_id: int, body: dict[str, Any], db: DB, principal: AdminOnly
) -> SkeletonRead:
    """Create or replace a custom skeleton: name, keypoints, edges, sigmas, symmetric_pairs."""
    return SkeletonRead.model_validate(service.save_skeleton(db, project_id, body))


@api.delete("/projects/{project_id}/skeletons/{skeleton_id}", status_code=204)
def api_skeleton_delete(
    project_id: int, skeleton_id: int, db: DB, principal: AdminOnly
) -> Response:
    service.delete_skeleton(db, project_id, skeleton_id)
    return Response(status_code=204)
