"""Ground-truth schema of the sample clips and the skeleton layouts it refers to.

Every generated ``<name>.mp4`` has a ``<name>.json`` beside it holding a :class:`ClipTruth`.
Other modules (pipeline tests, agreement tests, benchmarks) rely on these key names.

Keypoint visibility follows COCO: ``v=0`` not labelled (never used here), ``v=1`` labelled but
not seen, ``v=2`` visible.  A point gets ``v=1`` when it lies outside the frame, when it sits on
the far side of the head (face landmarks, eyes, ears turned away from the camera), or when the
pixel under it belongs to another body part or another character drawn in front of it.  The
occlusion test uses an id buffer painted with the very shapes that make up the picture, so the
labels follow the drawing exactly.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, get_args

Subset = Literal["i2v", "pose", "face_video", "face_audio"]
Kind = Literal["humanoid", "animal", "creature", "object"]
Emotion = Literal[
    "amusement",
    "awe",
    "contentment",
    "excitement",
    "anger",
    "disgust",
    "fear",
    "sadness",
    "neutral",
]
# The 8 Mikels emotions, without "neutral" (drawn for emoting characters).
MIKELS_EMOTIONS: tuple[str, ...] = get_args(Emotion)[:-1]
CameraMotion = Literal["static", "pan_left", "pan_right", "zoom_in", "zoom_out"]
Timing = Literal["ones", "twos", "threes"]

SUBSETS: tuple[Subset, ...] = ("i2v", "pose", "face_video", "face_audio")
KINDS: tuple[Kind, ...] = ("humanoid", "animal", "creature", "object")
EMOTIONS: tuple[Emotion, ...] = (
    "amusement",
    "awe",
    "contentment",
    "excitement",
    "anger",
    "disgust",
    "fear",
    "sadness",
    "neutral",
)
CAMERA_MOTIONS: tuple[CameraMotion, ...] = (
    "static",
    "pan_left",
    "pan_right",
    "zoom_in",
    "zoom_out",
)
TIMINGS: dict[Timing, int] = {"ones": 1, "twos": 2, "threes": 3}

COCO_BODY = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO_FEET = (
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)
_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
HAND_POINTS = ("wrist", *(f"{f}{i}" for f in _FINGERS for i in range(1, 5)))
COCO_WHOLEBODY: tuple[str, ...] = (
    *COCO_BODY,
    *COCO_FEET,
    *(f"face{i}" for i in range(68)),
    *(f"left_hand_{p}" for p in HAND_POINTS),
    *(f"right_hand_{p}" for p in HAND_POINTS),
)
BODY, FEET, FACE, LEFT_HAND, RIGHT_HAND = (
    slice(0, 17),
    slice(17, 23),
    slice(23, 91),
    slice(91, 112),
    slice(112, 133),
)
AP10K: tuple[str, ...] = (
    "left_eye",
    "right_eye",
    "nose",
    "neck",
    "root_of_tail",
    "left_shoulder",
    "left_elbow",
    "left_front_paw",
    "right_shoulder",
    "right_elbow",
    "right_front_paw",
    "left_hip",
    "left_knee",
    "left_back_paw",
    "right_hip",
    "right_knee",
    "right_back_paw",
)
assert len(COCO_WHOLEBODY) == 133 and len(AP10K) == 17

Box = list[float]  # [x, y, w, h] in output pixels
Keypoint = list[float]  # [x, y, v]


class EmotionSpan(TypedDict):
    start: int
    end: int
    label: Emotion


class CharacterTruth(TypedDict):
    id: str
    name: str
    kind: Kind
    template: Literal["coco_wholebody", "animal"] | None
    motion: str
    colours: dict[str, str]
    keypoints: list[list[Keypoint]] | None
    boxes: list[Box | None]
    face_boxes: list[Box | None]
    emotions: list[EmotionSpan]
    # held runs of this character's drawings, each frame's move (app.media.drawings.DrawingRun
    # JSON), and the timing it is animated on
    drawing_runs: list[dict[str, Any]]
    timing: Timing


class CameraTruth(TypedDict):
    shot: int
    motion: CameraMotion
    background: str


class Tags(TypedDict):
    time_of_day: Literal["day", "dusk", "night"]
    venue: Literal["outdoor", "indoor"]
    framing: Literal["wide", "medium", "close_up"]
    count: Literal["solo", "multiple"]


class ClipTruth(TypedDict):
    clip: str
    seed: int
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    subsets: list[Subset]
    timing: Timing
    drawing_motion: Literal["held", "slide", "pan", "zoom"]
    shots: list[list[int]]
    held_runs: list[list[int]]
    camera: list[CameraTruth]
    tags: Tags
    characters: list[CharacterTruth]
    has_audio: bool
    speech: list[list[float]]
