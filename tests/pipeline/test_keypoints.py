import numpy as np
import pytest
from skimage.data import astronaut

from app.media.decode import iter_frames
from app.media.drawing_match import DrawingFollower
from app.media.drawings import IDENTITY, carry, run_at
from app.pipeline.keypoints import extract_keypoints, low_confidence_points
from app.projects.skeletons import COCO_WHOLEBODY, empty_pose, part_boxes, part_validity
from app.samples.generator import make_clip

FACE = 23  # first face point in coco_wholebody


def test_low_confidence_points_least_confident_first():
    pose = empty_pose(10)
    conf = [0.9, 0.1, 0.45, 0.3, 0.6, 0.3, 0.0, 0.2, 0.99, 0.49]
    pose[:, 3] = conf
    pose[:, 2] = 2
    pose[6, 2] = 0  # unlabelled: missing, not doubtful
    pose[7, 2] = 1  # hidden but labelled: still reviewed
    expected = sorted((c, i) for i, c in enumerate(conf) if c < 0.5 and i != 6)
    assert low_confidence_points(pose, 0.5) == [i for _, i in expected]
    assert low_confidence_points(pose, 0.0) == []


@pytest.mark.parametrize("runs", [[(3, 3)], [(-1, 2)], [(0, 4), (3, 6)]])
def test_bad_held_runs_are_refused(runs):
    with pytest.raises(ValueError, match="held run"):
        extract_keypoints([], held_runs=runs)


@pytest.fixture(scope="module")
def photo():
    return astronaut()  # a real frontal photo of a person, shipped with scikit-image


@pytest.mark.slow
def test_held_frames_reuse_the_first_drawing(photo):
    grey = np.full_like(photo, 128)
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    frames = [grey, photo, photo, photo, mirrored, mirrored]

    held = extract_keypoints(frames, held_runs=[(1, 4), (4, 6)])
    every = extract_keypoints(frames)

    assert held.model_calls == 3 and every.model_calls == 6
    assert [f.frame_index for f in held.frames] == list(range(6))
    assert [f.reused_from for f in held.frames] == [None, None, 1, 1, None, 4]
    for i, first in ((2, 1), (3, 1), (5, 4)):
        np.testing.assert_array_equal(held.frames[i].pose, held.frames[first].pose)
        assert held.frames[i].validity == held.frames[first].validity
        assert held.frames[i].boxes == held.frames[first].boxes
        assert held.frames[i].pose is not held.frames[first].pose
    # Frames the model did run on are the same with or without held runs.
    np.testing.assert_array_equal(held.frames[1].pose, every.frames[1].pose)

    blank = held.frames[0]
    assert not blank.found and not blank.pose.any()
    assert not any(blank.validity.values()) and set(blank.boxes.values()) == {None}

    for f in held.frames[1:]:
        assert f.found and f.pose.shape == (133, 4) and f.pose.dtype == np.float32
        assert f.validity == part_validity(f.pose, COCO_WHOLEBODY)
        assert f.boxes == part_boxes(f.pose, COCO_WHOLEBODY)
        labelled = f.pose[f.pose[:, 2] > 0]
        assert (labelled[:, 0] >= 0).all() and (labelled[:, 0] <= photo.shape[1] - 1).all()
        assert (labelled[:, 1] >= 0).all() and (labelled[:, 1] <= photo.shape[0] - 1).all()
    assert held.frames[1].validity["body"] and held.frames[1].validity["face"]


@pytest.mark.slow
def test_sides_agree_between_body_and_face_models(photo):
    """BlazePose's left eye must sit on FaceMesh's iBUG left eye (points 42-47), not the
    right one: the two models and our two tables agree on whose left it is."""
    pose = extract_keypoints([photo]).frames[0].pose
    s = COCO_WHOLEBODY
    for side, ibug in (("left", range(42, 48)), ("right", range(36, 42))):
        other = range(36, 42) if side == "left" else range(42, 48)
        eye = pose[s.index(f"{side}_eye"), :2]
        near = np.linalg.norm(eye - pose[[FACE + i for i in ibug], :2].mean(axis=0))
        far = np.linalg.norm(eye - pose[[FACE + i for i in other], :2].mean(axis=0))
        assert near < 0.5 * far
    # Frontal photo: the person's left is on the image's right.
    assert pose[s.index("left_shoulder"), 0] > pose[s.index("right_shoulder"), 0]
    assert pose[FACE + 45, 0] > pose[FACE + 36, 0]  # outer eye corners
    assert pose[FACE + 8, 1] > pose[FACE + 30, 1] > pose[FACE + 27, 1]  # chin, nose tip, bridge


@pytest.mark.slow
def test_frames_must_be_rgb_uint8():
    with pytest.raises(ValueError, match="frame 0: expected an RGB uint8"):
        extract_keypoints([np.zeros((32, 32), dtype=np.uint8)])


@pytest.mark.slow
def test_face_close_ups_get_their_face_from_the_face_mesh_fallback(tmp_path):
    """A generated face close-up: Holistic, which crops the face from a body pose, finds
    almost no face; with the fallback most frames get one, on the drawn face."""
    clip = make_clip(tmp_path, "close-up", seed=1, seconds=2.0, subsets=("face_video", "i2v"),
                     kinds=("humanoid",))  # fmt: skip
    assert clip.truth["tags"]["framing"] == "close_up"
    frames = list(iter_frames(clip.path))
    faces = COCO_WHOLEBODY.parts["face"]

    alone = extract_keypoints(frames)
    helped = extract_keypoints(frames, face_fallback=True)

    assert sum(f.validity["face"] for f in alone.frames) <= len(frames) // 5
    with_face = [f for f in helped.frames if f.validity["face"]]
    assert len(with_face) >= 0.9 * len(frames)
    rescued = [f for f in with_face if not alone.frames[f.frame_index].validity["face"]]
    assert rescued and all(f.face_from_mesh for f in rescued)
    [person] = [c for c in clip.truth["characters"] if c["kind"] == "humanoid"]
    errors = []
    for f in with_face:
        truth = np.array(person["keypoints"][f.frame_index], np.float32)[list(faces)]
        box = person["face_boxes"][f.frame_index]
        seen = truth[:, 2] > 0
        if box is None or not seen.any():
            continue
        distance = np.linalg.norm(f.pose[list(faces), :2][seen] - truth[seen, :2], axis=1)
        errors.append(np.median(distance) / max(box[2], box[3]))
    assert len(errors) >= 0.8 * len(frames) and np.median(errors) < 0.1


def _held_error(frames, person, held) -> float:
    """Median distance of the labelled points to the truth on ``held`` frames, in share of the
    truth box diagonal."""
    errors = []
    for i in held:
        pose, truth, box = frames[i].pose, np.array(person["keypoints"][i]), person["boxes"][i]
        both = (pose[:, 2] > 0) & (truth[:, 2] > 0)
        if box is not None and both.any():
            distance = np.linalg.norm(pose[both, :2] - truth[both, :2], axis=1)
            errors += list(distance / np.hypot(box[2], box[3]))
    return float(np.median(errors))


@pytest.mark.slow
def test_a_sliding_drawing_on_twos_runs_the_model_once_and_carries_its_points(tmp_path):
    """A humanoid on twos glides across the frame: the model runs about once per drawing, the
    second frame of a drawing gets the first frame's points moved with the glide, and those
    carried points are as close to the truth as running the model on every frame."""
    clip = make_clip(tmp_path, "slide", seed=0, width=480, fps=24, seconds=4.0,
                     subsets=("pose", "i2v"), kinds=("humanoid",), timing="twos",
                     drawing_motion="slide")  # fmt: skip
    frames = list(iter_frames(clip.path))
    cuts = [start for start, _ in clip.truth["shots"]]
    [person] = [c for c in clip.truth["characters"] if c["kind"] == "humanoid"]

    drawn = extract_keypoints(frames, follower=DrawingFollower(), cuts=cuts)
    every = extract_keypoints(frames)

    assert drawn.model_calls <= 0.75 * len(frames)
    carried = [f for f in drawn.frames if f.reused_from is not None]
    assert len(carried) >= 0.25 * len(frames)
    runs = drawn.drawing_runs
    for f in carried:
        run = run_at(runs, f.frame_index)
        assert (
            run is not None and run.start == f.reused_from and f.move == run.move_at(f.frame_index)
        )
        assert not any(run.start < cut <= f.frame_index for cut in cuts)  # never across a cut
        key = drawn.frames[f.reused_from]
        inside = f.pose[:, 2] > 0
        np.testing.assert_allclose(
            f.pose[inside, :2], carry(key.pose[:, :2], IDENTITY, f.move)[inside], atol=1e-3
        )
        np.testing.assert_array_equal(f.pose[inside, 2], key.pose[inside, 2])
    assert any(abs(f.move[1]) > 2 for f in carried)  # the drawings did slide
    held = [f.frame_index for f in carried]
    assert _held_error(drawn.frames, person, held) <= 1.05 * _held_error(every.frames, person, held)


@pytest.mark.slow
def test_frames_decoded_ahead_give_the_same_drafts_as_decoding_in_turn(tmp_path):
    """The step decodes the next frames in a worker thread while the model runs: every point,
    carried frame, move and drawing run is the same, to the byte, as decoding each in turn."""
    clip = make_clip(tmp_path, "pan", seed=3, width=384, fps=24, seconds=2.0,
                     subsets=("pose", "i2v"), kinds=("humanoid",), timing="twos",
                     drawing_motion="pan")  # fmt: skip
    cuts = [start for start, _ in clip.truth["shots"]]

    def extract(prefetch):
        return extract_keypoints(
            iter_frames(clip.path),
            follower=DrawingFollower(),
            cuts=cuts,
            held_runs=clip.truth["held_runs"],
            prefetch=prefetch,
        )

    ahead, in_turn = extract(4), extract(0)

    assert ahead.model_calls == in_turn.model_calls < len(in_turn.frames)
    assert any(f.reused_from is not None for f in in_turn.frames)
    assert ahead.drawing_runs == in_turn.drawing_runs
    for a, b in zip(ahead.frames, in_turn.frames, strict=True):
        assert a.pose.tobytes() == b.pose.tobytes()
        assert (a.frame_index, a.validity, a.boxes, a.found) == (
            b.frame_index, b.validity, b.boxes, b.found
        )  # fmt: skip
        assert (a.reused_from, a.move, a.face_from_mesh) == (
            b.reused_from, b.move, b.face_from_mesh
        )  # fmt: skip
