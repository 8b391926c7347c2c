"""Small synthetic cartoon clips with known ground truth for the pipeline analysis tests.

Frames are flat-colour scenes with black-outlined shapes, a character whose drawing changes
every `step` frames (on ones/twos/threes), optional camera pans/zooms, and hard cuts. `h264`
round-trips frames through libx264 so held drawings become nearly, not bit-, identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

W, H = 256, 144
OUTLINE = (20, 20, 20)


@dataclass(frozen=True)
class Palette:
    sky: tuple[int, int, int]
    ground: tuple[int, int, int]
    prop: tuple[int, int, int]
    body: tuple[int, int, int]


SKY_GRASS = Palette((135, 206, 235), (60, 170, 60), (200, 60, 50), (250, 200, 60))
NIGHT = Palette((25, 25, 110), (90, 60, 40), (240, 240, 200), (180, 80, 200))
INDOOR = Palette((230, 210, 170), (150, 90, 50), (60, 120, 200), (230, 100, 130))


def background(palette: Palette, width: int, height: int, seed: int) -> np.ndarray:
    """A wide flat-colour scene: sky, ground, outlined props scattered along it."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    horizon = int(height * 0.6)
    img[:horizon] = palette.sky
    img[horizon:] = palette.ground
    cv2.line(img, (0, horizon), (width, horizon), OUTLINE, 2)
    for x in range(20, width - 40, 70):
        x0 = x + int(rng.integers(0, 30))
        w, h = int(rng.integers(18, 34)), int(rng.integers(20, 46))
        y1 = horizon + int(rng.integers(-4, 10))
        cv2.rectangle(img, (x0, y1 - h), (x0 + w, y1), palette.prop, -1)
        cv2.rectangle(img, (x0, y1 - h), (x0 + w, y1), OUTLINE, 2)
        cv2.circle(img, (x0 + w // 2, y1 - h - 10), 8, palette.prop, -1)
        cv2.circle(img, (x0 + w // 2, y1 - h - 10), 8, OUTLINE, 2)
    # Clouds/stars give the sky some structure for motion estimation.
    for _ in range(width // 60):
        cx, cy = int(rng.integers(10, width - 10)), int(rng.integers(8, horizon // 2))
        cv2.ellipse(img, (cx, cy), (14, 6), 0, 0, 360, (245, 245, 245), -1)
        cv2.ellipse(img, (cx, cy), (14, 6), 0, 0, 360, OUTLINE, 1)
    return img


def draw_character(img: np.ndarray, x: float, y: float, pose: int, colour: tuple[int, int, int]):
    """An outlined humanoid-ish figure; `pose` swings the arms so drawings differ."""
    cx, cy = round(x), round(y)
    cv2.ellipse(img, (cx, cy), (9, 15), 0, 0, 360, colour, -1)
    cv2.ellipse(img, (cx, cy), (9, 15), 0, 0, 360, OUTLINE, 2)
    cv2.circle(img, (cx, cy - 22), 7, colour, -1)
    cv2.circle(img, (cx, cy - 22), 7, OUTLINE, 2)
    swing = (pose % 4 - 1.5) * 5
    for side in (-1, 1):
        cv2.line(img, (cx + side * 9, cy - 8), (cx + side * 17, int(cy + swing * side)), OUTLINE, 2)
        cv2.line(img, (cx + side * 4, cy + 14), (cx + side * 7, cy + 26), OUTLINE, 2)


def shot_frames(
    palette: Palette,
    n: int,
    *,
    step: int = 2,
    seed: int = 0,
    pan: tuple[float, float] = (0.0, 0.0),
    zoom: float = 1.0,
    walk: float = 2.0,
) -> list[np.ndarray]:
    """One shot of `n` RGB frames drawn every `step` frames.

    `pan` is the camera velocity in px/frame (+x = camera moves right, +y = camera moves down);
    `zoom` is the total scale factor reached at the last frame (>1 = zoom in). Camera moves, like
    the character, only on drawing frames, as on a real exposure sheet.
    """
    margin = int(max(abs(pan[0]), abs(pan[1])) * n) + 8
    bg = background(palette, W + 2 * margin, H + 2 * margin, seed)
    frames: list[np.ndarray] = []
    for i in range(n):
        d = i - i % step  # the frame at which the current drawing was first exposed
        scene = bg.copy()
        draw_character(
            scene, margin + W * 0.3 + walk * d, margin + H * 0.55, d // step, palette.body
        )
        ox, oy = margin + pan[0] * d, margin + pan[1] * d
        s = zoom ** (d / max(n - 1, 1))
        cw, ch = W / s, H / s
        x0, y0 = ox + (W - cw) / 2, oy + (H - ch) / 2
        m = np.array([[W / cw, 0, -x0 * W / cw], [0, H / ch, -y0 * H / ch]], np.float64)
        frames.append(cv2.warpAffine(scene, m, (W, H), flags=cv2.INTER_LINEAR))
    return frames


def h264(
    frames: Sequence[np.ndarray], tmp: Path, *, crf: int = 23, fps: int = 24
) -> list[np.ndarray]:
    """Encode RGB frames with libx264 and decode them back (realistic compression noise)."""
    path = tmp / f"clip_{len(frames)}_{crf}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode(None))
    with av.open(str(path)) as inp:
        return [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]
