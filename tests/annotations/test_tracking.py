"""Point tracking in a person's annotation (app/annotations/tracking.py), on a generated clip
with real media and its frame cache: the shot is filled with tracked guesses that follow the
drawn character, never past the cut, a keyframe or a person's point; lost points stop and
flag the frame; the step is one revision; held drawings move points by their offsets. Track
accepts the frame it tracks from (a keyframe); a tracked span is accepted at once; undo takes
either back whole, and exports label only the accepted points."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.annotations import tracking
from app.annotations.keypoint_edits import interpolate, save_frame
from app.annotations.models import Character, KeypointFrame, Revision, Shot, Source
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload
from app.annotations.points import (
    MACHINE_SOURCES,
    SRC_ACCEPTED,
    SRC_MODEL,
    SRC_PERSON,
    SRC_TRACKED,
    decode_with_sources,
    encode_points,
)
from app.annotations.tracking import TRACK_LOST, Tracked, accept_span, track_from
from app.auth.models import Role
from app.core.errors import Conflict, Invalid
from app.core.storage import clip_prefix
from app.export.labels import LabelRule, labelled_points
from app.media.drawings import DrawingRun
from app.media.framecache import build_frame_cache
from app.samples.generator import SampleClip, make_clip
from tests.factories import (
    create_clip,
    create_model_draft,
    create_project,
    create_user,
    local_media,
    login,
)

CUT = 25  # the generated clip's second shot starts here
TOLERANCE_PX = 6.0


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleClip:
    """A 320x180 clip, 36 frames at 12 fps, one humanoid drawn on ones, two shots."""
    clip = make_clip(tmp_path_factory.mktemp("tracking"), "walk", seed=3, width=320, fps=12,
                     seconds=3, subsets=["pose"], kinds=["humanoid"], talking=False,
                     timing="ones", shots=2, aspect=16 / 9)  # fmt: skip
    assert clip.truth["shots"][1][0] == CUT, clip.truth["shots"]
    return clip


class World:
    """An annotator's copy of the sample clip (frames cached, shots as drawn) whose frame 0
    holds the truth's visible body points, set by the person."""

    def __init__(self, db: Session, sample: SampleClip) -> None:
        truth = sample.truth
        payload = sample.path.read_bytes()
        project = create_project(db)
        clip = create_clip(db, project, width=truth["width"], height=truth["height"],
                           fps=truth["fps"], frame_count=truth["frame_count"], state="ready",
                           size_bytes=len(payload))  # fmt: skip
        source = local_media().path(clip.storage_key)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(payload)
        build_frame_cache(source, local_media().path(clip_prefix(project.id, clip.id)) / "frames")
        create_model_draft(db, clip)
        self.db, self.clip = db, clip
        self.user = create_user(db, Role.annotator)
        self.annotation = open_annotation(db, clip, self.user)
        db.execute(delete(Shot).where(Shot.annotation_id == self.annotation.id))
        db.add_all(Shot(annotation_id=self.annotation.id, start_frame=a, end_frame=b,
                        source=Source.human) for a, b in truth["shots"])  # fmt: skip
        db.flush()
        self.character = db.scalar(
            select(Character).where(Character.annotation_id == self.annotation.id)
        )
        data = annotation_payload(db, self.annotation)
        self.track_id = int(data["characters"][0]["tracks"][0]["id"])
        self.truth = np.asarray(truth["characters"][0]["keypoints"], np.float32)  # (F, K, 3)
        # Body points seen on both ends of the first shot's first 12 frames.
        self.points = np.flatnonzero((self.truth[:12, :17, 2] == 2).all(axis=0)).tolist()
        self.set_truth(0)

    def set_truth(self, frame: int, points: list[int] | None = None, v: int = 2) -> None:
        """Set ``points`` (all of ``self.points`` by default) where the truth has them, with
        visibility ``v``."""
        row = self.row(frame)
        pose, _ = decode_with_sources(row.points)
        raw = [[float(x), float(y), int(v)] for x, y, v, _ in pose]
        for i in points if points is not None else self.points:
            raw[i] = [float(self.truth[frame, i, 0]), float(self.truth[frame, i, 1]), v]
        save_frame(self.db, self.user, self.track_id, frame, raw, row.version)

    def row(self, frame: int) -> KeypointFrame:
        row = self.db.scalar(
            select(KeypointFrame).where(
                KeypointFrame.track_id == self.track_id, KeypointFrame.frame_index == frame
            )
        )
        assert row is not None
        return row

    def sources(self, frame: int) -> np.ndarray:
        return decode_with_sources(self.row(frame).points)[1]

    def suggest(self, frame: int, points: list[int]) -> None:
        """Make the model's ``points`` on ``frame`` suggestions (v=0, the model's confidence),
        as the keypoints step stores those below the project's confidence floor."""
        row = self.row(frame)
        pose, sources = decode_with_sources(row.points)
        pose[points, 2] = 0
        row.points = encode_points(pose, sources)
        self.db.flush()

    def labelled(self, frame: int) -> np.ndarray:
        """The points an export labels on ``frame`` (the track not approved)."""
        pose, sources = decode_with_sources(self.row(frame).points)
        return labelled_points(pose, sources, LabelRule(), track_status="draft")

    def guesses(self, frame: int) -> np.ndarray:
        """The model's or the tracker's points shown as labelled on ``frame``."""
        pose, sources = decode_with_sources(self.row(frame).points)
        return np.isin(sources, MACHINE_SOURCES) & (pose[:, 2] > 0)

    def track(self, frame: int = 0, **kw: object) -> Tracked:
        return track_from(self.db, self.user, self.track_id, frame, self.row(frame).version,
                          **{"direction": "forward", **kw})  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
def world(db: Session, sample: SampleClip) -> World:
    return World(db, sample)


def test_tracking_forward_fills_the_shot_with_guesses_that_follow_and_stops_at_the_cut(
    world: World, db: Session
) -> None:
    revisions = db.scalar(select(func.count()).select_from(Revision))
    world.track()
    followed = []
    for frame in range(1, CUT):
        pose, sources = decode_with_sources(world.row(frame).points)
        tracked = [i for i in world.points if sources[i] == SRC_TRACKED]
        assert all(0 < pose[i, 3] <= 1 and pose[i, 2] == 2 for i in tracked)
        error = np.hypot(*(pose[tracked, :2] - world.truth[frame, tracked, :2]).T)
        followed.append((error <= TOLERANCE_PX).mean() if tracked else 0.0)
    assert np.mean(followed) >= 0.8, followed
    assert (world.sources(CUT - 1)[world.points] == SRC_TRACKED).any()
    for frame in range(CUT, CUT + 3):  # the next shot is not touched
        assert (world.sources(frame)[world.points] == SRC_MODEL).all()
    # the frame tracked from accepted, then one revision of the track for the whole step
    steps = db.scalars(select(Revision).order_by(Revision.id.desc()).limit(2)).all()
    assert db.scalar(select(func.count()).select_from(Revision)) == revisions + 2
    assert [(r.node_type, r.action) for r in steps] == [
        ("track", "track"),
        ("keypoint_frame", "track_keyframe"),
    ]
    step = steps[0]
    assert set(step.after["frames"]) == {str(f) for f in range(1, CUT)}


def test_tracking_stops_before_the_next_keyframe_and_never_writes_over_a_persons_point(
    world: World,
) -> None:
    world.set_truth(6, world.points[:1])  # a person set one of the points on frame 6
    world.track()
    assert (world.sources(5)[world.points] == SRC_TRACKED).any()
    assert (world.sources(6)[world.points[1:]] == SRC_MODEL).all()
    assert world.sources(6)[world.points[0]] == SRC_PERSON
    row = world.row(10)
    save_frame(world.db, world.user, world.track_id, 10,
               [[*p[:2], p[2]] for p in decode_with_sources(row.points)[0].tolist()],
               row.version, keyframe=True)  # fmt: skip
    world.track(frame=6, only=world.points[:1])  # only the point selected there
    assert world.sources(9)[world.points[0]] == SRC_TRACKED
    assert world.sources(9)[world.points[1]] == SRC_MODEL
    assert world.sources(10)[world.points[0]] == SRC_MODEL  # the keyframe stops it


def test_a_point_lost_stops_there_and_its_frame_is_flagged(world: World, db: Session) -> None:
    db.execute(delete(Shot).where(Shot.annotation_id == world.annotation.id))  # one long shot
    done = world.track()
    assert done.lost, "tracking through the cut lost no point"
    assert max(done.lost) >= CUT  # the cut loses points
    for frame, points in done.lost.items():
        assert f"{TRACK_LOST}{len(points)}" in world.row(frame).flags
        for later in range(frame, 36):  # a lost point is never written after it stopped
            assert (world.sources(later)[points] == SRC_MODEL).all(), (frame, later)


def test_a_held_drawing_moves_the_points_by_its_offsets_exactly(world: World) -> None:
    moves = ((1.0, 0.0, 0.0), (1.0, 4.0, -2.0), (1.1, 6.0, 1.0))
    world.character.drawing_runs = [DrawingRun(0, 3, moves).as_json()]
    world.track(only=world.points[:3])
    key = decode_with_sources(world.row(0).points)[0][world.points[:3], :2]
    for frame, (s, dx, dy) in enumerate(moves):
        pose, sources = decode_with_sources(world.row(frame).points)
        assert np.allclose(pose[world.points[:3], :2], key * s + [dx, dy], atol=0.01)
        if frame:
            assert (sources[world.points[:3]] == SRC_TRACKED).all()
            assert (sources[world.points[3:]] == SRC_MODEL).all()  # only the selection


def test_a_hidden_point_is_carried_with_its_neighbours_as_a_hidden_guess(world: World) -> None:
    hip = next(i for i in (11, 12, 5, 6) if i in world.points)  # on the trunk: moves with it
    world.set_truth(0, [hip], v=1)  # the person says it is hidden (behind something)
    world.track()
    error = []
    for frame in range(1, CUT):
        pose, sources = decode_with_sources(world.row(frame).points)
        assert sources[hip] == SRC_TRACKED and pose[hip, 2] == 1, "a guess, still not visible"
        assert 0 < pose[hip, 3] < 0.25, "with a low confidence"
        error.append(float(np.hypot(*(pose[hip, :2] - world.truth[frame, hip, :2]))))
    assert np.median(error) <= TOLERANCE_PX, error


def test_a_point_leaving_the_frame_is_clamped_to_it_and_not_visible(world: World) -> None:
    width = world.clip.width or 0
    key = world.truth[0, world.points, 0]
    right = world.points[int(np.argmax(key))]
    dx = float(width - key.max() + 4)  # only the rightmost point leaves
    assert (key + dx < width - 2).sum() == len(key) - 1
    moves = ((1.0, 0.0, 0.0), (1.0, dx, 0.0), (1.0, dx, 0.0))
    world.character.drawing_runs = [DrawingRun(0, 3, moves).as_json()]
    world.track()
    for frame in (1, 2):
        pose, sources = decode_with_sources(world.row(frame).points)
        assert sources[right] == SRC_TRACKED and pose[right, 2] == 1
        assert pose[right, 0] == width, "clamped to the frame's edge"
        assert pose[right, 1] == pytest.approx(world.truth[0, right, 1], abs=0.01)
        others = [i for i in world.points if i != right]
        assert (pose[others, 2] == 2).all()
    assert TRACK_LOST not in "".join(world.row(1).flags)


def test_a_point_carried_back_into_the_frame_is_guessed_visible_again(world: World) -> None:
    """The drawing slides right until its rightmost point is out of the picture, then back: on
    the frame it is back, the person sees it as a visible guess (faded, to accept or fix), not
    a hidden one needing a visibility key."""
    width = world.clip.width or 0
    key = world.truth[0, world.points, 0]
    right = world.points[int(np.argmax(key))]
    dx = float(width - key.max() + 4)
    moves = ((1.0, 0.0, 0.0), (1.0, dx, 0.0), (1.0, 0.0, 0.0))
    world.character.drawing_runs = [DrawingRun(0, 3, moves).as_json()]
    world.track()
    out, _ = decode_with_sources(world.row(1).points)
    assert out[right, 2] == 1, "not visible while off the frame"
    back, sources = decode_with_sources(world.row(2).points)
    assert sources[right] == SRC_TRACKED and back[right, 2] == 2, "visible again, a guess"
    assert 0 < back[right, 3] < 0.25, "with a low confidence"
    assert back[right, :2] == pytest.approx(world.truth[0, right, :2], abs=0.01)


def test_a_hidden_point_without_a_followed_neighbour_stops(world: World) -> None:
    world.set_truth(0, world.points[:1], v=1)
    done = world.track(only=world.points[:1])
    assert done.lost == {1: world.points[:1]}
    assert world.sources(1)[world.points[0]] == SRC_MODEL
    assert f"{TRACK_LOST}1" in world.row(1).flags


def test_tracking_backward_fills_the_frames_before(world: World) -> None:
    world.set_truth(12)
    world.track(frame=12, direction="backward")
    assert all((world.sources(f)[world.points] == SRC_TRACKED).any() for f in range(1, 12))


def test_one_step_goes_through_at_most_max_frames(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "MAX_FRAMES", 5)
    assert world.track().reached == 4
    assert (world.sources(5)[world.points] == SRC_MODEL).all()


def test_a_stale_version_or_a_selection_without_labelled_points_is_refused(world: World) -> None:
    with pytest.raises(Conflict):
        track_from(world.db, world.user, world.track_id, 0, world.row(0).version - 1, "forward")
    world.suggest(3, [100, 101])
    version = world.row(3).version
    with pytest.raises(Invalid, match="no labelled point among those selected"):
        world.track(frame=3, only=[100, 101])
    assert world.row(3).version == version and not world.row(3).is_keyframe  # nothing written


def test_the_route_answers_the_frames_with_their_state_before_and_refuses_others(
    world: World, client: TestClient, db: Session
) -> None:
    body = {"frame": 0, "version": world.row(0).version, "direction": "forward"}
    csrf = login(client, db, create_user(db, Role.annotator))
    url = f"/api/tracks/{world.track_id}/track"
    assert client.post(url, json=body, headers={"X-CSRF-Token": csrf}).status_code == 404
    csrf = login(client, db, world.user)
    answer = client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [f["frame"] for f in data["frames"]] == list(range(0, CUT))  # the key, accepted
    assert data["reached"] == CUT - 1 and data["points"] > 0
    key, first = data["frames"][:2]
    assert key["keyframe"] and not key["before"]["keyframe"]
    assert first["before"]["tracked"] == [0] * 133 and sum(first["tracked"]) > 0
    conflict = client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    assert conflict.status_code == 409 and conflict.json()["detail"]["current_version"]
    body["version"] = conflict.json()["detail"]["current_version"]
    again = client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 200 and again.json()["frames"] == []  # nothing left to write


def _undo(client: TestClient, csrf: str, track_id: int, frames: list[dict[str, Any]]) -> None:
    """Put the frames of an action's answer back as they were, as the workspace's undo does."""
    states = [{"frame": f["frame"], "version": f["version"], **f["before"]} for f in frames]
    answer = client.post(
        f"/api/tracks/{track_id}/frames/restore",
        json={"action": "undo", "frames": states},
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status_code == 200, answer.text


def test_track_accepts_the_points_shown_on_its_frame_and_carries_them_all(world: World) -> None:
    world.suggest(0, [100, 101])
    pose, sources = decode_with_sources(world.row(0).points)
    model = np.flatnonzero((sources == SRC_MODEL) & (pose[:, 2] > 0))
    unlabelled = np.flatnonzero(pose[:, 2] == 0)
    assert model.size and unlabelled.size, "the draft shows guesses and leaves points out"
    assert not world.labelled(0)[model].any()
    world.track()
    row = world.row(0)
    assert row.is_keyframe, "the frame tracked from is the person's keyframe"
    assert (world.sources(0)[model] == SRC_ACCEPTED).all()
    assert world.labelled(0)[model].all() and not world.labelled(0)[unlabelled].any()
    assert (decode_with_sources(row.points)[0][:, :3] == pose[:, :3]).all(), "nothing moved"
    assert (world.sources(1)[model] == SRC_TRACKED).any(), "the model's points carried too"
    assert not world.labelled(1)[world.guesses(1)].any(), "tracked points stay guesses"


def test_undoing_track_takes_back_the_acceptance_and_the_tracked_points_together(
    world: World, client: TestClient, db: Session
) -> None:
    sources = world.sources(0)
    csrf = login(client, db, world.user)
    answer = client.post(f"/api/tracks/{world.track_id}/track", headers={"X-CSRF-Token": csrf},
                         json={"frame": 0, "version": world.row(0).version})  # fmt: skip
    _undo(client, csrf, world.track_id, answer.json()["frames"])
    db.expire_all()
    assert not world.row(0).is_keyframe
    assert (world.sources(0) == sources).all(), "the acceptance is taken back"
    assert not any((world.sources(f) == SRC_TRACKED).any() for f in range(1, CUT))


def test_accept_span_accepts_the_guesses_from_the_last_keyframe_up_to_this_frame(
    world: World,
) -> None:
    world.track()
    world.set_truth(4, world.points[:1])  # a person moved a point on the way
    world.suggest(4, [100, 101])
    assert accept_span(world.db, world.user, world.track_id, 8) == range(1, 9)
    for frame in range(1, 9):
        assert not world.guesses(frame).any(), frame
        pose = decode_with_sources(world.row(frame).points)[0]
        assert world.labelled(frame)[pose[:, 2] > 0].all()
        assert not world.row(frame).is_keyframe
    assert world.sources(4)[world.points[0]] == SRC_PERSON, "a person's point stays theirs"
    assert not world.labelled(4)[[100, 101]].any(), "a suggestion is not labelled by it"
    assert world.guesses(9).any(), "the frames after it stay guesses"
    with pytest.raises(Invalid, match="No keyframe before frame 30"):
        accept_span(world.db, world.user, world.track_id, 30)  # the next shot


def test_the_span_route_is_one_undo_step_and_refuses_others(
    world: World, client: TestClient, db: Session
) -> None:
    world.track()
    sources = {f: world.sources(f) for f in range(1, 7)}
    url = f"/api/tracks/{world.track_id}/accept-span"
    csrf = login(client, db, create_user(db, Role.annotator))
    assert client.post(url, json={"frame": 6}, headers={"X-CSRF-Token": csrf}).status_code == 404
    csrf = login(client, db, world.user)
    answer = client.post(url, json={"frame": 6}, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert (data["start"], data["end"]) == (1, 6)
    assert [f["frame"] for f in data["frames"]] == list(range(1, 7))
    _undo(client, csrf, world.track_id, data["frames"])
    db.expire_all()
    assert all((world.sources(f) == sources[f]).all() for f in range(1, 7)), "back to guesses"
    assert (world.sources(3) == SRC_TRACKED).any()


def test_interpolation_keeps_the_accepted_span_and_replaces_the_guesses_after_it(
    world: World,
) -> None:
    world.track()
    accept_span(world.db, world.user, world.track_id, 4)
    kept = {f: decode_with_sources(world.row(f).points)[0] for f in range(1, 5)}
    world.set_truth(10)
    row = world.row(10)
    save_frame(world.db, world.user, world.track_id, 10,
               [[*p[:2], p[2]] for p in decode_with_sources(row.points)[0].tolist()],
               row.version, keyframe=True)  # fmt: skip
    interpolate(world.db, world.user, world.track_id, 0, 10)
    for frame, pose in kept.items():
        assert (decode_with_sources(world.row(frame).points)[0][:, :3] == pose[:, :3]).all()
    a, b = (decode_with_sources(world.row(f).points)[0] for f in (0, 10))
    pose, sources = decode_with_sources(world.row(7).points)
    i = world.points[0]
    assert pose[i, :2] == pytest.approx(a[i, :2] + 0.7 * (b[i, :2] - a[i, :2]), abs=0.01)
    assert sources[i] == SRC_PERSON and world.labelled(7)[i]
