"""Seeded cartoon clips with exact ground truth: ``make_clip``, ``make_samples``.

A clip is 1-3 hard-cut shots. Each shot has its own painted set and camera move; drawings are
held for 1, 2 or 3 frames (on ones / twos / threes) and the camera is evaluated once per
drawing, so held frames are pixel-identical before encoding. ``held_runs`` are measured on the
rendered pixels, not assumed, so they are exact even when a motion happens to pause.
Camera ``pan_left`` means the view travels left over the set (the scenery slides right).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from app.samples.audio import SpeechPlan, plan_speech, synthesise
from app.samples.canvas import Canvas, Colour, hex_colour
from app.samples.critters import ANIMAL_MOTIONS, Animal, Blob, Lamp
from app.samples.encoder import ClipWriter
from app.samples.figure import Character
from app.samples.humanoid import Humanoid, Look
from app.samples.scene import TimeOfDay, Venue, make_background, rgb
from app.samples.sliding import (
    CAMERA_OF_MOTION,
    GLIDE,
    DrawingMotion,
    DrawingRecorder,
    camera_at,
    glide_camera,
    landmarks,
)
from app.samples.truth import (
    CAMERA_MOTIONS,
    MIKELS_EMOTIONS,
    SUBSETS,
    TIMINGS,
    CameraMotion,
    CameraTruth,
    CharacterTruth,
    ClipTruth,
    Emotion,
    EmotionSpan,
    Kind,
    Subset,
    Timing,
)

FPS_CHOICES = (12, 24, 30)
ASPECTS = (16 / 9, 4 / 3, 1.0)
SKINS = (
    rgb(255, 219, 190),
    rgb(241, 194, 160),
    rgb(224, 172, 130),
    rgb(198, 134, 96),
    rgb(141, 85, 54),
    rgb(250, 206, 180),
)
HAIRS = (rgb(40, 28, 22), rgb(96, 60, 34), rgb(200, 160, 90), rgb(20, 20, 26), rgb(170, 70, 40))
CLOTHES = (
    rgb(214, 60, 60),
    rgb(60, 120, 210),
    rgb(70, 170, 110),
    rgb(240, 190, 60),
    rgb(150, 90, 190),
    rgb(240, 140, 60),
    rgb(80, 80, 90),
    rgb(240, 240, 236),
)
PANTS = (rgb(50, 70, 140), rgb(70, 60, 50), rgb(40, 40, 48), rgb(120, 110, 90), rgb(90, 40, 60))
NAMES = ("Aiko", "Ben", "Chidi", "Dara", "Emil", "Fatima", "Goro", "Hana", "Ivan", "Juno")
POSE_MOTIONS = ("walk", "run", "wave", "jump", "turn")
MOOD_OF_MOTION: dict[str, Emotion] = {
    "walk": "neutral",
    "run": "excitement",
    "wave": "amusement",
    "jump": "excitement",
    "turn": "neutral",
    "talk": "contentment",
}
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SampleClip:
    """One written clip: the video, its ground-truth JSON and the truth itself."""

    path: Path
    truth_path: Path
    truth: ClipTruth

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass
class _CharSpec:
    kind: Kind
    name: str
    motion: str
    colours: tuple[Colour, ...]
    look: Look | None
    emotions: list[EmotionSpan]


def _even(x: float) -> int:
    return max(2, round(float(x / 2)) * 2)


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _split_shots(
    rng: np.random.Generator, n_frames: int, hold: int, fps: float, wanted: int
) -> list[list[int]]:
    """Half-open shot ranges, each at least 0.7 s and cut on a drawing boundary."""
    min_len = max(int(0.7 * fps), 2 * hold)
    n = max(1, min(wanted, n_frames // min_len))
    cuts = [0]
    for i in range(1, n):
        lo, hi = cuts[-1] + min_len, n_frames - (n - i) * min_len
        cut = int(rng.integers(lo, hi + 1)) if hi > lo else lo
        cuts.append(cut - (cut % hold) if cut - (cut % hold) > cuts[-1] else cut)
    cuts.append(n_frames)
    return [[a, b] for a, b in itertools.pairwise(cuts)]


def _emotion_spans(
    rng: np.random.Generator, motion: str, shots: list[list[int]], hold: int
) -> list[EmotionSpan]:
    n = shots[-1][1]
    if motion != "emote":
        return [{"start": 0, "end": n, "label": MOOD_OF_MOTION.get(motion, "neutral")}]
    labels = MIKELS_EMOTIONS
    order = [labels[i] for i in rng.permutation(len(labels))]
    k = 2 if n < 40 else 3
    bounds = sorted({int(b) - int(b) % hold for b in np.linspace(0, n, k + 1)[1:-1]})
    edges = [0, *[b for b in bounds if 0 < b < n], n]
    return [
        {"start": a, "end": b, "label": cast(Emotion, order[i])}
        for i, (a, b) in enumerate(itertools.pairwise(edges))
    ]


def _look(rng: np.random.Generator) -> Look:
    shirt = _pick(rng, CLOTHES)
    return Look(
        skin=_pick(rng, SKINS),
        hair=_pick(rng, HAIRS),
        shirt=shirt,
        pants=_pick(rng, PANTS),
        shoes=_pick(rng, (rgb(60, 40, 30), rgb(30, 30, 34), rgb(230, 230, 230), rgb(150, 40, 40))),
        iris=_pick(rng, (rgb(70, 110, 60), rgb(80, 60, 40), rgb(60, 100, 170), rgb(40, 40, 40))),
        hair_style=_pick(rng, ("short", "long", "bun")),
        long_sleeves=bool(rng.random() < 0.4),
    )


def make_clip(
    out_dir: str | Path,
    name: str,
    *,
    seed: int,
    width: int | None = None,
    fps: int | None = None,
    seconds: float | None = None,
    subsets: Sequence[Subset] | None = None,
    kinds: Sequence[Kind] | None = None,
    talking: bool | None = None,
    timing: Timing | None = None,
    shots: int | None = None,
    action: str | None = None,
    aspect: float | None = None,
    drawing_motion: DrawingMotion = "held",
) -> SampleClip:
    """Render one cartoon clip and its ground truth; every knob left None is drawn from the seed.

    ``drawing_motion`` (see app/samples/sliding.py) makes held drawings slide or the camera
    pan or zoom on ones over them; ``action`` (walk, run, jump...) is what the humanoids free to
    choose and the animals do."""
    rng = np.random.default_rng(seed)
    width = _even(width if width is not None else rng.integers(128, 641) * 2)
    height = _even(width / (aspect if aspect is not None else _pick(rng, ASPECTS)))
    fps = int(fps if fps is not None else _pick(rng, FPS_CHOICES))
    seconds = float(seconds if seconds is not None else round(float(rng.uniform(1, 10)), 1))
    if subsets is None:
        subsets = _pick(
            rng,
            (
                ("i2v",),
                ("i2v", "pose"),
                ("face_video", "i2v"),
                ("face_audio", "face_video", "i2v"),
                ("pose",),
            ),
        )
    subs: list[Subset] = [s for s in SUBSETS if s in set(subsets)]
    face = "face_video" in subs or "face_audio" in subs
    if kinds is None:
        kinds = (
            ["humanoid"]
            if face
            else _pick(
                rng,
                (
                    ["humanoid"],
                    ["humanoid", "humanoid"],
                    ["humanoid", "animal"],
                    ["animal", "creature"],
                    ["humanoid", "object"],
                    ["creature"],
                    ["object", "animal"],
                ),
            )
        )
        if "pose" in subs and "humanoid" not in kinds:
            kinds = ["humanoid", *kinds]
    kinds = list(kinds)
    if talking is None:
        talking = "face_audio" in subs
    if talking and "humanoid" not in kinds:
        kinds = ["humanoid", *kinds]
    timing = timing or cast(Timing, _pick(rng, ("ones", "twos", "twos", "threes")))
    hold = TIMINGS[timing]
    n_frames = max(2, round(float(seconds * fps)))
    shot_ranges = _split_shots(rng, n_frames, hold, fps, shots or int(rng.integers(1, 4)))
    venue: Venue = "indoor" if face and rng.random() < 0.5 else "outdoor"
    tod: TimeOfDay = _pick(rng, ("day", "day", "dusk", "night"))
    framing = _pick(rng, ("close_up", "medium")) if face and len(kinds) == 1 else "wide"
    speech = plan_speech(rng, n_frames / fps, seed) if talking else None

    specs: list[_CharSpec] = []
    used_names = [NAMES[i] for i in rng.permutation(len(NAMES))]
    n_human = 0
    for i, kind in enumerate(kinds):
        if kind == "humanoid":
            if talking and n_human == 0:
                motion = "talk"
            elif "face_video" in subs and n_human == 0:
                motion = "emote"
            elif face:
                motion = _pick(rng, ("emote", "wave", "turn"))
            else:
                motion = _pick(rng, POSE_MOTIONS)
                motion = action if action in POSE_MOTIONS else motion
            n_human += 1
            specs.append(
                _CharSpec(
                    kind,
                    used_names[i],
                    motion,
                    (),
                    _look(rng),
                    _emotion_spans(rng, motion, shot_ranges, hold),
                )
            )
        elif kind == "animal":
            colours = (
                _pick(
                    rng, (rgb(200, 150, 90), rgb(240, 240, 232), rgb(90, 80, 76), rgb(220, 130, 60))
                ),
                _pick(rng, (rgb(120, 80, 50), rgb(60, 50, 50))),
            )
            specs.append(
                _CharSpec(
                    kind,
                    _pick(rng, ("Biscuit", "Pepper", "Mochi")),
                    action if action in ANIMAL_MOTIONS else _pick(rng, ANIMAL_MOTIONS),
                    colours,
                    None,
                    [{"start": 0, "end": n_frames, "label": "neutral"}],
                )
            )
        else:
            colour = _pick(
                rng,
                (
                    rgb(120, 200, 240),
                    rgb(160, 230, 120),
                    rgb(240, 120, 180),
                    rgb(230, 80, 80),
                    rgb(250, 200, 80),
                ),
            )
            motion = "bounce" if kind == "creature" else "hop"
            specs.append(
                _CharSpec(
                    kind,
                    "Blob" if kind == "creature" else "Lamp",
                    motion,
                    (colour,),
                    None,
                    [{"start": 0, "end": n_frames, "label": "neutral"}],
                )
            )
    return _render(
        Path(out_dir),
        name,
        seed,
        rng,
        width,
        height,
        fps,
        n_frames,
        hold,
        timing,
        shot_ranges,
        subs,
        specs,
        venue,
        tod,
        framing,
        speech,
        drawing_motion,
    )


def _emotion_fn(spans: list[EmotionSpan], fps: float) -> Callable[[float], Emotion]:
    def at(t: float) -> Emotion:
        f = round(float(t * fps))
        for s in spans:
            if s["start"] <= f < s["end"]:
                return s["label"]
        return spans[-1]["label"]

    return at


def _place(
    rng: np.random.Generator,
    specs: list[_CharSpec],
    w: int,
    h: int,
    framing: str,
    horizon: float,
    shot_seconds: float,
    fps: float,
    speech: SpeechPlan | None,
) -> list[Character]:
    """Characters for one shot: same identities and colours, fresh positions and directions."""
    chars: list[Character] = []
    n = len(specs)
    slots = rng.permutation(n)
    for i, sp in enumerate(specs):
        direction = float(rng.choice([-1.0, 1.0]))
        x = w * (0.5 if n == 1 else 0.18 + 0.64 * slots[i] / (n - 1)) + float(
            rng.uniform(-0.04, 0.04) * w
        )
        ground = float(rng.uniform(max(horizon + 0.2 * (h - horizon), 0.8 * h), 0.95 * h))
        if sp.kind == "humanoid":
            assert sp.look is not None
            if framing == "close_up":
                size, ground = 2.7 * h, 0.07 * h + 2.7 * h * 0.99
            elif framing == "medium":
                size, ground = 1.45 * h, 0.08 * h + 1.45 * h * 0.99
            else:
                size = float(rng.uniform(0.5, 0.62) * h)
            speed = {"walk": 0.38, "run": 0.95}.get(sp.motion, 0.0) * size
            x -= direction * speed * shot_seconds / 2
            mouth = speech.mouth if speech is not None and sp.motion == "talk" else (lambda t: 0.0)
            chars.append(
                Humanoid(
                    sp.name,
                    sp.motion,
                    sp.look,
                    x,
                    ground,
                    size,
                    direction,
                    _emotion_fn(sp.emotions, fps),
                    mouth,
                )
            )
        elif sp.kind == "animal":
            size = float(rng.uniform(0.3, 0.4) * h)
            speed = {"walk": 0.55, "run": 1.5, "jump": 0.3}[sp.motion] * size
            x -= direction * speed * shot_seconds / 2
            chars.append(
                Animal(sp.name, sp.motion, sp.colours[0], sp.colours[1], x, ground, size, direction)
            )
        elif sp.kind == "creature":
            chars.append(
                Blob(
                    sp.name, sp.colours[0], x, ground, float(rng.uniform(0.16, 0.22) * h), direction
                )
            )
        else:
            chars.append(
                Lamp(sp.name, sp.colours[0], x, ground, float(rng.uniform(0.3, 0.4) * h), direction)
            )
    return chars


def _render(
    out: Path,
    name: str,
    seed: int,
    rng: np.random.Generator,
    w: int,
    h: int,
    fps: int,
    n_frames: int,
    hold: int,
    timing: Timing,
    shots: list[list[int]],
    subsets: list[Subset],
    specs: list[_CharSpec],
    venue: Venue,
    tod: TimeOfDay,
    framing: str,
    speech: SpeechPlan | None,
    drawing_motion: DrawingMotion,
) -> SampleClip:
    out.mkdir(parents=True, exist_ok=True)
    path, truth_path = out / f"{name}.mp4", out / f"{name}.json"
    per_char: list[dict[str, list[Any]]] = [{"kp": [], "box": [], "face": []} for _ in specs]
    camera_truth: list[CameraTruth] = []
    held: list[list[int]] = []
    recorders = [DrawingRecorder() for _ in specs]
    on_ones = drawing_motion != "held"
    writer = ClipWriter(path, w, h, fps, speech is not None)
    try:
        for si, (s, e) in enumerate(shots):
            horizon = (0.78 if framing != "wide" else float(rng.uniform(0.55, 0.66))) * h
            bg = make_background(rng, venue, tod, w, h, horizon, si + int(rng.integers(0, 3)))
            motion: CameraMotion = _pick(rng, CAMERA_OF_MOTION.get(drawing_motion, CAMERA_MOTIONS))
            camera_truth.append({"shot": si, "motion": motion, "background": bg.name})
            chars = _place(rng, specs, w, h, framing, horizon, (e - s) / fps, fps, speech)
            glides = [
                float(rng.choice([-GLIDE, GLIDE])) * w if drawing_motion == "slide" else 0.0
                for _ in chars
            ]
            order = sorted(range(len(chars)), key=lambda i: chars[i].depth)
            focus = (w / 2, 0.3 * h) if framing != "wide" else (w / 2, 0.6 * h)
            prev: npt.NDArray[np.uint8] | None = None
            run_start = s
            for d0 in range(s, e, hold):
                d_end = min(d0 + hold, e)
                for f0, f1 in [(f, f + 1) for f in range(d0, d_end)] if on_ones else [(d0, d_end)]:
                    camera = camera_at(motion, (f0 - s) / max(e - s - 1, 1), w, h, focus)
                    cv = Canvas(camera)
                    bg.draw(cv, f0 / fps)
                    drawn = {}
                    for rank, ci in enumerate(order):
                        tc = d0 / fps if specs[ci].motion == "talk" else (d0 - s) / fps
                        cv.camera = glide_camera(camera, glides[ci], (f0 - s) / fps, (e - s) / fps)
                        drawn[ci] = chars[ci].draw(cv, tc, 1 + 32 * rank)
                    cv.camera = camera
                    img = cv.img
                    if prev is None or not np.array_equal(prev, img):
                        if f0 - run_start >= 2:
                            held.append([run_start, f0])
                        run_start = f0
                    prev = img
                    for _ in range(f0, f1):
                        writer.frame(img)
                    for ci, dr in drawn.items():
                        kp = dr.points.resolve(cv) if dr.points is not None else None
                        for f in range(f0, f1):
                            recorders[ci].show(f, landmarks(kp, dr.outline) if dr.box else None)
                        per_char[ci]["kp"] += [kp] * (f1 - f0)
                        per_char[ci]["box"] += [dr.box] * (f1 - f0)
                        per_char[ci]["face"] += [dr.face_box] * (f1 - f0)
            if e - run_start >= 2:
                held.append([run_start, e])
            for recorder in recorders:
                recorder.cut()
        samples = synthesise(speech, n_frames / fps) if speech is not None else None
    finally:
        writer.close(samples if speech is not None else None)

    characters: list[CharacterTruth] = []
    for i, (sp, pc) in enumerate(zip(specs, per_char, strict=True)):
        colours = _colours(sp)
        kps = pc["kp"] if sp.kind in ("humanoid", "animal") else None
        characters.append(
            {
                "id": f"c{i}",
                "name": sp.name,
                "kind": sp.kind,
                "template": "coco_wholebody"
                if sp.kind == "humanoid"
                else "animal"
                if sp.kind == "animal"
                else None,
                "motion": sp.motion,
                "colours": colours,
                "keypoints": kps,
                "boxes": pc["box"],
                "face_boxes": pc["face"],
                "emotions": sp.emotions,
                "drawing_runs": recorders[i].runs(),
                "timing": timing,
            }
        )
    truth: ClipTruth = {
        "clip": path.name,
        "seed": seed,
        "width": w,
        "height": h,
        "fps": float(fps),
        "frame_count": n_frames,
        "duration_s": round(n_frames / fps, 6),
        "subsets": subsets,
        "timing": timing,
        "drawing_motion": drawing_motion,
        "shots": shots,
        "held_runs": held,
        "camera": camera_truth,
        "tags": {
            "time_of_day": tod,
            "venue": venue,
            "framing": cast(Any, framing),
            "count": "solo" if len(specs) == 1 else "multiple",
        },
        "characters": characters,
        "has_audio": speech is not None,
        "speech": [list(seg) for seg in speech.segments] if speech is not None else [],
    }
    truth_path.write_text(json.dumps(truth, separators=(",", ":")))
    return SampleClip(path, truth_path, truth)


def _colours(sp: _CharSpec) -> dict[str, str]:
    if sp.look is not None:
        return {
            k: hex_colour(getattr(sp.look, k))
            for k in ("skin", "hair", "shirt", "pants", "shoes", "iris")
        }
    keys = ("fur", "accent") if sp.kind == "animal" else ("body",)
    return {k: hex_colour(c) for k, c in zip(keys, sp.colours, strict=False)}


# Profiles of the demo set: the first four cover every subset and every character kind.
PROFILES: tuple[dict[str, Any], ...] = (
    {"subsets": ("face_audio", "face_video", "i2v"), "kinds": ("humanoid",), "talking": True},
    {"subsets": ("pose", "i2v"), "kinds": ("humanoid", "humanoid", "creature")},
    {"subsets": ("i2v",), "kinds": ("animal", "object")},
    {"subsets": ("face_video", "i2v"), "kinds": ("humanoid",), "talking": False},
    {"subsets": ("pose", "i2v"), "kinds": ("humanoid", "animal")},
    {"subsets": ("face_audio", "i2v"), "kinds": ("humanoid",), "talking": True},
    {"subsets": ("pose",), "kinds": ("humanoid",)},
    {"subsets": ("i2v",), "kinds": ("creature", "humanoid", "object")},
    # held drawings that move (app/samples/sliding.py): slides, and pans and zooms on ones
    {"subsets": ("pose", "i2v"), "kinds": ("humanoid", "animal"), "drawing_motion": "slide"},
    {"subsets": ("i2v",), "kinds": ("animal", "creature"), "drawing_motion": "pan"},
    {"subsets": ("pose",), "kinds": ("humanoid",), "drawing_motion": "zoom"},
    {"subsets": ("pose", "i2v"), "kinds": ("humanoid", "object"), "drawing_motion": "pan"},
)


def make_samples(
    out_dir: str | Path, count: int, seed: int, *, progress: Progress | None = None
) -> list[SampleClip]:
    """A seeded set of small clips (<= 640 wide, 2-5 s); count >= 4 covers all subsets and kinds,
    count >= 12 also held drawings that slide or go under camera pans and zooms."""
    rng = np.random.default_rng(seed)
    clips: list[SampleClip] = []
    for i in range(count):
        profile = PROFILES[i % len(PROFILES)]
        name = f"sample_{i:02d}"
        if progress is not None:
            progress(i, count, name)
        clips.append(
            make_clip(
                out_dir,
                name,
                seed=seed * 1009 + i,
                width=int(_pick(rng, (320, 384, 480, 512, 640))),
                seconds=round(float(rng.uniform(2, 5)), 1),
                **profile,
            )
        )
    if progress is not None:
        progress(count, count, "")
    return clips
