"""Painted backgrounds: sky bands, hills, ground, a house, trees, clouds, or a simple room."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from app.samples.canvas import Canvas, Colour, ellipse_pts, shade

TimeOfDay = Literal["day", "dusk", "night"]
Venue = Literal["outdoor", "indoor"]


def rgb(r: int, g: int, b: int) -> Colour:
    return (b, g, r)


SKY: dict[TimeOfDay, tuple[Colour, Colour]] = {
    "day": (rgb(86, 156, 228), rgb(196, 228, 250)),
    "dusk": (rgb(72, 58, 128), rgb(250, 166, 112)),
    "night": (rgb(14, 18, 48), rgb(44, 54, 104)),
}
GROUNDS: dict[TimeOfDay, tuple[Colour, ...]] = {
    "day": (rgb(112, 184, 88), rgb(196, 180, 100), rgb(150, 196, 120)),
    "dusk": (rgb(96, 112, 70), rgb(150, 110, 80), rgb(120, 96, 110)),
    "night": (rgb(30, 62, 46), rgb(52, 52, 70), rgb(40, 48, 34)),
}
WALLS: tuple[Colour, ...] = (rgb(236, 214, 170), rgb(186, 214, 226), rgb(222, 190, 200))
FLOORS: tuple[Colour, ...] = (rgb(160, 112, 72), rgb(120, 130, 150), rgb(178, 150, 110))


@dataclass
class Background:
    """A shot's set, laid out once from the shot's random generator and drawn per drawing."""

    venue: Venue
    time_of_day: TimeOfDay
    width: int
    height: int
    horizon: float
    name: str
    ground: Colour
    hills: list[tuple[float, float, float, Colour]] = field(default_factory=list)
    houses: list[tuple[float, float, Colour, Colour]] = field(default_factory=list)
    trees: list[tuple[float, float, Colour]] = field(default_factory=list)
    clouds: list[tuple[float, float, float, float]] = field(default_factory=list)
    stars: list[tuple[float, float]] = field(default_factory=list)
    sun: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wall: Colour = (0, 0, 0)
    props: list[tuple[str, float, float, Colour]] = field(default_factory=list)

    def draw(self, cv: Canvas, t: float) -> None:
        if self.venue == "outdoor":
            self._outdoor(cv, t)
        else:
            self._indoor(cv)

    def _sky(self, cv: Canvas, top_y: float, bottom_y: float, bands: int = 7) -> None:
        top, bottom = SKY[self.time_of_day]
        cv.img[:] = top
        edges = np.linspace(top_y, bottom_y, bands + 1)
        for i in range(bands):
            f = i / (bands - 1)
            c = tuple(round(float(a + (b - a) * f)) for a, b in zip(top, bottom, strict=True))
            cv.fill_rows(edges[i], edges[i + 1] + 1, (c[0], c[1], c[2]))

    def _outdoor(self, cv: Canvas, t: float) -> None:
        w, h, hz = self.width, self.height, self.horizon
        self._sky(cv, -0.4 * h, hz)
        for sx, sy in self.stars:
            cv.dot(np.array([sx, sy]), 0.004 * h, rgb(250, 250, 220))
        x, y, r = self.sun
        glow = rgb(255, 236, 140) if self.time_of_day == "day" else rgb(255, 150, 90)
        if self.time_of_day == "night":
            glow = rgb(236, 236, 214)
        cv.poly(ellipse_pts(np.array([x, y]), r, r), glow, 0.004 * h, track=False)
        for cx, cy, speed, size in self.clouds:
            drift = cx + speed * t * w
            for dx, dy, k in ((-0.9, 0.1, 0.7), (0.0, -0.15, 1.0), (0.9, 0.1, 0.75)):
                cv.poly(
                    ellipse_pts(
                        np.array([drift + dx * size, cy + dy * size]), size * k, size * k * 0.8
                    ),
                    shade(SKY[self.time_of_day][1], 1.5),
                    0.003 * h,
                    track=False,
                )
        for hx, hw, hh, col in self.hills:
            cv.poly(ellipse_pts(np.array([hx, hz]), hw, hh, 48), col, 0.004 * h, track=False)
        cv.poly(
            np.array([[-2 * w, hz], [3 * w, hz], [3 * w, 3 * h], [-2 * w, 3 * h]]),
            self.ground,
            0.004 * h,
            track=False,
        )
        for hx, size, body, roof in self.houses:
            self._house(cv, hx, hz + 0.04 * h, size, body, roof)
        for tx, size, leaf in self.trees:
            self._tree(cv, tx, hz + 0.06 * h, size, leaf)

    def _house(
        self, cv: Canvas, x: float, base: float, s: float, body: Colour, roof: Colour
    ) -> None:
        o = 0.004 * self.height
        cv.poly(
            np.array(
                [[x - s, base], [x + s, base], [x + s, base - 1.3 * s], [x - s, base - 1.3 * s]]
            ),
            body,
            o,
            track=False,
        )
        cv.poly(
            np.array(
                [
                    [x - 1.25 * s, base - 1.25 * s],
                    [x + 1.25 * s, base - 1.25 * s],
                    [x, base - 2.3 * s],
                ]
            ),
            roof,
            o,
            track=False,
        )
        cv.poly(
            np.array(
                [
                    [x - 0.2 * s, base],
                    [x + 0.2 * s, base],
                    [x + 0.2 * s, base - 0.7 * s],
                    [x - 0.2 * s, base - 0.7 * s],
                ]
            ),
            shade(roof, 0.7),
            o,
            track=False,
        )
        lit = rgb(255, 220, 120) if self.time_of_day != "day" else rgb(170, 210, 240)
        for wx in (-0.62, 0.62):
            c = x + wx * s
            cv.poly(
                np.array(
                    [
                        [c - 0.22 * s, base - 0.65 * s],
                        [c + 0.22 * s, base - 0.65 * s],
                        [c + 0.22 * s, base - 1.0 * s],
                        [c - 0.22 * s, base - 1.0 * s],
                    ]
                ),
                lit,
                o,
                track=False,
            )

    def _tree(self, cv: Canvas, x: float, base: float, s: float, leaf: Colour) -> None:
        o = 0.004 * self.height
        cv.poly(
            np.array(
                [
                    [x - 0.15 * s, base],
                    [x + 0.15 * s, base],
                    [x + 0.12 * s, base - 1.3 * s],
                    [x - 0.12 * s, base - 1.3 * s],
                ]
            ),
            rgb(120, 80, 50),
            o,
            track=False,
        )
        for dx, dy, r in ((-0.45, -1.3, 0.55), (0.45, -1.35, 0.55), (0.0, -1.8, 0.7)):
            cv.poly(
                ellipse_pts(np.array([x + dx * s, base + dy * s]), r * s, r * s),
                leaf,
                o,
                track=False,
            )

    def _indoor(self, cv: Canvas) -> None:
        w, h, fl = self.width, self.height, self.horizon
        o = 0.004 * h
        cv.img[:] = self.wall
        cv.fill_rows(fl - 0.12 * h, fl, shade(self.wall, 0.85))
        cv.poly(
            np.array([[-2 * w, fl], [3 * w, fl], [3 * w, 3 * h], [-2 * w, 3 * h]]),
            self.ground,
            o,
            track=False,
        )
        top, bottom = SKY[self.time_of_day]
        for kind, x, y, col in self.props:
            if kind == "window":
                pts = np.array(
                    [
                        [x - 0.12 * w, y - 0.14 * h],
                        [x + 0.12 * w, y - 0.14 * h],
                        [x + 0.12 * w, y + 0.14 * h],
                        [x - 0.12 * w, y + 0.14 * h],
                    ]
                )
                cv.poly(pts, bottom, o * 1.5, track=False)
                upper = np.array(
                    [pts[0], pts[1], [x + 0.12 * w, y - 0.03 * h], [x - 0.12 * w, y - 0.03 * h]]
                )
                cv.poly(upper, top, 0, track=False)
                cv.stroke(np.array([[x, y - 0.14 * h], [x, y + 0.14 * h]]), col, 0.012 * h)
                cv.stroke(np.array([[x - 0.12 * w, y], [x + 0.12 * w, y]]), col, 0.012 * h)
            elif kind == "picture":
                cv.poly(
                    np.array(
                        [
                            [x - 0.06 * w, y - 0.07 * h],
                            [x + 0.06 * w, y - 0.07 * h],
                            [x + 0.06 * w, y + 0.07 * h],
                            [x - 0.06 * w, y + 0.07 * h],
                        ]
                    ),
                    col,
                    o * 2,
                    track=False,
                )
                cv.poly(
                    ellipse_pts(np.array([x, y]), 0.03 * w, 0.04 * h),
                    shade(col, 1.5),
                    o,
                    track=False,
                )
            elif kind == "table":
                for lx in (-0.09, 0.09):
                    cv.poly(
                        np.array(
                            [
                                [x + lx * w - 0.008 * w, y],
                                [x + lx * w + 0.008 * w, y],
                                [x + lx * w + 0.008 * w, y + 0.16 * h],
                                [x + lx * w - 0.008 * w, y + 0.16 * h],
                            ]
                        ),
                        shade(col, 0.7),
                        o,
                        track=False,
                    )
                cv.poly(
                    np.array(
                        [
                            [x - 0.11 * w, y - 0.02 * h],
                            [x + 0.11 * w, y - 0.02 * h],
                            [x + 0.11 * w, y + 0.01 * h],
                            [x - 0.11 * w, y + 0.01 * h],
                        ]
                    ),
                    col,
                    o,
                    track=False,
                )


def make_background(
    rng: np.random.Generator,
    venue: Venue,
    time_of_day: TimeOfDay,
    width: int,
    height: int,
    horizon: float,
    shot_index: int,
) -> Background:
    """Lay out a set; consecutive shots pick different ground colours and props so cuts are hard."""
    w, h = width, height
    if venue == "indoor":
        wall = WALLS[shot_index % len(WALLS)]
        props: list[tuple[str, float, float, Colour]] = [
            ("window", float(rng.uniform(0.1, 0.35) * w), 0.3 * h, rgb(250, 250, 245)),
            (
                "picture",
                float(rng.uniform(0.65, 0.9) * w),
                0.28 * h,
                rgb(*[int(v) for v in rng.integers(60, 200, 3)]),
            ),
            ("table", float(rng.choice([-0.1, 1.1]) * w), horizon - 0.12 * h, rgb(150, 100, 60)),
        ]
        return Background(
            "indoor",
            time_of_day,
            w,
            h,
            horizon,
            "room",
            FLOORS[shot_index % 3],
            wall=wall,
            props=props,
        )
    ground = GROUNDS[time_of_day][shot_index % 3]
    hill_base = shade(ground, 0.8)
    hills = [
        (
            float(x),
            float(rng.uniform(0.25, 0.5) * w),
            float(rng.uniform(0.12, 0.3) * h),
            shade(hill_base, float(rng.uniform(0.75, 1.1))),
        )
        for x in rng.uniform(-0.3, 1.3, int(rng.integers(2, 4))) * w
    ]
    n_houses = int(rng.integers(0, 2)) if shot_index % 2 else 1
    houses = [
        (
            float(rng.uniform(-0.1, 1.1) * w),
            float(rng.uniform(0.06, 0.1) * h),
            rgb(*[int(v) for v in rng.integers(150, 240, 3)]),
            rgb(*[int(v) for v in rng.integers(80, 180, 3)]),
        )
        for _ in range(n_houses)
    ]
    leaf = shade(ground, 0.65)
    trees = [
        (float(x), float(rng.uniform(0.08, 0.14) * h), leaf)
        for x in rng.uniform(-0.3, 1.3, int(rng.integers(1, 4))) * w
    ]
    clouds = (
        []
        if time_of_day == "night"
        else [
            (
                float(rng.uniform(-0.2, 1.1) * w),
                float(rng.uniform(0.06, 0.3) * horizon),
                float(rng.uniform(0.01, 0.03) * rng.choice([-1, 1])),
                float(rng.uniform(0.03, 0.05) * w),
            )
            for _ in range(int(rng.integers(2, 4)))
        ]
    )
    stars = (
        []
        if time_of_day != "night"
        else [
            (float(rng.uniform(-0.3, 1.3) * w), float(rng.uniform(-0.2, 0.9) * horizon))
            for _ in range(30)
        ]
    )
    sun_y = {"day": 0.15, "dusk": 0.85, "night": 0.2}[time_of_day] * horizon
    sun = (float(rng.uniform(0.1, 0.9) * w), float(sun_y), 0.06 * h)
    name = "meadow with a house" if houses else "hills with trees"
    return Background(
        "outdoor",
        time_of_day,
        w,
        h,
        horizon,
        name,
        ground,
        hills,
        houses,
        trees,
        clouds,
        stars,
        sun,
    )
