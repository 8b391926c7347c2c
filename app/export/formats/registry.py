"""Format names as users select them, and the writer each one uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.export.formats.bundle import SnapshotContext, Writer
from app.export.formats.captions import captions_writer
from app.export.formats.cellabel import CellabelWriter
from app.export.formats.coco import person_writer, wholebody_writer
from app.export.formats.manifests import agreement_writer, manifests_writer
from app.export.formats.openpose import openpose_writer
from app.export.formats.packages.face_audio import face_audio_package
from app.export.formats.packages.face_video import face_video_package
from app.export.formats.packages.i2v import i2v_package
from app.export.formats.packages.pose import pose_package
from app.export.formats.yolo import yolo_writer

WRITERS: dict[str, Callable[[Path, SnapshotContext], Writer]] = {
    "coco_wholebody": wholebody_writer,
    "coco_person": person_writer,
    "openpose": openpose_writer,
    "yolo": yolo_writer,
    "captions": captions_writer,
    "manifests": manifests_writer,
    "cellabel": CellabelWriter,
    "agreement": agreement_writer,
    "i2v_package": i2v_package,
    "pose_package": pose_package,
    "face_video_package": face_video_package,
    "face_audio_package": face_audio_package,
}
MEDIA = "media"  # not a writer: copies of the clips' files under media/
FORMATS: tuple[str, ...] = (*WRITERS, MEDIA)
FORMAT_LABELS = {
    "coco_wholebody": "COCO-WholeBody keypoints (133)",
    "coco_person": "COCO person keypoints (17)",
    "openpose": "OpenPose per-frame JSON (BODY_25 + face 70 + hands)",
    "yolo": "YOLO pose labels + data.yaml",
    "captions": "Hierarchical captions JSONL",
    "manifests": "One manifest per subset",
    "cellabel": "CelLabel JSON Lines (importable, with review history)",
    "agreement": "Agreement scores and rollups",
    "i2v_package": "Image-to-video training package (shot videos, first frames, captions)",
    "pose_package": "Pose-driven video package (shot videos, 133-point arrays, pose videos)",
    "face_video_package": "Video-to-video face package (face crop videos, 68-point sequences)",
    "face_audio_package": "Audio-driven face package (face crops, 16 kHz WAV, speech, points)",
    MEDIA: "Copies of the clip files",
}


def parse_formats(text: str | list[str]) -> list[str]:
    """``coco_wholebody,openpose`` -> the names in canonical order; ValueError for unknown ones."""
    names = text.split(",") if isinstance(text, str) else text
    chosen = {n.strip() for n in names if n.strip()}
    unknown = sorted(chosen - set(FORMATS))
    if unknown:
        raise ValueError(f"Unknown formats: {', '.join(unknown)}. Known: {', '.join(FORMATS)}.")
    if not chosen:
        raise ValueError("Choose at least one format.")
    return [f for f in FORMATS if f in chosen]
