"""Projects (datasets) and their configuration."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import Conflict, Invalid, NotFound
from app.projects.models import (
    DEFAULT_REJECTION_REASONS,
    DEFAULT_REQUIRED_LEVELS,
    DEFAULT_TAG_VOCABULARY,
    EMOTIONS,
    Project,
    Subset,
)


def parse_subsets(text: str) -> list[Subset]:
    """`i2v,pose` -> [Subset.i2v, Subset.pose], with a clear error for unknown names."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    valid = {s.value for s in Subset}
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise Invalid(
            f"Unknown subsets: {', '.join(unknown)}. Choose from {', '.join(sorted(valid))}."
        )
    return [Subset(n) for n in names]


def create_project(
    session: Session, name: str, subsets: list[Subset] | None = None, description: str = ""
) -> Project:
    """A project with the default vocabularies, rejection reasons and required levels."""
    name = name.strip()
    if not name:
        raise Invalid("A project needs a name.")
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"A project named {name!r} already exists.")
    chosen = [s.value for s in (subsets or list(Subset))]
    project = Project(
        name=name,
        description=description,
        subsets=chosen,
        tag_vocabulary={k: list(v) for k, v in DEFAULT_TAG_VOCABULARY.items()},
        emotion_labels=list(EMOTIONS),
        rejection_reasons=list(DEFAULT_REJECTION_REASONS),
        required_levels={s: DEFAULT_REQUIRED_LEVELS[s] for s in chosen},
        quality_thresholds={},
    )
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"No project {project_id}.")
    return project


def get_project_by_name(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"No project named {name!r}.")
    return project


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.name)))
