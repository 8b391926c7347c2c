"""Refusals in the words a person filling in a form uses."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from app.core.forms import plain_message


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
