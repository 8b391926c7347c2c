"""Skeleton templates and helpers for CelLabel's canonical pose array.

A pose is one character in one frame: a float32 array of shape (K, 4) whose columns are
x, y (pixels in the original frame), v (COCO visibility: 0 not labelled, 1 labelled but
hidden, 2 visible) and conf (model confidence 0..1, 1.0 for points a person placed).
Following COCO, a point with v=0 has x=y=0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

PoseArray = npt.NDArray[np.float32]
Box = tuple[float, float, float, float]  # x, y, w, h (COCO bbox)

X, Y, V, CONF = 0, 1, 2, 3
V_UNLABELLED, V_HIDDEN, V_VISIBLE = 0, 1, 2

# A custom skeleton without sigmas gets this OKS sigma per point: a middle value of the
# COCO body sigmas (0.025 for eyes .. 0.107 for hips), so agreement is neither lenient
# like a hip nor strict like an eye until an admin sets real values.
DEFAULT_SIGMA = 0.05
_PALETTE = ("#3399ff", "#ff8000", "#00cc66", "#cc33cc", "#ffcc00", "#33cccc", "#ff3366")
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Point and part names are shown in the workspace and written into exports: plain words.
_PLAIN_NAME = re.compile(r"\w[\w.\-]{0,63}")
MAX_KEYPOINTS = 512


@dataclass(frozen=True)
class Skeleton:
    """A keypoint template. Invalid definitions raise ValueError at construction.

    ``parts`` must partition the points (every point in exactly one part); parts and
    colours missing from a definition are filled in (one part ``body``, palette colours).
    """

    name: str
    keypoints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    symmetric_pairs: tuple[tuple[int, int], ...] = ()
    parts: Mapping[str, tuple[int, ...]] = field(default_factory=dict, hash=False)
    part_colors: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "keypoints", tuple(str(n) for n in self.keypoints))
        set_(self, "edges", tuple((int(a), int(b)) for a, b in self.edges))
        set_(self, "sigmas", tuple(float(s) for s in self.sigmas))
        set_(self, "symmetric_pairs", tuple((int(a), int(b)) for a, b in self.symmetric_pairs))
        parts = {str(p): tuple(int(i) for i in idx) for p, idx in self.parts.items()}
        set_(self, "parts", parts or {"body": tuple(range(len(self.keypoints)))})
        colors = {str(p): str(c) for p, c in self.part_colors.items()}
        for n, part in enumerate(self.parts):
            colors.setdefault(part, _PALETTE[n % len(_PALETTE)])
        set_(self, "part_colors", colors)
        self._validate()

    def _fail(self, message: str) -> None:
        raise ValueError(f"skeleton {self.name!r}: {message}")

    def _validate(self) -> None:
        k = len(self.keypoints)
        if not self.name.strip():
            raise ValueError("skeleton name must not be empty")
        if k == 0:
            self._fail("needs at least one keypoint")
        if any(not n.strip() for n in self.keypoints):
            self._fail("keypoint names must not be empty")
        if k > MAX_KEYPOINTS:
            self._fail(f"has {k} keypoints; at most {MAX_KEYPOINTS}")
        names = (*self.keypoints, *self.parts)
        odd = next((n for n in names if not _PLAIN_NAME.fullmatch(n)), None)
        if odd is not None:
            self._fail(
                f"{odd!r} is not a plain name: use letters, digits, '_', '-' and '.', "
                "at most 64 characters"
            )
        dupes = sorted({n for n in self.keypoints if self.keypoints.count(n) > 1})
        if dupes:
            self._fail(f"duplicate keypoint names: {', '.join(dupes)}")
        for a, b in self.edges:
            if not (0 <= a < k and 0 <= b < k):
                self._fail(f"edge ({a}, {b}) is out of range for {k} keypoints")
            if a == b:
                self._fail(f"edge ({a}, {b}) joins a keypoint to itself")
        if len(self.sigmas) != k:
            self._fail(f"expected {k} sigmas, got {len(self.sigmas)}")
        for n, s in zip(self.keypoints, self.sigmas, strict=True):
            if not (math.isfinite(s) and s > 0):
                self._fail(f"sigma of {n!r} must be a positive number, got {s}")
        paired: set[int] = set()
        for a, b in self.symmetric_pairs:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                self._fail(f"symmetric pair ({a}, {b}) must join two distinct keypoints")
            if a in paired or b in paired:
                self._fail(f"symmetric pair ({a}, {b}) reuses a keypoint of another pair")
            paired.update((a, b))
        owner: dict[int, str] = {}
        for part, idx in self.parts.items():
            if not idx:
                self._fail(f"part {part!r} has no keypoints")
            for i in idx:
                if not 0 <= i < k:
                    self._fail(f"part {part!r} has index {i}, out of range for {k} keypoints")
                if i in owner:
                    self._fail(
                        f"keypoint {self.keypoints[i]!r} is in parts {owner[i]!r} and {part!r}"
                    )
                owner[i] = part
        missing = [self.keypoints[i] for i in range(k) if i not in owner]
        if missing:
            self._fail(f"keypoints in no part: {', '.join(missing)}")
        for part, color in self.part_colors.items():
            if part not in self.parts:
                self._fail(f"colour given for unknown part {part!r}")
            if not _HEX_COLOR.match(color):
                self._fail(f"colour of part {part!r} must be '#rrggbb', got {color!r}")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def index(self, keypoint: str) -> int:
        """Index of a keypoint by name (ValueError when unknown)."""
        try:
            return self.keypoints.index(keypoint)
        except ValueError:
            raise ValueError(f"skeleton {self.name!r} has no keypoint {keypoint!r}") from None

    def mirror_permutation(self) -> tuple[int, ...]:
        """perm[i] is the point that i becomes after a left/right swap (itself if unpaired)."""
        perm = list(range(self.num_keypoints))
        for a, b in self.symmetric_pairs:
            perm[a], perm[b] = b, a
        return tuple(perm)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready definition that ``from_dict`` reads back unchanged."""
        return {
            "name": self.name,
            "keypoints": list(self.keypoints),
            "edges": [list(e) for e in self.edges],
            "sigmas": list(self.sigmas),
            "symmetric_pairs": [list(p) for p in self.symmetric_pairs],
            "parts": {p: list(idx) for p, idx in self.parts.items()},
            "part_colors": dict(self.part_colors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Skeleton:
        """Build a (custom) skeleton. Edges and symmetric pairs may name their points
        instead of indexing them; ``sigmas`` defaults to DEFAULT_SIGMA for every point."""
        if not isinstance(data, Mapping):
            raise ValueError("a skeleton definition must be a JSON object")
        for key in ("name", "keypoints"):
            if key not in data:
                raise ValueError(f"skeleton definition is missing {key!r}")
        name = str(data["name"])
        keypoints = [str(n) for n in data["keypoints"]]

        def idx(ref: Any) -> int:
            if isinstance(ref, str):
                if ref not in keypoints:
                    raise ValueError(f"skeleton {name!r}: unknown keypoint {ref!r}")
                return keypoints.index(ref)
            if isinstance(ref, bool) or not isinstance(ref, int):
                raise ValueError(f"skeleton {name!r}: {ref!r} is neither an index nor a name")
            return ref

        def pairs(key: str) -> list[tuple[int, int]]:
            out = []
            for pair in data.get(key, ()):
                if isinstance(pair, str) or len(pair) != 2:
                    raise ValueError(
                        f"skeleton {name!r}: {key} entries must be pairs, got {pair!r}"
                    )
                out.append((idx(pair[0]), idx(pair[1])))
            return out

        return cls(
            name=name,
            keypoints=tuple(keypoints),
            edges=tuple(pairs("edges")),
            sigmas=tuple(data.get("sigmas") or [DEFAULT_SIGMA] * len(keypoints)),
            symmetric_pairs=tuple(pairs("symmetric_pairs")),
            parts={p: tuple(idx(i) for i in ix) for p, ix in dict(data.get("parts", {})).items()},
            part_colors=dict(data.get("part_colors", {})),
        )


# --- built-in templates ------------------------------------------------------------------

_COCO_BODY = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
_COCO_FEET = (
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
_FACE68 = tuple(f"face_{i}" for i in range(68))
# Hand order of COCO-WholeBody (the OpenPose hand layout): root, then 4 joints per finger
# from palm to tip.
_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
_HAND = ("hand_wrist", *(f"{finger}{j}" for finger in _FINGERS for j in range(1, 5)))
_LEFT_HAND = tuple(f"left_{n}" for n in _HAND)
_RIGHT_HAND = tuple(f"right_{n}" for n in _HAND)

# OKS sigmas. COCO body: pycocotools COCOeval Params.kpt_oks_sigmas. Feet, face and hands:
# the COCO-WholeBody evaluation code, github.com/jin-s13/COCO-WholeBody
# evaluation/myeval_wholebody.py (computeOks), identical to mmpose
# configs/_base_/datasets/coco_wholebody.py.
_SIGMAS_BODY = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip
_SIGMAS_FEET = (0.068, 0.066, 0.066, 0.092, 0.094, 0.094)
_SIGMAS_FACE = (
    0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032,
    0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011,
    0.011, 0.013, 0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010,
    0.017, 0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034,
    0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
    0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.010, 0.008,
)  # fmt: skip
_SIGMAS_HAND = (
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
    0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031,
)  # fmt: skip

# COCO person skeleton (pycocotools / mmpose coco_wholebody.py), 0-based.
_BODY_EDGES = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
_FEET_EDGES = ((15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22))


def _chain(start: int, end: int, *, closed: bool = False) -> list[tuple[int, int]]:
    edges = [(i, i + 1) for i in range(start, end)]
    return [*edges, (end, start)] if closed else edges


def _face_edges(offset: int) -> tuple[tuple[int, int], ...]:
    """Contours of the 68-point iBUG layout: jaw, brows, nose bridge, nostrils, eyes and
    the outer and inner lips (eyes and lips closed)."""
    edges = [
        *_chain(0, 16), *_chain(17, 21), *_chain(22, 26), *_chain(27, 30), *_chain(31, 35),
        *_chain(36, 41, closed=True), *_chain(42, 47, closed=True),
        *_chain(48, 59, closed=True), *_chain(60, 67, closed=True),
    ]  # fmt: skip
    return tuple((a + offset, b + offset) for a, b in edges)


def _hand_edges(offset: int) -> tuple[tuple[int, int], ...]:
    """Root to each finger's first joint, then along each finger."""
    edges: list[tuple[int, int]] = []
    for finger in range(5):
        base = 1 + 4 * finger
        edges += [(0, base), *_chain(base, base + 3)]
    return tuple((a + offset, b + offset) for a, b in edges)


def _face_pairs(offset: int) -> tuple[tuple[int, int], ...]:
    """Mirror pairs of the iBUG layout (same as mmpose's 'swap' table)."""
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows, outer end to outer end
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    return tuple((a + offset, b + offset) for a, b in pairs)


def _name_pairs(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Pair every 'left_*' point with its 'right_*' namesake."""
    return tuple(
        (i, names.index("right_" + n[5:]))
        for i, n in enumerate(names)
        if n.startswith("left_") and "right_" + n[5:] in names
    )


def _coco_wholebody() -> Skeleton:
    names = _COCO_BODY + _COCO_FEET + _FACE68 + _LEFT_HAND + _RIGHT_HAND
    return Skeleton(
        name="coco_wholebody",
        keypoints=names,
        edges=_BODY_EDGES + _FEET_EDGES + _face_edges(23) + _hand_edges(91) + _hand_edges(112),
        sigmas=_SIGMAS_BODY + _SIGMAS_FEET + _SIGMAS_FACE + _SIGMAS_HAND + _SIGMAS_HAND,
        symmetric_pairs=_name_pairs(names) + _face_pairs(23),
        parts={
            "body": tuple(range(0, 17)),
            "feet": tuple(range(17, 23)),
            "face": tuple(range(23, 91)),
            "left_hand": tuple(range(91, 112)),
            "right_hand": tuple(range(112, 133)),
        },
        part_colors={
            "body": "#3399ff",
            "feet": "#ffcc00",
            "face": "#e6e6e6",
            "left_hand": "#00cc66",
            "right_hand": "#ff8000",
        },
    )


# AP-10K (mmpose configs/_base_/datasets/ap10k.py): point order, links and sigmas. mmpose
# notes the paper gives no sigmas; these are its COCO-derived values.
_AP10K = (
    "left_eye", "right_eye", "nose", "neck", "root_of_tail",
    "left_shoulder", "left_elbow", "left_front_paw",
    "right_shoulder", "right_elbow", "right_front_paw",
    "left_hip", "left_knee", "left_back_paw",
    "right_hip", "right_knee", "right_back_paw",
)  # fmt: skip
_AP10K_SIGMAS = (
    0.025, 0.025, 0.026, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip
_AP10K_EDGES = (
    (0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (3, 5), (5, 6), (6, 7), (3, 8), (8, 9),
    (9, 10), (4, 11), (11, 12), (12, 13), (4, 14), (14, 15), (15, 16),
)  # fmt: skip


def _builtins() -> dict[str, Skeleton]:
    wholebody = _coco_wholebody()
    coco17 = Skeleton(
        name="coco17",
        keypoints=_COCO_BODY,
        edges=_BODY_EDGES,
        sigmas=_SIGMAS_BODY,
        symmetric_pairs=_name_pairs(_COCO_BODY),
        parts={"body": tuple(range(17))},
        part_colors={"body": wholebody.part_colors["body"]},
    )
    face68 = Skeleton(
        name="face68",
        keypoints=_FACE68,
        edges=_face_edges(0),
        sigmas=_SIGMAS_FACE,
        symmetric_pairs=_face_pairs(0),
        parts={"face": tuple(range(68))},
        part_colors={"face": wholebody.part_colors["face"]},
    )
    animal = Skeleton(
        name="animal",
        keypoints=_AP10K,
        edges=_AP10K_EDGES,
        sigmas=_AP10K_SIGMAS,
        symmetric_pairs=_name_pairs(_AP10K),
        parts={
            "head": (0, 1, 2),
            "torso": (3, 4),
            "left_front_leg": (5, 6, 7),
            "right_front_leg": (8, 9, 10),
            "left_back_leg": (11, 12, 13),
            "right_back_leg": (14, 15, 16),
        },
        part_colors={
            "head": "#3399ff",
            "torso": "#cc33cc",
            "left_front_leg": "#00cc66",
            "right_front_leg": "#ff8000",
            "left_back_leg": "#33cccc",
            "right_back_leg": "#ffcc00",
        },
    )
    return {s.name: s for s in (wholebody, coco17, face68, animal)}


BUILTIN_SKELETONS: dict[str, Skeleton] = _builtins()
COCO_WHOLEBODY = BUILTIN_SKELETONS["coco_wholebody"]


def get_skeleton(name: str) -> Skeleton:
    """A built-in skeleton by name (custom ones live in the database)."""
    try:
        return BUILTIN_SKELETONS[name]
    except KeyError:
        known = ", ".join(BUILTIN_SKELETONS)
        raise ValueError(f"unknown skeleton {name!r} (built-in: {known})") from None


# --- pose array helpers ------------------------------------------------------------------


def empty_pose(k: int) -> PoseArray:
    """K points, none labelled."""
    return np.zeros((k, 4), dtype=np.float32)


def as_pose(data: Any, k: int | None = None) -> PoseArray:
    """Check and convert array-like data to a (K, 4) float32 pose (ValueError if malformed)."""
    pose = np.asarray(data, dtype=np.float32)
    if pose.ndim != 2 or pose.shape[1] != 4:
        raise ValueError(f"a pose must have shape (K, 4), got {pose.shape}")
    if k is not None and pose.shape[0] != k:
        raise ValueError(f"expected {k} points, got {pose.shape[0]}")
    if not np.isfinite(pose).all():
        raise ValueError("a pose must not contain NaN or infinity")
    if not np.isin(pose[:, V], (V_UNLABELLED, V_HIDDEN, V_VISIBLE)).all():
        raise ValueError("visibility must be 0, 1 or 2")
    return pose


def part_validity(
    pose: PoseArray, skeleton: Skeleton, *, min_visible_fraction: float = 0.25
) -> dict[str, bool]:
    """A part is valid when at least this fraction of its points (and at least one) is
    visible (v=2) -- COCO-WholeBody's "clear enough to label" flag, by count."""
    pose = as_pose(pose, skeleton.num_keypoints)
    visible = pose[:, V] == V_VISIBLE
    return {
        part: int(visible[list(idx)].sum()) >= max(1, math.ceil(min_visible_fraction * len(idx)))
        for part, idx in skeleton.parts.items()
    }


def part_boxes(
    pose: PoseArray, skeleton: Skeleton, *, min_visible_fraction: float = 0.25
) -> dict[str, Box | None]:
    """Tight (x, y, w, h) box of the labelled points of each valid part; None otherwise."""
    validity = part_validity(pose, skeleton, min_visible_fraction=min_visible_fraction)
    boxes: dict[str, Box | None] = {}
    for part, idx in skeleton.parts.items():
        if not validity[part]:
            boxes[part] = None
            continue
        pts = pose[list(idx)]
        pts = pts[pts[:, V] > V_UNLABELLED]
        x0, y0 = float(pts[:, X].min()), float(pts[:, Y].min())
        boxes[part] = (x0, y0, float(pts[:, X].max()) - x0, float(pts[:, Y].max()) - y0)
    return boxes


def pack_part_validity(validity: Mapping[str, bool], skeleton: Skeleton) -> int:
    """Bit i set when the skeleton's i-th part is valid (the KeypointFrame.part_valid column)."""
    return sum(1 << i for i, part in enumerate(skeleton.parts) if validity.get(part))


def unpack_part_validity(bits: int, skeleton: Skeleton) -> dict[str, bool]:
    """Inverse of pack_part_validity."""
    return {part: bool(bits >> i & 1) for i, part in enumerate(skeleton.parts)}
