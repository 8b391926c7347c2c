"""Batches service: filters, overlap and gold sampling, the queue's rules, leases, ownership."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.auth.models import Role, User
from app.batches import assignments, claims, progress_cache, sampling, service
from app.batches.models import Assignment, AssignmentState, BatchClip
from app.batches.progress import BatchProgress
from app.batches.schemas import AssignConfig, BatchCreate
from app.clips import filters
from app.clips.filters import ClipFilter
from app.clips.models import Clip, ClipState
from app.core.db import session_scope, utcnow
from app.core.errors import Conflict, Invalid, NotFound
from app.projects.models import Project, Subset
from tests.factories import (
    approve_truth,
    create_batch,
    create_clip,
    create_project,
    create_ready_clips,
    create_user,
)


def _ids(session: Session, project: Project, **flt: object) -> set[int]:
    return set(session.scalars(filters.matching_clips(session, project.id, ClipFilter(**flt))))


def _bc(session: Session, batch_id: int) -> list[BatchClip]:
    return list(
        session.scalars(select(BatchClip).where(BatchClip.batch_id == batch_id).order_by("id"))
    )


def test_filters_select_exactly_the_matching_clips(db: Session) -> None:
    project = create_project(db)
    other = create_project(db)
    day = utcnow() - timedelta(days=10)
    a = create_clip(db, project, subsets=["pose"], source_tags={"venue": "indoor"},
                    state=ClipState.ready, external_id="ext-a", created_at=day)  # fmt: skip
    b = create_clip(db, project, subsets=["i2v", "face_video"],
                    source_tags={"venue": ["outdoor", "urban"], "time_of_day": "night"},
                    quality_flags={"blurry": "low sharpness"}, state=ClipState.ready)  # fmt: skip
    c = create_clip(db, project, subsets=["i2v"], quality_flags={"text_overlay": "captions"},
                    state=ClipState.processing, external_id="ext-c")  # fmt: skip
    create_clip(db, other, subsets=["i2v"], state=ClipState.ready)

    assert _ids(db, project) == {a.id, b.id, c.id}
    assert _ids(db, project, subset=Subset.i2v) == {b.id, c.id}
    assert _ids(db, project, tags={"venue": "outdoor"}) == {b.id}  # list-valued tag
    assert _ids(db, project, tags={"venue": "indoor"}) == {a.id}  # scalar tag
    assert _ids(db, project, tags={"venue": "outdoor", "time_of_day": "day"}) == set()
    assert _ids(db, project, with_flags=["blurry"]) == {b.id}
    assert _ids(db, project, without_flags=["blurry", "text_overlay"]) == {a.id}
    assert _ids(db, project, state=ClipState.ready) == {a.id, b.id}
    assert _ids(db, project, external_ids=["ext-a", "ext-c", "nope"]) == {a.id, c.id}
    assert _ids(db, project, ingested_to=day.date()) == {a.id}
    assert _ids(db, project, ingested_from=day.date() + timedelta(days=1)) == {b.id, c.id}
    assert _ids(db, project, clip_ids=[a.id, c.id], subset=Subset.i2v) == {c.id}
    assert _ids(db, project, limit=2) == {a.id, b.id}
    assert service.count_matching(db, project.id, ClipFilter(subset=Subset.i2v)) == 2
    with pytest.raises(Invalid, match="letters, digits"):
        _ids(db, project, tags={"venue') or 1=1 --": "x"})


def test_create_batch_from_filter_and_by_hand(db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 5, subsets=["i2v"])
    create_clip(db, project, subsets=["pose"])
    batch = service.create_batch(
        db,
        BatchCreate(name="night i2v", project_id=project.id,
                    filter=ClipFilter(subset=Subset.i2v, limit=4), priority=3),
    )  # fmt: skip
    rows = _bc(db, batch.id)
    assert [r.clip_id for r in rows] == [c.id for c in clips[:4]]
    assert all(r.required_annotators == 1 and not r.is_gold for r in rows)
    assert batch.filter == {"subset": "i2v", "limit": 4}
    with pytest.raises(Conflict):
        service.create_batch(db, BatchCreate(name="night i2v", project_id=project.id))
    with pytest.raises(Invalid, match="empty"):
        service.create_batch(
            db, BatchCreate(name="none", project_id=project.id,
                            filter=ClipFilter(external_ids=["missing"])),
        )  # fmt: skip
    stranger = create_clip(db, create_project(db))
    with pytest.raises(Invalid, match=str(stranger.id)):
        create_batch(db, project, [clips[0], stranger])


def test_overlap_sample_is_deterministic_for_a_seed(db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 50)
    annotators = [create_user(db, Role.annotator) for _ in range(3)]
    names = [u.username for u in annotators]

    def overlapped(seed: int) -> set[int]:
        batch = create_batch(db, project, clips)
        result = sampling.assign_batch(
            db, batch.id, AssignConfig(annotators=names, overlap_k=3, overlap_pct=20, seed=seed)
        )
        rows = _bc(db, batch.id)
        chosen = {r.clip_id for r in rows if r.required_annotators == 3}
        assert result.overlapped == len(chosen) == 10  # 20 % of 50
        assert {r.required_annotators for r in rows} == {1, 3}
        return chosen

    first = overlapped(7)
    assert overlapped(7) == first
    assert overlapped(8) != first
    batch = create_batch(db, project, clips)
    with pytest.raises(Invalid, match="pool has 3"):
        sampling.assign_batch(db, batch.id, AssignConfig(annotators=names, overlap_k=4,
                                                        overlap_pct=10))  # fmt: skip


def test_gold_clips_are_mixed_in_from_approved_truth(db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 40)
    truth = create_ready_clips(db, project, 6)
    for clip in truth:
        approve_truth(db, clip)
    not_ready = create_clip(db, project, state=ClipState.processing)
    approve_truth(db, not_ready)
    annotator = create_user(db, Role.annotator)
    batch = create_batch(db, project, clips)
    result = sampling.assign_batch(
        db, batch.id, AssignConfig(annotators=[annotator.username], gold_pct=10, seed=1)
    )
    rows = _bc(db, batch.id)
    gold = [r for r in rows if r.is_gold]
    assert result.gold == len(gold) == 4 and result.gold_shortfall == 0  # 10 % of 40
    assert {r.clip_id for r in gold} <= {c.id for c in truth}
    # Mixed in: gold clips take regular clips' queue positions instead of trailing the batch.
    regular_positions = sorted(r.position for r in rows if not r.is_gold)
    assert all(r.position in regular_positions for r in gold)
    assert min(r.position for r in gold) < regular_positions[-1]
    again = sampling.assign_batch(db, batch.id, AssignConfig(gold_pct=30, seed=1))
    assert again.gold == 6 and again.gold_shortfall == 6  # only 6 clips have truth


def test_queue_rules_members_ready_state_priority_and_no_duplicates(db: Session) -> None:
    project = create_project(db)
    low = create_ready_clips(db, project, 2)
    high = create_ready_clips(db, project, 2)
    waiting = create_clip(db, project, state=ClipState.processing)
    ann, other, outsider = (create_user(db, Role.annotator) for _ in range(3))
    low_batch = create_batch(db, project, low, priority=0)
    high_batch = create_batch(db, project, [*high, waiting], priority=5)
    for b in (low_batch, high_batch):
        sampling.assign_batch(db, b.id, AssignConfig(annotators=[ann.username, other.username]))

    assert claims.next_clip(db, outsider) is None  # not in any pool
    first = claims.next_clip(db, ann)
    assert first is not None and first.clip_id == high[0].id  # priority first
    assert claims.next_clip(db, ann) is first  # unfinished work comes back first
    first.state = AssignmentState.submitted
    handed = [first]
    while (a := claims.next_clip(db, ann)) is not None:
        handed.append(a)
        a.state = AssignmentState.submitted
    assert [a.clip_id for a in handed] == [high[0].id, high[1].id, low[0].id, low[1].id]
    # The processing clip is skipped; clips needing one annotator are not shared.
    assert claims.next_clip(db, other) is None
    waiting.state = ClipState.ready
    db.flush()
    last = claims.next_clip(db, other)
    assert last is not None and last.clip_id == waiting.id
    assert claims.next_clip(db, ann, batch_id=low_batch.id) is None


def test_overlapped_clip_goes_to_k_distinct_annotators_only(db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 1)
    users = [create_user(db, Role.annotator) for _ in range(3)]
    batch = create_batch(db, project, clips)
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[u.username for u in users],
                                                    overlap_k=2, overlap_pct=100))  # fmt: skip
    got = []
    for user in users:
        assignment = claims.next_clip(db, user)
        if assignment is not None:
            assignment.state = AssignmentState.submitted
            got.append(user.id)
    assert got == [users[0].id, users[1].id]
    assert _bc(db, batch.id)[0].handed_out == 2


def test_expired_lease_releases_the_slot_to_someone_else_never_the_same_person(
    db: Session,
) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 1)
    quitter, taker = create_user(db, Role.annotator), create_user(db, Role.annotator)
    batch = create_batch(db, project, clips, lease_minutes=30)
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[quitter.username, taker.username]))
    now = utcnow()
    mine = claims.next_clip(db, quitter, now=now)
    assert mine is not None and mine.leased_until == now + timedelta(minutes=30)
    assert claims.next_clip(db, taker, now=now + timedelta(minutes=29)) is None
    # The quitter coming back inside the lease renews it.
    assert claims.next_clip(db, quitter, now=now + timedelta(minutes=20)) is mine
    assert mine.leased_until == now + timedelta(minutes=50)
    later = now + timedelta(minutes=51)
    assert claims.next_clip(db, quitter, now=later) is None  # released, and never theirs again
    assert mine.state == AssignmentState.released
    theirs = claims.next_clip(db, taker, now=later)
    assert theirs is not None and theirs.clip_id == clips[0].id
    assert _bc(db, batch.id)[0].handed_out == 1


def test_release_expired_leaves_submitted_work_alone(db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 2)
    ann = create_user(db, Role.annotator)
    batch = create_batch(db, project, clips)
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[ann.username]))
    done = claims.next_clip(db, ann)
    assert done is not None
    done.state = AssignmentState.submitted
    open_ = claims.next_clip(db, ann)
    assert open_ is not None
    released = claims.release_expired(db, now=utcnow() + timedelta(days=1))
    assert released == 1
    assert (done.state, open_.state) == (AssignmentState.submitted, AssignmentState.released)


def test_named_assignment_reassign_and_unassign(db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 3)
    alice, bob, carol = (create_user(db, Role.annotator) for _ in range(3))
    reviewer = create_user(db, Role.reviewer)
    batch = create_batch(db, project, clips)
    sampling.assign_batch(db, batch.id, AssignConfig(reviewers=[reviewer.username]))
    named = claims.assign_clips(db, batch.id, alice, 2)
    assert [a.clip_id for a in named] == [clips[0].id, clips[1].id]
    assert all(a.leased_until is None and a.reviewer_id == reviewer.id for a in named)
    # Alice is not in the pool, yet her named work is in her queue; nothing else is.
    assert claims.next_clip(db, alice) is named[0]
    assert named[0].leased_until is not None
    moved = assignments.reassign(db, named[0].id, bob)
    assert named[0].state == AssignmentState.released and moved.annotator_id == bob.id
    assert claims.next_clip(db, bob) is moved
    with pytest.raises(Conflict, match="already had"):
        assignments.reassign(db, moved.id, alice)
    assignments.unassign(db, named[1].id)
    with pytest.raises(Invalid, match="released"):
        assignments.unassign(db, named[1].id)
    counts = {r.clip_id: r.handed_out for r in _bc(db, batch.id)}
    assert counts == {clips[0].id: 1, clips[1].id: 0, clips[2].id: 0}
    # The freed slot can go to someone who never had it.
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[carol.username]))
    got = claims.next_clip(db, carol)
    assert got is not None and got.clip_id == clips[1].id
    with pytest.raises(Invalid):
        claims.assign_clips(db, batch.id, reviewer, 1)


def test_stale_counter_never_overfills_a_clip(db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 1)
    a, b = create_user(db, Role.annotator), create_user(db, Role.annotator)
    batch = create_batch(db, project, clips)
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[a.username, b.username]))
    assert claims.next_clip(db, a) is not None
    row = _bc(db, batch.id)[0]
    row.handed_out = 0  # a counter gone wrong (e.g. a manual fix in the database)
    db.flush()
    assert claims.next_clip(db, b) is None
    assert row.handed_out == 1
    total = db.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.batch_clip_id == row.id))  # fmt: skip
    assert total == 1


def test_annotators_see_only_their_own_assignments_and_no_gold_flag(db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 2)
    mine, theirs = create_user(db, Role.annotator), create_user(db, Role.annotator)
    admin = create_user(db, Role.admin)
    batch = create_batch(db, project, clips)
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[mine.username, theirs.username]))
    a = claims.next_clip(db, mine)
    b = claims.next_clip(db, theirs)
    assert a is not None and b is not None
    assert assignments.get_assignment(db, a.id, mine) is a
    assert assignments.get_assignment(db, b.id, admin) is b
    with pytest.raises(NotFound):
        assignments.get_assignment(db, b.id, mine)
    entries = assignments.own_assignments(db, mine)
    assert [e.id for e in entries] == [a.id] and entries[0].url == f"/annotate/{a.id}"
    assert not hasattr(entries[0], "is_gold")
    a.state = AssignmentState.rejected
    assert (
        assignments.rejected_waiting(db, mine) == 1
        and assignments.rejected_waiting(db, theirs) == 0
    )


def progress_scenario(db: Session) -> tuple[int, User, User, datetime]:
    """A batch of 4 clips: a fast annotator (2 and 4 minutes, both within the hour), a slow one
    (10 minutes, 3 hours ago) with one clip still open. Returns (batch id, fast, slow, now)."""
    project = create_project(db)
    clips = create_ready_clips(db, project, 4)
    fast, slow = create_user(db, Role.annotator), create_user(db, Role.annotator)
    batch = create_batch(db, project, clips)
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[fast.username, slow.username]))
    now = utcnow()
    # (minutes spent, submitted how many minutes ago, final state)
    work = {
        fast.id: [(2, 10, AssignmentState.approved), (4, 20, AssignmentState.submitted)],
        slow.id: [(10, 180, AssignmentState.rejected)],
    }
    for user in (fast, slow):
        for spent, ago, state in work[user.id]:
            a = claims.next_clip(db, user, now=now)
            assert a is not None
            a.submitted_at = now - timedelta(minutes=ago)
            a.started_at = a.submitted_at - timedelta(minutes=spent)
            a.state = state
    assert claims.next_clip(db, slow, now=now) is not None  # one left open
    db.flush()
    return batch.id, fast, slow, now


def check_progress(progress: BatchProgress, fast: User, slow: User) -> None:
    assert (progress.clips, progress.slots, progress.handed_out) == (4, 4, 4)
    per = {p.label: p for p in progress.annotators}
    assert per[fast.username].counts == {**dict.fromkeys(per[fast.username].counts, 0),
                                         "approved": 1, "submitted": 1}  # fmt: skip
    assert per[slow.username].counts["rejected"] == 1 and per[slow.username].counts["assigned"] == 1
    assert per[fast.username].median_seconds == (2 * 60 + 4 * 60) / 2
    assert per[slow.username].median_seconds == 10 * 60
    assert per[fast.username].submitted_last_hour == 2
    assert per[slow.username].submitted_last_hour == 0
    assert progress.overall.median_seconds == 4 * 60
    assert progress.overall.submitted_last_hour == 2 and progress.overall.total == 4


def test_progress_counts_throughput_and_median_time(db: Session) -> None:
    batch_id, fast, slow, now = progress_scenario(db)
    check_progress(progress_cache.batch_progress(db, batch_id, now=now), fast, slow)


def test_users_by_name_explains_unknown_and_wrong_roles(db: Session) -> None:
    reviewer = create_user(db, Role.reviewer)
    with pytest.raises(NotFound, match="ghost"):
        service.users_by_name(db, ["ghost"], [Role.annotator])
    with pytest.raises(Invalid, match=reviewer.username):
        service.users_by_name(db, [reviewer.username], [Role.annotator])
    found: list[User] = service.users_by_name(db, [reviewer.username], [Role.reviewer])
    assert found[0].id == reviewer.id


def test_ingest_dates_are_inclusive_days(db: Session) -> None:
    project = create_project(db)
    clip = create_clip(db, project)
    day: date = clip.created_at.date()
    assert _ids(db, project, ingested_from=day, ingested_to=day) == {clip.id}
    with pytest.raises(ValueError):
        ClipFilter(ingested_from=day, ingested_to=day - timedelta(days=1))
    assert db.get(Clip, clip.id) is not None


def test_a_large_batch_page_shows_cached_progress_while_it_is_recounted(
    engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its fresh period the cached progress is still answered at once, a background
    recount replaces it, and after a long quiet period the request recounts itself."""
    monkeypatch.setattr(progress_cache, "PROGRESS_CACHE_CLIPS", 1)  # a small batch as large
    monkeypatch.setattr(progress_cache, "_progress_cache", {})
    with session_scope() as session:
        project = create_project(session)
        annotator = create_user(session, Role.annotator)
        batch = create_batch(session, project, create_ready_clips(session, project, 3))
        sampling.assign_batch(session, batch.id, AssignConfig(annotators=[annotator.username]))
        ids = (project.id, batch.id, annotator.id)
    project_id, batch_id, annotator_id = ids

    def handed_out() -> int:
        with session_scope() as session:
            return progress_cache.batch_progress(session, batch_id).handed_out

    def take_a_clip() -> None:  # and finish it, so the next call hands out another
        with session_scope() as session:
            assignment = claims.next_clip(session, session.get_one(User, annotator_id))
            assert assignment is not None
            assignment.state = AssignmentState.submitted

    try:
        assert handed_out() == 0
        take_a_clip()
        assert handed_out() == 0  # fresh cache
        monkeypatch.setattr(progress_cache, "PROGRESS_FRESH_SECONDS", 0.0)
        assert handed_out() == 0  # stale: answered from the cache, a recount starts
        deadline = time.monotonic() + 10
        while handed_out() != 1:  # the recount lands (each look may start another)
            assert time.monotonic() < deadline, "the background recount never landed"
            time.sleep(0.05)
        monkeypatch.setattr(progress_cache, "PROGRESS_FRESH_SECONDS", 3600.0)
        monkeypatch.setattr(progress_cache, "PROGRESS_STALE_MAX_SECONDS", 0.0)
        take_a_clip()
        assert handed_out() == 1  # still fresh
        monkeypatch.setattr(progress_cache, "PROGRESS_FRESH_SECONDS", 0.0)
        assert handed_out() == 2  # too old to show: recounted in the request
    finally:
        with session_scope() as session:
            session.execute(delete(Project).where(Project.id == project_id))
