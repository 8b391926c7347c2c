"""The four training packages, written from a stored sample clip and read back the way a
training script reads them: PyAV for the videos, numpy for the arrays, ``wave`` for audio."""

from __future__ import annotations

import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.export.formats.bundle import ClipBundle
from app.export.formats.packages.face import CROP_SIZE, MARGIN, face_crop
from app.export.formats.packages.shots import ShotSpan, clip_shots
from app.media.decode import Image, read_frame
from app.projects.skeletons import COCO_WHOLEBODY
from tests.export.package_clips import HIDDEN_EVERY, packages_snapshot

FPS = 12


@pytest.fixture
def snapshot(db: Session, tmp_path: Path) -> Path:
    return packages_snapshot(db, tmp_path).folder


def manifest(snapshot: Path, subset: str) -> list[dict[str, Any]]:
    lines = (snapshot / "packages" / subset / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def decoded(path: Path) -> tuple[list[Image], float]:
    """The frames (RGB) of an mp4 and its stream's frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        frames = [cast(Image, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        return frames, float(stream.average_rate or 0)


def test_every_package_has_a_readme_and_one_row_per_shot(snapshot: Path) -> None:
    for subset in ("i2v", "pose", "face_video", "face_audio"):
        rows = manifest(snapshot, subset)
        assert (snapshot / "packages" / subset / "README.md").read_text().startswith("# ")
        assert [r["shot"] for r in rows] == list(range(len(rows))) and len(rows) >= 2
        assert all(r["subset"] == subset and r["fps"] == FPS for r in rows)
        assert rows[0]["start_frame"] == 0
        assert rows[1]["start_frame"] == rows[0]["end_frame"]


def test_i2v_shot_video_first_frame_and_captions(snapshot: Path) -> None:
    for row in manifest(snapshot, "i2v"):
        folder = snapshot / "packages" / "i2v"
        frames, fps = decoded(folder / row["video"])
        assert (len(frames), fps, frames[0].shape) == (row["frames"], FPS, (240, 320, 3))
        first = cv2.cvtColor(cv2.imread(str(folder / row["first_frame"])), cv2.COLOR_BGR2RGB)
        assert first.shape == (240, 320, 3)
        assert np.abs(first.astype(int) - frames[0].astype(int)).mean() < 4  # H.264 vs PNG
        captions = json.loads((folder / row["captions"]).read_text())
        assert captions == row["caption"]
        assert captions["clip"] == {"short": "A figure talks."}
        assert captions["shot"] == {"narrative": f"Shot from frame {row['start_frame']}."}


def test_i2v_first_frame_is_the_clips_frame(db: Session, tmp_path: Path) -> None:
    snapshot, clip, _ = packages_snapshot(db, tmp_path)
    row = manifest(snapshot, "i2v")[1]
    png = cv2.imread(str(snapshot / "packages" / "i2v" / row["first_frame"]))
    source = read_frame(clip.path, row["start_frame"])
    assert np.array_equal(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), source)


def pose_rows(snapshot: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    folder = snapshot / "packages" / "pose"
    for row in manifest(snapshot, "pose"):
        yield row, folder


def test_pose_arrays_hold_only_labelled_points(snapshot: Path) -> None:
    for row, folder in pose_rows(snapshot):
        assert len(row["characters"]) == 1
        character = row["characters"][0]
        points = np.load(folder / character["keypoints"])
        assert points.dtype == np.float32 and points.shape == (row["frames"], 133, 3)
        twin = np.asarray(json.loads((folder / character["keypoints_json"]).read_text()))
        assert np.allclose(twin, points, atol=0.006)
        assert (points[:, ::HIDDEN_EVERY] == 0).all()  # unlabelled in the annotation
        assert set(np.unique(points[..., 2])) <= {0.0, 1.0, 2.0}
        assert (points[points[..., 2] == 0] == 0).all()
        assert (points[..., 2] > 0).sum() > row["frames"] * 50


def test_pose_video_draws_the_skeleton_of_the_arrays(snapshot: Path) -> None:
    for row, folder in pose_rows(snapshot):
        video, _ = decoded(folder / row["video"])
        rendered, fps = decoded(folder / row["pose_video"])
        assert (len(rendered), fps, rendered[0].shape) == (len(video), FPS, video[0].shape)
        points = np.load(folder / row["characters"][0]["keypoints"])
        for t in (0, len(rendered) // 2, len(rendered) - 1):
            grey = rendered[t].max(axis=2)
            labelled = np.flatnonzero(points[t, :, 2] > 0)
            at = np.round(points[t, labelled, :2]).astype(int)
            height, width = grey.shape
            inside = at[(at >= 0).all(axis=1) & (at[:, 0] < width) & (at[:, 1] < height)]
            assert len(inside) > 50
            for x, y in inside[:: max(1, len(inside) // 12)]:  # a dozen joints: lit
                assert grey[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].max() > 100
            near = np.zeros(grey.shape, np.uint8)  # everywhere a joint or edge may be drawn
            for a, b in COCO_WHOLEBODY.edges:
                if points[t, a, 2] > 0 and points[t, b, 2] > 0:
                    ends = points[t, [a, b], :2].round().astype(int).tolist()
                    cv2.line(near, tuple(ends[0]), tuple(ends[1]), (1,), 9)
            for x, y in at:
                cv2.circle(near, (int(x), int(y)), 8, (1,), -1)
            away = grey[near == 0]
            assert away.mean() < 2 and np.percentile(away, 99.9) < 40


def test_face_video_crops_around_the_face_points(snapshot: Path) -> None:
    folder = snapshot / "packages" / "face_video"
    rows = manifest(snapshot, "face_video")
    for row in rows:
        frames, fps = decoded(folder / row["face_video"])
        assert (len(frames), fps, frames[0].shape) == (row["frames"], FPS, (256, 256, 3))
        face = np.load(folder / row["landmarks"])
        assert face.dtype == np.float32 and face.shape == (row["frames"], 68, 3)
        labelled = face[..., 2] > 0
        assert labelled.any(axis=1).all()
        assert (face[labelled][:, :2] >= 0).all() and (face[labelled][:, :2] <= 256).all()
        assert (face[~labelled] == 0).all()
        assert len(row["crop_box"]) == row["frames"]
        sides = {box[2] for box in row["crop_box"]}
        assert len(sides) == 1  # one zoom per shot
        spread = np.ptp(face[labelled][:, :2], axis=0)
        assert spread.max() > 256 / 4  # the face fills a good part of the crop


def test_face_audio_wav_is_16k_mono_and_as_long_as_the_crop_video(snapshot: Path) -> None:
    folder = snapshot / "packages" / "face_audio"
    rows = manifest(snapshot, "face_audio")
    assert rows
    for row in rows:
        frames, fps = decoded(folder / row["face_video"])
        with wave.open(str(folder / row["audio"])) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
            duration = wav.getnframes() / 16000
            samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
        assert abs(duration - len(frames) / fps) <= 1 / fps
        assert np.abs(samples).max() > 1000  # the figure talks
        assert (folder / row["landmarks"]).is_file()
        speech = json.loads((folder / row["speech"]).read_text())
        assert speech == row["speech_segments"]
        assert all(0 <= s["start"] < s["end"] <= row["duration_s"] + 1e-6 for s in speech)


def test_face_audio_speech_starts_where_the_wav_gets_loud(snapshot: Path) -> None:
    """The sample's voice is silent (-80 dBFS) between utterances, so an utterance's start in
    speech.json (shot time) must be where the WAV turns loud: aligned well within a frame."""
    folder = snapshot / "packages" / "face_audio"
    onsets = 0
    for row in manifest(snapshot, "face_audio"):
        with wave.open(str(folder / row["audio"])) as wav:
            loudness = np.abs(np.frombuffer(wav.readframes(wav.getnframes()), "<i2"))
        for segment in row["speech_segments"]:
            if segment["start"] < 0.1:
                continue  # the utterance began in an earlier shot
            at = round(segment["start"] * 16000)
            assert loudness[at - 1600 : at - 320].max() < 100  # 100 ms to 20 ms before
            assert loudness[at + 320 : at + 1600].max() > 1000  # 20 ms to 100 ms after
            onsets += 1
    assert onsets


def test_face_crop_pixels_at_the_landmarks_are_the_sources(snapshot: Path) -> None:
    """The 68 points in crop pixels land on what the source frame shows at the points."""
    face_rows = manifest(snapshot, "face_video")
    pose_rows_ = {row["shot"]: row for row, _ in pose_rows(snapshot)}
    for row in face_rows:
        crops, _ = decoded(snapshot / "packages" / "face_video" / row["face_video"])
        pose = pose_rows_[row["shot"]]
        pose_folder = snapshot / "packages" / "pose"
        frames, _ = decoded(pose_folder / pose["video"])
        source = np.load(pose_folder / pose["characters"][0]["keypoints"])[:, 23:91]
        face = np.load(snapshot / "packages" / "face_video" / row["landmarks"])
        diffs = []
        for t in range(0, row["frames"], 3):
            for k in np.flatnonzero(face[t, :, 2] > 0):
                (cx, cy), (sx, sy) = face[t, k, :2].astype(int), source[t, k, :2].astype(int)
                if 0 <= sx < 320 and 0 <= sy < 240 and cx < 256 and cy < 256:
                    crop_px, source_px = crops[t][cy, cx].astype(int), frames[t][sy, sx]
                    diffs.append(np.abs(crop_px - source_px).mean())
        assert len(diffs) > 100 and np.median(diffs) < 12  # 12 crop px off: about 24


def bundle_with_shots(shots: list[tuple[int, int]], frame_count: int = 10) -> ClipBundle:
    clip = {"frame_count": frame_count, "fps": 12.0}
    return ClipBundle(clip=clip, annotation={}, shots=[
        {"id": n + 1, "start_frame": s, "end_frame": e} for n, (s, e) in enumerate(shots)
    ])  # fmt: skip


def test_a_clip_without_shots_is_one_shot_and_shots_are_cut_to_the_clip() -> None:
    assert clip_shots(bundle_with_shots([])) == [ShotSpan(0, 0, 10, None)]
    assert clip_shots(bundle_with_shots([(0, 4), (4, 14), (14, 20)])) == [
        ShotSpan(0, 0, 4, 1), ShotSpan(1, 4, 10, 2)
    ]  # fmt: skip
    assert clip_shots(bundle_with_shots([], frame_count=0)) == []


def test_face_crop_follows_a_moving_face_smoothly_and_keeps_every_point_inside() -> None:
    frames = 20
    grid = np.stack(np.meshgrid(np.linspace(-20, 20, 17), np.linspace(-20, 20, 4)), -1)
    face = np.zeros((frames, 68, 3), np.float32)
    for t in range(frames):
        face[t, :, :2] = grid.reshape(-1, 2) + np.array([100 + 6 * t, 80 + (8 if t % 2 else 0)])
        face[t, :, 2] = 2
    face[5] = 0  # a frame without a face takes its neighbours' centre
    crop = face_crop(face)
    assert crop is not None
    assert crop.side >= MARGIN * 40
    assert np.abs(np.diff(crop.centres[:, 1])).max() < 8 / 2  # the jitter is smoothed
    assert abs(crop.centres[5, 0] - (100 + 6 * 5)) < 1
    inside = crop.points(face)
    labelled = face[..., 2] > 0
    assert (inside[labelled][:, :2] >= 0).all() and (inside[labelled][:, :2] <= CROP_SIZE).all()
    assert (inside[5] == 0).all()
    assert face_crop(np.zeros((3, 68, 3), np.float32)) is None
