"""Batch pages (admin), the annotator's own assignments and next clip, and the JSON API for
both."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.annotations.opening import claim_next_clip
from app.auth import service as auth_service
from app.auth.deps import AdminOnly, Annotator, AnyUser, Principal
from app.auth.models import Role
from app.batches import assignments, claims, sampling, service
from app.batches.progress import BatchProgress
from app.batches.progress_cache import batch_progress
from app.batches.sampling import AssignResult
from app.batches.schemas import (
    AssignConfig,
    AssignmentRead,
    BatchCreate,
    BatchForm,
    BatchRead,
    CountRead,
    FilterPreview,
    NamedAssign,
    OwnAssignment,
    Reassign,
)
from app.clips.models import ClipState
from app.core.deps import DB
from app.core.errors import DomainError, NotFound
from app.core.forms import FormState, field_errors, form_page, label_for, with_form
from app.core.templating import render
from app.projects import service as project_service
from app.projects.models import Subset

router = APIRouter()
api = APIRouter(prefix="/api", tags=["batches"])


# --- admin pages --------------------------------------------------------------------------


def _batches_list(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    context: dict[str, object] = {
        "batches": service.list_batches(db),
        "projects": project_service.list_projects(db),
        "subsets": list(Subset),
        "states": list(ClipState),
    }
    return render(request, "batches/list.html", with_form(context, form))


@router.get("/batches", response_class=HTMLResponse)
def batches_page(request: Request, db: DB, principal: AdminOnly) -> Response:
    return _batches_list(request, db, principal)


@router.get("/batches/preview", response_class=HTMLResponse)
def batches_preview(
    request: Request, db: DB, principal: AdminOnly, form: Annotated[BatchForm, Query()]
) -> Response:
    """Live count of the clips the batch form currently matches (an HTMX fragment); input
    it cannot count is explained in its place, never with a stale count beside it."""
    context: dict[str, object] = {}
    if form.project_id is None:
        context["message"] = "Choose a project to see how many clips match."
    else:
        try:
            flt = form.clip_filter()
            project = project_service.get_project(db, form.project_id)
            service.check_clip_ids(db, project, flt.clip_ids)
            context["count"] = service.count_matching(db, project.id, flt)
        except DomainError as exc:
            context["problem"] = f"{label_for(exc.field)}: {exc.message}" if exc.field else (
                exc.message
            )  # fmt: skip
        except ValidationError as exc:
            by_field, general = field_errors(exc.errors())
            context["problem"] = " ".join(
                [f"{label_for(name)}: {message}" for name, message in by_field.items()]
                + ([general] if general else [])
            )
    return render(request, "batches/_preview.html", context)


@router.post("/batches")
@form_page("batch", _batches_list)
def batches_create(
    db: DB, principal: AdminOnly, form: Annotated[BatchForm, Form()]
) -> RedirectResponse:
    batch = service.create_batch(db, form.to_create(), created_by=principal.user)
    return RedirectResponse(f"/batches/{batch.id}", status_code=303)


def _batch_context(db: Session, batch_id: int) -> dict[str, object]:
    batch = service.get_batch(db, batch_id)
    users = [u for u in auth_service.list_users(db) if u.is_active]
    return {
        "batch": batch,
        "project": project_service.get_project(db, batch.project_id),
        "members": service.list_members(db, batch.id),
        "annotators": [u for u in users if u.role == Role.annotator],
        "reviewers": [u for u in users if u.role in (Role.reviewer, Role.admin)],
        "names": {u.id: u.username for u in users},
        "assignments": assignments.list_assignments(db, batch.id),
        "progress": batch_progress(db, batch.id),
    }


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(
    request: Request, db: DB, principal: AdminOnly, batch_id: int, notice: str = ""
) -> Response:
    context = {**_batch_context(db, batch_id), "notice": notice[:300]}
    return render(request, "batches/detail.html", context)


def _batch_form_page(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    """The batch page again, showing the refused form (assign, named, reassign)."""
    context = _batch_context(db, int(request.path_params["batch_id"]))
    return render(request, "batches/detail.html", with_form(context, form))


@router.get("/batches/{batch_id}/progress", response_class=HTMLResponse)
def batch_progress_fragment(
    request: Request, db: DB, principal: AdminOnly, batch_id: int
) -> Response:
    service.get_batch(db, batch_id)
    context = {"batch_id": batch_id, "progress": batch_progress(db, batch_id)}
    return render(request, "batches/_progress.html", context)


def _back_to_batch(batch_id: int, notice: str) -> RedirectResponse:
    """Post/redirect/get: the batch page shows what the form did, and reloading is harmless."""
    return RedirectResponse(f"/batches/{batch_id}?{urlencode({'notice': notice})}", 303)


@router.post("/batches/{batch_id}/assign")
@form_page("assign", _batch_form_page)
def batch_assign(
    db: DB,
    principal: AdminOnly,
    batch_id: int,
    config: Annotated[AssignConfig, Form()],
) -> Response:
    result = sampling.assign_batch(db, batch_id, config)
    notice = (
        f"Pool: {result.annotators} annotators, {result.reviewers} reviewers. "
        f"{result.overlapped} clips overlapped, {result.gold} gold clips."
    )
    if result.gold_shortfall:
        notice += (
            f" {result.gold_shortfall} fewer gold clips than asked: not enough approved truth."
        )
    return _back_to_batch(batch_id, notice)


@router.post("/batches/{batch_id}/named")
@form_page("named", _batch_form_page)
def batch_named(
    db: DB,
    principal: AdminOnly,
    batch_id: int,
    data: Annotated[NamedAssign, Form()],
) -> Response:
    annotator = service.user_by_name(db, data.annotator, [Role.annotator])
    claimed = claims.assign_clips(db, batch_id, annotator, data.count)
    notice = f"Assigned {len(claimed)} clip(s) to {annotator.username}."
    return _back_to_batch(batch_id, notice)


@router.post("/batches/{batch_id}/assignments/{assignment_id}/reassign")
@form_page("reassign-{assignment_id}", _batch_form_page)
def batch_reassign(
    db: DB,
    principal: AdminOnly,
    batch_id: int,
    assignment_id: int,
    data: Annotated[Reassign, Form()],
) -> Response:
    service.get_batch(db, batch_id)
    moved = assignments.reassign(
        db, assignment_id, service.user_by_name(db, data.annotator, [Role.annotator])
    )
    return _back_to_batch(batch_id, f"Assignment moved (now #{moved.id}).")


@router.post("/batches/{batch_id}/assignments/{assignment_id}/unassign")
def batch_unassign(db: DB, principal: AdminOnly, batch_id: int, assignment_id: int) -> Response:
    service.get_batch(db, batch_id)
    assignments.unassign(db, assignment_id)
    return _back_to_batch(batch_id, "Assignment released back to the pool.")


# --- the annotator's assignments and next clip --------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, db: DB, principal: Annotator, empty: bool = False) -> Response:
    user = principal.user
    return render(
        request,
        "batches/queue.html",
        {
            "entries": assignments.own_assignments(db, user),
            "rejected": assignments.rejected_waiting(db, user),
            "projects": assignments.annotator_projects(db, user),
            "empty": empty,
        },
    )


@router.post("/queue/next")
def queue_next(
    db: DB, principal: Annotator, batch_id: Annotated[int | None, Form()] = None
) -> Response:
    assignment = claim_next_clip(db, principal.user, batch_id=batch_id)
    if assignment is None:
        return RedirectResponse("/queue?empty=true", status_code=303)
    return RedirectResponse(f"/annotate/{assignment.id}", status_code=303)


# --- JSON API -----------------------------------------------------------------------------


@api.get("/batches", response_model=list[BatchRead])
def api_batches(db: DB, principal: AdminOnly, project_id: int | None = None) -> list[BatchRead]:
    return [BatchRead.model_validate(b) for b in service.project_batches(db, project_id)]


@api.post("/batches", response_model=BatchRead, status_code=201)
def api_batches_create(body: BatchCreate, db: DB, principal: AdminOnly) -> BatchRead:
    return BatchRead.model_validate(service.create_batch(db, body, created_by=principal.user))


@api.post("/batches/preview", response_model=CountRead)
def api_batches_preview(body: FilterPreview, db: DB, principal: AdminOnly) -> CountRead:
    return CountRead(matching=service.count_matching(db, body.project_id, body.filter))


@api.get("/batches/{batch_id}", response_model=BatchRead)
def api_batch(batch_id: int, db: DB, principal: AdminOnly) -> BatchRead:
    return BatchRead.model_validate(service.get_batch(db, batch_id))


@api.get("/batches/{batch_id}/progress", response_model=BatchProgress)
def api_batch_progress(batch_id: int, db: DB, principal: AdminOnly) -> BatchProgress:
    return batch_progress(db, batch_id)


@api.post("/batches/{batch_id}/assign", response_model=AssignResult)
def api_batch_assign(
    batch_id: int, body: AssignConfig, db: DB, principal: AdminOnly
) -> AssignResult:
    return sampling.assign_batch(db, batch_id, body)


@api.get("/batches/{batch_id}/assignments", response_model=list[AssignmentRead])
def api_batch_assignments(batch_id: int, db: DB, principal: AdminOnly) -> list[AssignmentRead]:
    service.get_batch(db, batch_id)
    return [AssignmentRead.model_validate(a) for a in assignments.list_assignments(db, batch_id)]


@api.post("/batches/{batch_id}/assignments", response_model=list[AssignmentRead], status_code=201)
def api_batch_named(
    batch_id: int, body: NamedAssign, db: DB, principal: AdminOnly
) -> list[AssignmentRead]:
    annotator = service.user_by_name(db, body.annotator, [Role.annotator])
    claimed = claims.assign_clips(db, batch_id, annotator, body.count)
    return [AssignmentRead.model_validate(a) for a in claimed]


@api.post("/assignments/{assignment_id}/reassign", response_model=AssignmentRead)
def api_reassign(
    assignment_id: int, body: Reassign, db: DB, principal: AdminOnly
) -> AssignmentRead:
    moved = assignments.reassign(
        db, assignment_id, service.user_by_name(db, body.annotator, [Role.annotator])
    )
    return AssignmentRead.model_validate(moved)


@api.post("/assignments/{assignment_id}/unassign", response_model=AssignmentRead)
def api_unassign(assignment_id: int, db: DB, principal: AdminOnly) -> AssignmentRead:
    return AssignmentRead.model_validate(assignments.unassign(db, assignment_id))


def _own_assignment(db: DB, principal: Principal, assignment_id: int) -> OwnAssignment:
    entries = assignments.own_assignments(db, principal.user, only_id=assignment_id)
    if not entries:
        raise NotFound(f"No assignment {assignment_id}.")
    return entries[0]


@api.get("/queue", response_model=list[OwnAssignment])
def api_queue(db: DB, principal: Annotator) -> list[OwnAssignment]:
    return assignments.own_assignments(db, principal.user)


@api.post("/queue/next", response_model=OwnAssignment)
def api_queue_next(db: DB, principal: Annotator, batch_id: int | None = None) -> OwnAssignment:
    """The caller's next clip (their unfinished one first), started; 404 when nothing is
    waiting."""
    assignment = claim_next_clip(db, principal.user, batch_id=batch_id)
    if assignment is None:
        raise NotFound("No clips are waiting for you in your batches right now.")
    return _own_assignment(db, principal, assignment.id)


@api.get("/queue/assignments/{assignment_id}", response_model=OwnAssignment)
def api_queue_assignment(assignment_id: int, db: DB, principal: Annotator) -> OwnAssignment:
    """One of the caller's own assignments (others' look absent)."""
    return _own_assignment(db, principal, assignment_id)


@api.get("/assignments/{assignment_id}", response_model=AssignmentRead)
def api_assignment(assignment_id: int, db: DB, principal: AnyUser) -> AssignmentRead:
    """Any assignment for staff; annotators only their own."""
    return AssignmentRead.model_validate(
        assignments.get_assignment(db, assignment_id, principal.user)
    )
