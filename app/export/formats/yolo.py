"""YOLO pose labels (Ultralytics layout): one ``.txt`` per frame plus ``data.yaml``.

``yolo/labels/<split>/<clip>/<frame:06d>.txt`` holds one line per character,
``0 cx cy w h x1 y1 v1 ... x133 y133 v133``, everything normalised by the frame size and
clamped to [0, 1]; v is COCO's (0 not labelled, 1 hidden, 2 visible), unlabelled points are
``0 0 0``. Each label belongs to the image ``yolo/images/<split>/<clip>/<frame:06d>.jpg``
(Ultralytics finds a label by replacing the last ``/images/`` of the image path with
``/labels/`` and the suffix with ``.txt``); the export writes the images there
(:mod:`app.export.frames`). ``<split>`` is the clip's split (:mod:`app.export.splits`). The
box is the person-drawn box where there is one, else the padded body box of
:mod:`app.export.formats.boxes` from the points of valid parts, as in COCO (so an annotation
has the same box in both).

``data.yaml`` has no ``path`` key: Ultralytics resolves a relative ``path`` against its own
datasets folder, and without one it uses the folder the yaml is in, which is what a snapshot
needs. It gives ``kpt_shape: [133, 3]`` and ``flip_idx`` from the skeleton's symmetric pairs.
"""

from __future__ import annotations

from pathlib import Path

from app.export.formats.boxes import person_box
from app.export.formats.bundle import ClipBundle, SnapshotContext, drawn_boxes, wholebody_frames
from app.export.formats.coco import without_invalid_parts
from app.projects.skeletons import COCO_WHOLEBODY, Box, PoseArray, V, X, Y

YOLO_IMAGES = "yolo/images"  # the frame images' root when the snapshot has YOLO labels


def labels_folder(key: str, split: str) -> str:
    """Where the label files of a clip go, relative to the ``yolo`` folder."""
    return f"labels/{split}/{key}"


def _f(value: float) -> str:
    return f"{min(1.0, max(0.0, float(value))):.6f}"


def label_line(pose: PoseArray, width: int, height: int, drawn: Box | None = None) -> str | None:
    """One YOLO pose line for a 133-point pose (``drawn``: the person-drawn box, if any);
    None when nothing is labelled."""
    box = person_box(without_invalid_parts(pose[None])[0], width, height, drawn)  # COCO's box
    if box is None:
        return None
    x0, y0, x1, y1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    parts = ["0", _f((x0 + x1) / 2 / width), _f((y0 + y1) / 2 / height),
             _f(max(0.0, x1 - x0) / width), _f(max(0.0, y1 - y0) / height)]  # fmt: skip
    for p in pose:
        if p[V] > 0:
            parts += [_f(p[X] / width), _f(p[Y] / height), str(int(p[V]))]
        else:
            parts += ["0", "0", "0"]
    return " ".join(parts)


def data_yaml(ctx: SnapshotContext) -> str:
    flip = ", ".join(str(i) for i in COCO_WHOLEBODY.mirror_permutation())
    splits = "".join(f"{split}: images/{split}\n" for split in ctx.splits)
    return (
        f"# CelLabel snapshot {ctx.name} of project {ctx.project['name']} ({ctx.created_at})\n"
        f"# Frame images are images/<split>/<clip>/<frame:06d>.{ctx.image_ext} beside"
        " labels/<split>/.\n"
        "# No path key: Ultralytics then resolves the splits against this file's folder.\n"
        f"{splits}"
        f"kpt_shape: [{COCO_WHOLEBODY.num_keypoints}, 3]\n"
        f"flip_idx: [{flip}]\n"
        "names:\n  0: person\n"
    )


class YoloWriter:
    def __init__(self, out: Path, ctx: SnapshotContext) -> None:
        self.root = out / "yolo"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data.yaml").write_text(data_yaml(ctx), encoding="utf-8")
        for split in ctx.splits:  # every split data.yaml names exists, if empty
            (self.root / labels_folder("", split)).mkdir(parents=True, exist_ok=True)

    def add(self, clip: ClipBundle) -> None:
        width, height = clip.clip["width"], clip.clip["height"]
        if not width or not height:
            return  # a clip without a probed size cannot be normalised
        drawn = drawn_boxes(clip)
        for frame, people in wholebody_frames(clip):
            lines = [label_line(pose, width, height, drawn.get((index, frame)))
                     for index, pose in people]  # fmt: skip
            text = "".join(f"{line}\n" for line in lines if line)
            if text:
                path = self.root / labels_folder(clip.key, clip.split) / f"{frame:06d}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="ascii")

    def close(self) -> None:
        pass


def yolo_writer(out: Path, ctx: SnapshotContext) -> YoloWriter:
    return YoloWriter(out, ctx)
