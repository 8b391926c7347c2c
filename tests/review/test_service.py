"""Hierarchical review: every transition for every role, gating, resubmission, history, restore.

The first test is a table: role x node type x transition x precondition -> allowed, or the
error class and the rule its message names. Each row builds a fresh submitted clip (one shot,
one character with one 133-point track, two captions, one speech segment) and drives it into
the precondition with the same service calls a reviewer would make.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.access import check_editable
from app.annotations.history import diff, history, restore
from app.annotations.keypoint_edits import save_frame
from app.annotations.models import Annotation, KeypointFrame, NodeStatus, Revision
from app.annotations.node_edits import add_speech, set_tags, update_caption, update_speech
from app.annotations.opening import open_assignment
from app.annotations.payload import annotation_payload
from app.annotations.points import decode_points
from app.annotations.revisions import revisions_of
from app.annotations.tree import NODE_MODELS, NodeRef, children_of, node_type_of
from app.auth.models import Role, User
from app.batches.models import Assignment, AssignmentState, BatchClip
from app.core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from app.projects.models import Project
from app.review import fixes, submission
from app.review.comments import (
    Pin,
    add_comment,
    comment_threads,
    open_rejections,
    reply,
    resolve,
    unanswered_rejections,
)
from app.review.models import ReviewComment
from app.review.payload import review_payload
from app.review.queue import QueueFilters, review_queue
from app.review.workflow import (
    accept,
    approve,
    approve_children,
    awaiting_acceptance,
    reject,
    reopen,
)
from tests.factories import approve_truth, assign_clip, create_clip, create_model_draft

_seq = itertools.count(1)

LEAVES = ("shot", "track", "caption", "speech_segment")
PARENTS = ("character", "annotation")
ALL_NODES = LEAVES + PARENTS


@dataclass
class World:
    db: Session
    project: Project
    annotation: Annotation
    assignment: Assignment
    users: dict[str, User]
    nodes: dict[str, Any] = field(default_factory=dict)

    def node(self, node_type: str) -> Any:
        found = self.nodes[node_type]
        self.db.refresh(found)
        return found

    def version(self, node_type: str) -> int:
        return int(self.node(node_type).version)

    def submit(self) -> Annotation:
        return submission.submit(
            self.db, self.users["owner"], self.annotation.id, self.project.required_levels
        )


def _user(db: Session, role: Role) -> User:
    """A user without a password (these tests never sign in, and argon2 is slow on purpose)."""
    user = User(username=f"{role.value}-{next(_seq)}", password_hash="!", role=role)
    db.add(user)
    db.flush()
    return user


def build(
    db: Session, *, owner_role: Role = Role.annotator, admin_acceptance: bool = False,
    submit: bool = True,
) -> World:  # fmt: skip
    clip = create_clip(
        db, subsets=["pose"], frame_count=24, width=320, height=240, duration_s=1.0,
        state="ready",
    )  # fmt: skip
    project = db.get_one(Project, clip.project_id)
    project.admin_acceptance = admin_acceptance
    create_model_draft(db, clip, frames=24)
    users = {
        key: _user(db, role)
        for key, role in [("owner", owner_role), ("other_annotator", Role.annotator),
                          ("reviewer", Role.reviewer), ("admin", Role.admin)]
    }  # fmt: skip
    assignment = assign_clip(db, clip, users["owner"])
    _, annotation = open_assignment(db, users["owner"], assignment.id)
    speech = add_speech(db, users["owner"], annotation.id, 0.1, 0.5, "hello")
    payload = annotation_payload(db, annotation)
    character = payload["characters"][0]
    world = World(db, project, annotation, assignment, users)
    models = {m.__tablename__: m for m in NODE_MODELS.values()}
    ids = {
        "annotation": annotation.id,
        "shot": payload["shots"][0]["id"],
        "character": character["id"],
        "track": character["tracks"][0]["id"],
        "caption": next(c["id"] for c in payload["captions"] if c["level"] == "clip"),
        "speech_segment": speech.id,
    }
    world.nodes = {t: db.get_one(models[t], i) for t, i in ids.items()}
    if submit:
        world.submit()
    return world


def approve_under(world: World, node_type: str) -> None:
    """Approve everything below a node (bottom-up), as a reviewer would."""
    reviewer = world.users["reviewer"]
    node = world.node(node_type)
    for child in children_of(world.db, node):
        child_type = node_type_of(child)
        if child_type == "character":
            approve_under(world, child_type)
        world.db.refresh(child)
        if child.status == NodeStatus.submitted:
            approve(world.db, reviewer, child_type, child.id, child.version)


def approve_all(world: World, node_type: str) -> None:
    approve_under(world, node_type)
    approve(world.db, world.users["reviewer"], node_type, world.node(node_type).id,
            world.version(node_type))  # fmt: skip


# ---------------------------------------------------------------- preconditions


def pre_submitted(world: World, node_type: str) -> None:
    """The clip was just submitted: every node is submitted."""


def pre_children_approved(world: World, node_type: str) -> None:
    approve_under(world, node_type)


def pre_approved(world: World, node_type: str) -> None:
    approve_all(world, node_type)


def pre_rejected(world: World, node_type: str) -> None:
    """A reviewer rejected another item, so the clip is back with its annotator."""
    other = "caption" if node_type != "caption" else "shot"
    reject(world.db, world.users["reviewer"], other, world.node(other).id,
           world.version(other), "other", "fix this")  # fmt: skip


def pre_awaiting_acceptance(world: World, node_type: str) -> None:
    world.project.admin_acceptance = True
    approve_all(world, "annotation")


PRE: dict[str, Callable[[World, str], None]] = {
    "submitted": pre_submitted,
    "children_approved": pre_children_approved,
    "approved": pre_approved,
    "rejected": pre_rejected,
    "awaiting_acceptance": pre_awaiting_acceptance,
}


# ---------------------------------------------------------------- transitions


def do_approve(world: World, user: User, node_type: str) -> None:
    approve(world.db, user, node_type, world.node(node_type).id, world.version(node_type))


def do_approve_stale(world: World, user: User, node_type: str) -> None:
    approve(world.db, user, node_type, world.node(node_type).id,
            world.version(node_type) - 1)  # fmt: skip


def do_reject(world: World, user: User, node_type: str) -> None:
    reject(world.db, user, node_type, world.node(node_type).id, world.version(node_type),
           "other", "not right", Pin(frame=3))  # fmt: skip


def do_reject_bad_reason(world: World, user: User, node_type: str) -> None:
    reject(world.db, user, node_type, world.node(node_type).id, world.version(node_type),
           "because", "not right")  # fmt: skip


def do_reject_reason_of_another_kind(world: World, user: User, node_type: str) -> None:
    reject(world.db, user, node_type, world.node(node_type).id, world.version(node_type),
           "wrong_keypoint", "not right")  # fmt: skip


def do_reject_empty(world: World, user: User, node_type: str) -> None:
    reject(world.db, user, node_type, world.node(node_type).id, world.version(node_type),
           "other", "   ")  # fmt: skip


def do_reject_outside_frame(world: World, user: User, node_type: str) -> None:
    reject(world.db, user, node_type, world.node(node_type).id, world.version(node_type),
           "other", "x", Pin(frame=24))  # fmt: skip


def do_reject_point(world: World, user: User, node_type: str) -> None:
    reject(world.db, user, node_type, world.node(node_type).id, world.version(node_type),
           "other", "left wrist", Pin(frame=12, point=9))  # fmt: skip


def do_fix(world: World, user: User, node_type: str) -> None:
    """Fix and accept: the caption's text, or one point of the track's frame 0."""
    node = world.node(node_type)
    if node_type != "track":
        fixes.fix_and_accept(world.db, user, node_type, node.id, node.version, text="Fixed.")
        return
    row = world.db.scalars(
        select(KeypointFrame).where(KeypointFrame.track_id == node.id,
                                    KeypointFrame.frame_index == 0)
    ).one()  # fmt: skip
    points = [[float(p[0]), float(p[1]), int(p[2])] for p in decode_points(row.points)[0]]
    points[9][0] += 5
    fixes.fix_and_accept(world.db, user, "track", node.id, node.version,
                         frames=[fixes.FrameFix(0, points, row.version)])  # fmt: skip
    assert world.node(node_type).status == NodeStatus.approved


def do_reopen(world: World, user: User, node_type: str) -> None:
    reopen(world.db, user, node_type, world.node(node_type).id, world.version(node_type),
           "needs another look")  # fmt: skip


def do_reopen_no_reason(world: World, user: User, node_type: str) -> None:
    reopen(world.db, user, node_type, world.node(node_type).id, world.version(node_type),
           "  ")  # fmt: skip


def do_accept(world: World, user: User, node_type: str) -> None:
    accept(world.db, user, world.annotation.id, world.version("annotation"))


def do_approve_children(world: World, user: User, node_type: str) -> None:
    node = world.node(node_type)
    shown = [NodeRef(node_type_of(c), c.id) for c in children_of(world.db, node)]
    approve_children(world.db, user, node_type, node.id, shown)


def do_approve_children_unseen(world: World, user: User, node_type: str) -> None:
    approve_children(world.db, user, node_type, world.node(node_type).id, [])


def do_comment(world: World, user: User, node_type: str) -> None:
    add_comment(world.db, user, node_type, world.node(node_type).id, "looks odd",
                Pin(frame=5))  # fmt: skip


def _rejection(world: World) -> ReviewComment:
    track = world.node("track")
    return reject(world.db, world.users["reviewer"], "track", track.id, track.version,
                  "wrong_keypoint", "wrist", Pin(frame=12))  # fmt: skip


def do_reply(world: World, user: User, node_type: str) -> None:
    reply(world.db, user, _rejection(world).id, "moved it")


def do_resolve(world: World, user: User, node_type: str) -> None:
    resolve(world.db, user, _rejection(world).id, True)


def do_resubmit(world: World, user: User, node_type: str) -> None:
    submission.submit(world.db, user, world.annotation.id, world.project.required_levels)


DO: dict[str, Callable[[World, User, str], None]] = {
    name[3:]: fn for name, fn in globals().items() if name.startswith("do_") and callable(fn)
}

OK = None
Expect = tuple[type[DomainError], str] | None
ONLY_STAFF = (Forbidden, "Only reviewers and admins review")
SELF = (Forbidden, "Self-approval ban")
GATED = (Forbidden, "Parent gating")

# (role, node types, transition, precondition, expected). "admin_owner" is an admin reviewing
# the annotation they made themselves.
TABLE: list[tuple[str, tuple[str, ...], str, str, Expect]] = [
    # approve
    ("owner", ALL_NODES, "approve", "submitted", ONLY_STAFF),
    ("other_annotator", ALL_NODES, "approve", "submitted", ONLY_STAFF),
    ("admin_owner", ALL_NODES, "approve", "submitted", SELF),
    ("reviewer", LEAVES, "approve", "submitted", OK),
    ("admin", LEAVES, "approve", "submitted", OK),
    ("reviewer", PARENTS, "approve", "submitted", GATED),
    ("admin", PARENTS, "approve", "submitted", GATED),
    ("reviewer", PARENTS, "approve", "children_approved", OK),
    ("reviewer", (*LEAVES, "character"), "approve", "approved", (Forbidden, "can be approved")),
    ("reviewer", ("annotation",), "approve", "approved", (Forbidden, "only submitted work")),
    ("reviewer", ALL_NODES, "approve", "rejected", (Forbidden, "is rejected; only submitted work")),
    ("reviewer", ("annotation",), "approve", "awaiting_acceptance", (Forbidden, "awaits an admin")),
    ("reviewer", ALL_NODES, "approve_stale", "submitted", (Conflict, "changed since you")),
    # approve all remaining children: only those shown
    ("reviewer", PARENTS, "approve_children_unseen", "submitted", (Forbidden, "were not shown")),
    ("reviewer", ("character",), "approve_children", "submitted", OK),
    ("owner", PARENTS, "approve_children", "submitted", ONLY_STAFF),
    ("admin_owner", PARENTS, "approve_children", "submitted", SELF),
    # reject
    ("owner", ALL_NODES, "reject", "submitted", ONLY_STAFF),
    ("admin_owner", ALL_NODES, "reject", "submitted", SELF),
    ("reviewer", ALL_NODES, "reject", "submitted", OK),
    ("admin", ALL_NODES, "reject", "submitted", OK),
    ("reviewer", LEAVES, "reject", "approved", (Forbidden, "an admin can reopen")),
    ("reviewer", ALL_NODES, "reject", "awaiting_acceptance", (Forbidden, "only an admin can")),
    ("admin", ALL_NODES, "reject", "awaiting_acceptance", OK),
    ("reviewer", ("shot",), "reject", "rejected", (Forbidden, "is rejected; only submitted work")),
    ("reviewer", ("caption",), "reject_bad_reason", "submitted", (Invalid, "rejection reasons")),
    ("reviewer", ("caption", "shot"), "reject_reason_of_another_kind", "submitted",
     (Invalid, "not one of the project's rejection reasons for a")),
    ("reviewer", ("caption",), "reject_empty", "submitted", (Invalid, "comment is empty")),
    ("reviewer", ("track",), "reject_outside_frame", "submitted", (Invalid, "outside the clip")),
    ("reviewer", ("track",), "reject_point", "submitted", OK),
    ("reviewer", ("caption",), "reject_point", "submitted", (Invalid, "Only a track's comments")),
    # reopen: admins, with a reason
    ("reviewer", ALL_NODES, "reopen", "approved", (Forbidden, "Only admins reopen")),
    ("owner", ALL_NODES, "reopen", "approved", (Forbidden, "Only admins reopen")),
    ("admin", ALL_NODES, "reopen", "approved", OK),
    ("admin", ALL_NODES, "reopen", "submitted", OK),
    ("admin_owner", ("annotation",), "reopen", "approved", OK),
    ("admin", ("track",), "reopen_no_reason", "approved", (Invalid, "Say why")),
    # admin acceptance (the second level)
    ("admin", ("annotation",), "accept", "awaiting_acceptance", OK),
    ("reviewer", ("annotation",), "accept", "awaiting_acceptance", (Forbidden, "Only admins")),
    ("admin_owner", ("annotation",), "accept", "awaiting_acceptance", SELF),
    ("admin", ("annotation",), "accept", "children_approved", (Invalid, "no admin acceptance")),
    # comments: staff start threads, the owner replies, staff resolve
    ("reviewer", ALL_NODES, "comment", "submitted", OK),
    ("owner", ("track",), "comment", "submitted", (Forbidden, "start comment threads")),
    ("owner", ("track",), "reply", "submitted", OK),
    ("reviewer", ("track",), "reply", "submitted", OK),
    ("other_annotator", ("track",), "reply", "submitted", (NotFound, "No annotation")),
    ("reviewer", ("track",), "resolve", "submitted", OK),
    ("owner", ("track",), "resolve", "submitted", (Forbidden, "Only reviewers and admins resolve")),
    # fix and accept: captions and tracks, by a reviewer of someone else's submitted work
    ("reviewer", ("caption", "track"), "fix", "submitted", OK),
    ("admin", ("caption",), "fix", "submitted", OK),
    ("owner", ("caption", "track"), "fix", "submitted", ONLY_STAFF),
    ("admin_owner", ("caption",), "fix", "submitted", SELF),
    ("reviewer", ("shot", "speech_segment"), "fix", "submitted",
     (Invalid, "corrects captions and keypoints")),
    ("reviewer", ("caption",), "fix", "approved", (Forbidden, "only submitted items can be fixed")),
    ("reviewer", ("track",), "fix", "rejected", (Forbidden, "only submitted work")),
    # resubmitting a rejected clip without changing or answering the rejection
    ("owner", ("annotation",), "resubmit", "rejected", (Forbidden, "Fix or answer each rejection")),
    ("other_annotator", ("annotation",), "resubmit", "rejected", (NotFound, "No annotation")),
    ("owner", ("annotation",), "resubmit", "approved", (Forbidden, "cannot be edited")),
]  # fmt: skip

CASES = [
    pytest.param(role, node, transition, pre, expected, id=f"{role}-{node}-{transition}-{pre}")
    for role, nodes, transition, pre, expected in TABLE
    for node in nodes
]


@pytest.mark.parametrize(("role", "node_type", "transition", "pre", "expected"), CASES)
def test_transition_table(
    db: Session, role: str, node_type: str, transition: str, pre: str, expected: Expect
) -> None:
    owner_role = Role.admin if role == "admin_owner" else Role.annotator
    world = build(db, owner_role=owner_role)
    PRE[pre](world, node_type)
    user = world.users["owner" if role == "admin_owner" else role]
    if expected is None:
        DO[transition](world, user, node_type)
        return
    error, fragment = expected
    with pytest.raises(error) as caught:
        DO[transition](world, user, node_type)
    assert fragment in caught.value.message


def test_the_table_covers_every_transition_and_node() -> None:
    assert set(DO) == {row[2] for row in TABLE}
    assert {n for row in TABLE for n in row[1]} == set(NODE_MODELS)
    approvals = {(r[0], n) for r in TABLE if r[2] == "approve" for n in r[1]}
    for role in ("owner", "other_annotator", "admin_owner", "reviewer", "admin"):
        assert {n for r, n in approvals if r == role} >= set(LEAVES), role


# ---------------------------------------------------------------- what the transitions do


def test_rejecting_a_track_returns_the_clip_with_a_pinned_comment(db: Session) -> None:
    world = build(db)
    approve(db, world.users["reviewer"], "shot", world.node("shot").id, world.version("shot"))
    comment = reject(
        db, world.users["reviewer"], "track", world.node("track").id, world.version("track"),
        "wrong_keypoint", "The left wrist is on the sleeve.",
        Pin(frame=12, point=9, region={"x": 10, "y": 20, "w": 30, "h": 40}),
    )  # fmt: skip
    assert (comment.node_type, comment.frame_index, comment.point_index) == ("track", 12, 9)
    assert comment.region == {"x": 10, "y": 20, "w": 30, "h": 40}
    assert world.node("track").status == NodeStatus.rejected
    assert world.node("annotation").status == NodeStatus.rejected
    assert world.node("shot").status == NodeStatus.approved  # the rest keeps its review
    db.refresh(world.assignment)
    assert world.assignment.state == AssignmentState.rejected
    # The annotator may edit again; the reviewer may not act until it is resubmitted.
    check_editable(db, world.annotation, world.users["owner"])
    with pytest.raises(Forbidden):
        do_approve(world, world.users["reviewer"], "caption")


def test_resubmission_needs_a_change_under_the_rejected_node_or_a_reply(db: Session) -> None:
    world = build(db)
    owner = world.users["owner"]
    comment = _rejection(world)
    # Changing something else does not answer a rejection of the track.
    update_caption(db, owner, world.node("caption").id, "A new caption", world.version("caption"))
    with pytest.raises(Forbidden, match=r"track \d+ frame 12"):
        world.submit()
    frame = db.scalar(
        select(KeypointFrame).where(KeypointFrame.track_id == world.node("track").id,
                                    KeypointFrame.frame_index == 12)
    )  # fmt: skip
    assert frame is not None
    pose, _ = decode_points(frame.points)
    points = [[float(p[0]), float(p[1]), int(p[2])] for p in pose]
    points[9] = [150.0, 60.0, 2]
    save_frame(db, owner, world.node("track").id, 12, points, frame.version)
    assert world.submit().status == NodeStatus.submitted
    assert unanswered_rejections(db, world.annotation) == []
    assert comment.resolved is False  # the reviewer settles it by approving the track
    do_approve(world, world.users["reviewer"], "track")
    db.refresh(comment)
    assert comment.resolved is True


def test_a_reply_answers_a_rejection(db: Session) -> None:
    world = build(db)
    comment = _rejection(world)
    reply(db, world.users["reviewer"], comment.id, "see frame 12")  # not the annotator
    with pytest.raises(Forbidden):
        world.submit()
    reply(db, world.users["owner"], comment.id, "The wrist is hidden: it is right.")
    world.submit()
    threads = comment_threads(db, world.annotation)
    assert [r["body"] for r in threads[0]["replies"]] == [
        "see frame 12", "The wrist is hidden: it is right."
    ]  # fmt: skip


def test_resubmission_reviews_only_what_is_new_or_changed(db: Session) -> None:
    world = build(db)
    reviewer, owner = world.users["reviewer"], world.users["owner"]
    for kind in ("shot", "caption", "speech_segment"):
        do_approve(world, reviewer, kind)
    reject(db, reviewer, "track", world.node("track").id, world.version("track"),
           "wrong_keypoint", "wrist")  # fmt: skip
    update_speech(db, owner, world.node("speech_segment").id, 0.1, 0.6, "hello",
                  world.version("speech_segment"))  # fmt: skip
    reply(db, owner, open_rejections(db, world.annotation)[0].id, "it is fine")
    world.submit()
    statuses = {kind: world.node(kind).status for kind in ALL_NODES}
    assert statuses == {
        "shot": NodeStatus.approved, "caption": NodeStatus.approved,  # unchanged since approval
        "speech_segment": NodeStatus.submitted,  # changed after its approval
        "track": NodeStatus.submitted, "character": NodeStatus.submitted,
        "annotation": NodeStatus.submitted,
    }  # fmt: skip


def test_approving_each_level_approves_the_clip_marks_it_primary(db: Session) -> None:
    world = build(db)
    approve_all(world, "annotation")
    annotation = world.node("annotation")
    assert annotation.status == NodeStatus.approved and annotation.is_primary
    assert annotation.approved_at is not None
    db.refresh(world.assignment)
    assert world.assignment.state == AssignmentState.approved
    assert world.assignment.completed_at is not None
    statuses = [
        (r.node_type, r.after["status"])
        for r in revisions_of(db, "annotation", annotation.id)
        if r.action == "status"
    ]
    assert statuses == [("annotation", "submitted"), ("annotation", "approved")]


def test_an_existing_primary_is_kept(db: Session) -> None:
    world = build(db)
    from app.clips.models import Clip

    earlier = approve_truth(db, db.get_one(Clip, world.annotation.clip_id))
    approve_all(world, "annotation")
    assert world.node("annotation").is_primary is False
    db.refresh(earlier)
    assert earlier.is_primary


def test_admin_acceptance_is_a_second_level(db: Session) -> None:
    world = build(db, admin_acceptance=True)
    approve_all(world, "annotation")
    annotation = world.node("annotation")
    assert annotation.status == NodeStatus.submitted and awaiting_acceptance(annotation)
    assert not annotation.is_primary
    db.refresh(world.assignment)
    assert world.assignment.state == AssignmentState.submitted
    accept(db, world.users["admin"], annotation.id, annotation.version)
    assert world.node("annotation").status == NodeStatus.approved and annotation.is_primary
    db.refresh(world.assignment)
    assert world.assignment.state == AssignmentState.approved


def test_approve_all_remaining_children_only_approves_what_was_shown(db: Session) -> None:
    world = build(db)
    reviewer = world.users["reviewer"]
    shown = [NodeRef("shot", world.node("shot").id),
             NodeRef("character", world.node("character").id)]  # fmt: skip
    result = approve_children(db, reviewer, "annotation", world.annotation.id, shown)
    assert result.approved == [shown[0]]
    assert "character:" + str(world.node("character").id) in result.blocked  # its track waits
    assert {r.type for r in result.not_shown} == {"caption", "speech_segment"}
    assert world.node("caption").status == NodeStatus.submitted
    assert world.node("annotation").status == NodeStatus.submitted  # never approved silently


def test_reopen_takes_the_node_and_its_ancestors_back_to_draft(db: Session) -> None:
    world = build(db)
    approve_all(world, "annotation")
    reopen(db, world.users["admin"], "track", world.node("track").id,
           world.version("track"), "hands swapped in shot 2")  # fmt: skip
    assert [world.node(k).status for k in ("track", "character", "annotation", "shot")] == [
        NodeStatus.draft, NodeStatus.draft, NodeStatus.draft, NodeStatus.approved
    ]  # fmt: skip
    db.refresh(world.assignment)
    assert world.assignment.state == AssignmentState.in_progress
    last = revisions_of(db, "track", world.node("track").id)[-1]
    assert (
        last.comment == "reopen: hands swapped in shot 2"
        and last.user_id == world.users["admin"].id
    )
    check_editable(db, world.node("annotation"), world.users["owner"])  # editable again


# ---------------------------------------------------------------- history, diff, restore


def _frame(world: World, n: int) -> KeypointFrame:
    row = world.db.scalar(
        select(KeypointFrame).where(KeypointFrame.track_id == world.node("track").id,
                                    KeypointFrame.frame_index == n)
    )  # fmt: skip
    assert row is not None
    return row


def _save(world: World, n: int, changes: dict[int, list[float]]) -> None:
    row = _frame(world, n)
    pose, _ = decode_points(row.points)
    points = [[float(p[0]), float(p[1]), int(p[2])] for p in pose]
    for i, value in changes.items():
        points[i] = value
    save_frame(world.db, world.users["owner"], row.track_id, n, points, row.version)


def test_diff_and_restore_of_a_keypoint_frame(db: Session) -> None:
    world = build(db, submit=False)
    model_pose, _ = decode_points(_frame(world, 12).points)
    _save(world, 12, {9: [150.0, 60.0, 2]})
    _save(world, 12, {9: [170.0, 80.0, 2], 10: [50.0, 50.0, 1]})
    owner = world.users["owner"]
    revisions = history(db, owner, "track", world.node("track").id)
    first, second = [r for r in revisions if r.node_type == "keypoint_frame"]
    assert first.frame == 12 and second.frame == 12
    changes = {
        c["field"]: (c["a"], c["b"]) for c in diff(db, owner, first.id, second.id)["changes"]
    }
    assert changes == {
        "9": ([150.0, 60.0, 2.0], [170.0, 80.0, 2.0]),
        "10": ([*model_pose[10, :2].tolist(), 2.0], [50.0, 50.0, 1.0]),  # its pre-edit value
    }
    row = _frame(world, 12)
    version = row.version
    with pytest.raises(Conflict):
        restore(db, owner, first.id, version - 1)
    with pytest.raises(Forbidden):
        restore(db, world.users["reviewer"], first.id, version)
    [written] = restore(db, owner, first.id, version)
    assert written.action == "restore" and written.comment == f"restored revision {first.id}"
    pose, _ = decode_points(_frame(world, 12).points)
    assert pose[9, :3].tolist() == [150.0, 60.0, 2.0]
    np.testing.assert_allclose(pose[10, :3], [*model_pose[10, :2], 2.0])
    assert _frame(world, 12).version == version + 1
    # Nothing was deleted: the restore is one more revision after the two edits.
    assert [r.action for r in history(db, owner, "keypoint_frame", row.id)] == [
        "update", "update", "restore"
    ]  # fmt: skip
    with pytest.raises(Invalid, match="Nothing to restore"):
        restore(db, owner, first.id, _frame(world, 12).version)


def test_restoring_tags_and_a_caption_goes_through_their_save_paths(db: Session) -> None:
    world = build(db, submit=False)
    owner, vocabulary = world.users["owner"], world.project.tag_vocabulary
    for venue in ("indoor", "nature"):
        set_tags(db, owner, world.annotation.id, {"venue": venue},
                 world.version("annotation"), vocabulary)  # fmt: skip
    revisions = revisions_of(db, "annotation", world.annotation.id)
    first = next(r for r in revisions if r.action == "tags")
    restore(db, owner, first.id, world.version("annotation"))
    assert world.node("annotation").tags["venue"] == "indoor"
    caption_id = world.node("caption").id
    for text in ("A cat jumps.", "A dog runs."):
        update_caption(db, owner, caption_id, text, world.version("caption"))
    cat, dog = revisions_of(db, "caption", caption_id)
    assert diff(db, owner, dog.id, cat.id)["changes"] == [
        {"field": "text", "a": "A cat jumps.", "b": "A dog runs."}
    ]
    [written] = restore(db, owner, cat.id, world.version("caption"))
    assert world.node("caption").text == "A cat jumps." and written.action == "restore"
    assert written.before == {"text": "A dog runs."}


# ---------------------------------------------------------------- review document and queue


def test_review_payload_has_statuses_threads_and_the_model_draft(db: Session) -> None:
    world = build(db)
    _rejection(world)
    payload = review_payload(db, world.users["owner"], world.node("annotation"))
    statuses = {(n["type"], n["id"]): n["status"] for n in payload["nodes"]}
    assert statuses[("track", world.node("track").id)] == "rejected"
    assert statuses[("annotation", world.annotation.id)] == "rejected"
    assert len(statuses) == 7  # clip, shot, character, track, two captions, speech
    assert payload["can_review"] is False and payload["can_edit"] is True
    assert payload["comments"][0]["frame"] == 12 and payload["unanswered"] == [
        payload["comments"][0]["id"]
    ]
    model = payload["model"][world.node("track").id]
    stored, _ = decode_points(_frame(world, 12).model_points or b"")
    np.testing.assert_allclose(model[12], np.round(stored[:, :3], 2))
    as_reviewer = review_payload(db, world.users["reviewer"], world.node("annotation"))
    assert as_reviewer["can_review"] is False  # rejected: back with the annotator


def test_review_queue_filters(db: Session) -> None:
    old, fresh, draft = build(db), build(db), build(db, submit=False)
    reviewer = old.users["reviewer"]
    old.node("annotation").submitted_at -= timedelta(hours=30)
    ids = {r.annotation_id for r in review_queue(db, reviewer, QueueFilters())}
    assert {old.annotation.id, fresh.annotation.id} <= ids and draft.annotation.id not in ids
    aged = review_queue(db, reviewer, QueueFilters(min_age_hours=24))
    assert old.annotation.id in {r.annotation_id for r in aged}
    assert fresh.annotation.id not in {r.annotation_id for r in aged}
    mine = review_queue(db, reviewer, QueueFilters(annotator_id=fresh.users["owner"].id))
    assert [r.annotation_id for r in mine] == [fresh.annotation.id]
    batch_id = db.get_one(BatchClip, fresh.assignment.batch_clip_id).batch_id
    batch = review_queue(db, reviewer, QueueFilters(batch_id=batch_id))
    assert [r.annotation_id for r in batch] == [fresh.annotation.id]
    # One rejection, then resubmitted: the count filter finds it.
    _rejection(fresh)
    reply(db, fresh.users["owner"], open_rejections(db, fresh.annotation)[0].id, "ok")
    fresh.submit()
    rejected = review_queue(db, reviewer, QueueFilters(min_rejections=1))
    assert [(r.annotation_id, r.rejections) for r in rejected] == [(fresh.annotation.id, 1)]
    # Nobody reviews their own work, so it is not in their queue.
    assert (
        review_queue(db, old.users["owner"], QueueFilters(annotator_id=old.users["owner"].id)) == []
    )


def test_every_status_change_is_a_revision(db: Session) -> None:
    world = build(db)
    approve_all(world, "annotation")
    rows = db.scalars(
        select(Revision).where(Revision.annotation_id == world.annotation.id,
                               Revision.action == "status")
    ).all()  # fmt: skip
    approved = {(r.node_type, r.node_id) for r in rows if r.after == {"status": "approved"}}
    assert approved == {(t, world.node(t).id) for t in ALL_NODES} | {
        ("caption", c.id)
        for c in children_of(db, world.node("annotation"))
        if node_type_of(c) == "caption"
    }
    assert all(
        r.user_id == world.users["reviewer"].id for r in rows if r.after == {"status": "approved"}
    )
