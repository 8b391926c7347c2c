"""The image-to-video package: per shot, the shot's video, its first frame and its captions,
which is what an I2V model trains on (condition image + text -> video)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.export.formats.bundle import ClipBundle, SnapshotContext, dumps
from app.export.formats.packages.package import (
    PackageWriter,
    cut_to,
    frame_size,
    video_writer,
    write_png,
)
from app.export.formats.packages.shots import captions_of, shot_record

I2V_README = """
# Image-to-video package (subset `i2v`)

One folder per shot, `<clip>_s<shot:03d>/`:

* `video.mp4`: the shot's frames, H.264 yuv420p, constant rate (the clip's fps), the clip's
  size (an odd last column or row cut off); frame i of the file is clip frame
  `start_frame + i`.
* `first_frame.png`: the shot's first frame, the same pixels the video starts from (before
  compression).
* `captions.json`: `{"clip": {field: text}, "shot": {field: text}}`, the approved captions.

`manifest.jsonl` has one row per shot: `clip`, `shot`, `start_frame`, `end_frame` (exclusive),
`frames`, `fps`, `start_s`, `duration_s`, `caption` and the paths `video`, `first_frame`,
`captions`, relative to this folder.
"""


class I2vPackage(PackageWriter):
    subset = "i2v"
    readme = I2V_README

    def write_clip(self, clip: ClipBundle) -> Iterator[dict[str, Any]]:
        size = frame_size(clip)
        for shot in self.shot_folders(clip):
            with video_writer(shot.path / "video.mp4", clip) as video:
                for n, rgb in shot.frames:
                    if n == shot.span.start:
                        write_png(shot.path / "first_frame.png", cut_to(rgb, size))
                    video.write(cut_to(rgb, size))
            captions = captions_of(clip, shot.span)
            (shot.path / "captions.json").write_text(dumps(captions) + "\n", encoding="utf-8")
            yield {
                **shot_record(clip, shot.span, self.subset),
                "video": shot.entry("video.mp4"),
                "first_frame": shot.entry("first_frame.png"),
                "captions": shot.entry("captions.json"),
            }


def i2v_package(out: Path, ctx: SnapshotContext) -> I2vPackage:
    return I2vPackage(out, ctx)
