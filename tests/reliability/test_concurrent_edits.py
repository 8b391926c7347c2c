"""Many people saving the same node at once, through the real HTTP API of a live server.

Randomized rounds: the owning annotator (in two browser tabs), an admin fixing the same
caption, a second annotator and a reviewer fire at one caption together. Between editing
rounds the annotation goes to review, where the reviewer and an admin race to approve the
caption, and the admin reopens it. Afterwards the caption's append-only history must hold
exactly the writes that were accepted, in version order: none lost, none invented; every
losing write got a 409 and everyone outside the annotation was refused.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, text

from app.annotations.models import Caption, CaptionLevel, Revision
from app.annotations.opening import open_annotation
from app.auth import service as auth_service
from app.auth.models import Role
from app.clips.models import ClipState
from app.core.db import session_scope
from tests.factories import create_clip, create_model_draft, create_project, create_user
from tests.reliability.conftest import wait_for

CYCLES = 3
EDIT_ROUNDS = 8
EDITORS = ("tab1", "tab2", "admin")


@dataclass
class Scene:
    annotation_id: int
    caption_id: int
    tokens: dict[str, str]  # actor -> Bearer token


@pytest.fixture
def scene(engine: object) -> Scene:
    """A committed clip with a model draft and annotator A's copy of it, plus five callers."""
    tag = uuid.uuid4().hex[:8]
    with session_scope() as s:
        project = create_project(s, name=f"race-{tag}")
        project.required_levels = {}  # submitting needs nothing filled in
        clip = create_clip(s, project, state=ClipState.ready, subsets=["i2v"])
        create_model_draft(s, clip)
        owner = create_user(s, Role.annotator, username=f"race-a-{tag}")
        users = {
            "tab1": owner,
            "tab2": owner,
            "admin": create_user(s, Role.admin, username=f"race-admin-{tag}"),
            "other": create_user(s, Role.annotator, username=f"race-b-{tag}"),
            "reviewer": create_user(s, Role.reviewer, username=f"race-r-{tag}"),
        }
        annotation = open_annotation(s, clip, owner)
        caption = s.scalars(
            select(Caption).where(
                Caption.annotation_id == annotation.id, Caption.level == CaptionLevel.clip
            )
        ).one()
        tokens = {
            actor: auth_service.create_api_token(s, user, actor)[1] for actor, user in users.items()
        }
        return Scene(annotation.id, caption.id, tokens)


@pytest.fixture
def clients(live_api: str, scene: Scene) -> Iterator[dict[str, httpx.Client]]:
    made = {
        actor: httpx.Client(
            base_url=live_api, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        for actor, token in scene.tokens.items()
    }
    try:
        yield made
    finally:
        for client in made.values():
            client.close()


def current_version(client: httpx.Client, annotation_id: int, caption_id: int) -> int:
    payload = client.get(f"/api/annotations/{annotation_id}").json()
    return next(int(c["version"]) for c in payload["captions"] if c["id"] == caption_id)


Call = tuple[httpx.Client, str, str, dict[str, Any]]  # client, method, path, JSON body


def together(calls: dict[str, Call]) -> dict[str, httpx.Response]:
    """Send each actor's request from its own thread, all released at the same instant."""
    barrier = threading.Barrier(len(calls))

    def run(call: Call) -> httpx.Response:
        client, method, path, body = call
        barrier.wait()
        return client.request(method, path, json=body)

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {actor: pool.submit(run, call) for actor, call in calls.items()}
        return {actor: future.result() for actor, future in futures.items()}


def stale(rng: random.Random, fresh: int) -> int:
    """A version someone has already moved past (a future one could become current mid-round)."""
    return max(1, fresh - rng.randint(1, 3))


def test_concurrent_saves_keep_every_accepted_write_and_409_the_rest(
    scene: Scene, clients: dict[str, httpx.Client]
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    accepted: list[tuple[int, str]] = []  # (version after the write, text)
    approvals: list[int] = []  # versions the winning approvals produced
    refused = 0
    cap_url = f"/api/captions/{scene.caption_id}"
    for cycle in range(CYCLES):
        for n in range(EDIT_ROUNDS):
            fresh = current_version(clients["tab1"], scene.annotation_id, scene.caption_id)
            editors = rng.sample(EDITORS, rng.randint(2, 3))
            versions = {a: fresh if rng.random() < 0.75 else stale(rng, fresh) for a in editors}
            texts = {a: f"{a} c{cycle} r{n} {uuid.uuid4().hex[:6]}" for a in editors}
            calls: dict[str, Call] = {
                a: (clients[a], "PUT", cap_url, {"text": texts[a], "version": versions[a]})
                for a in editors
            }
            for outsider in ("other", "reviewer"):
                body = {"text": f"{outsider} was here", "version": fresh}
                calls[outsider] = (clients[outsider], "PUT", cap_url, body)
            responses = together(calls)
            where = f"seed {seed}, cycle {cycle}, round {n}, versions {versions}"
            assert responses["other"].status_code == 404, where  # not theirs: looks absent
            assert responses["reviewer"].status_code == 403, where  # reviewers do not edit
            refused += 2
            winners = [a for a in editors if responses[a].status_code == 200]
            for actor in editors:
                response = responses[actor]
                if actor in winners:
                    assert versions[actor] == fresh, where
                    accepted.append((response.json()["version"], texts[actor]))
                else:
                    assert response.status_code == 409, f"{where}: {actor} {response.text}"
                    assert response.json()["error"] == "conflict"
                    assert response.json()["detail"]["current_version"] > versions[actor], where
            assert len(winners) == (1 if fresh in versions.values() else 0), where
        # Review: the reviewer and an admin approve the same caption at the same moment.
        submitted = clients["tab1"].post(f"/api/annotations/{scene.annotation_id}/submit")
        assert submitted.status_code == 200, submitted.text
        seen = current_version(clients["reviewer"], scene.annotation_id, scene.caption_id)
        approve = f"/api/review/caption/{scene.caption_id}/approve"
        race = together(
            {r: (clients[r], "POST", approve, {"version": seen}) for r in ("reviewer", "admin")}
        )
        assert sorted(r.status_code for r in race.values()) == [200, 409], {
            k: v.text for k, v in race.items()
        }
        winner = next(r for r in race.values() if r.status_code == 200).json()
        approvals.append(winner["version"])
        reopened = clients["admin"].post(
            f"/api/review/caption/{scene.caption_id}/reopen",
            json={"version": winner["version"], "reason": "another round"},
        )
        assert reopened.status_code == 200, reopened.text

    with session_scope() as s:
        caption = s.get_one(Caption, scene.caption_id)
        history = s.scalars(
            select(Revision)
            .where(Revision.node_type == "caption", Revision.node_id == scene.caption_id)
            .order_by(Revision.version)
        ).all()
    updates = [(r.version, r.after["text"]) for r in history if r.action == "update"]
    assert updates == sorted(accepted), f"seed {seed}"
    assert len(accepted) >= CYCLES * EDIT_ROUNDS // 2  # the rounds really raced and wrote
    approved = [
        r.version for r in history if r.action == "status" and r.after == {"status": "approved"}
    ]
    assert approved == approvals
    versions = [r.version for r in history]
    assert versions == list(range(versions[0], versions[0] + len(versions)))  # no gaps, no twins
    assert versions[-1] == caption.version
    assert caption.text == max(accepted)[1]
    assert refused == CYCLES * EDIT_ROUNDS * 2


def test_a_save_that_loses_the_race_in_the_database_gets_409_with_the_current_frame(
    engine: Engine, scene: Scene, clients: dict[str, httpx.Client]
) -> None:
    """Two saves of one frame both pass the version check, then meet at the row: the second
    UPDATE matches nothing once the first commits. The loser's 409 carries the winner's frame,
    as a stale save's does (the workspace's conflict dialog shows it)."""
    payload = clients["tab1"].get(f"/api/annotations/{scene.annotation_id}").json()
    track = payload["characters"][0]["tracks"][0]
    frame = next(f for f in track["frames"] if f["frame"] == 2)
    frame_url = f"/api/tracks/{track['id']}/frames/2"
    mine = [[10.0, 10.0, 2]] * len(frame["points"])
    theirs = [[20.0, 20.0, 2]] * len(frame["points"])

    def waiting() -> int:
        with engine.connect() as c:
            return int(
                c.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
                or 0
            )

    with ThreadPoolExecutor(2) as pool, engine.connect() as holder:
        # Hold the row so both saves read version v, pass the check and queue at the UPDATE.
        holder.execute(
            text("SELECT 1 FROM keypoint_frame WHERE id = :id FOR UPDATE"), {"id": frame["id"]}
        )
        body = {"version": frame["version"]}
        first = pool.submit(clients["admin"].put, frame_url, json={**body, "points": theirs})
        wait_for(lambda: waiting() == 1, 10, "the first save to wait for the row")
        second = pool.submit(clients["tab1"].put, frame_url, json={**body, "points": mine})
        wait_for(lambda: waiting() == 2, 10, "the second save to wait for the row")
        holder.rollback()  # the first in the queue writes, the second finds the row moved on
        won, lost = first.result(), second.result()
    assert won.status_code == 200, won.text
    assert lost.status_code == 409, lost.text
    conflict = lost.json()
    assert conflict["error"] == "conflict"
    assert conflict["detail"]["current_version"] == won.json()[0]["version"] == frame["version"] + 1
    current = conflict["detail"]["current"]
    assert current["frame"] == 2 and current["version"] == frame["version"] + 1
    assert [p[:3] for p in current["points"]] == theirs
