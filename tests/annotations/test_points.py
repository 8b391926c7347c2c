from __future__ import annotations

import numpy as np
import pytest

from app.annotations.points import POINT_DTYPE, decode_points, encode_points
from app.projects.skeletons import empty_pose


def test_round_trip_keeps_coordinates_visibility_confidence_and_source() -> None:
    rng = np.random.default_rng(3)
    pose = empty_pose(133)
    pose[:, 0] = rng.uniform(0, 1280, 133)
    pose[:, 1] = rng.uniform(0, 720, 133)
    pose[:, 2] = rng.integers(0, 3, 133)
    pose[:, 3] = rng.uniform(0, 1, 133)
    human = rng.random(133) < 0.3
    data = encode_points(pose, human)
    assert len(data) == 133 * POINT_DTYPE.itemsize == 133 * 12
    back, back_human = decode_points(data, 133)
    np.testing.assert_array_equal(back[:, :3], pose[:, :3])
    np.testing.assert_allclose(back[:, 3], pose[:, 3], atol=1e-3)  # float16 confidence
    np.testing.assert_array_equal(back_human, human)


def test_default_source_is_model_and_wrong_shapes_are_refused() -> None:
    _, human = decode_points(encode_points(empty_pose(17)))
    assert not human.any()
    with pytest.raises(ValueError, match="expected 133"):
        decode_points(encode_points(empty_pose(17)), 133)
    with pytest.raises(ValueError, match=r"\(K, 4\)"):
        encode_points(np.zeros((17, 3), dtype=np.float32))
