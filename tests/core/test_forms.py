"""The form mechanism: pydantic errors in plain words, placed on their fields; a refused HTML
form comes back re-rendered, a JSON caller keeps the structured errors."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.core.forms import FormState, field_errors, label_for, plain_message
from tests.factories import create_project, create_user, login


class _Sample(BaseModel):
    name: str = Field(min_length=1, max_length=5)
    count: int = Field(1, ge=1)
    share: float = 0.0


def _errors(**data: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        _Sample.model_validate(data)
    return field_errors(caught.value.errors())[0]


def test_pydantic_errors_read_as_plain_words_on_their_fields() -> None:
    assert _errors(name="") == {"name": "Fill this in."}
    assert _errors(name="toolong") == {"name": "Use at most 5 characters."}
    assert _errors(name="ok", count="two") == {"count": "Enter a whole number."}
    assert _errors(name="ok", count=0) == {"count": "Enter 1 or more."}
    assert _errors(name="ok", share="lots") == {"share": "Enter a number."}
    assert _errors() == {"name": "Fill this in."}


def test_request_locations_name_the_form_field() -> None:
    errors = [
        {"type": "missing", "loc": ("body", "name"), "msg": "Field required"},
        {"type": "int_parsing", "loc": ("query", "project_id"), "msg": "..."},
        {"type": "int_parsing", "loc": ("path", "batch_id"), "msg": "..."},
    ]
    by_field, general = field_errors(errors)
    assert by_field == {"name": "Fill this in.", "project_id": "Enter a whole number."}
    assert general == "Enter a whole number."
    assert label_for("clip_ids") == "Clip ids" and label_for("project_id") == "Project"
    assert label_for("new-venue") == "New venue"


def test_form_state_keeps_values_and_defaults_before_a_submission() -> None:
    blank = FormState()
    assert blank.value("name", "default") == "default" and blank.checked("x", "a", True)
    sent = FormState({"name": ["typed"], "tags": ["a", "b"]}, prefix="batch")
    assert sent.value("name", "default") == "typed" and sent.value("absent", "d") == ""
    assert sent.checked("tags", "b") and not sent.checked("tags", "c", True)
    assert sent.named("batch") is sent and not sent.named("export").submitted
    assert sent.field_id("name") == "batch-name"


def test_refused_html_form_is_re_rendered_and_json_keeps_structured_errors(
    client: TestClient, db: Session
) -> None:
    admin = create_user(db, Role.admin)
    csrf = login(client, db, admin)
    project = create_project(db)
    sent = {"csrf_token": csrf, "name": "week 1", "project_id": str(project.id),
            "lease_minutes": "soon"}  # fmt: skip
    page = client.post("/batches", data=sent)
    assert page.status_code == 422 and "<html" in page.text
    assert re.search(r'id="batch-lease_minutes"[^>]*aria-invalid="true"', page.text)
    assert "Enter a whole number." in page.text and 'value="week 1"' in page.text
    assert "body." not in page.text
    api = client.post("/batches", data=sent, headers={"Accept": "application/json"})
    assert api.status_code == 422
    assert ["body", "lease_minutes"] in [e["loc"] for e in api.json()["detail"]]


def test_a_value_the_database_refuses_re_renders_the_form(client: TestClient, db: Session) -> None:
    admin = create_user(db, Role.admin)
    csrf = login(client, db, admin)
    page = client.post(
        "/projects",
        data={"csrf_token": csrf, "name": "nul\x00name", "subsets": "pose", "description": "kept"},
    )
    assert page.status_code == 422 and "A value cannot be stored" in page.text
    assert ">kept</textarea>" in page.text


class Split(BaseModel):
    val_percent: float = Field(ge=0.0, le=50.0)
    seed: int = Field(ge=0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"val_percent": 80, "seed": 0}, "Enter 50 or less."),  # not "50.0"
        ({"val_percent": -1, "seed": 0}, "Enter 0 or more."),
        ({"val_percent": 10, "seed": -3}, "Enter 0 or more."),
        ({"val_percent": "ten", "seed": 0}, "Enter a number."),
    ],
)
def test_bounds_are_written_as_typed(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Split.model_validate(values)
    assert plain_message(refused.value.errors()[0]) == message
