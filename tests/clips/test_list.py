"""The clips list: keyset pages over a filtered project, and bulk actions on a selection (the
service functions the list page, the API and the CLI share)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.clips import service
from app.clips.filters import ClipFilter
from app.clips.models import Clip, ClipState
from app.clips.schemas import ClipListFilter
from app.core.errors import Invalid, NotFound
from app.pipeline import intake
from app.projects.models import Project
from tests.factories import create_batch, create_clip, create_project, create_user, login


def _clips(db: Session, project: Project, n: int, **over: object) -> list[int]:
    return [create_clip(db, project, **over).id for _ in range(n)]


def test_pages_walk_newest_first_without_gaps_or_repeats_and_back(db: Session) -> None:
    project = create_project(db)
    ids = sorted(_clips(db, project, 23), reverse=True)
    create_clip(db)  # another project's clip never shows
    everything = ClipListFilter()
    pages = [service.page_clips(db, project.id, everything, limit=10)]
    while pages[-1].older_than is not None:
        pages.append(
            service.page_clips(db, project.id, everything, before=pages[-1].older_than, limit=10)
        )
    assert [[c.id for c in p.clips] for p in pages] == [ids[:10], ids[10:20], ids[20:]]
    assert pages[0].newer_than is None and pages[-1].older_than is None
    back = service.page_clips(db, project.id, everything, after=pages[2].newer_than, limit=10)
    assert [c.id for c in back.clips] == ids[10:20]
    assert back.newer_than == ids[10] and back.older_than == ids[19]
    # A cursor whose page has emptied (its clips were deleted) shows the first page.
    gone = service.page_clips(db, project.id, everything, before=min(ids), limit=10)
    assert [c.id for c in gone.clips] == ids[:10]


def test_filters_combine_and_the_name_is_searched_as_typed(db: Session) -> None:
    project = create_project(db)
    plain = create_clip(db, project, filename="walk_cycle.mp4", source_tags={"venue": "indoor"})
    percent = create_clip(db, project, filename="100%_done.mp4", state=ClipState.failed)
    other = create_clip(db, project, filename="walkXcycle.mp4", subsets=["i2v"])
    batch = create_batch(db, project, [plain, other])

    def shown(**flt: object) -> set[int]:
        page = service.page_clips(db, project.id, ClipListFilter.model_validate(flt))
        return {c.id for c in page.clips}

    assert shown(name="WALK_") == {plain.id}  # case-insensitive; "_" is not a wildcard
    assert shown(name="%") == {percent.id}
    assert shown(clip_filter=ClipFilter(state=ClipState.failed)) == {percent.id}
    assert shown(clip_filter=ClipFilter(subset="i2v")) == {other.id}
    assert shown(clip_filter=ClipFilter(tags={"venue": "indoor"})) == {plain.id}
    assert shown(batch_id=batch.id) == {plain.id, other.id}
    assert shown(batch_id=batch.id, name="x") == {other.id}


def test_bulk_acts_on_each_clip_and_reports_the_ones_it_left_alone(db: Session) -> None:
    project = create_project(db)
    free, batched = (create_clip(db, project, state=ClipState.failed) for _ in range(2))
    create_batch(db, project, [batched])
    retried = intake.retry_pipelines(db, project.id, [free.id, batched.id])
    assert set(retried.done) == {free.id, batched.id} and retried.refused == {}
    assert db.get(Clip, free.id).state == ClipState.processing  # type: ignore[union-attr]
    deleted = service.delete_clips(db, project.id, [free.id, batched.id])
    assert deleted.done == [free.id]
    assert "batch" in deleted.refused[batched.id]
    assert db.get(Clip, batched.id) is not None


def test_bulk_refuses_an_empty_selection_and_clips_of_another_project(db: Session) -> None:
    project = create_project(db)
    mine, theirs = create_clip(db, project), create_clip(db)
    with pytest.raises(Invalid):
        service.delete_clips(db, project.id, [])
    with pytest.raises(NotFound):
        service.delete_clips(db, project.id, [mine.id, theirs.id])
    assert db.get(Clip, mine.id) is not None


def test_api_bulk_answers_what_was_done_and_why_not(client: TestClient, db: Session) -> None:
    project = create_project(db)
    free, batched = create_clip(db, project), create_clip(db, project)
    create_batch(db, project, [batched])
    token = login(client, db, create_user(db, Role.admin))
    response = client.post(
        f"/api/projects/{project.id}/clips/bulk",
        json={"action": "delete", "clip_ids": [free.id, batched.id]},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["done"] == [free.id] and list(body["refused"]) == [str(batched.id)]


def test_bad_list_parameters_are_said_in_the_page_with_the_form_kept(
    client: TestClient, db: Session
) -> None:
    project = create_project(db)
    login(client, db, create_user(db, Role.admin))
    page = client.get("/clips", params={"project": project.id, "tag": "venue", "before": "x"})
    assert page.status_code == 200
    assert "Page: expected a number, got &#39;x&#39;." in page.text
    assert 'name="tag" value="venue"' in page.text
