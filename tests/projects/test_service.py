"""Project configuration: vocabularies, levels, guide, custom skeletons."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.core.errors import Invalid, NotFound
from app.projects import service
from app.projects.models import DEFAULT_REQUIRED_LEVELS, Subset
from app.projects.schemas import ProjectUpdate
from app.projects.skeletons import DEFAULT_SIGMA, Skeleton
from tests.factories import create_project


def test_text_fields_parse_into_lists_and_mappings() -> None:
    assert service.parse_lines("a, b\nc\n\n a ") == ["a", "b", "c"]
    text = "venue: indoor, outdoor\n\ntime_of_day: day"
    parsed = service.parse_mapping(text)
    assert parsed == {"venue": ["indoor", "outdoor"], "time_of_day": ["day"]}
    assert service.parse_mapping(service.mapping_text(parsed)) == parsed
    with pytest.raises(Invalid, match="Line 1"):
        service.parse_mapping("no colon here")


def test_update_project_settings(db: Session) -> None:
    project = create_project(db, subsets=[Subset.pose, Subset.i2v])
    service.update_project(
        db,
        project.id,
        ProjectUpdate(
            tag_vocabulary={"venue": ["indoor", "space"]},
            emotion_labels=["joy", "neutral"],
            rejection_reasons={"track": ["blurry_point", "other"]},
            required_levels={"pose": ["keypoints"]},
            caption_guide="  Present tense.  ",
            agreement_threshold=0.8,
        ),
    )
    assert project.tag_vocabulary == {"venue": ["indoor", "space"]}
    assert project.emotion_labels == ["joy", "neutral"]
    assert project.rejection_reasons["track"] == ["blurry_point", "other"]
    assert "wording" in project.rejection_reasons["caption"]  # kinds left out keep the defaults
    assert project.required_levels == {"pose": ["keypoints"], "i2v": DEFAULT_REQUIRED_LEVELS["i2v"]}
    assert project.caption_guide == "Present tense." and project.agreement_threshold == 0.8
    service.update_project(db, project.id, ProjectUpdate(subsets=[Subset.pose, Subset.face_audio]))
    assert set(project.required_levels) == {"pose", "face_audio"}
    assert project.required_levels["pose"] == ["keypoints"]  # kept across the subset change


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (ProjectUpdate(required_levels={"pose": ["dancing"]}), "Unknown levels"),
        (ProjectUpdate(required_levels={"face_audio": ["speech"]}), "lacks"),
        (ProjectUpdate(required_levels={"pose": []}), "at least one"),
        (ProjectUpdate(tag_vocabulary={"venue": []}), "at least one value"),
        (ProjectUpdate(tag_vocabulary={"bad name!": ["x"]}), "letters, digits"),
        (ProjectUpdate(emotion_labels=[]), "at least one"),
        (ProjectUpdate(subsets=[]), "at least one subset"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(
    db: Session, update: ProjectUpdate, message: str
) -> None:
    project = create_project(db, subsets=[Subset.pose])
    with pytest.raises(Invalid, match=message):
        service.update_project(db, project.id, update)


def test_custom_skeleton_from_the_editor_form_round_trips(db: Session) -> None:
    project = create_project(db)
    definition = service.parse_skeleton_form(
        "blob",
        "head 0.04\nleft_ear 0.03\nright_ear 0.03\ntail",
        "head-left_ear, head-right_ear\nhead-tail",
        "left_ear-right_ear",
    )
    skeleton = Skeleton.from_dict(definition)
    assert skeleton.keypoints == ("head", "left_ear", "right_ear", "tail")
    assert skeleton.sigmas == (0.04, 0.03, 0.03, DEFAULT_SIGMA)
    assert skeleton.edges == ((0, 1), (0, 2), (0, 3))
    assert skeleton.mirror_permutation() == (0, 2, 1, 3)
    template = service.save_skeleton(db, project.id, definition)
    form = service.skeleton_form(template.definition)
    assert service.parse_skeleton_form(**form) == definition
    # Saving the same name replaces the definition.
    smaller = service.parse_skeleton_form("blob", "head\ntail", "head-tail", "")
    again = service.save_skeleton(db, project.id, smaller)
    assert again.id == template.id and again.definition["keypoints"] == ["head", "tail"]
    assert [t.name for t in service.list_skeletons(db, project.id)] == ["blob"]
    service.delete_skeleton(db, project.id, template.id)
    assert service.list_skeletons(db, project.id) == []
    with pytest.raises(NotFound):
        service.delete_skeleton(db, project.id, template.id)


@pytest.mark.parametrize(
    ("name", "points", "edges", "pairs", "message"),
    [
        ("s", "a\nb", "a-c", "", "unknown keypoint"),
        ("s", "a\na", "", "", "duplicate"),
        ("s", "a -1", "", "", "positive"),
        ("s", "a x", "", "", "must be a number"),
        ("s", "a\nb", "a-b-c", "", "a-b"),
        ("s", "a\nb\nc", "", "a-b, b-c", "reuses"),
        ("coco_wholebody", "a", "", "", "built-in"),
        ("s", "", "", "", "at least one keypoint"),
    ],
)
def test_bad_skeletons_are_refused_with_a_reason(
    name: str, points: str, edges: str, pairs: str, message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        service.parse_skeleton_form(name, points, edges, pairs)


def test_skeleton_json_api_definitions_are_validated(db: Session) -> None:
    project = create_project(db)
    with pytest.raises(Invalid):
        service.save_skeleton(db, project.id, {"name": "x", "keypoints": "notalist", "edges": 5})
    saved = service.save_skeleton(
        db, project.id, {"name": "x", "keypoints": ["a", "b"], "edges": [["a", "b"]]}
    )
    assert saved.definition["sigmas"] == [DEFAULT_SIGMA, DEFAULT_SIGMA]
