"""How a cartoon person moves: the pose (joint angles, lift, turn, face expression) of each
motion at a time, which :mod:`app.samples.humanoid` then builds in 3-D and draws.

Angles are in degrees, lengths in body heights; see :mod:`app.samples.humanoid` for the axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from app.samples.canvas import FloatArray
from app.samples.truth import Emotion


@dataclass(frozen=True)
class FaceParams:
    smile: float = 0.1
    open: float = 0.0
    brow_raise: float = 0.0
    brow_angle: float = 0.0  # > 0 inner ends down (anger), < 0 inner ends up (sadness, fear)
    eye_open: float = 1.0


EXPRESSIONS: dict[Emotion, FaceParams] = {
    "neutral": FaceParams(),
    "amusement": FaceParams(smile=1.0, open=0.35, eye_open=0.55),
    "awe": FaceParams(smile=0.0, open=0.55, brow_raise=1.0, eye_open=1.3),
    "contentment": FaceParams(smile=0.6, eye_open=0.65),
    "excitement": FaceParams(smile=1.0, open=0.6, brow_raise=0.6, eye_open=1.25),
    "anger": FaceParams(smile=-0.6, open=0.1, brow_angle=1.0, eye_open=0.8),
    "disgust": FaceParams(smile=-0.5, open=0.05, brow_angle=0.5, eye_open=0.55),
    "fear": FaceParams(smile=-0.35, open=0.45, brow_raise=0.8, brow_angle=-0.8, eye_open=1.35),
    "sadness": FaceParams(smile=-0.9, brow_angle=-1.0, eye_open=0.7),
}


@dataclass
class Arm:
    upper_a: float = 8.0  # abduction from hanging, degrees
    upper_f: float = 0.0  # forward flexion, degrees
    fore_a: float = 5.0
    fore_f: float = 10.0
    spread: float = 0.3
    curl: float = 0.3


@dataclass
class Leg:
    thigh_a: float = 3.0
    thigh_f: float = 0.0
    shin_a: float = 2.0
    shin_f: float = 0.0


@dataclass
class Pose:
    dx: float = 0.0  # root offset in body heights
    lift: float = 0.0  # height above the ground in body heights
    yaw: float = 0.0
    head_yaw: float = 0.0
    roll: float = 0.0
    lean: float = 0.0
    breath: float = 0.0
    left_arm: Arm = field(default_factory=Arm)
    right_arm: Arm = field(default_factory=Arm)
    left_leg: Leg = field(default_factory=Leg)
    right_leg: Leg = field(default_factory=Leg)
    face: FaceParams = field(default_factory=FaceParams)
    blink: float = 0.0


def limb_direction(a_deg: float, f_deg: float, side: float) -> FloatArray:
    """Unit vector of a limb abducted ``a_deg`` and flexed forward ``f_deg`` (``side`` 1 left)."""
    a, f = math.radians(a_deg), math.radians(f_deg)
    return np.array(
        [
            side * math.sin(a) * math.cos(f),
            math.cos(a) * math.cos(f),
            math.cos(a) * math.sin(f) if abs(math.cos(a)) > 1e-6 else math.sin(f),
        ]
    )


def _emote_body(p: Pose, label: Emotion, t: float) -> None:
    s = math.sin(2 * math.pi * 1.2 * t)
    if label == "excitement":
        for arm in (p.left_arm, p.right_arm):
            arm.upper_a, arm.fore_a, arm.spread, arm.curl = 145 + 10 * s, 170 + 10 * s, 1.0, 0.0
        p.lift = 0.02 * abs(s)
    elif label == "anger":
        for arm in (p.left_arm, p.right_arm):
            arm.upper_a, arm.upper_f, arm.fore_a, arm.fore_f, arm.curl = 20, 10, 30, 70 + 8 * s, 1.0
    elif label == "fear":
        for arm in (p.left_arm, p.right_arm):
            arm.upper_a, arm.upper_f, arm.fore_a, arm.fore_f = 25, 35, 150 + 6 * s, 20
            arm.spread, arm.curl = 1.0, 0.1
        p.lean = -0.02
    elif label == "sadness":
        p.roll = 6 + 2 * s
        p.breath = -0.01
    elif label in ("amusement", "contentment"):
        for arm in (p.left_arm, p.right_arm):
            arm.upper_a, arm.upper_f, arm.fore_a, arm.fore_f = 25, 15, -40, 60
        p.roll = 4 * s if label == "amusement" else 0.0
    elif label == "awe":
        p.right_arm.upper_a, p.right_arm.upper_f, p.right_arm.fore_a, p.right_arm.fore_f = (
            20,
            40,
            165,
            25,
        )
        p.right_arm.spread = 1.0
        p.head_yaw = 8 * s
    elif label == "disgust":
        p.left_arm.upper_a, p.left_arm.upper_f, p.left_arm.fore_a, p.left_arm.fore_f = (
            35,
            30,
            130,
            20,
        )
        p.left_arm.spread, p.left_arm.curl = 1.0, 0.0
        p.head_yaw = -20
    p.head_yaw += 6 * math.sin(2 * math.pi * 0.4 * t)


def human_pose(motion: str, t: float, direction: float, emotion: Emotion, mouth: float) -> Pose:
    """Pose of a humanoid at time t (s) for a motion; ``mouth`` in [0, 1] is the speech opening."""
    p = Pose()
    p.breath = 0.006 * math.sin(2 * math.pi * 0.35 * t)
    p.left_arm.fore_f = p.right_arm.fore_f = 10 + 6 * math.sin(2 * math.pi * 0.5 * t)
    if motion in ("walk", "run"):
        run = motion == "run"
        phi = 2 * math.pi * (1.35 if run else 0.9) * t
        amp, bend = (40.0, 85.0) if run else (25.0, 40.0)
        p.yaw = direction * (65.0 if run else 55.0)
        p.dx = direction * (0.95 if run else 0.38) * t
        p.lean = 0.05 if run else 0.0
        for leg, arm, sgn in ((p.left_leg, p.left_arm, 1.0), (p.right_leg, p.right_arm, -1.0)):
            leg.thigh_f = sgn * amp * math.sin(phi)
            leg.shin_f = leg.thigh_f - bend * max(0.0, sgn * math.cos(phi)) - (10 if run else 0)
            arm.upper_f = -sgn * (0.9 * amp) * math.sin(phi)
            arm.fore_f = arm.upper_f + (80 if run else 20)
            arm.curl = 0.7 if run else 0.35
        if run:
            p.lift = 0.03 * abs(math.sin(phi))
    elif motion == "wave":
        p.yaw = 12 * math.sin(0.6 * t)
        r = p.right_arm
        r.upper_a, r.upper_f, r.fore_a, r.fore_f = (
            115,
            10,
            160 + 22 * math.sin(2 * math.pi * 1.8 * t),
            0,
        )
        r.spread, r.curl = 1.0, 0.0
    elif motion == "jump":
        period = 1.4
        ph = (t % period) / period
        k = 0.0
        if ph < 0.25:
            k = math.sin(ph / 0.25 * math.pi / 2)
        elif ph < 0.75:
            p.lift = 0.3 * math.sin((ph - 0.25) / 0.5 * math.pi)
            for arm in (p.left_arm, p.right_arm):
                arm.upper_a, arm.fore_a, arm.spread, arm.curl = 150, 165, 1.0, 0.0
            k = 0.3
        else:
            k = math.sin((1 - ph) / 0.25 * math.pi / 2)
        for leg in (p.left_leg, p.right_leg):
            leg.thigh_f, leg.shin_f = 55 * k, -50 * k
        p.yaw = 10.0 * direction
    elif motion == "turn":
        p.yaw = 50 * math.sin(2 * math.pi * t / 3.2)
        p.head_yaw = 0.2 * p.yaw
    elif motion == "talk":
        p.yaw = 14 * math.sin(0.7 * t)
        r = p.right_arm
        r.upper_a, r.upper_f, r.fore_a, r.fore_f = (
            15,
            20,
            20,
            65 + 25 * math.sin(2 * math.pi * 0.8 * t),
        )
        r.spread, r.curl = 0.8, 0.1
        p.roll = 3 * math.sin(2 * math.pi * 0.6 * t)
    elif motion == "emote":
        _emote_body(p, emotion, t)
    base = EXPRESSIONS[emotion]
    p.face = FaceParams(
        base.smile,
        min(1.0, base.open + 0.75 * mouth),
        base.brow_raise,
        base.brow_angle,
        base.eye_open,
    )
    cyc = (t + 0.7 * direction) % 3.3
    p.blink = 1.0 if cyc < 0.12 else 0.0
    return p
