"""Point tracking from a keyframe (app.media.pointtrack): speed and error against the truth.

    .venv/bin/python bench/tracking.py [--runs 30] [--seeds 0-11] [--width 640]

Speed: 24 frames x 133 COCO-WholeBody points of a 640x360 generated clip, read from the
frame cache (``app.media.framecache``, what the server reads) and tracked; median and 95th
percentile of each part over ``--runs`` runs, wall and CPU time.

Error: generated clips of every character kind (``--width``, 16:9, 24 fps); from the first
frame of each shot forward and from its last frame backward, up to 24 frames, the truth points
visible on the keyframe are tracked and compared with the truth. Humanoids and animals have
keypoints in the truth. The creature has none, but its marks follow from its box (see
``_blob_truth``); the lamp has neither, so only how many of its body-coloured points are kept
is measured. Writes the ``## Point tracking`` section of BENCHMARKS.md (``## Point tracking at
W px wide`` for another width); what the section needs lives in functions other benchmarks
can reuse.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.media.decode import Image, iter_frames  # noqa: E402
from app.media.framecache import build_frame_cache, open_frame_cache  # noqa: E402
from app.media.pointtrack import TrackedPoints, track_points  # noqa: E402
from app.samples.generator import SampleClip, make_clip  # noqa: E402
from app.samples.truth import KINDS, Kind  # noqa: E402
from bench._report import percentiles, seeds_of, write_section  # noqa: E402

SPAN = 24  # frames tracked from a keyframe
STOP_BINS = (0, 4, 16, 32, np.inf)  # px the truth moved on the step where a point stopped
LAMP_COLOUR = 30  # how close a pixel's colour is to the lamp's body colour to be on it


@dataclass(frozen=True)
class Case:
    """One tracking request with its truth: points of one character from one keyframe."""

    clip: str
    kind: Kind
    direction: str  # "forward" or "backward"
    frames: list[Image]  # tracking order, keyframe first
    truth: np.ndarray  # (F, K, 2) pixels, tracking order
    visible: np.ndarray  # (F, K) the truth point is drawn and seen on that frame
    boxes: np.ndarray  # (F, 4) the character's truth box [x, y, w, h]
    tolerance: float  # px: a point farther than this from the truth is wrong


@dataclass
class Score:
    """Tracked points of many cases against the truth."""

    errors: list[float] = field(default_factory=list)  # % of the box diagonal, measured points
    wrong: int = 0  # measured points farther than the tolerance from the truth
    measured: int = 0  # ok points whose truth is known
    ok: int = 0
    visible: int = 0  # truth-visible points on non-key frames whose keyframe point was tracked
    stops: list[float] = field(default_factory=list)  # truth motion (px) of each point's last step
    confidence: list[float] = field(default_factory=list)  # of each measured point
    off: list[bool] = field(default_factory=list)  # the measured point is wrong

    def add(self, case: Case, result: TrackedPoints) -> None:
        seen = case.visible[1:] & case.visible[0][None, :]
        ok = result.ok[1:] & seen
        measured = ok & np.isfinite(case.truth[1:, :, 0])
        off = np.linalg.norm(result.xy[1:] - case.truth[1:], axis=2)
        diagonal = np.hypot(case.boxes[1:, 2], case.boxes[1:, 3])[:, None]
        self.errors += list((100 * off / diagonal)[measured])
        self.wrong += int((measured & (off > case.tolerance)).sum())
        self.confidence += list(result.confidence[1:][measured])
        self.off += list((off > case.tolerance)[measured])
        self.measured += int(measured.sum())
        self.ok += int(ok.sum())
        self.visible += int(seen.sum())
        stopped = result.ok[:-1] & ~result.ok[1:] & case.visible[1:] & case.visible[:-1]
        frame, point = np.nonzero(stopped)
        motion = case.truth[frame + 1, point] - case.truth[frame, point]
        self.stops += list(np.hypot(motion[:, 0], motion[:, 1])[np.isfinite(motion[:, 0])])

    def above(self, threshold: float) -> str:
        """Table cells: the measured points at or above a confidence, and how many are wrong."""
        confidence, off = np.asarray(self.confidence), np.asarray(self.off, bool)
        sure = confidence >= threshold
        return (
            f"{100 * sure.mean():.1f} % ({100 * off[sure].mean():.2f} % wrong, "
            f"{100 * (off & ~sure).sum() / max(off.sum(), 1):.0f} % of the wrong ones below)"
        )

    def stop_shares(self) -> str:
        """How far the truth moved on the steps where points stopped, as table cells."""
        counts, _ = np.histogram(self.stops, STOP_BINS)
        return " | ".join(f"{100 * n / max(len(self.stops), 1):.0f} %" for n in counts)


def _blob_truth(
    character: dict[str, Any], frames: list[int], width: int, height: int
) -> np.ndarray:
    """The creature is an ellipse whose box is its outline (critters.Blob), so the marks a
    person would label on it (eyes, mouth, highlight) and its centre follow from the box on
    every frame. The ends of its axes do not: under squash and stretch they are no mark on
    the drawing but whichever outline pixel is outermost."""
    unit = np.float32([[0, 0], [-0.3, -0.15], [0.3, -0.15], [0, 0.33], [-0.35, -0.45]])
    out = np.full((len(frames), len(unit), 2), np.nan, np.float32)
    for i, f in enumerate(frames):
        x, y, w, h = character["boxes"][f]
        if x > 0 and y > 0 and x + w < width and y + h < height:  # not clipped by the frame
            out[i] = unit * [w / 2 - 1, h / 2 - 1] + [x + w / 2, y + h / 2]
    return out


def _lamp_points(character: dict[str, Any], key: Image, frames: list[int]) -> np.ndarray:
    """Body-coloured pixels of the lamp on the keyframe; the truth has no points for it, so
    later frames are unknown (NaN): only whether they are kept is measured."""
    x, y, w, h = character["boxes"][frames[0]]
    colour = np.array([int(character["colours"]["body"][i : i + 2], 16) for i in (1, 3, 5)])
    grid = np.stack(
        np.meshgrid(np.linspace(x, x + w, 12), np.linspace(y, y + h, 12)), axis=-1
    ).reshape(-1, 2)[:, ::-1]
    inside = np.clip(grid.astype(int), 0, [key.shape[0] - 1, key.shape[1] - 1])
    body = grid[
        np.abs(key[inside[:, 0], inside[:, 1]].astype(int) - colour).max(axis=1) <= LAMP_COLOUR
    ]
    out = np.full((len(frames), len(body), 2), np.nan, np.float32)
    out[0] = body[:, ::-1]
    return out


def _case(
    clip: SampleClip,
    images: list[Image],
    character: dict[str, Any],
    frames: list[int],
    direction: str,
) -> Case | None:
    truth = clip.truth
    if any(character["boxes"][f] is None for f in frames):
        return None
    if character["keypoints"] is not None:
        points = np.asarray([character["keypoints"][f] for f in frames], np.float32)
        xy, visible = points[..., :2], points[..., 2] == 2
    elif character["kind"] == "creature":
        xy = _blob_truth(character, frames, truth["width"], truth["height"])
        visible = np.ones(xy.shape[:2], bool)
    else:
        xy = _lamp_points(character, images[frames[0]], frames)
        visible = np.ones(xy.shape[:2], bool)
    inside = np.isnan(xy[..., 0]) | (
        (xy[..., 0] >= 0)
        & (xy[..., 1] >= 0)
        & (xy[..., 0] < truth["width"])
        & (xy[..., 1] < truth["height"])
    )
    if not (visible & inside)[0].any():
        return None
    return Case(
        clip.name,
        character["kind"],
        direction,
        [images[f] for f in frames],
        xy,
        visible & inside,
        np.asarray([character["boxes"][f] for f in frames], np.float32),
        max(3.0, 0.01 * float(np.hypot(truth["width"], truth["height"]))),
    )


def cases_of(clip: SampleClip, span: int = SPAN) -> Iterator[Case]:
    """Forward from each shot's first frame and backward from its last, every character."""
    images = list(iter_frames(clip.path))
    for start, end in clip.truth["shots"]:
        if end - start < 3:
            continue
        forward = list(range(start, min(end, start + span)))
        backward = list(range(end - 1, max(start, end - span) - 1, -1))
        for character in clip.truth["characters"]:
            for direction, frames in (("forward", forward), ("backward", backward)):
                case = _case(clip, images, character, frames, direction)
                if case is not None:
                    yield case


def track(case: Case) -> TrackedPoints:
    """Track a case's keyframe points that are visible and inside the picture."""
    return track_points(case.frames, case.truth[0], case.visible[0])


def sample_clips(folder: Path, seeds: list[int], width: int = 640) -> Iterator[SampleClip]:
    """One clip per seed and character kind, 640x360 at 24 fps, 1-2 shots."""
    for seed in seeds:
        for kind in KINDS:
            yield make_clip(
                folder,
                f"{kind}-{seed}",
                seed=seed,
                width=width,
                aspect=16 / 9,
                fps=24,
                seconds=2.5,
                kinds=[kind],
                shots=1 + seed % 2,
                subsets=["pose"] if kind == "humanoid" else ["i2v"],
            )


def accuracy(folder: Path, seeds: list[int], width: int = 640) -> dict[str, Score]:
    scores: dict[str, Score] = defaultdict(Score)
    for clip in sample_clips(folder, seeds, width):
        for case in cases_of(clip):
            scores[case.kind].add(case, track(case))
    return scores


@dataclass
class Timings:
    """Wall and process CPU milliseconds of each named part, over several runs. CPU time
    is what the part costs on an idle machine (one thread); wall time is what it took here."""

    wall: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    load: str = ""  # load average (1, 5, 15 min) when the runs ended

    def add(self, part: str, wall_s: float, cpu_s: float) -> None:
        self.wall[part].append(1000 * wall_s)
        self.cpu[part].append(1000 * cpu_s)

    def rows(self) -> str:
        out = []
        for part, wall in self.wall.items():
            w, c = percentiles(wall), percentiles(self.cpu[part])
            out.append(
                f"| {part} | {w['p50']:.1f} ms | {w['p95']:.1f} ms "
                f"| {c['p50']:.1f} ms | {c['p95']:.1f} ms |"
            )
        return "\n".join(out)


def speed(folder: Path, runs: int) -> Timings:
    """Read 24 cached frames and track 133 points through them, ``runs`` times."""
    clip = make_clip(
        folder,
        "speed",
        seed=7,
        width=640,
        aspect=16 / 9,
        fps=24,
        seconds=1.2,
        kinds=["humanoid"],
        shots=1,
        timing="ones",
        subsets=["pose"],
    )
    cache = open_frame_cache(build_frame_cache(clip.path, folder / "speed-frames").directory)
    start = np.asarray(clip.truth["characters"][0]["keypoints"][0], np.float32)
    timings = Timings()
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        frames = [cache.image(n) for n in range(SPAN)]
        wall_read, cpu_read = time.perf_counter(), time.process_time()
        track_points(frames, start[:, :2], np.ones(len(start), bool))
        wall_end, cpu_end = time.perf_counter(), time.process_time()
        timings.add("read 24 frames from the frame cache", wall_read - wall, cpu_read - cpu)
        timings.add("track_points", wall_end - wall_read, cpu_end - cpu_read)
        timings.add("both", wall_end - wall, cpu_end - cpu)
    timings.load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return timings


def report(scores: dict[str, Score], timings: Timings, runs: int, width: int, seeds: int) -> str:
    stop_rows = [
        f"| {kind} | {len(scores[kind].stops)} | {scores[kind].stop_shares()} |"
        for kind in KINDS
        if kind in scores and scores[kind].measured
    ]
    confidence_rows = [
        f"| {kind} | " + " | ".join(scores[kind].above(t) for t in (0.5, 0.6, 0.7)) + " |"
        for kind in KINDS
        if kind in scores and scores[kind].measured
    ]
    rows = []
    for kind in KINDS:
        score = scores.get(kind)
        if score is None or not score.visible:
            continue
        kept = f"{100 * score.ok / score.visible:.1f} %"
        if score.measured:
            median, p95 = np.percentile(score.errors, [50, 95])
            wrong = f"{score.wrong} ({100 * score.wrong / score.measured:.2f} %)"
            rows.append(
                f"| {kind} | {score.visible} | {kept} | {median:.2f} % | {p95:.2f} % | {wrong} |"
            )
        else:
            rows.append(f"| {kind} | {score.visible} | {kept} | no truth | no truth | no truth |")
    speed_table = f"""
Speed, 24 frames x 133 points at 640x360, {runs} runs; load average {timings.load} (1/5/15 min) on
a machine shared with other work, so wall time depends on that load; CPU time is the
process's over all threads (OpenCV's flow uses both cores, so it can exceed wall time).

| part | wall median | wall p95 | CPU median | CPU p95 |
|---|---|---|---|---|
{timings.rows()}
"""
    return f"""{speed_table if runs else ""}
Error against the truth on {width}x{width * 9 // 16} clips at 24 fps (4 kinds x {seeds} seeds),
tracking up to {SPAN} frames forward from each shot's first frame and backward from its last.
*Visible*: truth points seen on a tracked frame whose keyframe point was given; *kept*: the
share of them the tracker still reports ok; error of the kept points in % of the character's
box diagonal; *wrong*: kept points farther than the labelling benchmark's
tolerance (max(3 px, 1 % of the frame diagonal)) from the truth.

| kind | visible | kept | median error | p95 error | wrong |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Confidence: the measured points at or above a confidence (the rest would be shown faded),
how many of those are wrong, and what share of all wrong points falls below:

| kind | >= 0.5 | >= 0.6 | >= 0.7 |
|---|---|---|---|
{chr(10).join(confidence_rows)}

Where points stop: how far the truth point moved on the step where the tracker stopped it
(the drawing changed that much between two frames; a point that stops while moving less
than 4 px lost its surroundings: a limb passing over, a turn, a flat fill).

| kind | stops | < 4 px | 4-16 px | 16-32 px | >= 32 px |
|---|---|---|---|---|---|
{chr(10).join(stop_rows)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="of the speed part (0: none)")
    parser.add_argument("--seeds", default="0-11")
    parser.add_argument("--width", type=int, default=640, help="of the clips the error is on")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    parser.add_argument(
        "--no-request", action="store_true", help="skip the whole request (needs PostgreSQL)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        timings = speed(Path(tmp), args.runs)
        if args.runs and not args.no_request:
            from bench.tracking_service import request_speed

            request_speed(timings, args.runs, SPAN)
        scores = accuracy(Path(tmp), seeds_of(args.seeds), args.width)
    body = report(scores, timings, args.runs, args.width, len(seeds_of(args.seeds)))
    if not args.no_write:
        command = shlex.join([".venv/bin/python", "bench/tracking.py", *sys.argv[1:]])
        title = "Point tracking" if args.width == 640 else f"Point tracking at {args.width} px wide"
        write_section(title, body, command)
    print(body)


if __name__ == "__main__":
    main()
