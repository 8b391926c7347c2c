"""The bucket sources page and API: mistakes shown with what was typed (the secret emptied),
the secret never sent back, other projects' sources not found, and "process now" queueing
the pipeline for the records a sync created."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.clips import bucket_sources as sources
from app.clips.models import Clip, ClipState
from app.clips.schemas import SourceCreate
from app.core.models import OutboxMessage
from app.pipeline.models import Job
from app.pipeline.service import RUN_STEP_TASK
from app.pipeline.source_processing import PROCESS_SOURCE_TASK, process_source
from tests.clips.test_bucket_sources import put_objects
from tests.factories import create_project, create_user, login
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer


def _body(store: SeaweedServer, bucket: str, **over: str) -> dict[str, str]:
    return {"url": f"s3://{bucket}/clips/", "endpoint_url": store.endpoint, "region": REGION,
            "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, **over}  # fmt: skip


def test_the_api_registers_lists_and_syncs_without_ever_returning_the_secret(
    client: TestClient, db: Session, object_store: SeaweedServer
) -> None:
    bucket = object_store.make_bucket("api-clips")
    csrf = {"X-CSRF-Token": login(client, db, create_user(db, Role.admin))}
    project = create_project(db)
    made = client.post(f"/api/projects/{project.id}/sources", json=_body(object_store, bucket),
                       headers=csrf)  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["secret_set"] is True and made.json()["state"] == "queued"
    assert made.json()["access_key_id"] == ACCESS_KEY
    listed = client.get(f"/api/projects/{project.id}/sources")
    assert [s["url"] for s in listed.json()] == [f"s3://{bucket}/clips/"]
    synced = client.post(f"/api/sources/{made.json()['id']}/sync", headers=csrf)
    assert synced.status_code == 200
    page = client.get(f"/projects/{project.id}/sources")
    for response in (made, listed, synced, page):
        assert SECRET_KEY not in response.text

    wrong = client.post(f"/api/projects/{project.id}/sources", headers=csrf,
                        json=_body(object_store, bucket, url=f"s3://{bucket}/other/",
                                   secret_access_key="wrong"))  # fmt: skip
    assert wrong.status_code == 422
    assert "refused these keys" in wrong.text and "wrong" not in wrong.text.split("refused")[0]


def test_a_refused_form_keeps_what_was_typed_but_not_the_secret(
    client: TestClient, db: Session, object_store: SeaweedServer
) -> None:
    csrf = login(client, db, create_user(db, Role.admin))
    project = create_project(db)
    typed = _body(object_store, "no-such-bucket-here")
    page = client.post(f"/projects/{project.id}/sources", data={**typed, "csrf_token": csrf})
    assert page.status_code == 422
    assert "There is no bucket &#39;no-such-bucket-here&#39;" in page.text
    assert 'value="s3://no-such-bucket-here/clips/"' in page.text
    assert f'value="{object_store.endpoint}"' in page.text
    assert SECRET_KEY not in page.text
    assert re.search(r'name="url"[^>]*aria-invalid="true"', page.text)


def test_another_projects_source_is_not_found_on_this_projects_page(
    client: TestClient, db: Session, object_store: SeaweedServer
) -> None:
    bucket = object_store.make_bucket("other-project-clips")
    csrf = login(client, db, create_user(db, Role.admin))
    mine, theirs = create_project(db), create_project(db)
    source = sources.register_source(
        db, theirs, SourceCreate.model_validate(_body(object_store, bucket))
    )
    for action in ("sync", "delete"):
        response = client.post(f"/projects/{mine.id}/sources/{source.id}/{action}",
                               data={"csrf_token": csrf})  # fmt: skip
        assert response.status_code == 404, action


def process(client: TestClient, csrf: str, project_id: int, source_id: int) -> httpx.Response:
    """Press "Process now" and follow to the page it sends back to."""
    pressed = client.post(f"/projects/{project_id}/sources/{source_id}/process",
                          data={"csrf_token": csrf}, follow_redirects=False)  # fmt: skip
    assert pressed.status_code == 303, pressed.text
    page = client.get(pressed.headers["location"])
    assert page.url.path == f"/projects/{project_id}/sources"
    return page


def test_process_now_queues_the_pipeline_for_the_records_a_sync_created(
    client: TestClient, db: Session, object_store: SeaweedServer
) -> None:
    bucket = object_store.make_bucket("process-now")
    put_objects(object_store, bucket, [f"clips/c{n}.mp4" for n in range(3)])
    csrf = login(client, db, create_user(db, Role.admin))
    project = create_project(db)
    source = sources.register_source(
        db, project, SourceCreate.model_validate(_body(object_store, bucket))
    )
    sources.sync_source(db, source.id)
    page = client.get(f"/projects/{project.id}/sources").text
    assert 'data-testid="source-unprocessed">3<' in page and ">Process now</button>" in page

    done = process(client, csrf, project.id, source.id)
    assert f"Processing 3 clips of s3://{bucket}/clips/ in the background" in done.text
    assert 'data-testid="source-state">processing<' in done.text
    assert 'hx-trigger="every 2s"' in done.text  # the table follows the count down
    sends = [(m.task_name, m.args) for m in db.scalars(select(OutboxMessage))]
    assert (PROCESS_SOURCE_TASK, [source.id]) in sends  # one task, through the outbox

    # What the task does, a bulk at a time: each clip's first step queued through the outbox.
    bulk = process_source(db, source.id)
    assert (len(bulk.queued), bulk.waiting) == (3, 0)
    clips = list(db.scalars(select(Clip).where(Clip.source_id == source.id)))
    assert {c.state for c in clips} == {ClipState.processing}
    probes = select(Job.id).where(Job.clip_id.in_([c.id for c in clips]), Job.step == "probe")
    sends = [m.args[0] for m in db.scalars(select(OutboxMessage).where(
        OutboxMessage.task_name == RUN_STEP_TASK))]  # fmt: skip
    first_steps = set(db.scalars(probes))
    assert len(first_steps) == 3 and first_steps <= set(sends)
    page = client.get(f"/projects/{project.id}/sources").text
    assert 'data-testid="source-unprocessed">0<' in page
    assert ">Process now</button>" not in page

    again = process(client, csrf, project.id, source.id)
    assert "Every clip of" in again.text and "is processed or queued already" in again.text
    put_objects(object_store, bucket, ["clips/late.mp4"])
    sources.sync_source(db, source.id)
    api = client.post(f"/api/sources/{source.id}/process", headers={"X-CSRF-Token": csrf})
    assert api.status_code == 202
    assert api.json()["state"] == "processing"


def test_a_source_being_listed_is_not_processed_yet(
    client: TestClient, db: Session, object_store: SeaweedServer
) -> None:
    """Its records are not all there: the press is refused in the page, nothing is sent."""
    bucket = object_store.make_bucket("process-while-listing")
    put_objects(object_store, bucket, ["clips/a.mp4"])
    csrf = login(client, db, create_user(db, Role.admin))
    project = create_project(db)
    source = sources.register_source(
        db, project, SourceCreate.model_validate(_body(object_store, bucket))
    )
    sources.sync_source(db, source.id)
    sources.request_sync(db, source.id)  # a listing queued again
    refused = client.post(f"/projects/{project.id}/sources/{source.id}/process",
                          data={"csrf_token": csrf})  # fmt: skip
    assert refused.status_code == 409
    assert "is being listed: process it once the sync has finished" in refused.text
    assert not [m for m in db.scalars(select(OutboxMessage)) if m.task_name == PROCESS_SOURCE_TASK]


def test_only_admins_process_a_source_and_only_their_projects(
    client: TestClient, db: Session, object_store: SeaweedServer
) -> None:
    bucket = object_store.make_bucket("process-refused")
    mine, theirs = create_project(db), create_project(db)
    source = sources.register_source(
        db, theirs, SourceCreate.model_validate(_body(object_store, bucket))
    )
    for role in (Role.annotator, Role.reviewer):
        csrf = login(client, db, create_user(db, role))
        path = f"/projects/{theirs.id}/sources/{source.id}/process"
        assert client.post(path, data={"csrf_token": csrf}).status_code == 403
        api = client.post(f"/api/sources/{source.id}/process", headers={"X-CSRF-Token": csrf})
        assert api.status_code == 403
    csrf = login(client, db, create_user(db, Role.admin))
    wrong = client.post(f"/projects/{mine.id}/sources/{source.id}/process",
                        data={"csrf_token": csrf})  # fmt: skip
    assert wrong.status_code == 404
    assert client.post(f"/projects/{theirs.id}/sources/{source.id}/process").status_code == 403
