"""The annotator workspace page and the JSON API its editor saves through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.annotations import undo
from app.annotations.access import edit_rights, get_annotation, visible_annotation
from app.annotations.keypoint_edits import (
    KEEP_BOX,
    accept_above,
    copy_previous_drawing,
    interpolate,
    save_frame,
)
from app.annotations.models import Annotation, Caption, Character, KeypointFrame
from app.annotations.node_edits import (
    add_character,
    add_speech,
    delete_character,
    delete_speech,
    free_tag,
    set_emotions,
    set_quality,
    set_shot_boundaries,
    set_tags,
    update_caption,
    update_speech,
)
from app.annotations.opening import assignment_work, open_assignment
from app.annotations.payload import annotation_payload, frame_payload
from app.annotations.schemas import (
    Accept,
    Accepted,
    CaptionSave,
    CharacterCreate,
    CopyPrevious,
    FrameChange,
    FrameRead,
    FrameSave,
    FramesRestore,
    Interpolate,
    PointsTracked,
    PointTracking,
    ShotsSave,
    SpanAccept,
    SpanAccepted,
    Status,
    TagsSave,
)
from app.annotations.tracking import accept_span, track_from
from app.auth.deps import Annotator, AnyUser, Principal
from app.auth.models import User
from app.batches import assignments
from app.batches.models import AssignmentState
from app.clips.models import Clip
from app.core.deps import DB, SubmittedForm
from app.core.errors import Conflict, Invalid, NotFound, about_field
from app.core.forms import FormPage, FormState, form_page, with_form
from app.core.responses import json_response
from app.core.templating import render
from app.projects.models import Project
from app.projects.service import project_skeletons
from app.review.submission import submit

router = APIRouter()
OPEN_OR_REJECTED = (AssignmentState.assigned, AssignmentState.in_progress, AssignmentState.rejected)
api = APIRouter(prefix="/api", tags=["annotations"])


def _project_of(db: DB, annotation: Annotation) -> Project:
    clip = db.get_one(Clip, annotation.clip_id)
    return db.get_one(Project, clip.project_id)


def _skeletons(db: DB, project: Project) -> dict[str, Any]:
    return {name: s.to_dict() for name, s in project_skeletons(db, project.id).items()}


def _caption_groups(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Captions grouped by what they describe, in the order the workspace shows them."""
    shot_names = {
        s["id"]: f"Shot {i + 1} (frames {s['start']}-{s['end'] - 1})"
        for i, s in enumerate(payload["shots"])
    }
    char_names = {c["id"]: c["name"] for c in payload["characters"]}
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for cap in sorted(
        payload["captions"],
        key=lambda c: (
            {"clip": 0, "shot": 1, "character": 2}[c["level"]],
            c["target_id"],
            c["field"],
        ),
    ):
        title = {
            "clip": "Clip",
            "shot": shot_names.get(cap["target_id"], "Shot"),
            "character": char_names.get(cap["target_id"], "Character"),
        }[cap["level"]]
        groups.setdefault((cap["level"], cap["target_id"]), {"title": title, "captions": []})[
            "captions"
        ].append(cap)
    return list(groups.values())


@router.get("/annotate/{assignment_id}", response_class=HTMLResponse)
def workspace(request: Request, db: DB, principal: AnyUser, assignment_id: int) -> Response:
    """The workspace for one assigned clip, or, until its annotator starts it, a page with
    a Start button (looking at a link changes nothing; starting is a POST)."""
    assignment, annotation = assignment_work(db, principal.user, assignment_id)
    if annotation is not None:
        return _workspace_page(request, db, annotation, principal.user)
    context = {
        "assignment": assignment,
        "clip": db.get_one(Clip, assignment.clip_id),
        "annotator": db.get_one(User, assignment.annotator_id),
    }
    return render(request, "annotations/start.html", context)


@router.post("/annotate/{assignment_id}/start")
def start_work(db: DB, principal: Annotator, assignment_id: int) -> Response:
    """Start (or resume) work on one's assignment, then show its workspace."""
    open_assignment(db, principal.user, assignment_id)
    return RedirectResponse(f"/annotate/{assignment_id}", status_code=303)


@router.get("/annotations/{annotation_id}", response_class=HTMLResponse)
def workspace_by_annotation(
    request: Request, db: DB, principal: AnyUser, annotation_id: int
) -> Response:
    annotation = visible_annotation(db, principal.user, annotation_id)
    return _workspace_page(request, db, annotation, principal.user)


def _next_clip(db: DB, annotation: Annotation) -> Clip | None:
    """The clip the annotator will most likely open next, so its first frames can be fetched
    ahead (only their own open assignments; nothing is reserved by looking)."""
    if annotation.annotator_id is None:
        return None
    owner = db.get_one(User, annotation.annotator_id)
    for entry in assignments.own_assignments(db, owner, limit=5):
        if entry.clip_id != annotation.clip_id and entry.state in OPEN_OR_REJECTED:
            return db.get(Clip, entry.clip_id)
    return None


def _workspace_page(request: Request, db: DB, annotation: Annotation, user: User) -> Response:
    clip = db.get_one(Clip, annotation.clip_id)
    if not clip.frame_count:
        raise Invalid("This clip has no decoded frames yet; its pipeline has not finished.")
    payload = annotation_payload(db, annotation)
    project = _project_of(db, annotation)
    next_clip = _next_clip(db, annotation)
    rights = edit_rights(annotation, user)
    return render(
        request,
        "annotations/workspace.html",
        {
            "clip": clip,
            "next_clip": next_clip,
            "annotation": annotation,
            "editable": rights.editable,
            "read_only": rights.notice,
            "payload": payload,
            "project": project,
            "caption_groups": _caption_groups(payload),
            "skeleton_names": sorted(_skeletons(db, project)),
        },
    )


@router.post("/annotations/captions/{caption_id}", response_class=HTMLResponse)
def caption_form(
    request: Request,
    db: DB,
    principal: AnyUser,
    caption_id: int,
    text: Annotated[str, Form()],
    version: Annotated[int, Form()],
    full: Annotated[str, Form()] = "",
) -> Response:
    """HTMX autosave of a caption. The textarea is never swapped while someone types: only
    its version and status change (out of band); a conflict swaps in both versions."""
    try:
        caption = update_caption(db, principal.user, caption_id, text, version)
    except Conflict:
        current = db.get(Caption, caption_id)
        if current is None:
            raise
        conflict: dict[str, Any] = {"cap": _cap(current), "mine": text}
        return render(request, "annotations/_caption_conflict.html", conflict, status_code=409)
    if full:
        return render(
            request, "annotations/_caption.html", {"cap": _cap(caption), "saved": True, "oob": True}
        )
    state: dict[str, Any] = {"cap": _cap(caption), "saved": True, "oob_state": True}
    return render(request, "annotations/_caption_state.html", state)


def _cap(caption: Caption) -> dict[str, Any]:
    return {
        "id": caption.id,
        "field": caption.field,
        "level": caption.level.value,
        "text": caption.text,
        "model_text": caption.model_text,
        "version": caption.version,
    }


def _tags_panel(
    request: Request, db: Session, principal: Principal, form: FormState | None = None
) -> Response:
    annotation = visible_annotation(db, principal.user, int(request.path_params["annotation_id"]))
    context = {"annotation": annotation, "project": _project_of(db, annotation)}
    return render(request, "annotations/_tags.html", with_form(context, form))


@router.post("/annotations/{annotation_id}/tags", response_class=HTMLResponse)
@form_page("tags", _tags_panel)
def tags_form(
    request: Request, db: DB, principal: AnyUser, annotation_id: int, form: SubmittedForm
) -> Response:
    """HTMX tag chips: every group posts at once with the annotation's version; a value
    typed into a group's "new" box (projects with free-text tags) wins over its chips."""
    annotation = visible_annotation(db, principal.user, annotation_id)
    project = _project_of(db, annotation)
    tags = {g: form.get(g) for g in project.tag_vocabulary if form.get(g)}
    for group in project.tag_vocabulary:
        if typed := str(form.get(f"new-{group}") or "").strip():
            with about_field(f"new-{group}"):
                tags[group] = free_tag(typed, allowed=project.allow_free_tags)
    try:
        version = int(str(form.get("version", "0")))
    except ValueError:
        version = 0
    error = None
    try:
        annotation = set_tags(
            db, principal.user, annotation_id, tags, version, project.tag_vocabulary,
            free_text=project.allow_free_tags,
        )  # fmt: skip
    except Conflict as exc:
        error = exc.message + " The tags below are theirs; click again to change them."
        db.refresh(annotation)
    context = {"annotation": annotation, "project": project, "error": error, "saved": error is None}
    return render(request, "annotations/_tags.html", context, status_code=409 if error else 200)


def _panel(
    request: Request, db: Session, annotation: Annotation, template: str, **extra: Any
) -> Response:
    payload = annotation_payload(db, annotation)
    clip = db.get_one(Clip, annotation.clip_id)
    context = {
        "annotation": annotation,
        "payload": payload,
        "project": _project_of(db, annotation),
        "clip": clip,
        **extra,
    }
    status = 409 if extra.get("conflict") else 200
    return render(request, template, context, status_code=status)


def _saved_panel(
    request: Request,
    db: DB,
    annotation: Annotation,
    template: str,
    save: Callable[[], object],
    stale: object,
) -> Response:
    """Run an HTMX panel's save; a lost race re-renders the panel with the winner's data."""
    try:
        save()
    except Conflict as exc:
        db.refresh(stale)
        return _panel(request, db, annotation, template, conflict=exc.message)
    return _panel(request, db, annotation, template, saved=True)


def _panel_page(template: str) -> FormPage:
    """A workspace panel re-rendered in place with the refused form's message and values."""

    def page(
        request: Request, db: Session, principal: Principal, form: FormState | None = None
    ) -> Response:
        params = request.path_params
        if "character_id" in params:
            character = db.get(Character, int(params["character_id"]))
            if character is None:
                raise NotFound(f"No character {params['character_id']}.")
            annotation_id = character.annotation_id
        else:
            annotation_id = int(params["annotation_id"])
        annotation = visible_annotation(db, principal.user, annotation_id)
        return _panel(request, db, annotation, template, form=form)

    return page


@router.post("/annotations/characters/{character_id}/emotions", response_class=HTMLResponse)
@form_page("emotions-{character_id}", _panel_page("annotations/_emotions.html"))
def emotions_form(
    request: Request,
    db: DB,
    principal: AnyUser,
    character_id: int,
    version: Annotated[int, Form()],
    start: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI reads the default, never mutates it)
    end: Annotated[list[str], Form()] = [],  # noqa: B006
    label: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    """Emotion labels over frame ranges for one character; blank rows are ignored."""
    character = db.get(Character, character_id)
    if character is None:
        raise NotFound(f"No character {character_id}.")
    annotation = visible_annotation(db, principal.user, character.annotation_id)
    try:
        spans = [
            {"start": int(a), "end": int(b), "label": c}
            for a, b, c in zip(start, end, label, strict=False)
            if a.strip() and b.strip() and c
        ]
    except ValueError as exc:
        raise Invalid("Emotion ranges need whole frame numbers.") from exc
    labels = _project_of(db, annotation).emotion_labels
    return _saved_panel(
        request,
        db,
        annotation,
        "annotations/_emotions.html",
        lambda: set_emotions(db, principal.user, character_id, spans, version, labels),
        character,
    )


@router.post("/annotations/{annotation_id}/quality", response_class=HTMLResponse)
@form_page("quality", _panel_page("annotations/_quality.html"))
def quality_form(
    request: Request,
    db: DB,
    principal: AnyUser,
    annotation_id: int,
    version: Annotated[int, Form()],
    keep: Annotated[str, Form()],
    reasons: Annotated[list[str], Form()] = [],  # noqa: B006
    other: Annotated[str, Form()] = "",
    no_speech: Annotated[str | None, Form()] = None,
) -> Response:
    annotation = visible_annotation(db, principal.user, annotation_id)
    clip = db.get_one(Clip, annotation.clip_id)
    no_speech_answer = (no_speech == "on") if clip.has_audio else None
    return _saved_panel(
        request,
        db,
        annotation,
        "annotations/_quality.html",
        lambda: set_quality(
            db,
            principal.user,
            annotation_id,
            keep == "keep",
            [*reasons, other.strip()],
            version,
            no_speech=no_speech_answer,
        ),
        annotation,
    )


@router.post("/annotations/{annotation_id}/speech", response_class=HTMLResponse)
@form_page("speech", _panel_page("annotations/_speech.html"))
def speech_form(
    request: Request,
    db: DB,
    principal: AnyUser,
    annotation_id: int,
    action: Annotated[str, Form()],
    start_s: Annotated[float, Form()] = 0.0,
    end_s: Annotated[float, Form()] = 0.0,
    transcript: Annotated[str, Form()] = "",
    segment_id: Annotated[int | None, Form()] = None,
    version: Annotated[int, Form()] = 1,
) -> Response:
    """Add, change or delete one speech segment; the list comes back re-rendered."""
    annotation = visible_annotation(db, principal.user, annotation_id)

    def save() -> None:
        if action == "add":
            add_speech(db, principal.user, annotation_id, start_s, end_s, transcript)
        elif action == "save" and segment_id is not None:
            update_speech(db, principal.user, segment_id, start_s, end_s, transcript, version)
        elif action == "delete" and segment_id is not None:
            delete_speech(db, principal.user, segment_id, version)
        else:
            raise Invalid("Unknown speech action.")

    return _saved_panel(request, db, annotation, "annotations/_speech.html", save, annotation)


# ----------------------------------------------------------------------------- JSON API


@api.get("/annotations/{annotation_id}")
def api_annotation(db: DB, principal: AnyUser, annotation_id: int) -> Response:
    """The whole annotation for the workspace (serialised directly: it can be large)."""
    annotation = visible_annotation(db, principal.user, annotation_id)
    payload = annotation_payload(db, annotation, as_arrays=True)
    payload["skeletons"] = _skeletons(db, _project_of(db, annotation))
    payload["editable"] = edit_rights(annotation, principal.user).editable
    return json_response(payload)


@api.put("/tracks/{track_id}/frames/{frame_index}", response_model=list[FrameRead])
def api_save_frame(
    db: DB, principal: AnyUser, track_id: int, frame_index: int, body: FrameSave
) -> Response:
    rows = save_frame(
        db,
        principal.user,
        track_id,
        frame_index,
        body.points,
        body.version,
        apply_to_held_run=body.apply_to_held_run,
        keyframe=body.keyframe,
        accepted=body.accepted,
        box=body.box if "box" in body.model_fields_set else KEEP_BOX,
    )
    return _frames(rows)


@api.post("/tracks/{track_id}/frames/restore", response_model=list[FrameRead])
def api_restore_frames(db: DB, principal: AnyUser, track_id: int, body: FramesRestore) -> Response:
    """Undo or redo: frames put back exactly as they were, each version-checked."""
    return _frames(undo.restore_frames(db, principal.user, track_id, body.frames, body.action))


@api.post("/tracks/{track_id}/interpolate", response_model=list[FrameChange])
def api_interpolate(db: DB, principal: AnyUser, track_id: int, body: Interpolate) -> Response:
    """The frames written, each with its state before (for undo)."""
    snapshot = undo.snapshot_track(db, track_id)
    interpolate(db, principal.user, track_id, body.start, body.end)
    return json_response(undo.changed_since(db, track_id, snapshot))


@api.post("/tracks/{track_id}/copy-previous", response_model=list[FrameChange])
def api_copy_previous(db: DB, principal: AnyUser, track_id: int, body: CopyPrevious) -> Response:
    """The frames written, each with its state before (for undo)."""
    snapshot = undo.snapshot_track(db, track_id)
    copy_previous_drawing(db, principal.user, track_id, body.frame, body.version)
    return json_response(undo.changed_since(db, track_id, snapshot))


@api.post("/tracks/{track_id}/track", response_model=PointsTracked)
def api_track(db: DB, principal: AnyUser, track_id: int, body: PointTracking) -> Response:
    """Point tracking from a frame through the shot: the frames written, each with its state
    before (one undo step), and where points were lost."""
    snapshot = undo.snapshot_track(db, track_id)
    done = track_from(db, principal.user, track_id, body.frame, body.version, body.direction,
                      body.points)  # fmt: skip
    changed = undo.changed_since(db, track_id, snapshot)
    return json_response(
        {"frames": changed, "points": done.points, "lost": done.lost, "reached": done.reached}
    )


@api.post("/tracks/{track_id}/accept-span", response_model=SpanAccepted)
def api_accept_span(db: DB, principal: AnyUser, track_id: int, body: SpanAccept) -> Response:
    """The guesses shown from the last keyframe up to a frame, accepted: the frames written,
    each with its state before (one undo step)."""
    snapshot = undo.snapshot_track(db, track_id)
    span = accept_span(db, principal.user, track_id, body.frame)
    changed = undo.changed_since(db, track_id, snapshot)
    return json_response({"start": span.start, "end": span.stop - 1, "frames": changed})


def _frames(rows: list[KeypointFrame]) -> Response:
    """Saved frames as the workspace reads them (``FrameRead``), serialised directly."""
    return json_response([frame_payload(r, as_arrays=True) for r in rows])


@api.post("/tracks/{track_id}/accept", response_model=Accepted)
def api_accept(db: DB, principal: AnyUser, track_id: int, body: Accept) -> Response:
    """How many points were accepted, and the frames changed with their state before."""
    snapshot = undo.snapshot_track(db, track_id)
    accepted = accept_above(db, principal.user, track_id, body.threshold, body.frames)
    return json_response(
        {"accepted": accepted, "frames": undo.changed_since(db, track_id, snapshot)}
    )


@api.put("/captions/{caption_id}")
def api_caption(db: DB, principal: AnyUser, caption_id: int, body: CaptionSave) -> dict[str, Any]:
    return _cap(update_caption(db, principal.user, caption_id, body.text, body.version))


@api.put("/annotations/{annotation_id}/tags", response_model=Status)
def api_tags(db: DB, principal: AnyUser, annotation_id: int, body: TagsSave) -> Status:
    annotation = get_annotation(db, annotation_id)
    project = _project_of(db, annotation)
    annotation = set_tags(
        db, principal.user, annotation_id, body.tags, body.version, project.tag_vocabulary,
        free_text=project.allow_free_tags,
    )  # fmt: skip
    return Status(id=annotation.id, status=annotation.status.value, version=annotation.version)


@api.put("/annotations/{annotation_id}/shots")
def api_shots(
    db: DB, principal: AnyUser, annotation_id: int, body: ShotsSave
) -> list[dict[str, int]]:
    shots = set_shot_boundaries(db, principal.user, annotation_id, body.starts, body.version)
    return [{"id": s.id, "start": s.start_frame, "end": s.end_frame} for s in shots]


@api.post("/annotations/{annotation_id}/characters", status_code=201)
def api_add_character(
    db: DB, principal: AnyUser, annotation_id: int, body: CharacterCreate
) -> dict[str, Any]:
    character = add_character(
        db, principal.user, annotation_id, body.name, body.kind, body.skeleton
    )
    return {"id": character.id, "name": character.name}


@api.delete("/characters/{character_id}", status_code=204)
def api_delete_character(db: DB, principal: AnyUser, character_id: int, version: int) -> Response:
    delete_character(db, principal.user, character_id, version)
    return Response(status_code=204)


@api.post("/annotations/{annotation_id}/submit", response_model=Status)
def api_submit(db: DB, principal: AnyUser, annotation_id: int) -> Status:
    annotation = get_annotation(db, annotation_id)
    required = _project_of(db, annotation).required_levels
    annotation = submit(db, principal.user, annotation_id, required)
    return Status(id=annotation.id, status=annotation.status.value, version=annotation.version)
