"""Clip media with a bucket as the store: the preview video is a redirect to the store (a URL
that works, kept by the browser for half its life), the small images are streamed, and
nothing is redirected before it exists or to someone the clip is not shown to."""

from __future__ import annotations

import io

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.clips.models import ClipState
from app.clips.paths import media_key
from app.core.config import get_settings
from app.core.storage import get_storage
from tests.factories import create_clip, create_user, login
from tests.object_store import SeaweedServer


def test_previews_redirect_to_the_store_and_images_stream(
    use_object_store: SeaweedServer, client: TestClient, db: Session
) -> None:
    clip = create_clip(db, state=ClipState.ready, frame_count=6, width=320, height=240)
    storage = get_storage()
    storage.save_stream(media_key(clip, "preview.mp4"), io.BytesIO(b"\x00\x00\x00\x18ftypmp42"))
    storage.save_stream(media_key(clip, "thumb.jpg"), io.BytesIO(b"\xff\xd8\xff\xe0 a jpeg"))
    annotator = create_user(db)
    login(client, db, annotator)
    assert client.get(f"/media/clips/{clip.id}/preview.mp4").status_code == 404  # not theirs
    login(client, db, create_user(db, Role.admin))

    preview = client.get(f"/media/clips/{clip.id}/preview.mp4", follow_redirects=False)
    assert preview.status_code == 307
    keep = get_settings().presigned_url_seconds // 2
    assert preview.headers["cache-control"] == f"private, max-age={keep}"
    location = preview.headers["location"]
    assert location.startswith(use_object_store.endpoint)
    assert httpx.get(location).content == b"\x00\x00\x00\x18ftypmp42"

    thumb = client.get(f"/media/clips/{clip.id}/thumb.jpg", follow_redirects=False)
    assert thumb.status_code == 200 and thumb.content == b"\xff\xd8\xff\xe0 a jpeg"

    other = create_clip(db, state=ClipState.ready)
    missing = client.get(f"/media/clips/{other.id}/preview.mp4", follow_redirects=False)
    assert missing.status_code == 404 and "not ready yet" in missing.text
