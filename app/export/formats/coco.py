"""COCO keypoints JSON: COCO-WholeBody (133 points in five arrays) and COCO person (17).

Images are frames, named ``<clip key>/<frame:06d>.jpg`` (``.png`` when the export asks for
PNG) relative to their split's image folder, and carrying ``clip``, ``clip_id``,
``frame_index`` and ``split``; besides the whole file, ``coco/wholebody/<split>.json`` (or
``coco/person/``) holds each split. One annotation per (track, frame) with ``track_id`` the
clip's track index. Image and annotation ids are the stable ids of :mod:`app.export.formats.ids`.
Visibility is COCO's v (0 not labelled, 1 labelled but hidden, 2 visible), unlabelled points
are (0, 0, 0), and so is every point of a part that is not valid (COCO-WholeBody's
``data_format.md``: invalid parts are all-zero arrays). Documents are streamed
(:class:`CocoDocument`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.export.formats.boxes import person_boxes
from app.export.formats.bundle import (
    ClipBundle,
    JsonArray,
    SnapshotContext,
    drawn_boxes,
    dumps,
    group_by_frame,
    r2,
    wholebody_tracks,
)
from app.export.formats.ids import annotation_id, image_id
from app.projects.skeletons import (
    COCO_WHOLEBODY,
    Box,
    PoseArray,
    V,
    part_boxes,
    part_validity,
)

WHOLEBODY_FILE = "coco_wholebody.json"
PERSON_FILE = "coco_person_keypoints.json"
# (COCO-WholeBody array, first point, count, validity part, box field)
WHOLEBODY_PARTS: tuple[tuple[str, int, int, str, str | None], ...] = (
    ("foot_kpts", 17, 6, "feet", None),
    ("face_kpts", 23, 68, "face", "face_box"),
    ("lefthand_kpts", 91, 21, "left_hand", "lefthand_box"),
    ("righthand_kpts", 112, 21, "right_hand", "righthand_box"),
)
VALID_FIELDS = {"feet": "foot_valid", "face": "face_valid",
                "left_hand": "lefthand_valid", "right_hand": "righthand_valid"}  # fmt: skip
BODY = slice(0, 17)


def triples(poses: npt.NDArray[np.float32]) -> list[list[float | int]]:
    """Per pose of ``poses`` (frames, K, 4): flat ``[x, y, v, ...]``, unlabelled points as
    (0, 0, 0); all frames in one numpy pass."""
    seen = poses[..., V] > 0
    out = np.empty((*poses.shape[:2], 3), dtype=object)  # Python floats and ints for JSON
    out[..., :2] = np.round(poses[..., :2].astype(np.float64), 2)
    out[..., :2][~seen] = 0
    out[..., 2] = poses[..., V].astype(np.int64)
    return out.reshape(len(poses), -1).tolist()


def category() -> dict[str, Any]:
    body = COCO_WHOLEBODY.keypoints[BODY]
    edges = [e for e in COCO_WHOLEBODY.edges if e[0] < 17 and e[1] < 17]
    return {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(body),
            "skeleton": [[a + 1, b + 1] for a, b in edges]}  # fmt: skip


def without_invalid_parts(poses: PoseArray) -> PoseArray:
    """A copy of (frames, 133, 4) poses where every point of a part that is not valid is
    unlabelled (all zeros): COCO-WholeBody's invalid parts are all-zero arrays, and a point the
    file does not show must not stretch the box or keep an otherwise empty annotation."""
    out = poses.copy()
    for i, pose in enumerate(poses):
        validity = part_validity(pose, COCO_WHOLEBODY)
        for _, first, count, part, _ in WHOLEBODY_PARTS:
            if not validity[part]:
                out[i, first : first + count] = 0
    return out


def track_annotations(
    poses: PoseArray,
    *,
    whole_body: bool,
    width: float,
    height: float,
    drawn: Sequence[Box | None] = (),
) -> list[dict[str, Any] | None]:
    """The COCO annotation (without ids) of each 133-point pose of a track, (frames, 133, 4);
    None for a frame where nothing is labelled (in the body, for COCO person). Parts that are
    not valid are left out first (:func:`without_invalid_parts`), in both files, so the same
    annotation id has the same box in COCO-WholeBody and COCO person. The box is the person's
    ``drawn`` box of the frame where there is one, else the padded body box of
    :mod:`app.export.formats.boxes`, clipped to ``width`` x ``height``."""
    poses = without_invalid_parts(poses)
    seen = poses[..., V] > 0
    keep = (seen if whole_body else seen[:, BODY]).any(axis=1).tolist()
    body_count = seen[:, BODY].sum(axis=1).tolist()
    values = triples(poses if whole_body else poses[:, BODY])
    boxes = person_boxes(poses, width, height, drawn).tolist()
    out: list[dict[str, Any] | None] = []
    for i, pose in enumerate(poses):
        if not keep[i]:
            out.append(None)
            continue
        box = [r2(v) for v in boxes[i]]
        ann: dict[str, Any] = {
            "category_id": 1,
            "iscrowd": 0,
            "bbox": box,
            "area": r2(box[2] * box[3]),
            "keypoints": values[i][: 3 * BODY.stop],
            "num_keypoints": body_count[i],
        }
        if whole_body:
            part_box = part_boxes(pose, COCO_WHOLEBODY)  # None exactly for the parts not valid
            for name, first, count, part, box_field in WHOLEBODY_PARTS:
                found = part_box[part]
                ann[name] = values[i][3 * first : 3 * (first + count)]
                ann[VALID_FIELDS[part]] = found is not None
                if box_field:
                    ann[box_field] = [r2(v) for v in found] if found else [0, 0, 0, 0]
        out.append(ann)
    return out


class CocoDocument:
    """One COCO JSON file written as it goes: images straight to the file, annotations to a
    temporary file appended after them."""

    def __init__(self, path: Path, head: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("w", encoding="utf-8")
        # Annotations wait on disk until the images array is complete.
        self.pending = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.fh.write(head + '"images":')
        self.images = JsonArray(self.fh)
        self.images.open()
        self.annotations = JsonArray(self.pending)
        self.annotations.open()

    def close(self) -> None:
        self.images.close()
        self.annotations.close()
        self.fh.write(',"annotations":')
        self.pending.seek(0)
        shutil.copyfileobj(self.pending, self.fh)
        self.fh.write("}\n")
        self.pending.close()
        self.fh.close()


def split_file(whole_body: bool, split: str) -> str:
    """The COCO file of one split, e.g. ``coco/wholebody/train.json``."""
    return f"coco/{'wholebody' if whole_body else 'person'}/{split}.json"


class CocoWriter:
    """The whole snapshot in one file (each image carries its ``split``) and one file per
    split; ``file_name`` is relative to the split's image folder (``<image root>/<split>``)."""

    def __init__(self, out: Path, ctx: SnapshotContext, *, whole_body: bool) -> None:
        self.whole_body = whole_body
        self.ext = ctx.image_ext

        def head(split: str | None) -> str:
            info = {"description": f"CelLabel snapshot {ctx.name} of project {ctx.project['name']}",
                    "version": ctx.name, "date_created": ctx.created_at}  # fmt: skip
            if split:
                info["image_folder"] = f"{ctx.image_root}/{split}"
            return f'{{"info":{dumps(info)},"licenses":[],"categories":{dumps([category()])},'

        name = WHOLEBODY_FILE if whole_body else PERSON_FILE
        self.all = CocoDocument(out / name, head(None))
        self.splits = {
            split: CocoDocument(out / split_file(whole_body, split), head(split))
            for split in ctx.splits
        }

    def add(self, clip: ClipBundle) -> None:
        width, height = clip.clip["width"] or 0, clip.clip["height"] or 0
        drawn = drawn_boxes(clip)
        per_track = (
            (index, frames, track_annotations(
                poses, whole_body=self.whole_body, width=width, height=height,
                drawn=[drawn.get((index, f)) for f in frames]))
            for index, frames, poses in wholebody_tracks(clip)
        )  # fmt: skip
        clip_id = clip.clip["id"]
        docs = (self.all, self.splits[clip.split])
        for frame, people in group_by_frame(per_track):
            frame_id = image_id(clip_id, frame)
            image = {
                "id": frame_id, "file_name": f"{clip.key}/{frame:06d}.{self.ext}",
                "width": clip.clip["width"], "height": clip.clip["height"],
                "frame_index": frame, "clip": clip.key, "clip_id": clip_id,
                "split": clip.split,
            }  # fmt: skip
            for doc in docs:
                doc.images.add(image)
            for track_index, ann in people:
                if ann is not None:
                    ann.update(
                        id=annotation_id(clip_id, track_index, frame),
                        image_id=frame_id,
                        track_id=track_index,
                    )
                    for doc in docs:
                        doc.annotations.add(ann)

    def close(self) -> None:
        for doc in (self.all, *self.splits.values()):
            doc.close()


def wholebody_writer(out: Path, ctx: SnapshotContext) -> CocoWriter:
    return CocoWriter(out, ctx, whole_body=True)


def person_writer(out: Path, ctx: SnapshotContext) -> CocoWriter:
    return CocoWriter(out, ctx, whole_body=False)


def images_of_clip(coco: dict[str, Any], key: str, clip_id: int | None = None) -> dict[str, Any]:
    """The part of a COCO document that belongs to one clip (by ``clip`` key or ``clip_id``),
    in the shape :func:`app.annotations.drafts.import_coco_wholebody` reads."""
    images = [
        im for im in coco.get("images", [])
        if im.get("clip") == key or (clip_id is not None and im.get("clip_id") == clip_id)
    ]  # fmt: skip
    ids = {im["id"] for im in images}
    anns = [a for a in coco.get("annotations", []) if a.get("image_id") in ids]
    return {"images": images, "annotations": anns, "categories": coco.get("categories", [])}


def visibility(ann: dict[str, Any]) -> list[int]:
    """The 133 v values of a COCO-WholeBody annotation (0 for parts it lacks)."""
    values: list[int] = [int(v) for v in ann["keypoints"][2::3]]
    for name, _, count, _, _ in WHOLEBODY_PARTS:
        part = ann.get(name)
        values += [int(v) for v in part[2::3]] if part else [0] * count
    return values
