"""The demo set, the bad files and the ``samples make`` command."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import pytest
from typer.testing import CliRunner

from app.samples.badfiles import make_bad_files
from app.samples.cli import samples_app
from app.samples.generator import make_samples
from app.samples.truth import KINDS, SUBSETS


def test_four_samples_cover_every_subset_and_kind(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    clips = make_samples(tmp_path, 4, seed=1, progress=lambda i, n, _: seen.append((i, n)))
    assert seen[-1] == (4, 4) and len(seen) == 5
    assert {s for c in clips for s in c.truth["subsets"]} == set(SUBSETS)
    assert {ch["kind"] for c in clips for ch in c.truth["characters"]} == set(KINDS)
    for c in clips:
        assert c.path.exists() and c.truth_path.exists() and c.truth["width"] <= 640
        if "face_audio" in c.truth["subsets"]:
            assert c.truth["has_audio"] and c.truth["speech"]
        if "pose" in c.truth["subsets"]:
            assert any(ch["template"] == "coco_wholebody" for ch in c.truth["characters"])


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bad")
    make_bad_files(out)
    return out


def test_expected_json_lists_every_bad_file(bad_dir: Path) -> None:
    expected = json.loads((bad_dir / "expected.json").read_text())
    assert set(expected.values()) == {
        "empty",
        "truncated",
        "not_a_video",
        "no_video_stream",
        "too_few_frames",
        "too_large",
    }
    assert all((bad_dir / name).exists() for name in expected)
    assert (bad_dir / "empty.mp4").stat().st_size == 0


@pytest.mark.parametrize("kind", ["empty", "truncated", "not_a_video"])
def test_unreadable_files_fail_to_open(bad_dir: Path, kind: str) -> None:
    name = next(
        k for k, v in json.loads((bad_dir / "expected.json").read_text()).items() if v == kind
    )
    with pytest.raises(av.FFmpegError):
        av.open(str(bad_dir / name)).close()
    cap = cv2.VideoCapture(str(bad_dir / name))
    assert not cap.isOpened() or not cap.read()[0]
    cap.release()


def test_audio_only_has_no_video(bad_dir: Path) -> None:
    with av.open(str(bad_dir / "audio_only.m4a")) as c:
        assert not c.streams.video and c.streams.audio[0].codec_context.name == "aac"


def test_single_frame(bad_dir: Path) -> None:
    with av.open(str(bad_dir / "single_frame.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 1


def test_too_large_declares_an_absurd_size_and_decodes_nothing(bad_dir: Path) -> None:
    with av.open(str(bad_dir / "too_large.y4m")) as c:
        v = c.streams.video[0]
        assert v.width * v.height >= 200_000_000
        assert sum(1 for _ in c.decode(video=0)) == 0


def test_cli_make_writes_clips_and_bad_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(samples_app, ["make", str(tmp_path), "--count", "1", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sample_00.mp4").exists() and (tmp_path / "sample_00.json").exists()
    assert (tmp_path / "bad" / "expected.json").exists()
    assert "sample_00.mp4" in result.output
    nobad = tmp_path / "nobad"
    result = CliRunner().invoke(samples_app, ["make", str(nobad), "--count", "1", "--no-bad"])
    assert result.exit_code == 0 and not (nobad / "bad").exists()
