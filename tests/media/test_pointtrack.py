"""Point tracking from a keyframe on generated clips, against their truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.media.decode import Image, iter_frames
from app.media.pointtrack import track_points
from app.samples.generator import SampleClip, make_clip
from app.samples.truth import Kind
from bench.tracking import Score, cases_of, track

KINDS: tuple[Kind, ...] = ("humanoid", "animal", "creature")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[Kind, SampleClip]:
    """One two-shot 640x360 clip per kind, on ones (every frame a new drawing)."""
    folder = tmp_path_factory.mktemp("tracking")
    return {
        kind: make_clip(
            folder,
            kind,
            seed=11,
            width=640,
            aspect=16 / 9,
            fps=24,
            seconds=2.0,
            kinds=[kind],
            shots=2,
            timing="ones",
            subsets=["pose"] if kind == "humanoid" else ["i2v"],
        )
        for kind in KINDS
    }


def shifted(image: Image, dx: float) -> Image:
    """The picture moved right by ``dx`` pixels (a camera panning left), borders repeated."""
    warp = np.float32([[1, 0, dx], [0, 1, 0]])
    height, width = image.shape[:2]
    return np.asarray(
        cv2.warpAffine(image, warp, (width, height), borderMode=cv2.BORDER_REPLICATE), np.uint8
    )


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("kind", KINDS)
def test_tracked_points_follow_the_truth(
    clips: dict[Kind, SampleClip], kind: Kind, direction: str
) -> None:
    score = Score()
    for case in cases_of(clips[kind]):
        if case.direction == direction:
            score.add(case, track(case))
    assert score.visible > 0
    assert score.ok >= 0.45 * score.visible, "about half the points are followed to the end"
    assert np.median(score.errors) < 1.5, "% of the character's box diagonal"
    assert score.wrong <= 0.05 * score.measured, "hardly any point is kept in the wrong place"


def test_points_stop_at_a_cut(clips: dict[Kind, SampleClip]) -> None:
    clip = clips["humanoid"]
    cut = clip.truth["shots"][0][1]
    frames = list(iter_frames(clip.path))[cut - 6 : cut + 6]
    keypoints = np.asarray(clip.truth["characters"][0]["keypoints"][cut - 6], np.float32)
    result = track_points(frames, keypoints[:, :2], keypoints[:, 2] == 2)
    assert result.ok[5].sum() >= 0.6 * (keypoints[:, 2] == 2).sum()
    assert not result.ok[6:].any(), "no point is carried into the next shot"
    assert np.isnan(result.xy[6:]).all()


def test_a_point_leaving_the_frame_is_carried_clamped_and_not_seen(
    clips: dict[Kind, SampleClip],
) -> None:
    """The camera pans right 12 px a frame until the animal's rear is out of the picture, then
    back: the points that left are carried with the others (clamped to the border while out)
    and never followed again; the others come back to where they were."""
    key = next(iter_frames(clips["animal"].path))
    truth = np.asarray(clips["animal"].truth["characters"][0]["keypoints"][0], np.float32)
    seen = truth[:, 2] == 2
    left = int(truth[seen, 0].min()) - 8
    pans = np.array([0, 12, 24, 36, 48, 36, 24, 12, 0])
    frames = [np.ascontiguousarray(key[:, left + pan : left + pan + 360]) for pan in pans]
    xy = truth[:, :2] - [left, 0]
    result = track_points(frames, xy, seen)
    outside = xy[None, :, 0] - pans[:, None] < 0
    left_frame = np.cumsum(outside, axis=0) > 0
    assert left_frame[-1, seen].sum() >= 2, "some points leave the picture"
    assert not (result.ok & left_frame).any(), "a point that left is never followed again"
    gone = seen & left_frame[-1]
    assert result.carried[-1, gone].all(), "it is carried with the others instead"
    away = np.flatnonzero(outside.any(axis=1))
    assert (result.xy[away][outside[away] & seen][:, 0] == 0).all(), "clamped to the border"
    assert result.confidence[-1, gone].max() < 0.25, "a guess from the neighbours"
    assert not result.back_in_view[outside].any(), "not seen while out of the picture"
    assert result.back_in_view[-1, gone].all(), "back inside: guessed seen again"
    # back where it was when the camera is: the pan's motion, carried
    assert np.abs(result.xy[-1, gone] - xy[gone]).max() < 2.0
    stays = seen & (xy[:, 0] - pans.max() >= 15)
    back = result.ok[-1] & stays
    assert back.sum() >= 0.8 * stays.sum()
    assert np.abs(result.xy[-1, back] - xy[back]).max() < 1.5


def test_a_hidden_point_is_carried_with_its_neighbours(clips: dict[Kind, SampleClip]) -> None:
    """A point set as hidden on the keyframe moves as the picture does, while it pans and
    zooms; it is marked carried, never followed."""
    key = next(iter_frames(clips["animal"].path))
    truth = np.asarray(clips["animal"].truth["characters"][0]["keypoints"][0], np.float32)
    seen = truth[:, 2] == 2
    hidden = np.zeros(len(truth), bool)
    hidden[np.flatnonzero(seen)[0]] = True
    warps = [np.float32([[1 + 0.01 * i, 0, 4 * i], [0, 1 + 0.01 * i, -2 * i]]) for i in range(8)]
    height, width = key.shape[:2]
    frames = [
        np.asarray(
            cv2.warpAffine(key, w, (width, height), borderMode=cv2.BORDER_REPLICATE), np.uint8
        )
        for w in warps
    ]
    result = track_points(frames, truth[:, :2], seen, hidden=hidden)
    assert not result.ok[:, hidden].any()
    assert result.carried[:, hidden].all()
    assert not result.back_in_view.any(), "a hidden point is not guessed seen"
    where = truth[hidden, :2] @ warps[-1][:, :2].T + warps[-1][:, 2]
    assert np.abs(result.xy[-1, hidden] - where).max() < 1.5


def test_a_point_set_on_the_border_stays_on_it_while_the_picture_moves_in(
    clips: dict[Kind, SampleClip],
) -> None:
    """A point off the frame is set on its border, not where it is: when the character moves
    into the frame, the point is still beyond the border as far as anyone knows."""
    key = next(iter_frames(clips["animal"].path))
    truth = np.asarray(clips["animal"].truth["characters"][0]["keypoints"][0], np.float32)
    seen = truth[:, 2] == 2
    frames = [shifted(key, 3 * i) for i in range(6)]
    xy = np.vstack([truth[:, :2], [[0, 150]]]).astype(np.float32)
    result = track_points(frames, xy, np.append(seen, True))
    assert result.carried[:, -1].all()
    np.testing.assert_array_equal(result.xy[:, -1, 0], 0)
    assert not result.back_in_view[:, -1].any(), "nor guessed seen"
    assert np.abs(result.xy[:, -1, 1] - 150).max() < 1.0


def test_with_no_neighbour_followed_a_carried_point_stops(clips: dict[Kind, SampleClip]) -> None:
    frames = list(iter_frames(clips["animal"].path))[:4]
    hidden_alone = track_points(
        frames, np.float32([[320, 200]]), np.ones(1, bool), hidden=np.ones(1, bool)
    )
    assert hidden_alone.carried[0].all() and not hidden_alone.carried[1:].any()
    assert np.isnan(hidden_alone.xy[1:]).all()


def test_held_drawings_move_by_their_move_exactly(clips: dict[Kind, SampleClip]) -> None:
    frames = list(iter_frames(clips["humanoid"].path))[:6]
    keypoints = np.asarray(clips["humanoid"].truth["characters"][0]["keypoints"][0], np.float32)
    moves = [None, (1.0, 3.5, -2.0), (1.02, -4.0, 1.25), None, None, (1.0, 0.0, 0.0)]
    result = track_points(frames, keypoints[:, :2], np.ones(len(keypoints), bool), moves=moves)
    expected = keypoints[:, :2] + [3.5, -2.0]
    np.testing.assert_allclose(result.xy[1], expected, atol=1e-4)
    np.testing.assert_allclose(result.xy[2], expected * 1.02 + [-4.0, 1.25], atol=1e-3)
    np.testing.assert_array_equal(result.xy[5][result.ok[5]], result.xy[4][result.ok[5]])
    assert result.ok[2].all(), "a move is trusted: no look at the pictures"


def test_a_move_out_of_the_frame_carries_the_point_by_the_move(
    clips: dict[Kind, SampleClip],
) -> None:
    frames = list(iter_frames(clips["humanoid"].path))[:4]
    xy = np.float32([[100, 100], [600, 100]])
    moves = [None, (1.0, 50.0, 0.0), (1.0, 0.0, 0.0), (1.0, -30.0, 0.0)]
    result = track_points(frames, xy, np.ones(2, bool), moves=moves)
    assert result.ok[1].tolist() == [True, False]
    assert result.carried[1].tolist() == [False, True]
    np.testing.assert_allclose(result.xy[1, 1], [640, 100]), "clamped to the right border"
    assert not result.ok[2:, 1].any(), "never followed again"
    np.testing.assert_allclose(result.xy[3, 1], [620, 100], atol=1e-3), "moved exactly"


def test_smaller_frames_give_source_pixels(clips: dict[Kind, SampleClip]) -> None:
    clip = clips["humanoid"]
    frames = list(iter_frames(clip.path))[:12]
    small = [np.asarray(cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA)) for f in frames]
    keypoints = np.asarray(clip.truth["characters"][0]["keypoints"][0], np.float32)
    visible = keypoints[:, 2] == 2
    result = track_points(small, keypoints[:, :2], visible, scale=0.5)
    truth = np.asarray(clip.truth["characters"][0]["keypoints"][11], np.float32)
    kept = result.ok[11] & (truth[:, 2] == 2)
    assert kept.sum() >= 0.5 * visible.sum()
    assert np.median(np.hypot(*(result.xy[11, kept] - truth[kept, :2]).T)) < 2.0


def test_large_frames_are_tracked_at_working_size_in_source_pixels(
    clips: dict[Kind, SampleClip],
) -> None:
    clip = clips["humanoid"]
    frames = list(iter_frames(clip.path))[:8]
    large = [np.asarray(cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC)) for f in frames]
    keypoints = np.asarray(clip.truth["characters"][0]["keypoints"][0], np.float32)
    visible = keypoints[:, 2] == 2
    at_640 = track_points(frames, keypoints[:, :2], visible)
    at_1280 = track_points(large, 2 * keypoints[:, :2], visible)
    both = at_640.ok[-1] & at_1280.ok[-1]
    assert both.sum() >= 0.8 * at_640.ok[-1].sum()
    assert np.median(np.abs(at_1280.xy[-1, both] - 2 * at_640.xy[-1, both])) < 1.0


def test_only_active_points_inside_the_frame_are_followed(clips: dict[Kind, SampleClip]) -> None:
    frames = list(iter_frames(clips["animal"].path))[:4]
    xy = np.float32([[320, 200], [330, 210], [-5, 100], [100, 400]])
    result = track_points(frames, xy, np.array([True, False, True, True]))
    assert result.ok[0].tolist() == [True, False, False, False]
    assert not result.ok[:, 1:].any()
    assert not result.carried[:, 1].any() and np.isnan(result.xy[:, 1]).all()
    assert (result.confidence[:, 1] == 0).all(), "an inactive point is left alone"
    assert result.carried[0, 2:].all(), "the ones off the frame start carried"
    np.testing.assert_array_equal(result.xy[0, 2:], [[0, 100], [100, 360]])
    np.testing.assert_array_equal(result.xy[0, 0], xy[0])


def test_no_points_and_one_frame(tmp_path: Path) -> None:
    frame = np.zeros((90, 160, 3), np.uint8)
    empty = track_points([frame, frame], np.zeros((0, 2), np.float32), np.zeros(0, bool))
    assert empty.xy.shape == (2, 0, 2) and empty.ok.shape == (2, 0)
    single = track_points([frame], np.float32([[10, 10]]), np.ones(1, bool))
    assert single.ok.tolist() == [[True]]
