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
from app.export.formats.packages.shots import captions_of, clip_shots, shot_frames, shot_record

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
        for shot, frames in shot_frames(clip, clip_shots(clip)):
            folder, name = self.folder(clip, shot)
            with video_writer(folder / "video.mp4", clip) as video:
                for n, rgb in frames:
                    if n == shot.start:
                        write_png(folder / "first_frame.png", cut_to(rgb, size))
                    video.write(cut_to(rgb, size))
            captions = captions_of(clip, shot)
            (folder / "captions.json").write_text(dumps(captions) + "\n", encoding="utf-8")
            yield {
                **shot_record(clip, shot, self.subset),
                "video": f"{name}/video.mp4",
                "first_frame": f"{name}/first_frame.png",
                "captions": f"{name}/captions.json",
            }


def i2v_package(out: Path, ctx: SnapshotContext) -> I2vPackage:
    return I2vPackage(out, ctx)
