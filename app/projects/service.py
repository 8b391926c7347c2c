"""Projects (datasets) and their configuration."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import Conflict, Invalid, NotFound
from app.projects.models import (
    DEFAULT_REQUIRED_LEVELS,
    DEFAULT_TAG_VOCABULARY,
    EMOTIONS,
    Project,
    SkeletonTemplate,
    Subset,
)
from app.projects.reasons import KINDS, default_reasons
from app.projects.schemas import ProjectUpdate
from app.projects.skeletons import BUILTIN_SKELETONS, DEFAULT_SIGMA, Skeleton


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
        raise Invalid("A project needs a name.", field="name")
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"A project named {name!r} already exists.", field="name")
    chosen = [s.value for s in (subsets or list(Subset))]
    project = Project(
        name=name,
        description=description,
        subsets=chosen,
        tag_vocabulary={k: list(v) for k, v in DEFAULT_TAG_VOCABULARY.items()},
        emotion_labels=list(EMOTIONS),
        rejection_reasons=default_reasons(),
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


# --- configuration pages and API ----------------------------------------------------------

# Levels a subset can require, as the review pages name them.
KNOWN_LEVELS = tuple(
    sorted({level for levels in DEFAULT_REQUIRED_LEVELS.values() for level in levels} | {"shots"})
)
_NAME = re.compile(r"^[\w\-]+$")


def _names(values: Sequence[str], what: str, field: str | None = None) -> list[str]:
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    bad = [v for v in cleaned if not _NAME.match(v)]
    if bad:
        raise Invalid(
            f"{what} may use letters, digits, '_' and '-' only: {', '.join(bad)}.", field=field
        )
    return cleaned


def parse_lines(text: str) -> list[str]:
    """One entry per line (or comma-separated), blanks dropped, order kept, duplicates removed."""
    return list(dict.fromkeys(p.strip() for p in re.split(r"[\n,]", text) if p.strip()))


def parse_mapping(text: str) -> dict[str, list[str]]:
    """`key: a, b, c` per line -> {key: [a, b, c]} (tag vocabularies, required levels)."""
    mapping: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        if not sep or not key.strip():
            raise Invalid(f"Line {number}: write `name: value, value`, got {line.strip()!r}.")
        mapping[key.strip()] = parse_lines(rest)
    return mapping


def mapping_text(mapping: Mapping[str, Sequence[str]]) -> str:
    return "\n".join(f"{key}: {', '.join(values)}" for key, values in mapping.items())


def _required_levels(
    project: Project, given: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    """Levels per subset of the project: the given ones, else the current, else the defaults."""
    extra = sorted(set(given or {}) - set(project.subsets))
    if extra:
        raise Invalid(
            f"Levels given for subsets the project lacks: {', '.join(extra)}.",
            field="required_levels",
        )
    fallback = {} if given is not None else project.required_levels
    levels: dict[str, list[str]] = {}
    for subset in project.subsets:
        if given is not None and subset in given:
            chosen = list(dict.fromkeys(given[subset]))
        else:
            chosen = list(fallback.get(subset, DEFAULT_REQUIRED_LEVELS[subset]))
        unknown = sorted(set(chosen) - set(KNOWN_LEVELS))
        if unknown:
            raise Invalid(
                f"Unknown levels for {subset}: {', '.join(unknown)}. "
                f"Choose from {', '.join(KNOWN_LEVELS)}.",
                field="required_levels",
            )
        if not chosen:
            raise Invalid(
                f"Subset {subset} needs at least one required level.", field="required_levels"
            )
        levels[subset] = chosen
    return levels


def _rejection_reasons(given: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Reasons per kind of review item: the given ones, else the defaults."""
    unknown = sorted(set(given) - set(KINDS))
    if unknown:
        raise Invalid(
            f"Rejection reasons for unknown kinds: {', '.join(unknown)}. "
            f"Kinds: {', '.join(KINDS)}.",
            field="rejection_reasons",
        )
    reasons = default_reasons()
    for kind, values in given.items():
        reasons[kind] = _names(values, f"Rejection reasons of {kind}", "rejection_reasons")
        if not reasons[kind]:
            raise Invalid(
                f"Keep at least one rejection reason for {kind}.", field="rejection_reasons"
            )
    return reasons


def update_project(session: Session, project_id: int, data: ProjectUpdate) -> Project:
    """Change a project's settings; every list is validated and unknown levels are refused."""
    project = get_project(session, project_id)
    if data.description is not None:
        project.description = data.description
    if data.subsets is not None:
        if not data.subsets:
            raise Invalid("A project needs at least one subset.", field="subsets")
        project.subsets = list(dict.fromkeys(s.value for s in data.subsets))
    if data.tag_vocabulary is not None:
        vocab: dict[str, list[str]] = {}
        for key, values in data.tag_vocabulary.items():
            if not key.strip():
                raise Invalid("Tag names must not be empty.", field="tag_vocabulary")
            name = _names([key], "Tag names", "tag_vocabulary")[0]
            vocab[name] = _names(values, f"Values of tag {name!r}", "tag_vocabulary")
            if not vocab[name]:
                raise Invalid(f"Tag {name!r} needs at least one value.", field="tag_vocabulary")
        project.tag_vocabulary = vocab
    if data.emotion_labels is not None:
        project.emotion_labels = _names(data.emotion_labels, "Emotion labels", "emotion_labels")
        if not project.emotion_labels:
            raise Invalid("Keep at least one emotion label.", field="emotion_labels")
    if data.rejection_reasons is not None:
        project.rejection_reasons = _rejection_reasons(data.rejection_reasons)
    if data.required_levels is not None or data.subsets is not None:
        project.required_levels = _required_levels(project, data.required_levels)
    if data.caption_guide is not None:
        project.caption_guide = data.caption_guide.strip()
    if data.agreement_threshold is not None:
        project.agreement_threshold = data.agreement_threshold
    if data.admin_acceptance is not None:
        project.admin_acceptance = data.admin_acceptance
    if data.allow_free_tags is not None:
        project.allow_free_tags = data.allow_free_tags
    if data.keypoint_confidence_floor is not None:
        project.keypoint_confidence_floor = data.keypoint_confidence_floor
    if data.approved_model_points_count is not None:
        project.approved_model_points_count = data.approved_model_points_count
    session.flush()
    return project


# --- custom skeletons ---------------------------------------------------------------------


def _point_pairs(text: str, what: str, field: str) -> list[list[str]]:
    pairs = []
    for line in parse_lines(text):
        parts = [p.strip() for p in line.split("-")]
        if len(parts) != 2 or not all(parts):
            raise Invalid(f"{what}: write `a-b` with two point names, got {line!r}.", field=field)
        pairs.append(parts)
    return pairs


def parse_skeleton_form(name: str, points: str, edges: str, symmetric: str) -> dict[str, Any]:
    """The editor's text fields -> a validated skeleton definition.

    Points are one per line as `name sigma` (sigma optional: the default OKS sigma), edges
    and symmetric pairs are `a-b` by point name, one per line or comma-separated.
    """
    names: list[str] = []
    sigmas: list[float] = []
    for line in (ln.strip() for ln in points.splitlines()):
        if not line:
            continue
        fields = line.split()
        if len(fields) > 2:
            raise Invalid(f"Write `name sigma` per line, got {line!r}.", field="points")
        try:
            sigma = float(fields[1]) if len(fields) == 2 else DEFAULT_SIGMA
        except ValueError:
            raise Invalid(f"The sigma of {fields[0]!r} must be a number.", field="points") from None
        names.append(fields[0])
        sigmas.append(sigma)
    return validate_skeleton(
        {
            "name": name.strip(),
            "keypoints": names,
            "sigmas": sigmas,
            "edges": _point_pairs(edges, "Edges", "edges"),
            "symmetric_pairs": _point_pairs(symmetric, "Symmetric pairs", "symmetric"),
        }
    )


SKELETON_NAME_MAX = 64  # the column's length


def validate_skeleton(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A skeleton definition checked by :class:`Skeleton` and normalised to its JSON form."""
    try:
        skeleton = Skeleton.from_dict(definition)
    except (ValueError, TypeError) as exc:
        raise Invalid(str(exc)) from None
    if skeleton.name in BUILTIN_SKELETONS:
        raise Invalid(
            f"{skeleton.name!r} is a built-in skeleton; choose another name.", field="name"
        )
    if not _NAME.match(skeleton.name) or len(skeleton.name) > SKELETON_NAME_MAX:
        raise Invalid(
            f"Skeleton names may use letters, digits, '_' and '-' only, at most "
            f"{SKELETON_NAME_MAX} characters.",
            field="name",
        )
    return skeleton.to_dict()


def skeleton_form(definition: Mapping[str, Any]) -> dict[str, str]:
    """The editor's text fields for a stored definition (the inverse of parse_skeleton_form)."""
    skeleton = Skeleton.from_dict(definition)
    names = skeleton.keypoints

    def pairs(items: Sequence[tuple[int, int]]) -> str:
        return "\n".join(f"{names[a]}-{names[b]}" for a, b in items)

    return {
        "name": skeleton.name,
        "points": "\n".join(f"{n} {s:g}" for n, s in zip(names, skeleton.sigmas, strict=True)),
        "edges": pairs(skeleton.edges),
        "symmetric": pairs(skeleton.symmetric_pairs),
    }


def list_skeletons(session: Session, project_id: int) -> list[SkeletonTemplate]:
    """The project's custom skeletons (built-ins live in app.projects.skeletons)."""
    return list(
        session.scalars(
            select(SkeletonTemplate)
            .where(SkeletonTemplate.project_id == project_id)
            .order_by(SkeletonTemplate.name)
        )
    )


def project_skeletons(session: Session, project_id: int) -> dict[str, Skeleton]:
    """Every skeleton the project's characters may use: the built-ins and its own."""
    found = dict(BUILTIN_SKELETONS)
    for template in list_skeletons(session, project_id):
        found[template.name] = Skeleton.from_dict(template.definition)
    return found


def project_skeleton(session: Session, project_id: int, name: str) -> Skeleton:
    """A built-in skeleton or one of the project's own, by name."""
    if name in BUILTIN_SKELETONS:
        return BUILTIN_SKELETONS[name]
    definition = session.scalar(
        select(SkeletonTemplate.definition).where(
            SkeletonTemplate.project_id == project_id, SkeletonTemplate.name == name
        )
    )
    if definition is None:
        raise NotFound(f"No skeleton template {name!r} in this project.")
    return Skeleton.from_dict(definition)


def save_skeleton(
    session: Session, project_id: int, definition: Mapping[str, Any]
) -> SkeletonTemplate:
    """Create a custom skeleton, or replace the project's skeleton of the same name."""
    project = get_project(session, project_id)
    clean = validate_skeleton(definition)
    template = session.scalar(
        select(SkeletonTemplate).where(
            SkeletonTemplate.project_id == project.id, SkeletonTemplate.name == clean["name"]
        )
    )
    if template is None:
        template = SkeletonTemplate(project_id=project.id, name=clean["name"], definition=clean)
        session.add(template)
    else:
        template.definition = clean
    session.flush()
    return template


def delete_skeleton(session: Session, project_id: int, skeleton_id: int) -> None:
    template = session.get(SkeletonTemplate, skeleton_id)
    if template is None or template.project_id != project_id:
        raise NotFound(f"No custom skeleton {skeleton_id} in project {project_id}.")
    session.delete(template)
    session.flush()
