"""How often MediaPipe Holistic finds cartoon characters, per character kind.

Runs ``mediapipe.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1)`` over
every frame of a seeded sample set and compares with the ground truth:

* a pose / face / hand detection is credited to a character when the centre of its landmarks
  falls inside that character's truth box (face: its face box, widened by half);
* for humanoids, the share of found poses whose nose and hip midpoint both fall inside a
  humanoid's truth box says whether the skeleton landed on the person, not just near it.

Writes its table into the "Sample clips" section of BENCHMARKS.md.

    .venv/bin/python bench/mediapipe_domain_gap.py [--count 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.samples.generator import SampleClip, make_samples
from app.samples.truth import KINDS

SECTION = "## Sample clips: MediaPipe Holistic detection by character kind"
Box = list[float]


def _inside(pt: tuple[float, float], box: Box | None, grow: float = 0.0) -> bool:
    if box is None:
        return False
    x, y, w, h = box
    return x - grow * w <= pt[0] <= x + w * (1 + grow) and y - grow * h <= pt[1] <= y + h * (
        1 + grow
    )


def _centre(landmarks: object, w: int, h: int) -> tuple[float, float] | None:
    if landmarks is None:
        return None
    pts = np.array([(p.x * w, p.y * h) for p in landmarks.landmark])  # type: ignore[attr-defined]
    return float(pts[:, 0].mean()), float(pts[:, 1].mean())


def run(clips: list[SampleClip]) -> tuple[dict[str, dict[str, int]], dict[str, int], float, int]:
    import mediapipe as mp

    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    humanoid = {"poses": 0, "on_person": 0, "no_human_frames": 0, "no_human_poses": 0}
    frames_total, t0 = 0, time.perf_counter()
    for clip in clips:
        truth = clip.truth
        w, h = truth["width"], truth["height"]
        chars = truth["characters"]
        with (
            mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1) as model,
            mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh,
            av.open(str(clip.path)) as container,
        ):
            for i, frame in enumerate(container.decode(video=0)):
                frames_total += 1
                rgb = frame.to_ndarray(format="rgb24")
                res = model.process(rgb)
                pose_c = _centre(res.pose_landmarks, w, h)
                face_c = _centre(res.face_landmarks, w, h)
                # What the keypoints step does on face clips: FaceMesh where Holistic has none.
                found = mesh.process(rgb).multi_face_landmarks if face_c is None else None
                either_c = face_c if found is None else _centre(found[0], w, h)
                hand_cs = [
                    c
                    for c in (
                        _centre(res.left_hand_landmarks, w, h),
                        _centre(res.right_hand_landmarks, w, h),
                    )
                    if c is not None
                ]
                for ch in chars:
                    box = ch["boxes"][i]
                    if box is None:
                        continue
                    k = counts[ch["kind"]]
                    k["frames"] += 1
                    k["pose"] += pose_c is not None and _inside(pose_c, box)
                    k["face"] += face_c is not None and _inside(face_c, ch["face_boxes"][i], 0.5)
                    k["face_or_mesh"] += either_c is not None and _inside(
                        either_c, ch["face_boxes"][i], 0.5
                    )
                    k["hands"] += any(_inside(c, box) for c in hand_cs)
                humans = [c for c in chars if c["kind"] == "humanoid" and c["boxes"][i] is not None]
                if not humans:
                    humanoid["no_human_frames"] += 1
                    humanoid["no_human_poses"] += res.pose_landmarks is not None
                elif res.pose_landmarks is not None:
                    lm = res.pose_landmarks.landmark
                    nose = (lm[0].x * w, lm[0].y * h)
                    hips = ((lm[23].x + lm[24].x) / 2 * w, (lm[23].y + lm[24].y) / 2 * h)
                    humanoid["poses"] += 1
                    humanoid["on_person"] += any(
                        _inside(nose, c["boxes"][i]) and _inside(hips, c["boxes"][i])
                        for c in humans
                    )
    return counts, humanoid, time.perf_counter() - t0, frames_total


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "n/a"


def render(
    counts: dict[str, dict[str, int]],
    humanoid: dict[str, int],
    seconds: float,
    frames: int,
    count: int,
    seed: int,
) -> str:
    lines = [
        SECTION,
        "",
        "Command: `.venv/bin/python bench/mediapipe_domain_gap.py "
        f"--count {count} --seed {seed}`  ",
        f"Date: {dt.date.today().isoformat()}  ",
        f"Machine: {platform.machine()} Linux, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, MediaPipe Holistic model_complexity=1, "
        "static_image_mode=False (one tracker per clip)  ",
        f"Frames: {frames} in {seconds:.0f} s ({frames / seconds:.1f} frames/s)",
        "",
        "A detection counts for a character when the centre of its landmarks lies inside the "
        "character's truth box (faces: the face box widened by half). Frames = character-"
        "frames in which the character is at least partly in view; Holistic tracks one person, "
        "so in a frame with two humanoids at most one of them can be found. The FaceMesh "
        "column is what the keypoints step gets on clips of the face subsets, where FaceMesh "
        "looks for a face in every frame Holistic has none (elsewhere it runs Holistic alone).",
        "",
        "| kind | frames | pose found | face found | face, FaceMesh where Holistic has none "
        "| hand(s) found |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        k = counts.get(kind, {})
        n = k.get("frames", 0)
        lines.append(
            f"| {kind} | {n} | {_pct(k.get('pose', 0), n)} | {_pct(k.get('face', 0), n)} | "
            f"{_pct(k.get('face_or_mesh', 0), n)} | {_pct(k.get('hands', 0), n)} |"
        )
    lines += [
        "",
        f"Humanoid frames with a pose: {humanoid['poses']}; of those, nose and hip midpoint both "
        f"inside a humanoid's truth box: {_pct(humanoid['on_person'], humanoid['poses'])}.  ",
        f"Frames with no humanoid in view: {humanoid['no_human_frames']}; MediaPipe still "
        f"reported a pose in {_pct(humanoid['no_human_poses'], humanoid['no_human_frames'])}.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(re.escape(SECTION) + r".*?(?=^## |\Z)", re.S | re.M)
    new = (
        pattern.sub(lambda _: text + "\n", old)
        if pattern.search(old)
        else old.rstrip() + "\n\n" + text
    )
    path.write_text(new.rstrip() + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_samples(tmp, args.count, args.seed)
        counts, humanoid, seconds, frames = run(clips)
    text = render(counts, humanoid, seconds, frames, args.count, args.seed)
    print(text)
    write_section(args.out, text)


if __name__ == "__main__":
    main()
