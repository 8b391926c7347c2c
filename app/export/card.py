"""The dataset card in every snapshot: ``README.md`` for people, ``stats.json`` for scripts,
and ``contact_sheet.png``, seeded random annotated frames with their skeletons drawn, because
people look before they read.

The numbers are counted from what the keypoint files write (invalid parts zeroed, as COCO
writes them), while the clips stream past; only a seeded sample of a few poses is kept for
the contact sheet, so memory does not grow with the snapshot.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from app.annotations.points import (
    SRC_ACCEPTED,
    SRC_MODEL,
    SRC_PERSON,
    SRC_TRACKED,
    decode_frames_with_sources,
)
from app.core.errors import Invalid
from app.core.storage_api import Storage
from app.export.formats.boxes import BOX_PADDING
from app.export.formats.bundle import ClipBundle, SnapshotContext, dumps, wholebody_tracks
from app.export.formats.coco import without_invalid_parts
from app.export.formats.drawing import draw_poses
from app.export.frames import IMAGE_FORMATS, frame_image
from app.export.options import ExportOptions
from app.media.decode import Image
from app.projects.skeletons import COCO_WHOLEBODY, PoseArray, V

README_FILE, STATS_FILE, SHEET_FILE = "README.md", "stats.json", "contact_sheet.png"
# clip,clip_id,split,storage_key,source,filename: one row per clip; ``source`` is where its
# file is read (`clip_file`)
SPLITS_FILE = "splits.csv"
# Where a clip's file is read from, as the card tells it
ARCHIVE, BUCKET, MEDIA_ROOT = "archive", "bucket", "media_root"
PLACES = (ARCHIVE, BUCKET, MEDIA_ROOT)
WHERE = {
    ARCHIVE: "in this archive (`media/`)",
    BUCKET: "in a bucket (`s3://bucket/key`, fetched with boto3 or the `aws` CLI using keys"
    " allowed to read it and, for a self-hosted store, `AWS_ENDPOINT_URL`)",
    MEDIA_ROOT: "under the CelLabel instance's MEDIA_ROOT (a path relative to it)",
}
SHEET_FRAMES, TILE_WIDTH, COLUMNS = 12, 320, 4
# KeypointFrame's stored ``src`` per point (app.annotations.points)
SOURCES = {
    SRC_MODEL: "model",
    SRC_PERSON: "person",
    SRC_ACCEPTED: "accepted",
    SRC_TRACKED: "tracked",
}


class CardWriter:
    def __init__(self, out: Path, ctx: SnapshotContext, options: ExportOptions) -> None:
        self.out, self.ctx, self.options = out, ctx, options
        self.clips: Counter[str] = Counter()  # per subset
        self.kinds: Counter[str] = Counter()  # characters per kind
        self.skeletons: Counter[str] = Counter()  # characters per skeleton
        self.split_clips: Counter[str] = Counter()
        self.split_images: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()  # labelled points per provenance
        self.labelled: Counter[str] = Counter()  # per COCO-WholeBody part
        self.points: Counter[str] = Counter()
        self.annotations = 0
        self.total_clips = 0
        self.overlapped = 0
        self.rng = random.Random(options.split_seed)
        self.sample: list[tuple[dict[str, Any], Storage, int, PoseArray]] = []
        self.seen_frames = 0
        self.splits_file = (out / SPLITS_FILE).open("w", encoding="utf-8", newline="")
        self.splits_csv = csv.writer(self.splits_file)
        self.splits_csv.writerow(["clip", "clip_id", "split", "storage_key", "source", "filename"])
        self.files: Counter[str] = Counter()  # clips' files per place (`clip_file`)

    def add(self, clip: ClipBundle) -> None:
        self.total_clips += 1
        c = clip.clip
        place, source = clip_file(clip)
        self.files[place] += 1
        self.splits_csv.writerow(
            [clip.key, c["id"], clip.split, c["storage_key"], source, c["filename"]]
        )
        self.clips.update(clip.clip["subsets"] or ["(none)"])
        self.split_clips[clip.split] += 1
        self.overlapped += bool(clip.agreement)
        for character in clip.characters:
            self.kinds[str(character.kind)] += 1
            self.skeletons[character.skeleton] += 1
            for track in character.tracks:
                if track.frames:
                    poses, sources = decode_frames_with_sources([f.points for f in track.frames])
                    for src, n in Counter(sources[poses[..., V] > 0].tolist()).items():
                        self.sources[SOURCES.get(src, str(src))] += n
        frames: set[int] = set()
        for _, numbers, poses in wholebody_tracks(clip):
            shown = without_invalid_parts(poses)
            seen = shown[..., V] > 0
            frames.update(numbers)
            self.annotations += int(seen.any(axis=1).sum())
            for part, idx in COCO_WHOLEBODY.parts.items():
                self.labelled[part] += int(seen[:, list(idx)].sum())
                self.points[part] += seen.shape[0] * len(idx)
            for i in np.flatnonzero(seen.any(axis=1)).tolist():
                self._offer(clip, numbers[i], shown[i])
        self.split_images[clip.split] += len(frames)

    def _offer(self, clip: ClipBundle, frame: int, pose: PoseArray) -> None:
        """Reservoir sampling: every labelled frame has the same chance to be drawn."""
        self.seen_frames += 1
        keep = {k: clip.clip[k] for k in ("id", "project_id", "storage_key", "width", "height")}
        if len(self.sample) < SHEET_FRAMES:
            self.sample.append((keep, clip.store, frame, pose))
        elif (j := self.rng.randrange(self.seen_frames)) < SHEET_FRAMES:
            self.sample[j] = (keep, clip.store, frame, pose)

    def stats(self) -> dict[str, Any]:
        o = self.options
        return {
            "snapshot": self.ctx.name, "project": self.ctx.project["name"],
            "created_at": self.ctx.created_at, "formats": list(self.ctx.formats),
            "clips": self.total_clips, "clips_per_subset": dict(sorted(self.clips.items())),
            "characters_per_kind": dict(sorted(self.kinds.items())),
            "characters_per_skeleton": dict(sorted(self.skeletons.items())),
            "splits": {s: {"clips": self.split_clips[s], "images": self.split_images[s]}
                       for s in self.ctx.splits},
            "split_options": {"val_percent": o.val_percent, "test_percent": o.test_percent,
                              "seed": o.split_seed},
            "keypoint_annotations": self.annotations,
            "labelled_share_per_part": {
                part: round(self.labelled[part] / self.points[part], 4) if self.points[part] else 0
                for part in COCO_WHOLEBODY.parts
            },
            "labelled_points_per_part": dict(self.labelled),
            "provenance_of_labelled_points": _shares(self.sources),
            "agreement": {"overlapped_clips": self.overlapped if "agreement" in self.ctx.formats
                          else None,
                          "project": [r for r in self.ctx.agreement_summary
                                      if r["scope"] == "project"]},
            "frames": {"included": o.frames and bool(IMAGE_FORMATS & set(self.ctx.formats)),
                       "format": o.image_format, "jpeg_quality": o.jpeg_quality,
                       "folder": self.ctx.image_root},
            "clip_files": {place: self.files[place] for place in PLACES},
            "box": {"from": "labelled body and feet points", "padding": BOX_PADDING},
            "licence": o.licence, "source": o.source,
            "project_configuration": self.ctx.project,
        }  # fmt: skip

    def close(self) -> None:
        self.splits_file.close()
        stats = self.stats()
        (self.out / STATS_FILE).write_text(dumps(stats) + "\n", encoding="utf-8")
        drawn = self._contact_sheet()
        (self.out / README_FILE).write_text(readme(stats, drawn), encoding="utf-8")

    def _contact_sheet(self) -> int:
        """Draw the sampled frames into contact_sheet.png; returns how many it shows."""
        tiles: list[npt.NDArray[np.uint8]] = []
        for clip, store, frame, pose in self.sample:
            try:
                bgr = frame_image(clip, store, frame)
                image = cast(Image, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            except Invalid:
                continue  # the clip's file is not readable here: the sheet shows the others
            draw_poses(image, [pose])
            tiles.append(_tile(image))
        if not tiles:
            return 0
        rows = [tiles[i : i + COLUMNS] for i in range(0, len(tiles), COLUMNS)]
        height = max(t.shape[0] for t in tiles)
        blank = np.zeros((height, TILE_WIDTH, 3), np.uint8)
        lines = [np.hstack([_pad(t, height) for t in row] + [blank] * (COLUMNS - len(row)))
                 for row in rows]  # fmt: skip
        cv2.imwrite(str(self.out / SHEET_FILE), cv2.cvtColor(np.vstack(lines), cv2.COLOR_RGB2BGR))
        return len(tiles)


def _shares(counts: Counter[str]) -> dict[str, Any]:
    total = sum(counts.values())
    return {"points": dict(counts), "shares": {k: round(v / total, 4) for k, v in counts.items()}
            if total else {}}  # fmt: skip


def _tile(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    height = max(1, round(image.shape[0] * TILE_WIDTH / image.shape[1]))
    return np.asarray(cv2.resize(image, (TILE_WIDTH, height), interpolation=cv2.INTER_AREA))


def _pad(tile: npt.NDArray[np.uint8], height: int) -> npt.NDArray[np.uint8]:
    return np.pad(tile, ((0, height - tile.shape[0]), (0, 0), (0, 0)))


def readme(stats: dict[str, Any], sheet_frames: int) -> str:
    """The card for people: what is in the snapshot, how it was split and labelled, and how
    its frame images are named (or recreated, when they were left out)."""
    frames, splits = stats["frames"], stats["splits"]
    lines = [
        f"# {stats['project']}: snapshot {stats['snapshot']}", "",
        f"Exported by CelLabel on {stats['created_at']}. Formats: {', '.join(stats['formats'])}."
        " The formats are described in CelLabel's docs/export-formats.md; `stats.json` holds"
        " every number below.", "",
        f"- Licence: {stats['licence'] or 'not stated'}",
        f"- Source: {stats['source'] or 'not stated'}", "",
        "## Contents", "",
        f"{stats['clips']} clips; {stats['keypoint_annotations']} keypoint annotations.", "",
        "| subset | clips |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in stats["clips_per_subset"].items()), "",
        "| character kind | characters |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in stats["characters_per_kind"].items()), "",
        "| skeleton | characters |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in stats["characters_per_skeleton"].items()), "",
        "## Split", "",
        "By clip (no clip on two sides), seeded, stratified by subset and character kind:"
        f" val {stats['split_options']['val_percent']} %, test"
        f" {stats['split_options']['test_percent']} %, seed {stats['split_options']['seed']}."
        " `splits.csv` gives each clip's split.", "",
        "| split | clips | images |", "|---|---|---|",
        *(f"| {k} | {v['clips']} | {v['images']} |" for k, v in splits.items()), "",
        "## Labels", "",
        "Share of COCO-WholeBody points labelled (v > 0), per part, as the keypoint files"
        " write them:", "",
        "| part | labelled share |", "|---|---|",
        *(f"| {k} | {v:.1%} |" for k, v in stats["labelled_share_per_part"].items()), "",
        "Who placed the labelled points (person, accepted model suggestion, model):"
        f" {_share_text(stats['provenance_of_labelled_points']['shares'])}.", "",
        f"Person boxes: the labelled body and feet points' box scaled by {BOX_PADDING} about"
        " its centre, clipped to the image; `area` is its width x height.", "",
        "## Agreement", "", *agreement_text(stats["agreement"]), "",
        "## Frames", "", *frames_text(frames, stats["clip_files"]), "",
    ]  # fmt: skip
    if sheet_frames:
        lines += [f"![{sheet_frames} random annotated frames]({SHEET_FILE})", ""]
    return "\n".join(lines)


def agreement_text(agreement: dict[str, Any]) -> list[str]:
    overlapped = agreement["overlapped_clips"]
    lines = [] if overlapped is None else [
        f"{overlapped} clips carry agreement scores (overlapped clips; `agreement.json`).", ""
    ]  # fmt: skip
    means = [f"- {r['metric']} ({r['level']}): {r['value']} over {r['n']}"
             for r in agreement["project"]]  # fmt: skip
    return lines + (["Project means:", "", *means] if means else ["No agreement scores yet."])


def _share_text(shares: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1%}" for k, v in sorted(shares.items())) or "no labelled points"


def clip_file(clip: ClipBundle) -> tuple[str, str]:
    """(place, source) of the clip's file as `splits.csv` names it: ``archive`` and its path
    in this archive when the snapshot copied it (``media``), ``bucket`` and its ``s3://``
    address, or ``media_root`` and its path under the instance's MEDIA_ROOT."""
    if clip.media:
        return ARCHIVE, clip.media
    key = str(clip.clip["storage_key"])
    url = clip.store.object_url(key)
    return (BUCKET, url) if url else (MEDIA_ROOT, key)


def frames_text(frames: dict[str, Any], files: dict[str, int]) -> list[str]:
    """How frame images are named; when they were left out, the commands recreating them
    from the clips' files, wherever this snapshot says they are (`clip_file`)."""
    ext, root = frames["format"], frames["folder"]
    named = (
        f"A frame image is `{root}/<split>/<clip>/<frame:06d>.{ext}`, frames numbered from 0"
        " as CelLabel numbers them; COCO `file_name`s are relative to `"
        f"{root}/<split>/` (each split file's `info.image_folder`), and YOLO pairs"
        " `images/` with `labels/`."
    )
    if frames["included"]:
        return [named]
    places = {place for place, count in files.items() if count}
    where = "; ".join(WHERE[place] for place in PLACES if place in places)
    return [
        named, "",
        "The images were left out of this archive. `splits.csv`'s `source` column says where"
        f" each clip's file is: {where or 'no clips'}. This recreates the images under the"
        " same names (every frame of each clip; ffmpeg's numbering starts at 1 unless told"
        " `-start_number 0`, and `-fps_mode passthrough` keeps one image per decoded frame):",
        "",
        "```sh",
        "tail -n +2 splits.csv | while IFS=, read -r clip clip_id split key source rest; do",
        *_shell_fetch(places),
        f'  mkdir -p "{root}/$split/$clip"',
        '  ffmpeg -nostdin -loglevel error -i "$source" -fps_mode passthrough \\',
        f'    -start_number 0 -q:v 2 "{root}/$split/$clip/%06d.{ext}"',
        "done", "```", "",
        "or, frame-exact as CelLabel decodes (PyAV, the stream's rotation applied):", "",
        "```python",
        "import csv, os, pathlib, av, cv2, numpy as np",
        "",
        *_python_fetch(places),
        "",
        "for row in csv.DictReader(open('splits.csv', newline='')):",
        f"    folder = pathlib.Path('{root}', row['split'], row['clip'])",
        "    folder.mkdir(parents=True, exist_ok=True)",
        "    with av.open(video_file(row['source'])) as video:",
        "        for n, frame in enumerate(video.decode(video=0)):",
        "            turns = round(frame.rotation / 90) % 4",
        "            image = np.rot90(frame.to_ndarray(format='bgr24'), turns)",
        f"            cv2.imwrite(str(folder / f'{{n:06d}}.{ext}'), np.ascontiguousarray(image),",
        f"                        [cv2.IMWRITE_JPEG_QUALITY, {frames['jpeg_quality']}])",
        "```",
    ]  # fmt: skip


def _shell_fetch(places: set[str]) -> list[str]:
    """The loop's lines making ``$source`` a file on this disk."""
    fetch = '"$source" "sources/$clip" && source="sources/$clip"'
    if places == {BUCKET}:
        return [f"  mkdir -p sources && aws s3 cp --quiet {fetch}"]
    if places == {MEDIA_ROOT}:
        return ['  source="$MEDIA_ROOT/$source"']
    if places == {BUCKET, MEDIA_ROOT}:
        return [
            '  case "$source" in',
            f"    s3://*) mkdir -p sources && aws s3 cp --quiet {fetch} ;;",
            '    *) source="$MEDIA_ROOT/$source" ;;',
            "  esac",
        ]
    return []  # in this archive: a path relative to it


def _python_fetch(places: set[str]) -> list[str]:
    """``video_file(source)``: a file on this disk with the clip's video."""
    lines = ["def video_file(source):"]
    if ARCHIVE in places or not places:
        return [*lines, "    return source  # inside this archive"]
    if BUCKET in places:
        lines += [
            "    if source.startswith('s3://'):  # keys and AWS_ENDPOINT_URL from the environment",
            "        import boto3",
            "        bucket, key = source[len('s3://'):].split('/', 1)",
            "        local = pathlib.Path('sources', bucket, key)",
            "        local.parent.mkdir(parents=True, exist_ok=True)",
            "        boto3.client('s3').download_file(bucket, key, str(local))",
            "        return str(local)",
        ]
    if MEDIA_ROOT in places:
        lines += ["    return os.path.join(os.environ['MEDIA_ROOT'], source)"]
    return lines
