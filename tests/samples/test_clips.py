"""Generated clips are readable by PyAV and OpenCV exactly as their ground truth says."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from app.samples.generator import SampleClip, make_clip
from app.samples.truth import AP10K, COCO_WHOLEBODY, SUBSETS
from tests.samples.conftest import decode_frames, frame_diffs

KNOBS = {
    "fps12_narrow_long": {
        "seed": 11,
        "fps": 12,
        "width": 256,
        "seconds": 10.0,
        "subsets": ["pose"],
    },
    "fps24_wide_short": {
        "seed": 12,
        "fps": 24,
        "width": 1280,
        "seconds": 1.0,
        "aspect": 16 / 9,
        "subsets": ["i2v"],
        "kinds": ["animal", "creature"],
    },
    "fps30_square": {
        "seed": 13,
        "fps": 30,
        "width": 400,
        "seconds": 2.0,
        "aspect": 1.0,
        "subsets": ["face_video"],
    },
    "talking": {"seed": 14, "fps": 24, "width": 320, "seconds": 4.0, "subsets": ["face_audio"]},
}


@pytest.mark.parametrize("name", list(KNOBS))
def test_pyav_and_opencv_agree_with_truth(
    clip_factory: Callable[..., SampleClip], name: str
) -> None:
    clip = clip_factory(name, **KNOBS[name])
    t = clip.truth
    knobs = KNOBS[name]
    assert t["fps"] == knobs["fps"] and t["width"] == knobs["width"]
    assert t["frame_count"] == round(float(knobs["seconds"]) * float(knobs["fps"]))  # type: ignore[arg-type]
    assert t["width"] % 2 == 0 and t["height"] % 2 == 0
    with av.open(str(clip.path)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", t["width"], t["height"])
        assert float(v.average_rate) == t["fps"]
        assert v.frames == t["frame_count"]
        assert sum(1 for _ in c.decode(video=0)) == t["frame_count"]
        assert bool(c.streams.audio) == t["has_audio"]
    cap = cv2.VideoCapture(str(clip.path))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == t["frame_count"]
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(t["fps"])
        assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == t["width"]
        assert int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == t["height"]
        n = 0
        while cap.read()[0]:
            n += 1
        assert n == t["frame_count"]
        # seeking lands on exactly the frame PyAV decodes at that index
        frames = decode_frames(clip.path)
        k = t["frame_count"] * 2 // 3
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, img = cap.read()
        assert ok
        diffs = [np.abs(img.astype(int) - f.astype(int)).mean() for f in frames]
        assert int(np.argmin(diffs)) == k or diffs[k] == min(diffs)
        assert diffs[k] < 2.0
    finally:
        cap.release()


def test_truth_schema_and_layouts(clip_factory: Callable[..., SampleClip]) -> None:
    for name in ("fps12_narrow_long", "fps24_wide_short", "talking"):
        clip = clip_factory(name, **KNOBS[name])
        t = json.loads(clip.truth_path.read_text())
        n = t["frame_count"]
        assert t["clip"] == clip.path.name and t["duration_s"] == pytest.approx(n / t["fps"])
        assert set(t["subsets"]) <= set(SUBSETS)
        assert t["shots"][0][0] == 0 and t["shots"][-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(t["shots"]))
        assert [c["shot"] for c in t["camera"]] == list(range(len(t["shots"])))
        for ch in t["characters"]:
            assert len(ch["boxes"]) == len(ch["face_boxes"]) == n
            spans = ch["emotions"]
            assert spans[0]["start"] == 0 and spans[-1]["end"] == n
            if ch["kind"] in ("creature", "object"):
                assert ch["template"] is None and ch["keypoints"] is None
                continue
            size = len(COCO_WHOLEBODY) if ch["kind"] == "humanoid" else len(AP10K)
            assert len(ch["keypoints"]) == n
            assert all(len(f) == size for f in ch["keypoints"])
            for frame in ch["keypoints"]:
                for x, y, v in frame:
                    inside = 0 <= x < t["width"] and 0 <= y < t["height"]
                    assert v in (1, 2) and (inside or v == 1)


def test_face_box_and_visible_face_points_lie_on_skin(
    clip_factory: Callable[..., SampleClip],
) -> None:
    """The truth comes from the drawing: visible face landmarks sit on the skin colour."""
    clip = clip_factory("fps30_square", **KNOBS["fps30_square"])
    frames = decode_frames(clip.path)
    ch = clip.truth["characters"][0]
    skin_hex = ch["colours"]["skin"]
    skin = np.array([int(skin_hex[i : i + 2], 16) for i in (5, 3, 1)])  # BGR
    on_skin = []
    for f, kps in zip(frames, ch["keypoints"] or [], strict=True):
        # jaw points sit on the inked face outline, the top of the nose bridge on bare skin
        for i, r in ((2, 6), (4, 6), (8, 6), (12, 6), (14, 6), (27, 2), (28, 2)):
            x, y, v = kps[23 + i]
            if v == 2:
                xi, yi = round(float(x)), round(float(y))
                patch = f[max(yi - r, 0) : yi + r + 1, max(xi - r, 0) : xi + r + 1].reshape(-1, 3)
                on_skin.append(np.abs(patch.astype(int) - skin).sum(axis=1).min() < 40)
    assert len(on_skin) > 20 and np.mean(on_skin) > 0.9


def test_held_runs_are_identical_drawings(clip_factory: Callable[..., SampleClip]) -> None:
    clip = clip_factory(
        "threes",
        seed=21,
        fps=24,
        width=320,
        seconds=3.0,
        timing="threes",
        subsets=["pose"],
        kinds=["humanoid", "animal"],
        shots=1,
    )
    t = clip.truth
    assert t["timing"] == "threes" and t["held_runs"]
    diffs = frame_diffs(decode_frames(clip.path))
    held = np.zeros(t["frame_count"] - 1, dtype=bool)
    for a, b in t["held_runs"]:
        assert b - a >= 2
        held[a : b - 1] = True
    assert held.sum() >= (t["frame_count"] - 1) // 2
    assert diffs[held].max() < 0.6
    assert np.median(diffs[~held]) > 5 * diffs[held].max()


def test_ones_have_no_held_runs_and_each_frame_differs(
    clip_factory: Callable[..., SampleClip],
) -> None:
    clip = clip_factory(
        "ones",
        seed=22,
        fps=12,
        width=320,
        seconds=2.0,
        timing="ones",
        subsets=["pose"],
        kinds=["humanoid"],
        shots=1,
    )
    assert clip.truth["held_runs"] == []
    assert frame_diffs(decode_frames(clip.path)).min() > 0.05


def test_shots_cut_where_truth_says(clip_factory: Callable[..., SampleClip]) -> None:
    clip = clip_factory(
        "cuts",
        seed=23,
        fps=24,
        width=320,
        seconds=4.0,
        shots=3,
        timing="twos",
        subsets=["i2v"],
        kinds=["humanoid", "creature"],
    )
    t = clip.truth
    assert len(t["shots"]) == 3
    diffs = frame_diffs(decode_frames(clip.path))
    cut_idx = [s - 1 for s, _ in t["shots"][1:]]
    inside = np.delete(diffs, cut_idx)
    assert diffs[cut_idx].min() > 3 * np.percentile(inside, 99)


def test_audio_follows_speech(clip_factory: Callable[..., SampleClip]) -> None:
    clip = clip_factory("talking", **KNOBS["talking"])
    t = clip.truth
    assert t["has_audio"] and t["speech"]
    with av.open(str(clip.path)) as c:
        stream = c.streams.audio[0]
        assert stream.codec_context.name == "aac"
        rate = stream.rate
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    hop = rate // 50
    rms = np.sqrt(
        np.array([np.mean(samples[i : i + hop] ** 2) for i in range(0, len(samples) - hop, hop)])
    )
    times = np.arange(len(rms)) * hop / rate + hop / rate / 2
    speech = np.zeros(len(rms), dtype=bool)
    near = np.zeros(len(rms), dtype=bool)
    for t0, t1 in t["speech"]:
        speech |= (times > t0 + 0.05) & (times < t1 - 0.05)
        near |= (times > t0 - 0.1) & (times < t1 + 0.1)
    assert abs(len(samples) / rate - t["duration_s"]) < 0.1
    assert np.mean(rms[speech] > 0.02) > 0.9
    assert rms[~near].max() < 0.002
    mouth = t["characters"][0]["keypoints"]
    assert mouth is not None
    # the drawn mouth opens during speech and stays shut in the pauses
    gap = np.array([abs(f[23 + 66][1] - f[23 + 62][1]) for f in mouth])
    ftimes = np.arange(t["frame_count"]) / t["fps"]
    talking = np.zeros(t["frame_count"], dtype=bool)
    for t0, t1 in t["speech"]:
        talking |= (ftimes >= t0) & (ftimes < t1)
    assert gap[talking].mean() > 3 * max(gap[~talking].mean(), 0.1)


def test_same_seed_same_clip(tmp_path: Path) -> None:
    kw = {"seed": 5, "width": 320, "seconds": 1.5, "fps": 24}
    a = make_clip(tmp_path / "a", "x", **kw)  # type: ignore[arg-type]
    b = make_clip(tmp_path / "b", "x", **kw)  # type: ignore[arg-type]
    c = make_clip(tmp_path / "c", "x", **{**kw, "seed": 6})  # type: ignore[arg-type]
    assert a.truth_path.read_bytes() == b.truth_path.read_bytes()
    fa, fb = decode_frames(a.path), decode_frames(b.path)
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.truth_path.read_bytes() != c.truth_path.read_bytes()
