"""The face crop both face packages are built on: a square box that follows one character's
face through a shot, the frames cut to it at a fixed size, and the 68 face points (iBUG order,
COCO-WholeBody points 23..90) in the crop's pixels.

The box, per shot and character:

* centre: per frame, the centre of the labelled face points' tight box (frames with fewer
  than :data:`MIN_FACE_POINTS` labelled face points take the centre interpolated from their
  neighbours, held at the ends), then a centred moving average over :data:`SMOOTH_FRAMES`
  frames so the crop does not jitter with the points;
* side: fixed for the shot (the crop zooms steadily), :data:`MARGIN` times the median face
  size (the larger of the tight box's width and height), enlarged where needed so every
  labelled face point of every frame lies inside its frame's box;
* the box may reach past the frame's edge: that part of the crop is black.

The crop is scaled to :data:`CROP_SIZE` x :data:`CROP_SIZE` pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from app.export.formats.bundle import ClipBundle
from app.export.formats.packages.package import (
    PackageWriter,
    ShotFolder,
    save_points,
    video_writer,
)
from app.export.formats.packages.shots import (
    Points,
    ShotTrack,
    shot_tracks,
)
from app.media.decode import Image

FACE = slice(23, 91)
CROP_SIZE = 256
MARGIN = 1.8
SMOOTH_FRAMES = 5
MIN_FACE_POINTS = 3
Floats = npt.NDArray[np.float64]

FACE_FILES = f"""
* `face_t<track>.mp4`: the face crop of one character, H.264 yuv420p, {CROP_SIZE} x {CROP_SIZE},
  the clip's fps, one frame per frame of the shot. The box is square and follows the face:
  its centre is the centre of the labelled face points' box, smoothed by a centred
  {SMOOTH_FRAMES}-frame moving average (frames with fewer than {MIN_FACE_POINTS} labelled face
  points take the centre interpolated from their neighbours); its side is fixed for the
  shot, {MARGIN} times the median face size, enlarged so that every labelled face point lies
  inside. Where the box passes the frame's edge the crop is black.
  `crop_box` in the manifest: per frame [x0, y0, side] in source pixels.
* `face_t<track>.npy`: float32 (T, 68, 3), the 68 face points (iBUG order, COCO-WholeBody
  points 23..90) as x, y in the crop's pixels (0..{CROP_SIZE}) and v (1 hidden, 2 visible);
  points nobody labelled are (0, 0, 0). `face_t<track>.json` holds the same numbers.
"""


@dataclass(frozen=True)
class FaceCrop:
    """Per frame of a shot, the square box ``(x0, y0)`` .. ``(x0 + side, y0 + side)``."""

    centres: Floats  # (T, 2)
    side: float

    def origin(self, t: int) -> tuple[float, float]:
        cx, cy = self.centres[t]
        return float(cx) - self.side / 2, float(cy) - self.side / 2

    @property
    def scale(self) -> float:
        return CROP_SIZE / self.side

    def boxes(self) -> list[list[float]]:
        return [[*(round(v, 2) for v in self.origin(t)), round(self.side, 2)]
                for t in range(len(self.centres))]  # fmt: skip

    def cut(self, rgb: Image, t: int) -> Image:
        x0, y0 = self.origin(t)
        s = self.scale
        matrix = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
        size = (CROP_SIZE, CROP_SIZE)
        return cast(Image, cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_LINEAR))

    def points(self, face: Points) -> Points:
        """(T, 68, 3) face points in crop pixels; unlabelled points stay (0, 0, 0)."""
        out = face.copy()
        labelled = face[..., 2] > 0
        for t in range(len(face)):
            x0, y0 = self.origin(t)
            out[t, :, 0] = (face[t, :, 0] - x0) * self.scale
            out[t, :, 1] = (face[t, :, 1] - y0) * self.scale
        out[~labelled] = 0
        return out


def moving_average(values: Floats, window: int) -> Floats:
    """Centred moving average along axis 0, the ends padded with their edge values."""
    half = window // 2
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    kernel = np.ones(window) / window
    return np.stack(
        [np.convolve(padded[:, k], kernel, mode="valid") for k in range(values.shape[1])], axis=1
    )


def face_crop(face: Points) -> FaceCrop | None:
    """The crop of a (T, 68, 3) face sequence; None when no frame has a face."""
    labelled = face[..., 2] > 0
    seen = labelled.sum(axis=1) >= MIN_FACE_POINTS
    if not seen.any():
        return None
    frames = np.arange(len(face))
    centres = np.zeros((len(face), 2))
    sizes: list[float] = []
    for t in np.flatnonzero(seen):
        pts = face[t][labelled[t], :2].astype(np.float64)
        low, high = pts.min(axis=0), pts.max(axis=0)
        centres[t] = (low + high) / 2
        sizes.append(float((high - low).max()))
    for k in range(2):
        centres[:, k] = np.interp(frames, frames[seen], centres[seen, k])
    centres = moving_average(centres, SMOOTH_FRAMES)
    reach = 0.0  # the largest distance, along x or y, from a frame's centre to its points
    for t in range(len(face)):
        pts = face[t][labelled[t], :2].astype(np.float64)
        if len(pts):
            reach = max(reach, float(np.abs(pts - centres[t]).max()))
    side = max(MARGIN * float(np.median(sizes)), 2 * reach * 1.05, 16.0)
    return FaceCrop(centres, side)


@dataclass(frozen=True)
class FaceShot:
    """One character's face crop over one shot, written: what the manifest row points at."""

    shot: ShotFolder
    track: ShotTrack
    crop: FaceCrop
    files: dict[str, Any]


class FacePackage(PackageWriter):
    """A package of face crops: :meth:`face_shots` writes the crop videos and face points."""

    def face_shots(self, clip: ClipBundle) -> Iterator[FaceShot]:
        for shot in self.shot_folders(clip):
            faces = []
            for track in shot_tracks(clip, shot.span):
                crop = face_crop(track.points[:, FACE])
                if crop is not None:
                    faces.append((track, crop))
            writers = [
                video_writer(shot.path / f"face_t{t.track}.mp4", clip, (CROP_SIZE, CROP_SIZE))
                for t, _ in faces
            ]
            try:
                for n, rgb in shot.frames:
                    for writer, (_, crop) in zip(writers, faces, strict=True):
                        writer.write(crop.cut(rgb, n - shot.span.start))
            finally:
                for writer in writers:
                    writer.close()
            for track, crop in faces:
                yield FaceShot(shot, track, crop, self._save(shot, track, crop))

    def _save(self, shot: ShotFolder, track: ShotTrack, crop: FaceCrop) -> dict[str, Any]:
        stem = f"face_t{track.track}"
        save_points(shot.path, stem, crop.points(track.points[:, FACE]))
        return {
            "track": track.track,
            "character": track.character,
            "kind": track.kind,
            "face_video": shot.entry(f"{stem}.mp4"),
            "landmarks": shot.entry(f"{stem}.npy"),
            "landmarks_json": shot.entry(f"{stem}.json"),
            "crop_size": CROP_SIZE,
            "crop_box": crop.boxes(),
        }
