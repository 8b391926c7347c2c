"""In Chromium: point tracking in the workspace. An annotator presses T on a frame, which
accepts the points it shows and makes it a keyframe, and the shot fills with faded tracked
guesses up to the cut and no further; one undo takes the whole step back (the acceptance
too). Shift+A accepts the tracked frames stepped through since the keyframe, one undo step.
A character the annotator adds and places on one frame is offered tracking through its
shot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, delete, select

from app.annotations.models import Character, KeypointFrame, Shot, Source, Track
from app.annotations.points import (
    MACHINE_SOURCES,
    SRC_ACCEPTED,
    SRC_MODEL,
    SRC_TRACKED,
    decode_with_sources,
    encode_points,
)
from app.auth.models import Role, User
from app.batches.models import Batch, BatchClip, BatchMember
from app.core.storage import clip_prefix
from app.media.framecache import build_frame_cache
from app.projects.models import Project
from app.projects.skeletons import CONF, V, empty_pose
from app.samples.generator import make_clip
from tests.browser.workspace_helpers import open_next_clip, point_on_screen, session, wait_ready
from tests.factories import (
    create_clip,
    create_model_draft,
    create_project,
    create_user,
    local_media,
)

pytestmark = pytest.mark.browser

BODY = 17  # COCO body points: the first 17 of COCO-WholeBody
FRAMES = 36


@dataclass
class TwoShots:
    project_id: int
    clip_id: int
    cut: int  # the second shot's first frame
    truth: np.ndarray  # (F, 133, 3) the drawn character's keypoints
    width: int
    height: int


@pytest.fixture(scope="module")
def two_shots(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoShots]:
    """A generated 36-frame clip of one humanoid waving in two shots (the cut at frame 27),
    its frame cache built, with a
    model draft that found the character's body on frame 0 only (elsewhere its guesses are off
    the character)."""
    sample = make_clip(tmp_path_factory.mktemp("track"), "track", seed=7, width=320, fps=12,
                       seconds=3, subsets=["pose"], kinds=["humanoid"], talking=False,
                       timing="ones", shots=2, aspect=16 / 9)  # fmt: skip
    truth = sample.truth
    keypoints = np.asarray(truth["characters"][0]["keypoints"], np.float32)
    with session() as s, s.begin():
        project = create_project(s, name=f"track-{uuid.uuid4().hex[:8]}", subsets=None)
        clip = create_clip(s, project, width=truth["width"], height=truth["height"],
                           fps=truth["fps"], frame_count=truth["frame_count"], state="ready",
                           subsets=["pose"])  # fmt: skip
        source = local_media().path(clip.storage_key)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(sample.path.read_bytes())
        build_frame_cache(source, local_media().path(clip_prefix(project.id, clip.id)) / "frames")
        draft = create_model_draft(s, clip)
        s.execute(delete(Shot).where(Shot.annotation_id == draft.id))
        s.add_all(Shot(annotation_id=draft.id, start_frame=a, end_frame=b, source=Source.model)
                  for a, b in truth["shots"])  # fmt: skip
        first = s.scalar(select(KeypointFrame).where(KeypointFrame.frame_index == 0,
                         KeypointFrame.track_id.in_(select(Track.id).join(Character).where(
                             Character.annotation_id == draft.id))))  # fmt: skip
        assert first is not None
        pose = empty_pose(133)
        seen = keypoints[0, :BODY, 2] == 2
        pose[:BODY, :2][seen] = keypoints[0, :BODY, :2][seen]
        pose[:BODY, V][seen], pose[:BODY, CONF][seen] = 2, 0.9
        first.points = first.model_points = encode_points(pose)
        ids = (project.id, clip.id)
    yield TwoShots(*ids, truth["shots"][1][0], keypoints, truth["width"], truth["height"])
    with session() as s, s.begin():
        users = select(BatchMember.user_id).join(Batch).where(Batch.project_id == ids[0])
        user_ids = list(s.scalars(users))
        s.execute(delete(Project).where(Project.id == ids[0]))
        s.execute(delete(User).where(User.id.in_(user_ids)))


@pytest.fixture
def annotator(two_shots: TwoShots, unique: str) -> str:
    with session() as s, s.begin():
        user = create_user(s, Role.annotator, username=f"track-{unique}")
        batch = Batch(project_id=two_shots.project_id, name=f"track-{unique}")
        s.add(batch)
        s.flush()
        s.add_all([BatchClip(batch_id=batch.id, clip_id=two_shots.clip_id),
                   BatchMember(batch_id=batch.id, user_id=user.id, role="annotator")])  # fmt: skip
        return str(user.username)


def _rows(track_id: int, frames: range) -> dict[int, KeypointFrame]:
    with session() as s:
        rows = s.scalars(select(KeypointFrame).where(KeypointFrame.track_id == track_id,
                         KeypointFrame.frame_index.in_(list(frames))))  # fmt: skip
        return {row.frame_index: row for row in rows}


def _sources(track_id: int, frames: range) -> dict[int, np.ndarray]:
    return {n: decode_with_sources(row.points)[1] for n, row in _rows(track_id, frames).items()}


def _guesses(track_id: int, frames: range) -> dict[int, int]:
    """Per frame, how many points are shown as labelled but still a machine's guess."""
    guesses = {}
    for n, row in _rows(track_id, frames).items():
        pose, sources = decode_with_sources(row.points)
        guesses[n] = int((np.isin(sources, MACHINE_SOURCES) & (pose[:, V] > 0)).sum())
    return guesses


def _add_character(page: Page, name: str) -> None:
    """Add a COCO-17 character through the workspace's form."""
    page.get_by_text("Add a character").click()
    form = page.locator("#add-character")
    form.locator("input[name=name]").fill(name)
    form.locator("select[name=skeleton]").select_option("coco17")
    form.get_by_role("button", name="Add").click()
    expect(page.get_by_test_id("track-select")).to_contain_text(name)


def test_track_forward_accepts_the_frame_fills_the_shot_stops_at_the_cut_and_undoes_as_one_step(
    live_server: str, page: Page, two_shots: TwoShots, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, two_shots.clip_id)
    status = page.get_by_test_id("save-status")
    assert (
        "accept the points shown on this frame"
        in str(page.get_by_test_id("track-forward").get_attribute("title")).lower()
    )
    shown_on_key = _sources(opened.track_id, range(1))[0][:BODY]
    assert (shown_on_key == SRC_MODEL).all()

    page.keyboard.press("t")  # the press accepts the model's points on frame 0 and tracks them
    expect(status).to_contain_text("Accepted frame 0 as a keyframe and tracked")
    expect(status).to_contain_text(f"to frame {two_shots.cut - 1}")
    key = _rows(opened.track_id, range(1))[0]
    assert key.is_keyframe
    assert (decode_with_sources(key.points)[1][:BODY] == SRC_ACCEPTED).sum() >= BODY // 2
    shot = range(1, two_shots.cut)
    tracked = _sources(opened.track_id, range(1, FRAMES))
    assert all((tracked[f][:BODY] == SRC_TRACKED).sum() >= BODY // 2 for f in shot)
    assert all(not (tracked[f] == SRC_TRACKED).any() for f in range(two_shots.cut, FRAMES))
    page.keyboard.press("ArrowRight")  # frame 1 shows the tracked points, faded guesses
    wait_ready(page, 1)
    shown = page.evaluate("() => window.CelLabelWorkspace.stage.tracked.slice(0, 17)")
    assert sum(shown) >= BODY // 2
    tip = page.evaluate("(i) => window.CelLabelWorkspace.stage.describePoint(i)", shown.index(1))
    assert "tracked from a keyframe" in tip and "not labelled until accepted" in tip

    page.keyboard.press("Control+z")
    expect(status).to_contain_text("undid tracking")
    undone = _sources(opened.track_id, range(1, FRAMES))
    assert all(not (undone[f] == SRC_TRACKED).any() for f in undone)
    key = _rows(opened.track_id, range(1))[0]
    assert not key.is_keyframe, "the acceptance is undone with the tracking"
    assert (decode_with_sources(key.points)[1][:BODY] == SRC_MODEL).all()


def test_shift_a_accepts_the_frames_stepped_through_since_the_keyframe_and_undoes_at_once(
    live_server: str, page: Page, two_shots: TwoShots, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, two_shots.clip_id)
    status = page.get_by_test_id("save-status")
    page.keyboard.press("t")
    expect(status).to_contain_text(f"to frame {two_shots.cut - 1}")
    for n in range(1, 6):  # the person steps through frames 1-5 and finds them right
        page.keyboard.press("ArrowRight")
        wait_ready(page, n)
    assert page.evaluate("() => window.CelLabelWorkspace.stage.tracked.some(Boolean)")
    page.keyboard.press("Shift+A")
    expect(status).to_contain_text("Accepted the points of frames 1 to 5")
    page.wait_for_function("() => !window.CelLabelWorkspace.stage.tracked.some(Boolean)")
    guesses = _guesses(opened.track_id, range(1, 8))
    assert all(guesses[f] == 0 for f in range(1, 6)), guesses
    assert guesses[6] > 0 and guesses[7] > 0, "the frames not stepped through stay guesses"

    page.keyboard.press("Control+z")
    expect(status).to_contain_text("undid accepting the tracked span")
    undone = _guesses(opened.track_id, range(1, 6))
    assert all(undone[f] > 0 for f in range(1, 6)), undone

    page.get_by_test_id("accept-span").click()  # the button does the same
    expect(status).to_contain_text("Accepted the points of frames 1 to 5")
    page.get_by_role("button", name="?").click()
    expect(page.locator("#shortcuts")).to_contain_text("accept the tracked points from the last")


def test_a_character_added_and_placed_on_one_frame_is_offered_tracking_through_the_shot(
    live_server: str, page: Page, two_shots: TwoShots, annotator: str
) -> None:
    open_next_clip(page, live_server, annotator, two_shots.clip_id)
    _add_character(page, "walker")
    offer = page.get_by_test_id("track-offer")
    expect(offer).to_be_hidden()
    body = two_shots.truth[0, :BODY]
    points = [[float(x), float(y), 2 if v == 2 else 0] for x, y, v in body]
    page.evaluate("(p) => window.CelLabelWorkspace.stage.onChange(p)", points)  # its points
    expect(offer).to_be_visible()
    expect(offer).to_contain_text("Track walker through the shot from frame 0")
    offer.get_by_role("button", name="Track through the shot").focus()
    page.keyboard.press("Enter")
    status = page.get_by_test_id("save-status")
    expect(status).to_contain_text(f"to frame {two_shots.cut - 1}")
    expect(offer).to_be_hidden()
    track_id = page.evaluate("() => Number(document.querySelector('#track-select').value)")
    tracked = _sources(track_id, range(1, two_shots.cut))
    assert len(tracked) == two_shots.cut - 1
    assert all((tracked[f] == SRC_TRACKED).sum() >= BODY // 2 for f in tracked)


@pytest.mark.expect_http_errors(422)
def test_tracking_or_accepting_a_span_where_nothing_is_labelled_says_why_in_the_page(
    live_server: str, page: Page, two_shots: TwoShots, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, two_shots.clip_id)
    page.get_by_test_id("accept-span").click()  # no keyframe yet: nothing was tracked
    status = page.get_by_test_id("save-status")
    expect(status).to_contain_text("No keyframe before frame 0")
    _add_character(page, "nobody")
    page.get_by_test_id("track-forward").click()  # the new character has no point yet
    expect(status).to_contain_text("has no labelled point to track")
    assert not any((s == SRC_TRACKED).any() for s in _sources(opened.track_id, range(36)).values())


def test_with_one_point_selected_only_that_point_is_tracked(
    live_server: str, page: Page, two_shots: TwoShots, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, two_shots.clip_id)
    page.locator("#stage").scroll_into_view_if_needed()
    page.mouse.click(*point_on_screen(page, 0))  # one point selected (the nose, or a close eye)
    selected = page.evaluate("() => [...window.CelLabelWorkspace.stage.selected]")
    assert len(selected) == 1
    page.keyboard.press("t")
    expect(page.get_by_test_id("save-status")).to_contain_text("tracked")
    key = _sources(opened.track_id, range(1))[0]
    assert np.flatnonzero(key == SRC_ACCEPTED).tolist() == selected, "only the selection"
    tracked = _sources(opened.track_id, range(1, two_shots.cut))
    assert np.flatnonzero(tracked[1] == SRC_TRACKED).tolist() == selected
    assert all(set(np.flatnonzero(s == SRC_TRACKED)) <= set(selected) for s in tracked.values())
