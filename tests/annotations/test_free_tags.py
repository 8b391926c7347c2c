"""Free-text tags: typed values are normalised and validated, and only taken where the
project allows them."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.annotations.node_edits import free_tag, set_tags
from app.annotations.opening import open_annotation
from app.auth.models import Role
from app.core.errors import Invalid
from tests.factories import create_clip, create_model_draft, create_user

VOCABULARY = {"venue": ["indoor", "outdoor"]}


def test_a_typed_tag_is_normalised_and_checked() -> None:
    assert free_tag("  space   ship ", allowed=True) == "space_ship"
    with pytest.raises(Invalid, match="letters, digits"):
        free_tag("roof/top", allowed=True)
    with pytest.raises(Invalid, match="letters, digits"):
        free_tag("x" * 41, allowed=True)
    with pytest.raises(Invalid, match="only the listed tags"):
        free_tag("rooftop", allowed=False)


def test_set_tags_takes_values_outside_the_vocabulary_only_when_allowed(db: Session) -> None:
    clip = create_clip(db, subsets=["pose"], frame_count=4, width=64, height=64, state="ready")
    create_model_draft(db, clip, frames=4)
    user = create_user(db, Role.annotator)
    annotation = open_annotation(db, clip, user)
    with pytest.raises(Invalid, match="not in the project's tag vocabulary"):
        set_tags(db, user, annotation.id, {"venue": "rooftop"}, annotation.version,
                 VOCABULARY)  # fmt: skip
    saved = set_tags(db, user, annotation.id, {"venue": "rooftop"}, annotation.version,
                     VOCABULARY, free_text=True)  # fmt: skip
    assert saved.tags["venue"] == "rooftop"
    with pytest.raises(Invalid):  # a group the project does not have stays refused
        set_tags(db, user, annotation.id, {"mood": "calm"}, saved.version, VOCABULARY,
                 free_text=True)  # fmt: skip
    with pytest.raises(Invalid):  # and typed values must look like tags
        set_tags(db, user, annotation.id, {"venue": "a b/c"}, saved.version, VOCABULARY,
                 free_text=True)  # fmt: skip
