"""Training-package throughput: the four package writers on one generated clip.

    .venv/bin/python bench/packages.py [--width 640] [--seconds 10] [--fps 24]

Renders one talking humanoid sample clip (two shots, all four subsets) into a scratch
MEDIA_ROOT, gives it to each package writer as a ClipBundle whose points are the sample's
truth (no database: this measures decoding, drawing, cropping and encoding), and reports each
writer's wall time, source frames per second and the process's peak RSS. Writes the
``## Training packages`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.annotations.points import encode_points  # noqa: E402
from app.export.formats.bundle import (  # noqa: E402
    CharacterData,
    ClipBundle,
    FrameData,
    SnapshotContext,
    TrackData,
)
from app.export.formats.registry import WRITERS  # noqa: E402
from app.samples.generator import make_clip  # noqa: E402
from bench._report import write_section  # noqa: E402
from tests.factories import local_media  # noqa: E402

PACKAGES = ("i2v_package", "pose_package", "face_video_package", "face_audio_package")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MEDIA_ROOT"] = str(Path(tmp) / "media")
        rows = run(Path(tmp), args.width, args.seconds, args.fps)
    frames = rows[0][2]
    body = (
        f"One generated clip, {args.width} px wide, {args.seconds:g} s at {args.fps} fps "
        f"({frames} frames, two shots, a talking humanoid), written by each package writer "
        "from a ClipBundle (no database). Wall time includes decoding the clip's file once per "
        "package.\n\n| package | wall s | source frames/s |\n|---|---:|---:|\n"
        + "".join(f"| {name} | {wall:.2f} | {frames / wall:.0f} |\n" for name, wall, _ in rows)
        + f"\nPeak RSS of the process (rendering the sample clip included): {peak_mb():.0f} MB. "
        "Measured while other work shared the 2 cores.\n"
    )
    write_section(
        "Training packages", body, shlex.join(["python", "bench/packages.py", *sys.argv[1:]])
    )
    print(body)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(tmp: Path, width: int, seconds: float, fps: int) -> list[tuple[str, float, int]]:
    sample = make_clip(tmp / "samples", "bench", seed=11, width=width, fps=fps,
                       seconds=seconds, aspect=16 / 9, kinds=["humanoid"], talking=True,
                       shots=2, subsets=["i2v", "pose", "face_video", "face_audio"])  # fmt: skip
    truth = sample.truth
    target = local_media().path("clips/bench/source.mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(sample.path.read_bytes())
    tracks = []
    for n, character in enumerate(truth["characters"]):
        if character["template"] != "coco_wholebody" or not character["keypoints"]:
            continue
        frames = []
        for f, points in enumerate(character["keypoints"]):
            pose = np.zeros((133, 4), np.float32)
            pose[:, :3] = np.asarray(points, np.float32)
            pose[:, 3] = 1.0
            frames.append(FrameData(id=f, frame_index=f, points=encode_points(pose),
                                    model_points=None, is_keyframe=True, part_valid=0,
                                    flags=[], version=1, updated_by=None))  # fmt: skip
        track = TrackData(id=n, num_points=133, source="human", status="approved", version=1,
                          updated_by=None, frames=frames)  # fmt: skip
        tracks.append(CharacterData(id=n, name=f"figure {n}", kind="humanoid",
                                    skeleton="coco_wholebody", reference_frame=None, emotions=[],
                                    source="human", status="approved", version=1,
                                    updated_by=None, tracks=[track]))  # fmt: skip
    clip = {"id": 1, "external_id": None, "content_hash": "b" * 64,
            "storage_key": "clips/bench/source.mp4", "fps": truth["fps"],
            "frame_count": truth["frame_count"], "width": truth["width"],
            "height": truth["height"], "subsets": truth["subsets"]}  # fmt: skip
    bundle = ClipBundle(
        clip=clip, annotation={"id": 1, "version": 1},
        shots=[{"id": i + 1, "start_frame": s, "end_frame": e}
               for i, (s, e) in enumerate(truth["shots"])],
        characters=tracks,
        speech=[{"start_s": s, "end_s": e, "transcript": ""} for s, e in truth["speech"]],
    )  # fmt: skip
    ctx = SnapshotContext(name="bench", project={"name": "bench"}, created_at="", formats=())
    rows = []
    for name in PACKAGES:
        start = time.perf_counter()
        writer = WRITERS[name](tmp / "out", ctx)
        writer.add(bundle)
        writer.close()
        rows.append((name, time.perf_counter() - start, int(truth["frame_count"])))
    return rows


if __name__ == "__main__":
    main()
