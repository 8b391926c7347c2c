"""The video-to-video face animation package: per shot and character, the face-centred crop
video and its 68-point face sequence (the driving and target signals of a face reenactment
model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.export.formats.bundle import ClipBundle, SnapshotContext
from app.export.formats.packages.face import FACE_FILES, FacePackage
from app.export.formats.packages.shots import shot_record

FACE_VIDEO_README = f"""
# Video-to-video face package (subset `face_video`)

One folder per shot, `<clip>_s<shot:03d>/`, with per character whose face is labelled in the
shot:
{FACE_FILES}
`manifest.jsonl` has one row per shot and character: `clip`, `shot`, `start_frame`,
`end_frame` (exclusive), `frames`, `fps`, `start_s`, `duration_s`, `caption`, `track`,
`character`, `kind`, `face_video`, `landmarks`, `landmarks_json`, `crop_size`, `crop_box`.
"""


class FaceVideoPackage(FacePackage):
    subset = "face_video"
    readme = FACE_VIDEO_README

    def write_clip(self, clip: ClipBundle) -> Iterator[dict[str, Any]]:
        for face in self.face_shots(clip):
            yield {**shot_record(clip, face.shot.span, self.subset), **face.files}


def face_video_package(out: Path, ctx: SnapshotContext) -> FaceVideoPackage:
    return FaceVideoPackage(out, ctx)
