"""A flat-coloured cartoon person posed in 3-D, projected, and drawn from its own keypoints.

The pose of each motion at a time comes from :mod:`app.samples.motion`; this module builds the
skeleton, face and hands from it and draws them.

Local body units: height 1, ``x`` towards the character's own left, ``y`` down (0 at the soles),
``z`` towards the camera. The body turns by ``yaw`` about the vertical axis (positive yaw turns
the face towards image right). Face landmarks follow the iBUG 68 layout on an ellipsoid head.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from app.samples.canvas import INK, Canvas, Colour, FloatArray, ellipse_pts, hex_colour, shade
from app.samples.figure import Drawn, DrawnPoints, screen_box
from app.samples.motion import Arm, FaceParams, Pose, human_pose, limb_direction
from app.samples.truth import Emotion

HEAD_R, HEAD_RY = 0.075, 0.09
UPPER_ARM, FOREARM, HAND = 0.16, 0.14, 0.095
THIGH, SHIN = 0.235, 0.225
(
    HEAD,
    NECK,
    TORSO,
    L_UPPER,
    L_FORE,
    L_HAND,
    R_UPPER,
    R_FORE,
    R_HAND,
    L_THIGH,
    L_SHIN,
    L_FOOT,
    R_THIGH,
    R_SHIN,
    R_FOOT,
) = range(1, 16)


@dataclass(frozen=True)
class Look:
    skin: Colour
    hair: Colour
    shirt: Colour
    pants: Colour
    shoes: Colour
    iris: Colour
    hair_style: str  # "short" | "long" | "bun"
    long_sleeves: bool


# -- face template ---------------------------------------------------------------------------
def face_uv(f: FaceParams, blink: float) -> tuple[FloatArray, FloatArray]:
    """68 landmarks as (u, v) on the unit face disc and their forward bulge (in head radii)."""
    uv = np.zeros((68, 2))
    bulge = np.zeros(68)
    phi = np.linspace(-np.pi / 2, np.pi / 2, 17)
    uv[0:17] = np.stack([0.97 * np.sin(phi), 0.97 * np.cos(phi)], axis=1)
    raise_ = 0.12 * f.brow_raise
    for start, sign in ((17, -1.0), (22, 1.0)):
        us = np.linspace(0.62, 0.14, 5) if sign < 0 else np.linspace(0.14, 0.62, 5)
        inner = (0.62 - us) / 0.48  # 1 at the inner end
        vs = (
            -0.34
            - raise_
            - 0.05 * np.sin(np.pi * (1 - inner) * 0.9 + 0.15)
            + 0.1 * f.brow_angle * inner
        )
        uv[start : start + 5] = np.stack([sign * us, vs], axis=1)
    uv[27:31] = [[0, -0.08], [0, 0.04], [0, 0.15], [0, 0.26]]
    bulge[27:31] = [0.06, 0.14, 0.24, 0.34]
    uv[31:36] = [[-0.13, 0.31], [-0.065, 0.335], [0, 0.345], [0.065, 0.335], [0.13, 0.31]]
    bulge[31:36] = [0.08, 0.12, 0.14, 0.12, 0.08]
    hh = 0.1 * f.eye_open * (1 - 0.92 * blink)
    low = hh * (0.9 - 0.4 * max(f.smile, 0) * (f.eye_open < 0.8))
    for start, c in ((36, -0.36), (42, 0.36)):
        # corner, two upper-lid points, corner, two lower-lid points, image left to right
        xs = [c - 0.17, c - 0.06, c + 0.06, c + 0.17, c + 0.06, c - 0.06]
        ys = [-0.07, -0.07 - hh, -0.07 - hh, -0.07, -0.07 + low, -0.07 + low]
        uv[start : start + 6] = np.stack([xs, ys], axis=1)
    wm = 0.25 + 0.05 * max(f.smile, 0)
    gap = 0.2 * f.open

    def curve(u: FloatArray) -> FloatArray:
        return 0.58 - 0.1 * f.smile * (u / wm) ** 2

    top_u = np.array([-0.55, -0.25, 0.0, 0.25, 0.55]) * wm
    bot_u = np.array([0.55, 0.25, 0.0, -0.25, -0.55]) * wm
    in_top = np.array([-0.4, 0.0, 0.4]) * wm
    in_bot = np.array([0.4, 0.0, -0.4]) * wm

    def opening(u: FloatArray) -> FloatArray:
        return gap / 2 * np.sqrt(np.clip(1 - (u / wm) ** 2, 0, 1))

    uv[48] = [-wm, curve(np.array(-wm))]
    uv[49:54] = np.stack(
        [top_u, curve(top_u) - opening(top_u) - 0.055 + 0.015 * (top_u == 0)], axis=1
    )
    uv[54] = [wm, curve(np.array(wm))]
    uv[55:60] = np.stack([bot_u, curve(bot_u) + opening(bot_u) + 0.065], axis=1)
    uv[60] = [-0.9 * wm, curve(np.array(-0.9 * wm))]
    uv[61:64] = np.stack([in_top, curve(in_top) - opening(in_top)], axis=1)
    uv[64] = [0.9 * wm, curve(np.array(0.9 * wm))]
    uv[65:68] = np.stack([in_bot, curve(in_bot) + opening(in_bot)], axis=1)
    bulge[48:68] = 0.05
    return uv, bulge


def _on_head(uv: FloatArray, bulge: FloatArray) -> FloatArray:
    """Local 3-D points (head radii scaled to body units) on the ellipsoid for face (u, v)."""
    z = np.sqrt(np.clip(1 - uv[:, 0] ** 2 - uv[:, 1] ** 2, 0, 1)) + bulge
    return np.stack([uv[:, 0] * HEAD_R, uv[:, 1] * HEAD_RY, z * HEAD_R], axis=1)


def _rot_y(pts: FloatArray, deg: float) -> FloatArray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    return np.stack([x * c + z * s, y, -x * s + z * c], axis=-1)


def _face_patch(head_yaw: float) -> FloatArray:
    """Outline (local head-centred 3-D) of the skin region: jaw, cheeks and the fringe."""
    phi = np.linspace(-np.pi / 2, np.pi / 2, 25)
    jaw = np.stack([0.97 * np.sin(phi), 0.97 * np.cos(phi)], axis=1)
    side = np.array([[0.97, -0.1], [0.95, -0.3]])
    us = np.linspace(0.92, -0.92, 21)
    fringe = np.stack([us, -0.45 - 0.12 * (1 - us**2) + 0.06 * np.abs(np.sin(us * 9))], axis=1)
    uv = np.concatenate([jaw, side, fringe, side[::-1] * [-1, 1]])
    pts = _rot_y(_on_head(uv, np.zeros(len(uv))), head_yaw)
    behind = pts[:, 2] < 0
    lim = HEAD_R * np.sqrt(np.clip(1 - (pts[:, 1] / HEAD_RY) ** 2, 0, 1))
    pts[behind, 0] = np.sign(pts[behind, 0]) * lim[behind]
    return pts


class Humanoid:
    """A person: draws itself from its 133 COCO-WholeBody points and reports them."""

    kind: str = "humanoid"
    template: str | None = "coco_wholebody"

    def __init__(
        self,
        name: str,
        motion: str,
        look: Look,
        x: float,
        ground: float,
        height: float,
        direction: float,
        emotion_at: Callable[[float], Emotion],
        mouth_at: Callable[[float], float],
    ) -> None:
        self.name, self.motion, self.look = name, motion, look
        self.x, self.ground, self.height, self.direction = x, ground, height, direction
        self.emotion_at, self.mouth_at = emotion_at, mouth_at
        self.depth = ground

    def colours(self) -> dict[str, str]:
        lk = self.look
        return {
            k: hex_colour(getattr(lk, k))
            for k in ("skin", "hair", "shirt", "pants", "shoes", "iris")
        }

    def draw(self, cv: Canvas, t: float, part_base: int) -> Drawn:
        pose = human_pose(self.motion, t, self.direction, self.emotion_at(t), self.mouth_at(t))
        return _draw(cv, pose, self.look, self.x, self.ground, self.height, part_base)


def _skeleton(p: Pose) -> tuple[dict[str, FloatArray], FloatArray]:
    """Body joints (local, unrotated) and the head centre."""
    j: dict[str, FloatArray] = {}
    pelvis = np.array([0.0, -0.5, 0.0])
    for side, name, leg in ((1.0, "left", p.left_leg), (-1.0, "right", p.right_leg)):
        hip = pelvis + np.array([side * 0.075, 0.0, 0.0])
        knee = hip + THIGH * limb_direction(leg.thigh_a, leg.thigh_f, side)
        ankle = knee + SHIN * limb_direction(leg.shin_a, leg.shin_f, side)
        fwd = np.array([side * math.sin(math.radians(12)), 0.0, math.cos(math.radians(12))])
        sole = ankle + np.array([0.0, 0.035, 0.0])
        j[f"{name}_hip"], j[f"{name}_knee"], j[f"{name}_ankle"] = hip, knee, ankle
        j[f"{name}_heel"] = sole + np.array([0.0, 0.0, -0.035])
        j[f"{name}_big_toe"] = sole + 0.09 * fwd + [-side * 0.012, 0.0, 0.0]
        j[f"{name}_small_toe"] = sole + 0.065 * fwd + [side * 0.028, 0.0, 0.0]
    lowest = max(j[k][1] for k in ("left_heel", "right_heel", "left_big_toe", "right_big_toe"))
    shift = np.array([0.0, -lowest - p.lift, 0.0])
    for k in j:
        j[k] = j[k] + shift
    pelvis = pelvis + shift
    neck = pelvis + np.array([0.0, -0.27 + p.breath, p.lean])
    j["neck"] = neck
    for side, name, arm in ((1.0, "left", p.left_arm), (-1.0, "right", p.right_arm)):
        sh = neck + np.array([side * 0.12, 0.015, 0.0])
        el = sh + UPPER_ARM * limb_direction(arm.upper_a, arm.upper_f, side)
        j[f"{name}_shoulder"], j[f"{name}_elbow"] = sh, el
        j[f"{name}_wrist"] = el + FOREARM * limb_direction(arm.fore_a, arm.fore_f, side)
    head = neck + np.array([0.0, -0.115, p.lean * 1.2])
    return j, head


def _hand(
    wrist: FloatArray, elbow: FloatArray, mid_x: float, side: float, arm: Arm, size: float
) -> FloatArray:
    """21 hand points in world coordinates, a flat fan facing the camera, thumb towards the body."""
    d = wrist - elbow
    n_d = float(np.hypot(*d))
    d = d / n_d if n_d > 1e-3 * size else np.array([0.0, 1.0])
    perp = np.array([-d[1], d[0]])
    toward = perp @ np.array([mid_x - wrist[0], 0.0])
    sgn = math.copysign(1.0, toward) if abs(toward) > 1e-6 * size else -side
    pts = [wrist]

    def rot(v: FloatArray, deg: float) -> FloatArray:
        a = math.radians(deg)
        return np.array(
            [v[0] * math.cos(a) - v[1] * math.sin(a), v[0] * math.sin(a) + v[1] * math.cos(a)]
        )

    # thumb: base, then three joints splayed away from the palm
    t_dir = rot(d, -sgn * (35 + 25 * arm.spread))
    if perp @ t_dir * sgn < 0:  # splay the thumb towards its own side of the palm
        t_dir = rot(d, sgn * (35 + 25 * arm.spread))
    base = wrist + size * (0.12 * d + 0.14 * sgn * perp)
    pts.append(base)
    cur = base
    for k, ln in enumerate((0.2, 0.16, 0.13)):
        step = t_dir if arm.curl < 0.5 else rot(t_dir, sgn * (70 * arm.curl) * (k + 1) / 3)
        cur = cur + size * ln * (1 - 0.35 * arm.curl) * step
        pts.append(cur)
    for off, scale, fan in (
        (0.17, 0.93, 1.0),
        (0.055, 1.0, 0.3),
        (-0.06, 0.95, -0.4),
        (-0.17, 0.75, -1.0),
    ):
        mcp = wrist + size * (0.48 * d + off * sgn * perp)
        fdir = rot(d, -sgn * 12 * fan * arm.spread)
        pts.append(mcp)
        cur = mcp
        for k, ln in enumerate((0.22, 0.14, 0.11)):
            ang = math.radians(arm.curl * 60 * (k + 1))
            cur = cur + size * ln * scale * math.cos(ang) * fdir
            pts.append(cur)
    return np.array(pts)


def _draw(cv: Canvas, p: Pose, lk: Look, x0: float, ground: float, h: float, base: int) -> Drawn:
    j, head_c = _skeleton(p)
    names = list(j)
    local = np.array([j[k] for k in names])
    rot = _rot_y(local, p.yaw)
    root = np.array([x0 + p.dx * h, ground])
    world = {k: root + h * rot[i, :2] for i, k in enumerate(names)}
    depth = {k: float(rot[i, 2]) for i, k in enumerate(names)}
    hc3 = _rot_y(head_c, p.yaw)
    head_w = root + h * hc3[:2]
    head_yaw = p.yaw + p.head_yaw
    roll = math.radians(p.roll)
    rc, rs = math.cos(roll), math.sin(roll)

    def head_to_world(pts3: FloatArray) -> FloatArray:
        xy = pts3[:, :2] * h
        return head_w + np.stack(
            [xy[:, 0] * rc - xy[:, 1] * rs, xy[:, 0] * rs + xy[:, 1] * rc], axis=1
        )

    uv, bulge = face_uv(p.face, p.blink)
    face3 = _rot_y(_on_head(uv, bulge), head_yaw)
    face_w = head_to_world(face3)
    face_front = face3[:, 2] > 0.02 * HEAD_R
    ears3 = _rot_y(
        np.array(
            [[HEAD_R, 0.05 * HEAD_RY, -0.05 * HEAD_R], [-HEAD_R, 0.05 * HEAD_RY, -0.05 * HEAD_R]]
        ),
        head_yaw,
    )
    ears_w = head_to_world(ears3)

    o = float(np.clip(0.008 * h, 1.2, 4.5))
    sleeve = lk.shirt if lk.long_sleeves else lk.skin
    hand_size = HAND * h
    mid_x = float(world["neck"][0])
    hands = {
        side: _hand(world[f"{side}_wrist"], world[f"{side}_elbow"], mid_x, s, arm, hand_size)
        for side, s, arm in (("left", 1.0, p.left_arm), ("right", -1.0, p.right_arm))
    }
    # torso: hull of a box between the shoulder line and the hips, 0.1 deep
    top = j["neck"] + np.array([0.0, 0.02, 0.0])
    bottom = (j["left_hip"] + j["right_hip"]) / 2 + np.array([0.0, 0.025, 0.0])
    box3 = np.array(
        [
            centre + np.array([sx * half, 0.0, dz])
            for centre, half in ((top, 0.13), (bottom, 0.105))
            for sx in (-1, 1)
            for dz in (-0.05, 0.05)
        ]
    )
    box_w = root + h * _rot_y(box3, p.yaw)[:, :2]
    hull = cv2.convexHull(box_w.astype(np.float32)).reshape(-1, 2).astype(np.float64)

    def seg(
        a: str, b: str, width: float, colour: Colour, part: int
    ) -> tuple[float, Callable[[], None]]:
        def go() -> None:
            cv.part = base + part
            cv.capsule(world[a], world[b], width * h, colour, o)

        return (depth[a] + depth[b]) / 2, go

    def hand_go(side: str, part: int) -> tuple[float, Callable[[], None]]:
        hp = hands[side]

        def go() -> None:
            cv.part = base + part
            palm = hp[[0, 1, 5, 9, 13, 17]]
            cv.poly(palm, lk.skin, o)
            for f in range(5):
                chain = hp[1 + 4 * f : 5 + 4 * f]
                for a, b in itertools.pairwise(chain):
                    cv.capsule(a, b, 0.085 * hand_size, lk.skin, o * 0.7)
            cv.poly(palm, lk.skin, 0)

        return depth[f"{side}_wrist"] + 0.01, go

    def torso_go() -> None:
        cv.part = base + TORSO
        cv.poly(hull, lk.shirt, o)

    def head_go() -> None:
        _draw_head(
            cv,
            base,
            lk,
            p,
            head_w,
            face_w,
            face_front,
            ears_w,
            ears3,
            head_yaw,
            head_to_world,
            h,
            o,
        )

    def back_hair_go() -> None:
        # long hair hangs behind the shoulders: a rounded panel drawn before the torso
        if lk.hair_style != "long":
            return
        cv.part = base + HEAD
        ang = np.linspace(0.0, np.pi, 13)
        bottom = np.stack(
            [
                1.2 * HEAD_R * np.cos(ang),
                (1.5 + 0.25 * np.sin(ang)) * HEAD_RY,
                -0.5 * HEAD_R + 0 * ang,
            ],
            axis=1,
        )
        top = np.array(
            [
                [-1.1 * HEAD_R, -0.3 * HEAD_RY, -0.3 * HEAD_R],
                [1.1 * HEAD_R, -0.3 * HEAD_RY, -0.3 * HEAD_R],
            ]
        )
        cv.poly(
            head_to_world(_rot_y(np.concatenate([top[1:], bottom, top[:1]]), head_yaw)), lk.hair, o
        )

    def neck_go() -> None:
        cv.part = base + NECK
        cv.capsule(world["neck"], head_w + (world["neck"] - head_w) * 0.3, 0.05 * h, lk.skin, o)

    # painter's order by depth; torso and neck sit just behind limbs at the same depth
    items: list[tuple[float, Callable[[], None]]] = [
        (-0.06, back_hair_go),
        (-0.02, torso_go),
        (-0.03, neck_go),
        (0.5, head_go),
    ]
    for side, s in (("left", 1.0), ("right", -1.0)):
        up, fo, hd = (L_UPPER, L_FORE, L_HAND) if s > 0 else (R_UPPER, R_FORE, R_HAND)
        th, sh, ft = (L_THIGH, L_SHIN, L_FOOT) if s > 0 else (R_THIGH, R_SHIN, R_FOOT)
        items += [
            seg(f"{side}_shoulder", f"{side}_elbow", 0.058, lk.shirt, up),
            seg(f"{side}_elbow", f"{side}_wrist", 0.047, sleeve, fo),
            hand_go(side, hd),
        ]
        d_th, g_th = seg(f"{side}_hip", f"{side}_knee", 0.08, lk.pants, th)
        d_sh, g_sh = seg(f"{side}_knee", f"{side}_ankle", 0.065, lk.pants, sh)
        d_ft = (depth[f"{side}_heel"] + depth[f"{side}_big_toe"]) / 2

        def foot_go(side: str = side, ft: int = ft) -> None:
            cv.part = base + ft
            toe = (world[f"{side}_big_toe"] + world[f"{side}_small_toe"]) / 2
            cv.capsule(world[f"{side}_heel"], toe, 0.055 * h, lk.shoes, o)

        items += [(d_th - 0.04, g_th), (d_sh - 0.035, g_sh), (d_ft - 0.03, foot_go)]
    cv.begin_box()
    for _, go in sorted(items, key=lambda it: it[0]):
        go()
    box = cv.end_box()

    # -- keypoints in COCO-WholeBody order --------------------------------------------------
    face_i = np.arange(68)
    body_pts = [
        face_w[30],
        face_w[42:48].mean(axis=0),
        face_w[36:42].mean(axis=0),
        ears_w[0],
        ears_w[1],
        world["left_shoulder"],
        world["right_shoulder"],
        world["left_elbow"],
        world["right_elbow"],
        world["left_wrist"],
        world["right_wrist"],
        world["left_hip"],
        world["right_hip"],
        world["left_knee"],
        world["right_knee"],
        world["left_ankle"],
        world["right_ankle"],
    ]
    feet = [world[f"{s}_{k}"] for s in ("left", "right") for k in ("big_toe", "small_toe", "heel")]
    pts = np.array(
        body_pts + feet + list(face_w[face_i]) + list(hands["left"]) + list(hands["right"])
    )
    b = base
    allowed: list[tuple[int, ...]] = [(b + HEAD,)] * 5 + [
        (b + TORSO, b + L_UPPER),
        (b + TORSO, b + R_UPPER),
        (b + L_UPPER, b + L_FORE),
        (b + R_UPPER, b + R_FORE),
        (b + L_FORE, b + L_HAND),
        (b + R_FORE, b + R_HAND),
        (b + TORSO, b + L_THIGH),
        (b + TORSO, b + R_THIGH),
        (b + L_THIGH, b + L_SHIN),
        (b + R_THIGH, b + R_SHIN),
        (b + L_SHIN, b + L_FOOT),
        (b + R_SHIN, b + R_FOOT),
    ]
    allowed += [(b + L_FOOT, b + L_SHIN)] * 3 + [(b + R_FOOT, b + R_SHIN)] * 3 + [(b + HEAD,)] * 68
    allowed += [(b + L_HAND, b + L_FORE)] + [(b + L_HAND,)] * 20
    allowed += [(b + R_HAND, b + R_FORE)] + [(b + R_HAND,)] * 20
    hidden = np.zeros(133, dtype=bool)
    hidden[0] = not face_front[30]
    hidden[1] = not face_front[42:48].any()
    hidden[2] = not face_front[36:42].any()
    hidden[3:5] = ears3[:, 2] < -0.15 * HEAD_R
    hidden[23:91] = ~face_front
    screen = cv.camera.to_screen(pts)
    face_s = screen[23:91][face_front]
    cam = cv.camera
    face_box = screen_box(face_s, cam.width, cam.height) if len(face_s) else None
    return Drawn(DrawnPoints(screen, allowed, hidden), box, face_box)


def _draw_head(
    cv: Canvas,
    base: int,
    lk: Look,
    p: Pose,
    head_w: FloatArray,
    face_w: FloatArray,
    front: npt.NDArray[np.bool_],
    ears_w: FloatArray,
    ears3: FloatArray,
    head_yaw: float,
    head_to_world: Callable[[FloatArray], FloatArray],
    h: float,
    o: float,
) -> None:
    cv.part = base + HEAD
    er = (0.22 * HEAD_R * h, 0.33 * HEAD_RY * h)
    for k in range(2):
        if ears3[k, 2] < 0:
            cv.poly(ellipse_pts(ears_w[k], *er, 20), lk.skin, o)
    if lk.hair_style == "bun":
        bun = head_to_world(_rot_y(np.array([[0.0, -1.05 * HEAD_RY, -0.3 * HEAD_R]]), head_yaw))[0]
        cv.poly(ellipse_pts(bun, 0.5 * HEAD_R * h, 0.42 * HEAD_RY * h, 24), lk.hair, o)
    skull = head_to_world(
        np.concatenate(
            [
                ellipse_pts(np.zeros(2), 1.07 * HEAD_R, 1.04 * HEAD_RY, 48) - [0, 0.05 * HEAD_RY],
                np.zeros((48, 1)),
            ],
            axis=1,
        )
    )
    cv.poly(skull, lk.hair, o)
    patch = head_to_world(_face_patch(head_yaw))
    cv.poly(patch, lk.skin, o)
    for k in range(2):
        if ears3[k, 2] >= 0:
            cv.poly(ellipse_pts(ears_w[k], *er, 20), lk.skin, o)
    lw = 0.0032 * h
    brow = shade(lk.hair, 0.6)
    for a, b_ in ((17, 22), (22, 27)):
        idx = [i for i in range(a, b_) if front[i]]
        if len(idx) >= 2:
            cv.stroke(face_w[idx], brow, 1.4 * lw)
    for a in (36, 42):
        if not front[a : a + 6].all():
            continue
        eye = face_w[a : a + 6]
        height = float(np.linalg.norm(eye[1] - eye[5]))
        if height < 0.012 * h * 0.4:
            cv.stroke(eye[[0, 1, 2, 3]], INK, lw)
            continue
        cv.poly(eye, (250, 250, 250), 0, track=False)
        c = eye.mean(axis=0) + (eye[3] - eye[0]) * 0.04 * math.sin(math.radians(head_yaw))
        r = min(0.42 * height, 0.06 * HEAD_R * h)
        cv.poly(ellipse_pts(c, r, r, 20), lk.iris, 0, track=False)
        cv.poly(ellipse_pts(c, 0.5 * r, 0.5 * r, 16), INK, 0, track=False)
        cv.poly(
            ellipse_pts(c - [0.3 * r, 0.35 * r], 0.2 * r, 0.2 * r, 12),
            (255, 255, 255),
            0,
            track=False,
        )
        cv.stroke(eye, INK, lw, closed=True)
        cv.stroke(eye[[0, 1, 2, 3]], INK, 1.6 * lw)
    if front[[29, 30, 33]].all():
        cv.stroke(face_w[[29, 30]], shade(lk.skin, 0.7), lw)
        cv.stroke(face_w[31:36], shade(lk.skin, 0.55), lw)
    if front[48:68].all():
        outer, inner = face_w[48:60], face_w[60:68]
        lips = (int(lk.skin[0] * 0.6), int(lk.skin[1] * 0.55), min(255, int(lk.skin[2] * 0.95)))
        cv.poly(outer, lips, 0, track=False)
        if np.linalg.norm(face_w[62] - face_w[66]) > 0.004 * h:
            cv.poly(inner, (60, 40, 110), 0, track=False)
            tongue = (inner[5] + inner[6] + inner[7]) / 3
            cv.poly(
                ellipse_pts(
                    tongue,
                    0.25 * float(np.linalg.norm(inner[0] - inner[4])),
                    0.3 * float(np.linalg.norm(inner[2] - inner[6])) + 0.5,
                    16,
                ),
                (110, 110, 230),
                0,
                track=False,
            )
            cv.stroke(inner, INK, 0.8 * lw, closed=True)
        else:
            cv.stroke(np.concatenate([face_w[[48]], inner[1:4], face_w[[54]]]), INK, lw)
        cv.stroke(outer, shade(lips, 0.7), 0.6 * lw, closed=True)
