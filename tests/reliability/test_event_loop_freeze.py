"""Two saves of one annotation's tags at once, a few hundred times, against a live server: the
row lock one of them waits on must never stop the process (`/healthz` keeps answering)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from app.annotations.opening import open_annotation
from app.auth import service as auth_service
from app.auth.models import Role
from app.clips.models import ClipState
from app.core.db import session_scope
from tests.factories import create_clip, create_model_draft, create_project, create_user

ROUNDS = 200
HEALTH_TIMEOUT_S = 10.0  # a frozen loop never answers; a busy one answers well within this


def test_concurrent_tag_saves_never_freeze_the_server(live_api: str) -> None:
    tag = uuid.uuid4().hex[:8]
    with session_scope() as s:
        project = create_project(s, name=f"freeze-{tag}")
        clip = create_clip(s, project, state=ClipState.ready, subsets=["i2v"])
        create_model_draft(s, clip)
        owner = create_user(s, Role.annotator, username=f"freeze-{tag}")
        annotation_id = open_annotation(s, clip, owner).id
        token = auth_service.create_api_token(s, owner, "tabs")[1]
        groups = sorted(project.tag_vocabulary)
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/annotations/{annotation_id}/tags"
    statuses: list[int] = []
    stop = threading.Event()
    slow_health: list[str] = []

    def watch_health() -> None:
        with httpx.Client(base_url=live_api, timeout=HEALTH_TIMEOUT_S) as client:
            while not stop.is_set():
                try:
                    client.get("/healthz").raise_for_status()
                except httpx.HTTPError as exc:
                    slow_health.append(repr(exc))
                    return
                stop.wait(0.05)

    with (
        httpx.Client(base_url=live_api, headers=headers, timeout=60) as tab1,
        httpx.Client(base_url=live_api, headers=headers, timeout=60) as tab2,
        ThreadPoolExecutor(3) as pool,
    ):
        watcher = pool.submit(watch_health)
        try:
            version = _version(tab1, annotation_id)
            for round_ in range(ROUNDS):
                value = project.tag_vocabulary[groups[0]][round_ % 2]
                body = {groups[0]: value, "version": str(version)}
                barrier = threading.Barrier(2)

                def save(
                    client: httpx.Client,
                    form: dict[str, str] = body,
                    gate: threading.Barrier = barrier,
                ) -> int:
                    gate.wait()
                    return client.post(path, data=form).status_code

                statuses += pool.map(save, (tab1, tab2))
                version = _version(tab1, annotation_id)
                if slow_health:
                    break
        finally:
            stop.set()
        watcher.result()
    assert slow_health == [], f"/healthz stopped answering after {len(statuses)} saves"
    assert set(statuses) <= {200, 409}, statuses
    assert statuses.count(200) >= ROUNDS


def _version(client: httpx.Client, annotation_id: int) -> int:
    return int(client.get(f"/api/annotations/{annotation_id}").json()["annotation"]["version"])
