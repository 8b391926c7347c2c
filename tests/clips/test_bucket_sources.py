"""Clips from a bucket prefix, against a real SeaweedFS: records only, re-syncs add new
objects only, credentials refused or sealed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.clips import bucket_sources as sources
from app.clips.models import Clip, ClipState, SyncState
from app.clips.schemas import SourceCreate
from app.core.errors import Conflict, Invalid
from app.core.secret_box import unseal
from app.pipeline.steps import probe_step
from tests.factories import create_batch, create_project
from tests.media.videos import write_pyav
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer


def put_objects(store: SeaweedServer, bucket: str, keys: list[str]) -> None:
    client = store.client()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"v"), keys))


def source_form(store: SeaweedServer, url: str, **over: Any) -> SourceCreate:
    keys = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
    fields = {"url": url, "endpoint_url": store.endpoint, "region": REGION, **keys}
    return SourceCreate.model_validate({**fields, **over})


def test_a_bucket_of_1000_videos_becomes_1000_records_and_a_resync_adds_only_new_ones(
    db: Session, object_store: SeaweedServer, media_root: Path
) -> None:
    bucket = object_store.make_bucket("team-clips-a")
    keys = [f"show/ep{n // 100}/shot{n:04d}.mp4" for n in range(1000)]
    put_objects(object_store, bucket, [*keys, "show/notes.txt", "elsewhere/x.mp4"])
    project = create_project(db)
    source = sources.register_source(db, project, source_form(object_store, f"s3://{bucket}/show"))
    assert source.url == f"s3://{bucket}/show/"

    first = sources.sync_source(db, source.id)
    assert (first.listed, first.created) == (1000, 1000)
    clips = list(db.scalars(select(Clip).where(Clip.project_id == project.id)))
    assert sorted(c.storage_key for c in clips) == sorted(keys)  # the object keys, in place
    assert {c.source_id for c in clips} == {source.id}
    assert all(c.state == ClipState.uploaded and c.size_bytes == 1 for c in clips)
    assert not (media_root / "clips" / str(project.id)).exists()  # nothing was copied
    assert (source.object_count, source.state) == (1000, SyncState.synced)

    # New objects anywhere in the listing, also before keys already seen.
    put_objects(object_store, bucket, [f"show/ep0/a-new{n}.mkv" for n in range(10)])
    again = sources.sync_source(db, source.id)
    assert (again.listed, again.created) == (1010, 10)
    assert db.scalar(select(Clip.id).where(Clip.source_id == source.id).limit(1)) is not None
    assert source.object_count == 1010


def test_the_pipeline_probes_a_bucket_clip_in_place_through_its_source(
    db: Session, object_store: SeaweedServer, tmp_path: Path, media_root: Path
) -> None:
    bucket = object_store.make_bucket("team-clips-b")
    video = write_pyav(tmp_path / "one.mp4", frames=12, width=64, height=48)
    object_store.client().put_object(Bucket=bucket, Key="in/one.mp4", Body=video.read_bytes())
    project = create_project(db)
    source = sources.register_source(db, project, source_form(object_store, f"s3://{bucket}/in/"))
    sources.sync_source(db, source.id)
    clip = db.scalars(select(Clip).where(Clip.source_id == source.id)).one()
    probe_step(db, clip)  # what a worker runs first: it reads the source where it lies
    assert (clip.frame_count, clip.width, clip.height) == (12, 64, 48)
    assert not (media_root / "clips" / str(project.id)).exists()  # nothing was copied


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"secret_access_key": "not-the-secret"}, "secret_access_key", "refused these keys"),
        ({"url": "s3://no-such-bucket/x/"}, "url", "no bucket 'no-such-bucket'"),
        ({"url": "https://example.com/bucket"}, "url", "not a bucket address"),
        ({"url": "s3://team-clips-c"}, "url", "not the whole bucket"),
        ({"endpoint_url": "http://127.0.0.1:9"}, "endpoint_url", "Cannot reach the endpoint"),
        ({"endpoint_url": "not a url"}, "endpoint_url", "not an endpoint URL"),
        ({"access_key_id": ""}, "secret_access_key", "both the access key id and the secret"),
    ],
)
def test_mistakes_are_refused_with_what_to_correct(
    db: Session, object_store: SeaweedServer, over: dict[str, str], field: str, words: str
) -> None:
    bucket = object_store.make_bucket("team-clips-c")
    project = create_project(db)
    with pytest.raises(Invalid) as refused:
        form = source_form(object_store, **{"url": f"s3://{bucket}/x/", **over})
        sources.register_source(db, project, form)
    assert refused.value.field == field
    assert words in refused.value.message
    assert sources.list_sources(db, project.id) == []


def test_the_secret_is_stored_sealed(db: Session, object_store: SeaweedServer) -> None:
    bucket = object_store.make_bucket("team-clips-d")
    project = create_project(db)
    source = sources.register_source(db, project, source_form(object_store, f"s3://{bucket}/p/"))
    stored = db.execute(text("SELECT * FROM bucket_source WHERE id = :id"), {"id": source.id}).one()
    assert all(SECRET_KEY not in str(value) for value in stored)
    assert unseal(source.secret_encrypted) == SECRET_KEY
    with pytest.raises(Conflict):  # the same prefix twice
        sources.register_source(db, project, source_form(object_store, f"s3://{bucket}/p"))


def test_a_source_whose_clips_are_in_a_batch_is_not_deleted(
    db: Session, object_store: SeaweedServer
) -> None:
    bucket = object_store.make_bucket("team-clips-e")
    put_objects(object_store, bucket, ["d/a.mp4", "d/b.mp4"])
    project = create_project(db)
    source = sources.register_source(db, project, source_form(object_store, f"s3://{bucket}/d/"))
    sources.sync_source(db, source.id)
    clips = list(db.scalars(select(Clip).where(Clip.source_id == source.id)))
    batch = create_batch(db, project, clips[:1])
    with pytest.raises(Conflict, match="in batches"):
        sources.delete_source(db, source.id)
    db.delete(batch)
    db.flush()
    sources.delete_source(db, source.id)
    assert db.scalar(select(Clip.id).where(Clip.project_id == project.id)) is None


def test_keys_entered_again_after_the_key_changed_are_asked_for(
    db: Session, object_store: SeaweedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = object_store.make_bucket("team-clips-f")
    project = create_project(db)
    source = sources.register_source(db, project, source_form(object_store, f"s3://{bucket}/p/"))
    from app.core.config import get_settings

    monkeypatch.setattr(get_settings(), "credentials_key", SecretStr("another key"))
    with pytest.raises(Invalid, match="enter the secret key again"):
        sources.sync_source(db, source.id)
