"""One manifest per MagicAnime subset (``manifests/<subset>.jsonl``) and the agreement file.

A manifest line points at a clip's file (``media`` inside the snapshot when the ``media``
format copied it, and always ``storage_key``, its key in its store: see ``splits.csv``) and at its
annotations in the other formats of the same snapshot that matter for the subset.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from app.export.formats.bundle import SUBSETS, ClipBundle, JsonArray, SnapshotContext, dumps
from app.export.formats.captions import CAPTIONS_FILE
from app.export.formats.coco import PERSON_FILE, WHOLEBODY_FILE
from app.export.formats.yolo import labels_folder

CELLABEL_FILE = "cellabel.jsonl"
AGREEMENT_FILE = "agreement.json"
KEYPOINT_FORMATS = ("coco_wholebody", "coco_person", "openpose", "yolo")
SUBSET_FORMATS: dict[str, tuple[str, ...]] = {
    "i2v": ("captions", "cellabel", "agreement"),
    "pose": (*KEYPOINT_FORMATS, "captions", "cellabel", "agreement"),
    "face_video": (*KEYPOINT_FORMATS, "captions", "cellabel", "agreement"),
    "face_audio": (*KEYPOINT_FORMATS, "captions", "cellabel", "agreement"),
}


def annotation_paths(key: str, split: str, formats: tuple[str, ...], subset: str) -> dict[str, str]:
    where = {
        "coco_wholebody": WHOLEBODY_FILE, "coco_person": PERSON_FILE,
        "openpose": f"openpose/{key}/", "yolo": f"yolo/{labels_folder(key, split)}/",
        "captions": CAPTIONS_FILE, "cellabel": CELLABEL_FILE, "agreement": AGREEMENT_FILE,
    }  # fmt: skip
    return {f: where[f] for f in SUBSET_FORMATS[subset] if f in formats}


def manifest_record(clip: ClipBundle, subset: str, formats: tuple[str, ...]) -> dict[str, Any]:
    c = clip.clip
    record: dict[str, Any] = {
        "clip": clip.key, "clip_id": c["id"], "external_id": c["external_id"],
        "filename": c["filename"], "content_hash": c["content_hash"],
        "media": clip.media, "storage_key": c["storage_key"],
        "fps": c["fps"], "frame_count": c["frame_count"], "width": c["width"],
        "height": c["height"], "duration_s": c["duration_s"], "has_audio": c["has_audio"],
        "split": clip.split,
        "annotations": annotation_paths(clip.key, clip.split, formats, subset),
    }  # fmt: skip
    if subset == "face_video":
        record["emotions"] = [
            {"character": ch.name, **span} for ch in clip.characters for span in ch.emotions
        ]
    if subset == "face_audio":
        record["speech"] = [[s["start_s"], s["end_s"]] for s in clip.speech]
    return record


class ManifestsWriter:
    def __init__(self, out: Path, ctx: SnapshotContext) -> None:
        folder = out / "manifests"
        folder.mkdir(parents=True, exist_ok=True)
        self.formats = ctx.formats
        self.files: dict[str, IO[str]] = {
            s: (folder / f"{s}.jsonl").open("w", encoding="utf-8") for s in SUBSETS
        }

    def add(self, clip: ClipBundle) -> None:
        for subset in clip.clip["subsets"]:
            if subset in self.files:
                line = dumps(manifest_record(clip, subset, self.formats))
                self.files[subset].write(line + "\n")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


class AgreementWriter:
    """``agreement.json``: the project's rollups, then the stored scores of each clip."""

    def __init__(self, out: Path, ctx: SnapshotContext) -> None:
        self.fh = (out / AGREEMENT_FILE).open("w", encoding="utf-8")
        self.fh.write(f'{{"summary":{dumps(list(ctx.agreement_summary))},"clips":')
        self.clips = JsonArray(self.fh)
        self.clips.open()

    def add(self, clip: ClipBundle) -> None:
        if clip.agreement:
            self.clips.add({"clip": clip.key, "clip_id": clip.clip["id"], "scores": clip.agreement})

    def close(self) -> None:
        self.clips.close()
        self.fh.write("}\n")
        self.fh.close()


def manifests_writer(out: Path, ctx: SnapshotContext) -> ManifestsWriter:
    return ManifestsWriter(out, ctx)


def agreement_writer(out: Path, ctx: SnapshotContext) -> AgreementWriter:
    return AgreementWriter(out, ctx)
