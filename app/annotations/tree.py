"""The annotation tree: which node belongs to which annotation and what lies under it::

    annotation (the clip: tags, quality and timing are its own fields)
     ├─ shot, caption, speech_segment
     └─ character
         └─ track (its keypoint frames carry no status; they are the track's content)

Review walks it (a parent is approved after its children), and so do history and submission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, Caption, Character, Shot, SpeechSegment, Track
from app.clips.models import Clip
from app.core.errors import Invalid, NotFound
from app.projects.models import Project

Node: TypeAlias = Annotation | Shot | Character | Track | Caption | SpeechSegment


NODE_MODELS: dict[str, type[Node]] = {
    "annotation": Annotation,
    "shot": Shot,
    "character": Character,
    "track": Track,
    "caption": Caption,
    "speech_segment": SpeechSegment,
}


NodeType = Literal["annotation", "shot", "character", "track", "caption", "speech_segment"]


@dataclass(frozen=True)
class NodeRef:
    """A node by type and id (the review API takes and returns these as they are)."""

    type: NodeType
    id: int


def get_node(session: Session, node_type: str, node_id: int) -> tuple[Node, Annotation]:
    """The node and the annotation it belongs to."""
    model = NODE_MODELS.get(node_type)
    if model is None:
        raise Invalid(f"Unknown node type {node_type!r}; use one of {', '.join(NODE_MODELS)}.")
    node: Node | None = session.get(model, node_id)  # type: ignore[assignment]
    if node is None:
        raise NotFound(f"No {node_type.replace('_', ' ')} {node_id}.")
    return node, annotation_of(session, node)


def annotation_of(session: Session, node: Node) -> Annotation:
    if isinstance(node, Annotation):
        return node
    if isinstance(node, Track):
        node = session.get_one(Character, node.character_id)
    return session.get_one(Annotation, node.annotation_id)


def node_type_of(node: Node) -> NodeType:
    return cast(
        NodeType, next(name for name, model in NODE_MODELS.items() if isinstance(node, model))
    )


def children_of(session: Session, node: Node) -> list[Node]:
    if isinstance(node, Annotation):
        owned: list[Node] = []
        for model in (Shot, Character, Caption, SpeechSegment):
            owned += session.scalars(
                select(model).where(model.annotation_id == node.id).order_by(model.id)
            )
        return owned
    if isinstance(node, Character):
        return list(
            session.scalars(select(Track).where(Track.character_id == node.id).order_by(Track.id))
        )
    return []


def ancestors(session: Session, node: Node) -> list[Node]:
    if isinstance(node, Annotation):
        return []
    if isinstance(node, Track):
        character = session.get_one(Character, node.character_id)
        return [character, annotation_of(session, character)]
    return [annotation_of(session, node)]


def descendants(session: Session, node: Node) -> list[Node]:
    found: list[Node] = []
    for child in children_of(session, node):
        found += [child, *descendants(session, child)]
    return found


def labelled_nodes(session: Session, annotation: Annotation) -> list[tuple[Node, Node | None, str]]:
    """Every node of the annotation in review order, with its parent and the name people see
    in the review panel ("Shot 2 (frames 48-95)", "Character Emil", "Emil: keypoints (133)",
    "Shot 2 action caption", "Speech 0.40-1.20 s")."""
    found: list[tuple[Node, Node | None, str]] = [(annotation, None, "Clip: tags, quality, timing")]
    shot_names: dict[int, str] = {}
    char_names: dict[int, str] = {}
    for child in children_of(session, annotation):
        if isinstance(child, Shot):
            shot_names[child.id] = f"Shot {len(shot_names) + 1}"
            name = f"{shot_names[child.id]} (frames {child.start_frame}-{child.end_frame - 1})"
            found.append((child, annotation, name))
        elif isinstance(child, Character):
            char_names[child.id] = child.name
            found.append((child, annotation, f"Character {child.name}"))
            for track in children_of(session, child):
                assert isinstance(track, Track)
                found.append((track, child, f"{child.name}: keypoints ({track.num_points})"))
        elif isinstance(child, Caption):
            owner = {
                "clip": "Clip",
                "shot": shot_names.get(child.target_id, "Shot"),
                "character": char_names.get(child.target_id, "Character"),
            }[child.level.value]
            found.append((child, annotation, f"{owner} {child.field} caption"))
        elif isinstance(child, SpeechSegment):
            found.append((child, annotation, f"Speech {child.start_s:.2f}-{child.end_s:.2f} s"))
    return found


def label_of(session: Session, node: Node) -> str:
    """The node's name in the review panel, for messages about it."""
    annotation = annotation_of(session, node)
    return next(label for item, _, label in labelled_nodes(session, annotation) if item is node)


def project_of(session: Session, annotation: Annotation) -> Project:
    clip = session.get_one(Clip, annotation.clip_id)
    return session.get_one(Project, clip.project_id)
