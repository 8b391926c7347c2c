from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from app.samples.generator import SampleClip, make_clip


def decode_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def frame_diffs(frames: list[np.ndarray]) -> np.ndarray:
    """Mean absolute difference between each frame and the next one."""
    return np.array(
        [
            np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()
            for a, b in itertools.pairwise(frames)
        ]
    )


@pytest.fixture(scope="session")
def clip_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., SampleClip]:
    """make_clip into a shared temp folder, memoised on its arguments."""
    root = tmp_path_factory.mktemp("clips")
    cache: dict[str, SampleClip] = {}

    def make(name: str, **kw: object) -> SampleClip:
        if name not in cache:
            cache[name] = make_clip(root, name, **kw)  # type: ignore[arg-type]
        return cache[name]

    return make
