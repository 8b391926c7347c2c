"""The whole-body pose package: per shot, the shot's video, each character's 133 COCO-WholeBody
points per frame (``.npy`` and JSON) and the rendered pose video a pose-guided video model is
driven by: the skeletons drawn on black, the same size, frames and rate as the shot's video."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.export.formats.bundle import ClipBundle, SnapshotContext
from app.export.formats.drawing import JOINT_RADIUS, LINE_WIDTH, draw_poses
from app.export.formats.packages.package import (
    PackageWriter,
    ShotFolder,
    cut_to,
    frame_size,
    save_points,
    video_writer,
)
from app.export.formats.packages.shots import (
    Points,
    ShotTrack,
    shot_record,
    shot_tracks,
)
from app.media.decode import Image

POSE_README = f"""
# Whole-body pose package (subset `pose`)

One folder per shot, `<clip>_s<shot:03d>/`:

* `video.mp4`: the shot's frames, H.264 yuv420p at the clip's fps and size (an odd last column
  or row cut off, so coordinates are the source frame's); frame i is clip frame
  `start_frame + i`.
* `pose_t<track>.npy`: float32 array (T, 133, 3) of one character, T = the shot's frames, the
  points in COCO-WholeBody order (17 body, 6 feet, 68 face, 21 left hand, 21 right hand) as
  x, y (pixels of the frame) and v (1 labelled but hidden, 2 visible). Only labelled points
  are written; every other point, and every frame without a pose, is (0, 0, 0).
  `pose_t<track>.json` holds the same numbers as nested lists.
* `pose.mp4`: the rendered pose video: every character's skeleton on black (COCO-WholeBody
  edges between two labelled points, coloured by part, lines {LINE_WIDTH} px, joints as discs of
  radius {JOINT_RADIUS} px at the labelled points), the same size, frame count and fps as
  `video.mp4`, frame for frame.

`manifest.jsonl` has one row per shot: `clip`, `shot`, `start_frame`, `end_frame` (exclusive),
`frames`, `fps`, `start_s`, `duration_s`, `caption`, `video`, `pose_video`, and `characters`:
`[{{"track", "character", "kind", "keypoints" (.npy), "keypoints_json"}}]`.
"""


def render_pose(people: Sequence[Points], size: tuple[int, int]) -> Image:
    """One frame of the pose video: the people's skeletons on a black ``size`` (width,
    height) RGB picture."""
    canvas = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    draw_poses(canvas, people)
    return canvas


class PosePackage(PackageWriter):
    subset = "pose"
    readme = POSE_README

    def write_clip(self, clip: ClipBundle) -> Iterator[dict[str, Any]]:
        size = frame_size(clip)
        for shot in self.shot_folders(clip):
            tracks = shot_tracks(clip, shot.span)
            with (
                video_writer(shot.path / "video.mp4", clip) as video,
                video_writer(shot.path / "pose.mp4", clip) as pose_video,
            ):
                for n, rgb in shot.frames:
                    video.write(cut_to(rgb, size))
                    people = [t.points[n - shot.span.start] for t in tracks]
                    pose_video.write(render_pose(people, size))
            yield {
                **shot_record(clip, shot.span, self.subset),
                "video": shot.entry("video.mp4"),
                "pose_video": shot.entry("pose.mp4"),
                "characters": [self._save(shot, track) for track in tracks],
            }

    def _save(self, shot: ShotFolder, track: ShotTrack) -> dict[str, Any]:
        stem = f"pose_t{track.track}"
        save_points(shot.path, stem, track.points)
        return {
            "track": track.track,
            "character": track.character,
            "kind": track.kind,
            "keypoints": shot.entry(f"{stem}.npy"),
            "keypoints_json": shot.entry(f"{stem}.json"),
        }


def pose_package(out: Path, ctx: SnapshotContext) -> PosePackage:
    return PosePackage(out, ctx)
