"""Agreement pages (admin dashboard, staff adjudication) and the JSON API under /api/agreement."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from app.agreement import adjudication, recompute
from app.agreement import dashboard as scores
from app.agreement.adjudication_list import AdjudicationEntry, adjudication_list
from app.agreement.dashboard import Filters, GoldRow
from app.agreement.recompute import RollupRow
from app.agreement.schemas import AdjudicationChoice, AdjudicationRead, RecomputeRead, ScoreRead
from app.auth.deps import AdminOnly, Principal, Staff
from app.batches import service as batch_service
from app.core.deps import DB, SubmittedForm
from app.core.forms import FormState, form_page, with_form
from app.core.responses import attachment
from app.core.templating import render
from app.projects import service as project_service

router = APIRouter()
api = APIRouter(prefix="/api/agreement", tags=["agreement"])

ProjectId = Annotated[int | None, Query()]


# --- dashboard (admin) -------------------------------------------------------------------


@router.get("/agreement", response_class=HTMLResponse)
def dashboard(
    request: Request,
    db: DB,
    principal: AdminOnly,
    project_id: ProjectId = None,
    batch_id: ProjectId = None,
    metric: str = "keypoints.oks",
    sort: str = "clip.adjudication_score",
    desc: bool = False,
    notice: str = "",
) -> Response:
    projects = project_service.list_projects(db)
    project = next((p for p in projects if p.id == project_id), projects[0] if projects else None)
    context: dict[str, object] = {"projects": projects, "project": project, "notice": notice[:300]}
    if project is not None:
        batches = batch_service.project_batches(db, project.id)
        if batch_id not in {b.id for b in batches}:
            batch_id = None
        filters = Filters(project.id, batch_id)
        chosen = scores.spec(metric)
        sort = sort if sort in {c.key for c in scores.TABLE_COLUMNS} else "clip.adjudication_score"
        context |= {
            "batches": batches,
            "batch_id": batch_id,
            "metric": chosen,
            "pair_metrics": scores.PAIR_METRICS,
            "means": scores.project_means(db, filters),
            **scores.dashboard_parts(db, filters, chosen, sort, desc),
            "gold_columns": scores.GOLD_COLUMNS,
            "columns": scores.TABLE_COLUMNS,
            "sort": sort,
            "desc": desc,
            "to_adjudicate": len(adjudication_list(db, project.id)),
            "query": {"project_id": project.id, "batch_id": batch_id or "", "metric": chosen.key},
        }
    return render(request, "agreement/dashboard.html", context)


def _csv_lines(rows: Iterator[tuple[object, ...]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@router.get("/agreement/export.csv")
def export_csv(
    db: DB, principal: AdminOnly, project_id: int, batch_id: ProjectId = None
) -> StreamingResponse:
    project = project_service.get_project(db, project_id)
    rows = list(scores.export_rows(db, Filters(project.id, batch_id)))
    return StreamingResponse(
        _csv_lines(iter(rows)),
        media_type="text/csv; charset=utf-8",
        headers=attachment(f"agreement-{project.name}.csv"),
    )


@router.post("/agreement/projects/{project_id}/majority")
def majority_vote(
    db: DB, principal: AdminOnly, project_id: int, enabled: Annotated[bool, Form()] = False
) -> RedirectResponse:
    project = recompute.set_majority_vote(db, project_id, enabled)
    notice = f"Majority vote is {'on' if enabled else 'off'}; the project's clips are re-scored."
    query = urlencode({"project_id": project.id, "notice": notice})
    return RedirectResponse(f"/agreement?{query}", status_code=303)


# --- adjudication (reviewers and admins) ---------------------------------------------------


@router.get("/agreement/adjudication", response_class=HTMLResponse)
def adjudication_list_page(
    request: Request, db: DB, principal: Staff, project_id: ProjectId = None, notice: str = ""
) -> Response:
    context = {
        "rows": adjudication_list(db, project_id),
        "projects": project_service.list_projects(db),
        "project_id": project_id,
        "notice": notice[:300],
    }
    return render(request, "agreement/adjudication_list.html", context)


@router.get("/agreement/adjudication/{clip_id}", response_class=HTMLResponse)
def adjudication_page(
    request: Request, db: DB, principal: Staff, clip_id: int, frame: int | None = None
) -> Response:
    page = adjudication.adjudication_page(db, clip_id, frame)
    return render(request, "agreement/adjudicate.html", {"page": page})


def _adjudication_refused(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    page = adjudication.adjudication_page(db, int(request.path_params["clip_id"]), None)
    return render(request, "agreement/adjudicate.html", with_form({"page": page}, form))


@router.post("/agreement/adjudication/{clip_id}")
@form_page("adjudicate", _adjudication_refused)
def adjudicate_form(
    db: DB, principal: Staff, form: SubmittedForm, clip_id: int
) -> RedirectResponse:
    choice = AdjudicationChoice.from_form(dict(form))
    annotation = adjudication.adjudicate(db, principal.user, clip_id, choice)
    notice = f"Clip {clip_id} adjudicated: annotation {annotation.id} is approved and primary."
    return RedirectResponse(f"/agreement/adjudication?{urlencode({'notice': notice})}", 303)


# --- JSON API ----------------------------------------------------------------------------


@api.get("/clips/{clip_id}", response_model=list[ScoreRead])
def api_clip_scores(db: DB, principal: Staff, clip_id: int) -> list[ScoreRead]:
    return [ScoreRead.model_validate(s) for s in scores.clip_scores(db, clip_id)]


@api.post("/clips/{clip_id}/recompute", response_model=RecomputeRead, status_code=202)
def api_recompute(db: DB, principal: AdminOnly, clip_id: int) -> RecomputeRead:
    recompute.request_recompute(db, clip_id)
    return RecomputeRead(clip_id=clip_id, queued=True)


@api.get("/rollups", response_model=list[RollupRow])
def api_rollups(
    db: DB, principal: AdminOnly, project_id: int, batch_id: ProjectId = None
) -> list[RollupRow]:
    project = project_service.get_project(db, project_id)
    return scores.rollups(db, project.id, batch_id)


@api.get("/gold", response_model=list[GoldRow])
def api_gold(
    db: DB, principal: AdminOnly, project_id: int, batch_id: ProjectId = None
) -> list[GoldRow]:
    project = project_service.get_project(db, project_id)
    return scores.gold_accuracy(db, Filters(project.id, batch_id))


@api.get("/adjudication", response_model=list[AdjudicationEntry])
def api_queue(db: DB, principal: Staff, project_id: ProjectId = None) -> list[AdjudicationEntry]:
    return adjudication_list(db, project_id)


@api.post("/adjudication/{clip_id}", response_model=AdjudicationRead, status_code=201)
def api_adjudicate(
    db: DB, principal: Staff, clip_id: int, choice: AdjudicationChoice
) -> AdjudicationRead:
    annotation = adjudication.adjudicate(db, principal.user, clip_id, choice)
    return AdjudicationRead(
        annotation_id=annotation.id,
        clip_id=annotation.clip_id,
        status=annotation.status.value,
        is_primary=annotation.is_primary,
    )
