from dataclasses import replace

import numpy as np
import pytest

from app.media.decode import iter_frames
from app.pipeline.keypoints import extract_keypoints
from app.pipeline.smoothing import FACE_FILTER, FACE_POINTS, one_euro, smooth_faces, zero_phase
from app.samples.generator import make_clip

FPS = 24.0
SIZE = 80.0  # px: the face's size


def _track(path: np.ndarray, noise_px: float, seed: int = 0) -> np.ndarray:
    """(T, 1, 2) model points: ``path`` (T, 2) plus the model's frame-to-frame jitter."""
    rng = np.random.default_rng(seed)
    return (path + rng.normal(0, noise_px, path.shape))[:, None, :]


def _filter(xy: np.ndarray, resets: np.ndarray | None = None) -> np.ndarray:
    t = len(xy)
    seen = np.ones(xy.shape[:2], dtype=bool)
    cut = np.zeros(t, dtype=bool) if resets is None else resets
    return zero_phase(xy, seen, np.arange(t) / FPS, cut, SIZE, FACE_FILTER)


def _jitter(xy: np.ndarray, truth: np.ndarray) -> float:
    """Mean frame-to-frame residual of the points against the truth's own motion (px)."""
    return float(np.linalg.norm(np.diff(xy[:, 0], axis=0) - np.diff(truth, axis=0), axis=1).mean())


def test_a_face_at_rest_stops_jittering():
    truth = np.tile([200.0, 120.0], (48, 1))
    raw = _track(truth, noise_px=1.5)
    smooth = _filter(raw)
    assert _jitter(smooth, truth) < 0.8 * _jitter(raw, truth)
    error = np.linalg.norm(smooth[:, 0] - truth, axis=1).mean()
    assert error < 0.9 * np.linalg.norm(raw[:, 0] - truth, axis=1).mean()


def test_a_moving_face_is_followed_not_dragged_behind():
    """A head turning across the picture at two face sizes a second: the filtered point keeps
    up with it (the lag of a fixed low-pass filter would be tens of pixels)."""
    t = np.arange(48) / FPS
    truth = np.stack([100 + 2 * SIZE * t, 120 + 0 * t], axis=1)
    raw = _track(truth, noise_px=1.5)
    smooth = _filter(raw)
    raw_error = np.linalg.norm(raw[:, 0] - truth, axis=1).mean()
    assert np.linalg.norm(smooth[:, 0] - truth, axis=1).mean() < raw_error + 1.5
    assert _jitter(smooth, truth) < _jitter(raw, truth)


def test_a_cut_starts_afresh():
    """Each shot is filtered as if it were alone: nothing leaks across the cut either way."""
    truth = np.concatenate([np.tile([100.0, 100.0], (24, 1)), np.tile([108.0, 96.0], (24, 1))])
    raw = _track(truth, noise_px=1.0)
    cut = np.zeros(48, dtype=bool)
    cut[24] = True
    alone = np.concatenate([_filter(raw[:24]), _filter(raw[24:])])
    np.testing.assert_allclose(_filter(raw, cut), alone)
    assert not np.allclose(_filter(raw), alone)


def test_points_the_model_did_not_see_keep_their_values_and_restart():
    truth = np.tile([50.0, 60.0], (10, 1))
    raw = _track(truth, noise_px=1.0)
    seen = np.ones((10, 1), dtype=bool)
    seen[4] = False
    raw[4, 0] = (0.0, 0.0)  # an unlabelled point: no position
    smooth = one_euro(raw, seen, np.arange(10) / FPS, np.zeros(10, bool), SIZE, FACE_FILTER)
    np.testing.assert_array_equal(smooth[4, 0], (0.0, 0.0))
    np.testing.assert_allclose(smooth[5, 0], raw[5, 0])


def _face_jitter_and_error(clip, frames) -> tuple[float, float]:
    """Mean frame-to-frame residual against the truth's motion (px) and median point error
    (share of the face box) of the model's face points where the truth sees them."""
    [person] = [c for c in clip.truth["characters"] if c["kind"] == "humanoid"]
    cuts = {start for start, _ in clip.truth["shots"]}
    residuals, errors = [], []
    previous = None
    for f in frames:
        truth = np.array(person["keypoints"][f.frame_index], np.float32)[FACE_POINTS]
        seen = (f.pose[FACE_POINTS, 2] > 0) & (truth[:, 2] == 2)
        model = f.pose[FACE_POINTS, :2]
        if (box := person["face_boxes"][f.frame_index]) is not None:
            distance = np.linalg.norm(model[seen] - truth[seen, :2], axis=1)
            errors += list(distance / max(box[2], box[3]))
        if previous is not None and f.frame_index not in cuts:
            both = seen & previous[2]
            moved = (model - previous[0]) - (truth[:, :2] - previous[1])
            residuals += list(np.linalg.norm(moved[both], axis=1))
        previous = (model, truth[:, :2], seen)
    return float(np.mean(residuals)), float(np.median(errors))


@pytest.mark.slow
def test_a_generated_face_clip_jitters_less_and_stays_on_the_face(tmp_path):
    clip = make_clip(tmp_path, "faces", seed=100, seconds=3.0, fps=24, shots=2,
                     subsets=("face_video", "i2v"), kinds=("humanoid",), timing="ones")  # fmt: skip
    cuts = [start for start, _ in clip.truth["shots"]]
    raw = extract_keypoints(iter_frames(clip.path), cuts=cuts, face_fallback=True)
    smooth = smooth_faces(raw, clip.truth["fps"], cuts)

    raw_jitter, raw_error = _face_jitter_and_error(clip, raw.frames)
    jitter, error = _face_jitter_and_error(clip, smooth.frames)
    assert jitter < 0.85 * raw_jitter
    assert error <= 1.02 * raw_error  # the faces move and talk: smoothing must keep up
    # The second shot is smoothed as if the clip began there.
    second = [f for f in raw.frames if f.frame_index >= cuts[1]]
    alone = smooth_faces(replace(raw, frames=second), clip.truth["fps"])
    for a, b in zip(alone.frames, smooth.frames[cuts[1] :], strict=True):
        np.testing.assert_allclose(a.pose, b.pose)
