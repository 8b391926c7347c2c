"""Face point jitter before and after the One Euro smoothing, on generated face clips.

Each clip goes through the keypoints extraction as the pipeline runs it (Holistic with the
FaceMesh fallback, once per drawing, shots from the truth); its face points are compared with
the generator's truth before and after app.pipeline.smoothing.smooth_faces. Jitter is the mean
frame-to-frame residual of a point's motion against the truth point's own motion (px), over
consecutive frames of a shot where both see the point; "at rest" keeps the pairs where the
truth point moved less than half a pixel. Error is the distance to the truth point in % of
the face box's long side.

    .venv/bin/python bench/face_smoothing.py [--per-timing 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402

TITLE = "Face point smoothing"
TIMINGS = ("ones", "twos", "threes")
AT_REST_PX = 0.5


def face_measures(truth: dict[str, Any], frames: list[Any]) -> dict[str, list[float]]:
    """Residuals (all, at rest) and errors of the model's face points against the truth."""
    from app.pipeline.smoothing import FACE_POINTS

    [person] = [c for c in truth["characters"] if c["kind"] == "humanoid"]
    cuts = {start for start, _ in truth["shots"]}
    out: dict[str, list[float]] = {"jitter": [], "rest": [], "error": []}
    previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    for f in frames:
        gt = np.array(person["keypoints"][f.frame_index], np.float32)[FACE_POINTS]
        seen = (f.pose[FACE_POINTS, 2] > 0) & (gt[:, 2] == 2)
        model = f.pose[FACE_POINTS, :2]
        if (box := person["face_boxes"][f.frame_index]) is not None:
            distance = np.linalg.norm(model[seen] - gt[seen, :2], axis=1)
            out["error"] += list(100 * distance / max(box[2], box[3]))
        if previous is not None and f.frame_index not in cuts:
            both = seen & previous[2]
            truth_motion = gt[:, :2] - previous[1]
            residual = np.linalg.norm((model - previous[0]) - truth_motion, axis=1)
            out["jitter"] += list(residual[both])
            still = both & (np.linalg.norm(truth_motion, axis=1) < AT_REST_PX)
            out["rest"] += list(residual[still])
        previous = (model, gt[:, :2], seen)
    return out


def run(per_timing: int, seed: int) -> dict[str, dict[str, dict[str, list[float]]]]:
    from app.media.decode import iter_frames
    from app.media.drawing_match import DrawingFollower
    from app.pipeline.keypoints import extract_keypoints
    from app.pipeline.smoothing import smooth_faces
    from app.samples.generator import make_clip

    rng = np.random.default_rng(seed)
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for timing in TIMINGS:
            group = results.setdefault(timing, {"raw": {}, "smoothed": {}})
            for i in range(per_timing):
                clip = make_clip(
                    tmp, f"{timing}_{i}", seed=seed * 1000 + 10 * i + len(results),
                    width=int(rng.choice([384, 480])), fps=24, seconds=4.0, shots=1 + i % 2,
                    subsets=("face_video", "i2v"), kinds=("humanoid",), timing=timing,
                )  # fmt: skip
                cuts = [start for start, _ in clip.truth["shots"]]
                raw = extract_keypoints(
                    iter_frames(clip.path),
                    follower=DrawingFollower(),
                    cuts=cuts,
                    held_runs=clip.truth["held_runs"],
                    face_fallback=True,
                )
                smooth = smooth_faces(raw, clip.truth["fps"], cuts)
                for name, extraction in (("raw", raw), ("smoothed", smooth)):
                    for key, values in face_measures(clip.truth, extraction.frames).items():
                        group[name].setdefault(key, []).extend(values)
    return results


def render(results: dict[str, dict[str, dict[str, list[float]]]]) -> str:
    lines = [
        f"Generated face clips (close-ups and medium shots, 4 s at 24 fps, 1-2 shots), "
        f"load average {os.getloadavg()[0]:.1f} at the end. Jitter in px (mean frame-to-frame "
        "residual against the truth's motion; at rest: truth moved < 0.5 px), error in % of "
        "the face box (median / 95th percentile). One sample per drawing, zero-phase One Euro "
        "(app.pipeline.smoothing.FACE_FILTER), each shot on its own.",
        "",
        "| timing | face points | jitter raw | jitter smoothed | at rest raw | "
        "at rest smoothed | error raw | error smoothed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    everything: dict[str, dict[str, list[float]]] = {"raw": {}, "smoothed": {}}
    for timing, group in [*results.items(), ("all", everything)]:
        if timing != "all":
            for name in group:
                for key, values in group[name].items():
                    everything[name].setdefault(key, []).extend(values)
        raw, smooth = group["raw"], group["smoothed"]
        if not raw.get("error"):
            continue

        def err(m: dict[str, list[float]]) -> str:
            return f"{np.median(m['error']):.2f} / {np.percentile(m['error'], 95):.1f}"

        def mean(values: list[float]) -> str:
            return f"{np.mean(values):.2f}" if values else "-"

        lines.append(
            f"| {timing} | {len(raw['error'])} | {mean(raw['jitter'])} | "
            f"{mean(smooth['jitter'])} | {mean(raw['rest'])} | {mean(smooth['rest'])} | "
            f"{err(raw)} | {err(smooth)} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-timing", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    command = (
        f".venv/bin/python bench/face_smoothing.py --per-timing {args.per_timing} "
        f"--seed {args.seed}"
    )
    text = render(run(args.per_timing, args.seed))
    print(text)
    write_section(TITLE, text, command)


if __name__ == "__main__":
    main()
