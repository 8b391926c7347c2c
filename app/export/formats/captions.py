"""Hierarchical captions JSONL: one line per clip with its clip, shot and character captions,
tags, quality decision, flags, emotions, speech segments and subsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.export.formats.bundle import ClipBundle, SnapshotContext, dumps

CAPTIONS_FILE = "captions.jsonl"


def _captions(clip: ClipBundle) -> dict[tuple[str, int], dict[str, str]]:
    """(level, target id) -> {field: text}."""
    out: dict[tuple[str, int], dict[str, str]] = {}
    for cap in clip.captions:
        out.setdefault((cap["level"], cap["target_id"]), {})[cap["field"]] = cap["text"]
    return out


def caption_record(clip: ClipBundle) -> dict[str, Any]:
    c, ann = clip.clip, clip.annotation
    caps = _captions(clip)
    return {
        "clip": clip.key, "clip_id": c["id"], "external_id": c["external_id"],
        "filename": c["filename"], "subsets": c["subsets"], "fps": c["fps"],
        "frame_count": c["frame_count"], "width": c["width"], "height": c["height"],
        "duration_s": c["duration_s"],
        "annotator": ann["annotator"], "annotation_version": ann["version"],
        "captions": caps.get(("clip", 0), {}),
        "tags": ann["tags"], "quality": ann["quality"], "timing": ann["timing"],
        "flags": c["quality_flags"], "scores": c["scores"],
        "shots": [
            {"start": s["start_frame"], "end": s["end_frame"], "camera_motion": s["camera_motion"],
             "captions": caps.get(("shot", s["id"]), {})}
            for s in clip.shots
        ],
        "characters": [
            {"name": ch.name, "kind": ch.kind, "skeleton": ch.skeleton,
             "emotions": ch.emotions, "captions": caps.get(("character", ch.id), {})}
            for ch in clip.characters
        ],
        "speech": [
            {"start": s["start_s"], "end": s["end_s"], "transcript": s["transcript"]}
            for s in clip.speech
        ],
    }  # fmt: skip


class CaptionsWriter:
    def __init__(self, out: Path, ctx: SnapshotContext) -> None:
        self.fh = (out / CAPTIONS_FILE).open("w", encoding="utf-8")

    def add(self, clip: ClipBundle) -> None:
        self.fh.write(dumps(caption_record(clip)) + "\n")

    def close(self) -> None:
        self.fh.close()


def captions_writer(out: Path, ctx: SnapshotContext) -> CaptionsWriter:
    return CaptionsWriter(out, ctx)
