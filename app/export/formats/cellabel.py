"""CelLabel JSON Lines: everything about each exported annotation, importable back.

``cellabel.jsonl`` has a header line (format, version, the project's settings and custom
skeletons), one line per clip, and a closing ``users`` line naming every account the clips
refer to. The format holds no database ids: users are named, clips are identified by
content hash, and nodes refer to each other by their position in the clip's record (shot,
character, track ``[character, track]``, keypoint frame ``[character, track, frame]``,
caption and speech indices), so an import into another instance re-exports byte for byte.
Keypoint frames keep the storage codec's bytes (:mod:`app.annotations.points`, 12 bytes per
point: x, y float32, v uint8, source uint8, conf float16) in base64, which is exact.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.export.formats.bundle import ClipBundle, SnapshotContext, dumps
from app.export.formats.manifests import CELLABEL_FILE

FORMAT = "cellabel"
FORMAT_VERSION = 1
CLIP_FIELDS = (
    "external_id", "filename", "content_hash", "size_bytes", "subsets", "source_tags",
    "container", "video_codec", "audio_codec", "width", "height", "fps", "frame_count",
    "duration_s", "has_audio", "variable_frame_rate", "probe", "held_runs", "detected_timing",
    "scores", "quality_flags",
)  # fmt: skip
ANNOTATION_FIELDS = (
    "kind", "is_primary", "status", "version", "tags", "quality", "timing",
    "submitted_at", "approved_at", "created_at", "annotator", "updated_by",
)  # fmt: skip
NODE_FIELDS = ("status", "version", "updated_by")
SHOT_FIELDS = ("start_frame", "end_frame", "camera_motion", "source", *NODE_FIELDS)
CAPTION_FIELDS = ("level", "field", "text", "model_text", "model_name", *NODE_FIELDS)
SPEECH_FIELDS = ("start_s", "end_s", "transcript", "source", *NODE_FIELDS)
REVISION_FIELDS = ("node_type", "version", "action", "source", "user", "before", "after",
                   "comment", "created_at")  # fmt: skip
COMMENT_FIELDS = ("node_type", "frame_index", "point_index", "region", "author", "reason",
                  "body", "resolved", "created_at")  # fmt: skip


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


def header_record(project: dict[str, Any]) -> dict[str, Any]:
    return {"type": "header", "format": FORMAT, "version": FORMAT_VERSION, "project": project}


def node_refs(clip: ClipBundle) -> dict[tuple[str, int], Any]:
    """(node type, database id) -> its id-free reference inside the clip's record."""
    refs: dict[tuple[str, int], Any] = {("annotation", clip.annotation["id"]): 0}
    refs.update({("shot", s["id"]): i for i, s in enumerate(clip.shots)})
    refs.update({("caption", c["id"]): i for i, c in enumerate(clip.captions)})
    refs.update({("speech_segment", s["id"]): i for i, s in enumerate(clip.speech)})
    for ci, character in enumerate(clip.characters):
        refs[("character", character.id)] = ci
        for ti, track in enumerate(character.tracks):
            refs[("track", track.id)] = [ci, ti]
            for frame in track.frames:
                refs[("keypoint_frame", frame.id)] = [ci, ti, frame.frame_index]
    return refs


def _pick(row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: row[f] for f in fields}


def clip_record(clip: ClipBundle) -> dict[str, Any]:
    refs = node_refs(clip)
    targets: dict[str, dict[int, int | None]] = {
        "clip": {0: None},
        "shot": {s["id"]: i for i, s in enumerate(clip.shots)},
        "character": {c.id: i for i, c in enumerate(clip.characters)},
    }
    comment_index = {c["id"]: i for i, c in enumerate(clip.comments)}
    return {
        "type": "clip",
        "clip": {**_pick(clip.clip, CLIP_FIELDS), "media": clip.media},
        "annotation": _pick(clip.annotation, ANNOTATION_FIELDS),
        "shots": [_pick(s, SHOT_FIELDS) for s in clip.shots],
        "characters": [
            {
                "name": ch.name, "kind": ch.kind, "skeleton": ch.skeleton,
                "reference_frame": ch.reference_frame, "emotions": ch.emotions,
                "source": ch.source, "status": ch.status, "version": ch.version,
                "updated_by": ch.updated_by, "drawing_runs": ch.drawing_runs,
                "timing": ch.timing,
                "tracks": [
                    {
                        "num_points": t.num_points, "source": t.source, "status": t.status,
                        "version": t.version, "updated_by": t.updated_by,
                        "frames": [
                            {"frame": f.frame_index, "points": b64(f.points),
                             "model_points": b64(f.model_points), "keyframe": f.is_keyframe,
                             "part_valid": f.part_valid, "flags": f.flags, "version": f.version,
                             "updated_by": f.updated_by, "box": f.box}
                            for f in t.frames
                        ],
                    }
                    for t in ch.tracks
                ],
            }
            for ch in clip.characters
        ],
        "captions": [
            {**_pick(c, CAPTION_FIELDS), "target": targets[c["level"]].get(c["target_id"])}
            for c in clip.captions
        ],
        "speech": [_pick(s, SPEECH_FIELDS) for s in clip.speech],
        "revisions": [
            {**_pick(r, REVISION_FIELDS), "node": refs.get((r["node_type"], r["node_id"]))}
            for r in clip.revisions
        ],
        "comments": [
            {**_pick(c, COMMENT_FIELDS), "node": refs.get((c["node_type"], c["node_id"])),
             "parent": comment_index.get(c["parent_id"])}
            for c in clip.comments
        ],
    }  # fmt: skip


def usernames(clip: ClipBundle) -> Iterator[str | None]:
    """Every account the clip's record names."""
    yield clip.annotation["annotator"]
    yield clip.annotation["updated_by"]
    for rows in (clip.shots, clip.captions, clip.speech):
        yield from (r["updated_by"] for r in rows)
    for ch in clip.characters:
        yield ch.updated_by
        for t in ch.tracks:
            yield t.updated_by
            yield from (f.updated_by for f in t.frames)
    yield from (r["user"] for r in clip.revisions)
    yield from (c["author"] for c in clip.comments)


class CellabelWriter:
    def __init__(self, out: Path, ctx: SnapshotContext) -> None:
        self.fh = (out / CELLABEL_FILE).open("w", encoding="utf-8")
        self.fh.write(dumps(header_record(ctx.project)) + "\n")
        self.user_roles = ctx.user_roles
        self.users: set[str] = set()

    def add(self, clip: ClipBundle) -> None:
        self.fh.write(dumps(clip_record(clip)) + "\n")
        self.users.update(u for u in usernames(clip) if u)

    def close(self) -> None:
        users = [{"username": u, "role": self.user_roles[u]} for u in sorted(self.users)]
        self.fh.write(dumps({"type": "users", "users": users}) + "\n")
        self.fh.close()
