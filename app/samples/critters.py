"""Non-human characters: a side-view quadruped (AP-10K points), a bouncing blob, a hopping lamp."""

from __future__ import annotations

import math

import numpy as np

from app.samples.canvas import INK, Canvas, Colour, FloatArray, ellipse_pts, hex_colour, shade
from app.samples.figure import Drawn, DrawnPoints, screen_box

ANIMAL_MOTIONS = ("walk", "run", "jump")
(FAR_FRONT, FAR_BACK, TAIL, BODY, NEAR_FRONT, NEAR_BACK, HEAD) = range(1, 8)


def _hop(t: float, period: float) -> tuple[float, float]:
    """Height (0..1) of a hop cycle and a squash amount (0..1) around the landing."""
    ph = (t % period) / period
    return math.sin(math.pi * ph), max(0.0, 1 - min(ph, 1 - ph) / 0.12)


class Animal:
    """A dog-like quadruped seen from the side; the near side faces the camera.

    Facing image right (direction +1) shows the animal's right flank, so its right legs are near
    and drawn over the body; the far eye is on the hidden side of the head and is always v=1.
    """

    kind: str = "animal"
    template: str | None = "animal"

    def __init__(
        self,
        name: str,
        motion: str,
        fur: Colour,
        accent: Colour,
        x: float,
        ground: float,
        size: float,
        direction: float,
    ) -> None:
        self.name, self.motion, self.fur, self.accent = name, motion, fur, accent
        self.x, self.ground, self.size, self.direction = x, ground, size, direction
        self.depth = ground

    def colours(self) -> dict[str, str]:
        return {"fur": hex_colour(self.fur), "accent": hex_colour(self.accent)}

    def draw(self, cv: Canvas, t: float, base: int) -> Drawn:
        b, s = self.size, self.direction
        run = self.motion == "run"
        phase = 2 * math.pi * (1.8 if run else 1.1) * t
        lift = 0.0
        speed = {"walk": 0.55, "run": 1.5, "jump": 0.3}[self.motion]
        amp = 38.0 if run else 24.0
        if self.motion == "jump":
            up, _ = _hop(t, 1.1)
            lift, amp = 0.35 * up, 30.0 * up
        root = np.array([self.x + s * speed * t * b, self.ground - lift * b])

        def w(p: FloatArray | list[float]) -> FloatArray:
            q = np.asarray(p, dtype=np.float64) * b
            return root + np.array([s * q[0], q[1]])

        legs: dict[str, tuple[FloatArray, FloatArray, FloatArray]] = {}
        for key, top, off, front in (
            ("near_front", [0.30, -0.46], 0.0, True),
            ("far_front", [0.36, -0.48], math.pi, True),
            ("near_back", [-0.32, -0.46], math.pi, False),
            ("far_back", [-0.26, -0.48], 0.0, False),
        ):
            th = math.radians(amp * math.sin(phase + off))
            bend = math.radians((35 if front else -30) * max(0.0, math.cos(phase + off)))
            knee = np.array(top) + 0.22 * np.array([math.sin(th), math.cos(th)])
            paw = knee + 0.21 * np.array([math.sin(th - bend), math.cos(th - bend)])
            legs[key] = (w(top), w(knee), w(paw))
        wag = 0.08 * math.sin(2 * math.pi * 2.5 * t)
        tail = np.array([w([-0.48, -0.58]), w([-0.62, -0.7 + wag]), w([-0.7, -0.86 + wag])])
        neck, head = w([0.42, -0.64]), w([0.6, -0.8])
        snout, nose = w([0.75, -0.75]), w([0.83, -0.76])
        eye_near, eye_far = w([0.62, -0.85]), w([0.67, -0.86])
        o = float(np.clip(0.012 * b, 1.2, 4.0))
        far_fur = shade(self.fur, 0.75)
        cv.begin_box()

        def leg(key: str, part: int, colour: Colour) -> None:
            cv.part = base + part
            top, knee, paw = legs[key]
            cv.capsule(top, knee, 0.09 * b, colour, o)
            cv.capsule(knee, paw, 0.07 * b, colour, o)
            cv.capsule(paw, paw + np.array([s * 0.04 * b, 0.0]), 0.07 * b, shade(colour, 0.8), o)

        leg("far_front", FAR_FRONT, far_fur)
        leg("far_back", FAR_BACK, far_fur)
        cv.part = base + TAIL
        cv.capsule(tail[0], tail[1], 0.06 * b, self.fur, o)
        cv.capsule(tail[1], tail[2], 0.05 * b, self.accent, o)
        cv.part = base + BODY
        cv.poly(ellipse_pts(w([0.0, -0.58]), 0.52 * b, 0.19 * b, 48), self.fur, o)
        cv.poly(
            ellipse_pts(w([0.05, -0.5]), 0.3 * b, 0.08 * b, 32),
            shade(self.fur, 1.35),
            0,
            track=False,
        )
        leg("near_front", NEAR_FRONT, self.fur)
        leg("near_back", NEAR_BACK, self.fur)
        cv.part = base + HEAD
        cv.capsule(neck, (neck + head) / 2, 0.16 * b, self.fur, o)
        ear_col = self.accent
        for dx in (-0.05, 0.05):
            ear = np.array([w([0.52 + dx, -0.9]), w([0.6 + dx, -0.9]), w([0.5 + dx * 2, -1.07])])
            cv.poly(ear, ear_col, o)
        cv.poly(ellipse_pts(head, 0.15 * b, 0.14 * b, 40), self.fur, o)
        cv.poly(ellipse_pts(snout, 0.11 * b, 0.075 * b, 32), shade(self.fur, 1.3), o)
        cv.poly(ellipse_pts(nose, 0.03 * b, 0.025 * b, 16), INK, 0, track=False)
        cv.poly(
            ellipse_pts(eye_near, 0.032 * b, 0.04 * b, 16), (250, 250, 250), o * 0.6, track=False
        )
        cv.poly(
            ellipse_pts(eye_near + np.array([s * 0.008 * b, 0.0]), 0.018 * b, 0.024 * b, 12),
            INK,
            0,
            track=False,
        )
        cv.stroke(np.array([w([0.78, -0.71]), w([0.74, -0.69]), w([0.69, -0.71])]), INK, 0.012 * b)
        box = cv.end_box()

        near, far = ("right", "left") if s > 0 else ("left", "right")
        side_legs = {near: ("near", NEAR_FRONT, NEAR_BACK), far: ("far", FAR_FRONT, FAR_BACK)}
        pts: list[FloatArray] = []
        allowed: list[tuple[int, ...]] = []
        hidden = np.zeros(17, dtype=bool)
        eyes = {near: eye_near, far: eye_far}
        for i, side in enumerate(("left", "right")):
            pts.append(eyes[side])
            allowed.append((base + HEAD,))
            hidden[i] = side == far
        pts += [nose, neck, tail[0]]
        allowed += [(base + HEAD,), (base + HEAD, base + BODY), (base + BODY, base + TAIL)]
        for side in ("left", "right"):
            tag, fpart, bpart = side_legs[side]
            for key, part in ((f"{tag}_front", fpart), (f"{tag}_back", bpart)):
                joint, knee, paw = legs[key]
                top_ok = (part, BODY) if tag == "near" else (part,)
                pts += [joint, knee, paw]
                allowed += [tuple(base + q for q in top_ok), (base + part,), (base + part,)]
        # AP-10K order: eyes, nose, neck, tail, left front, right front, left back, right back
        order = [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 8, 9, 10, 14, 15, 16]
        arr = np.array(pts)[order]
        allowed = [allowed[i] for i in order]
        hidden = hidden[order]
        screen = cv.camera.to_screen(arr)
        cam = cv.camera
        head_s = cv.camera.to_screen(np.array([head, snout, nose, w([0.5, -1.07])]))
        face_box = screen_box(head_s, cam.width, cam.height, pad=0.1 * b * cam.zoom)
        return Drawn(DrawnPoints(screen, allowed, hidden), box, face_box)


class Blob:
    """A jelly creature that bounces with squash and stretch; it has a face but no skeleton."""

    kind: str = "creature"
    template: str | None = None

    def __init__(
        self, name: str, colour: Colour, x: float, ground: float, size: float, direction: float
    ) -> None:
        self.name, self.colour, self.motion = name, colour, "bounce"
        self.x, self.ground, self.size, self.direction = x, ground, size, direction
        self.depth = ground

    def colours(self) -> dict[str, str]:
        return {"body": hex_colour(self.colour)}

    def draw(self, cv: Canvas, t: float, base: int) -> Drawn:
        up, squash = _hop(t, 0.9)
        r = self.size / 2
        rx, ry = r * (1 + 0.3 * squash - 0.1 * up), r * (1 - 0.3 * squash + 0.12 * up)
        c = np.array([self.x + self.direction * 0.4 * r * t, self.ground - ry - 1.2 * r * up])
        o = float(np.clip(0.03 * r, 1.2, 4.0))
        cv.part = base + 1
        cv.begin_box()
        cv.poly(ellipse_pts(c, rx, ry, 48), self.colour, o)
        cv.poly(
            ellipse_pts(c + np.array([-0.35 * rx, -0.45 * ry]), 0.18 * rx, 0.12 * ry, 16, 0.5),
            shade(self.colour, 1.6),
            0,
            track=False,
        )
        box = cv.end_box()
        eyes = [c + np.array([dx * rx, -0.15 * ry]) for dx in (-0.3, 0.3)]
        for e in eyes:
            cv.poly(ellipse_pts(e, 0.16 * r, 0.2 * r, 20), (250, 250, 250), o * 0.7, track=False)
            cv.poly(
                ellipse_pts(
                    e + np.array([0.05 * r * self.direction, 0.03 * r]), 0.08 * r, 0.1 * r, 16
                ),
                INK,
                0,
                track=False,
            )
        mouth = np.array(
            [
                c + np.array([dx * rx, (0.25 + 0.08 * (1 - dx * dx * 25)) * ry])
                for dx in np.linspace(-0.2, 0.2, 7)
            ]
        )
        cv.stroke(mouth, INK, 0.04 * r)
        face = cv.camera.to_screen(
            np.array(
                [eyes[0] - [0.2 * r, 0.25 * r], eyes[1] + [0.2 * r, 0.0], mouth[3] + [0.0, 0.1 * r]]
            )
        )
        outline = cv.camera.to_screen(np.vstack([ellipse_pts(c, rx, ry, 8), *eyes]))
        return Drawn(None, box, screen_box(face, cv.camera.width, cv.camera.height), outline)


class Lamp:
    """A desk lamp that hops along on its base (an object character, no face, no skeleton)."""

    kind: str = "object"
    template: str | None = None

    def __init__(
        self, name: str, colour: Colour, x: float, ground: float, size: float, direction: float
    ) -> None:
        self.name, self.colour, self.motion = name, colour, "hop"
        self.x, self.ground, self.size, self.direction = x, ground, size, direction
        self.depth = ground

    def colours(self) -> dict[str, str]:
        return {"body": hex_colour(self.colour)}

    def draw(self, cv: Canvas, t: float, base: int) -> Drawn:
        up, squash = _hop(t, 1.0)
        sz, s = self.size, self.direction
        foot = np.array([self.x + s * 0.5 * sz * t, self.ground - 0.3 * sz * up])
        bend = 0.25 * squash
        joint1 = foot + np.array([s * 0.05 * sz, -(0.45 - bend * 0.6) * sz])
        joint2 = joint1 + np.array([s * (0.3 + bend * 0.2) * sz, -(0.35 - bend) * sz])
        o = float(np.clip(0.015 * sz, 1.2, 4.0))
        cv.part = base + 1
        cv.begin_box()
        cv.poly(
            ellipse_pts(foot + np.array([0.0, -0.03 * sz]), 0.2 * sz, 0.05 * sz, 32),
            shade(self.colour, 0.7),
            o,
        )
        cv.capsule(foot, joint1, 0.05 * sz, self.colour, o)
        cv.capsule(joint1, joint2, 0.05 * sz, self.colour, o)
        ang = math.radians(35 + 25 * up) * s
        d = np.array([math.sin(ang), math.cos(ang)])
        n = np.array([-d[1], d[0]])
        shade_pts = np.array(
            [
                joint2 - 0.08 * sz * n,
                joint2 + 0.08 * sz * n,
                joint2 + 0.25 * sz * d + 0.18 * sz * n,
                joint2 + 0.25 * sz * d - 0.18 * sz * n,
            ]
        )
        cv.poly(shade_pts, self.colour, o)
        cv.poly(ellipse_pts(joint2 + 0.25 * sz * d, 0.08 * sz, 0.08 * sz, 20), (150, 245, 255), o)
        cv.dot(joint1, 0.03 * sz, shade(self.colour, 0.6))
        outline = cv.camera.to_screen(np.vstack([foot, joint1, joint2, shade_pts]))
        return Drawn(None, cv.end_box(), None, outline)
