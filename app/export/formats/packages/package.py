"""What every training package is: a folder ``packages/<subset>/`` of the snapshot holding the
subset's clips shot by shot, a ``manifest.jsonl`` (one row per written shot, paths relative to
the folder) and a ``README.md`` saying what the files are.

A package module subclasses :class:`PackageWriter` with its subset, its README text and
:meth:`PackageWriter.write_clip`, which writes one clip's files and yields its manifest rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import cv2
import numpy as np

from app.export.formats.bundle import ClipBundle, SnapshotContext, dumps
from app.export.formats.packages.shots import (
    Points,
    ShotSpan,
    clip_fps,
    clip_shots,
    shot_frames,
)
from app.media.decode import Image
from app.media.encode import Mp4Writer, even_size

MANIFEST = "manifest.jsonl"
README = "README.md"


class PackageWriter:
    """Writes ``packages/<subset>/`` for the clips of that subset."""

    subset: ClassVar[str]
    readme: ClassVar[str]

    def __init__(self, out: Path, ctx: SnapshotContext) -> None:
        self.root = out / "packages" / self.subset
        self.root.mkdir(parents=True, exist_ok=True)
        header = f"Snapshot {ctx.name} of project {ctx.project['name']}, {ctx.created_at}.\n"
        (self.root / README).write_text(self.readme.strip() + "\n\n" + header, encoding="utf-8")
        self.manifest: IO[str] = (self.root / MANIFEST).open("w", encoding="utf-8")

    def add(self, clip: ClipBundle) -> None:
        if self.subset not in clip.clip["subsets"]:
            return
        for row in self.write_clip(clip):
            self.manifest.write(dumps(row) + "\n")

    def write_clip(self, clip: ClipBundle) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        self.manifest.close()

    def shot_folders(self, clip: ClipBundle) -> Iterator[ShotFolder]:
        """Each shot of the clip with its (created) folder and its frames, decoded in one
        pass (write a shot's files before asking for the next shot)."""
        for shot, frames in shot_frames(clip, clip_shots(clip)):
            name = shot.name(clip.key)
            (self.root / name).mkdir(parents=True, exist_ok=True)
            yield ShotFolder(shot, self.root / name, name, frames)


@dataclass(frozen=True)
class ShotFolder:
    """One shot's folder in a package, and the shot's (frame index, RGB frame) to read once."""

    span: ShotSpan
    path: Path
    name: str  # relative to the package folder
    frames: Iterator[tuple[int, Image]]

    def entry(self, filename: str) -> str:
        """A file of this folder as the manifest names it (relative to the package)."""
        return f"{self.name}/{filename}"


def frame_size(clip: ClipBundle) -> tuple[int, int]:
    """The (even) size of a package's full-frame videos: the clip's, its odd last column or
    row cut off, so point coordinates stay those of the source frame."""
    return even_size(int(clip.clip["width"]), int(clip.clip["height"]))


def video_writer(path: Path, clip: ClipBundle, size: tuple[int, int] | None = None) -> Mp4Writer:
    """An H.264 file at the clip's rate, of the clip's even size unless ``size`` is given."""
    return Mp4Writer(path, size or frame_size(clip), clip_fps(clip))


def cut_to(rgb: Image, size: tuple[int, int]) -> Image:
    """A source frame cut to the even ``size`` of :func:`frame_size` (no rescaling)."""
    return rgb[: size[1], : size[0]]


def write_png(path: Path, rgb: Image) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode {path.name} as PNG")
    path.write_bytes(data.tobytes())


def save_points(folder: Path, stem: str, points: Points) -> None:
    """``<stem>.npy`` (float32) and its JSON twin ``<stem>.json`` (2 decimals)."""
    np.save(folder / f"{stem}.npy", points.astype(np.float32))
    rounded = np.round(points.astype(np.float64), 2).tolist()
    (folder / f"{stem}.json").write_text(dumps(rounded) + "\n", encoding="utf-8")
