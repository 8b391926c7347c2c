"""The step registry: each step module registers its functions here with :func:`register_step`.

It imports no step and no runner, so step modules import it without a circle;
:mod:`app.pipeline.service` imports the step modules (which fills :data:`STEPS`) and reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.clips.models import Clip
from app.core.jobs import QUEUE_CHEAP, QUEUE_MODEL

STEP_ORDER = ("probe", "frames", "shots", "keypoints", "faces", "caption", "audio")

StepFunction = Callable[[Session, Clip], dict[str, object]]


class StepFailed(Exception):
    """A step cannot succeed for this clip (bad input): fail the job, do not retry."""

    def __init__(self, message: str, *, kind: str = "failed", fail_clip: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.fail_clip = fail_clip


@dataclass(frozen=True)
class Step:
    name: str
    queue: str
    run: StepFunction
    applies: Callable[[Clip], bool] = lambda clip: True


STEPS: dict[str, Step] = {}
"""Registered steps by name, filled when the step modules are imported."""


def register_step(
    name: str, *, model: bool = False, applies: Callable[[Clip], bool] | None = None
) -> Callable[[StepFunction], StepFunction]:
    """Decorator adding a step function ``fn(session, clip) -> result dict`` to the pipeline."""
    if name not in STEP_ORDER:
        raise ValueError(f"unknown step {name!r}")

    def decorate(fn: StepFunction) -> StepFunction:
        STEPS[name] = Step(
            name, QUEUE_MODEL if model else QUEUE_CHEAP, fn, applies or (lambda clip: True)
        )
        return fn

    return decorate
