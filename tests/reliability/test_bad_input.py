"""Bad input gets a clear 4xx and leaves nothing behind: broken media, fuzzed uploads, lying or
oversized bodies, malformed manifests and JSON, keypoints outside the frame."""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.annotations.models import KeypointFrame, Track
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload
from app.annotations.points import decode_points
from app.auth import service as auth_service
from app.auth.models import Role
from app.clips.models import Clip
from app.clips.paths import source_path
from app.core import forms
from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import Invalid
from app.core.limits import FORM_OVERHEAD
from app.main import create_app
from app.pipeline import intake
from app.pipeline.registry import StepFailed
from app.pipeline.service import get_step
from app.projects.models import Project
from app.samples.badfiles import make_bad_files
from tests.auth.test_route_access import api_routes
from tests.factories import (
    clip_media_dir,
    create_clip,
    create_model_draft,
    create_project,
    create_user,
    login,
)
from tests.reliability.conftest import CELLABEL, serve, subprocess_env

SEED = 20261127
LIMIT = 64 * 1024  # MAX_UPLOAD_BYTES for these tests


@pytest.fixture
def admin_auth(db: Session) -> dict[str, str]:
    _, token = auth_service.create_api_token(db, create_user(db, Role.admin), "tests")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def small_uploads() -> Iterator[None]:
    """A small MAX_UPLOAD_BYTES (the cached settings are shared with the app under test)."""
    settings = get_settings()
    saved = settings.max_upload_bytes
    settings.max_upload_bytes = LIMIT
    try:
        yield
    finally:
        settings.max_upload_bytes = saved


def media_files(media_root: Path) -> set[Path]:
    return {p for p in media_root.rglob("*") if p.is_file()}


def clip_count(db: Session, project: Project) -> int:
    return db.scalar(select(func.count(Clip.id)).where(Clip.project_id == project.id)) or 0


def upload(
    client: TestClient, auth: dict[str, str], project: Project, name: str, data: bytes
) -> object:
    return client.post(
        f"/api/projects/{project.id}/clips", files={"file": (name, data)}, headers=auth
    )


def test_sample_bad_files_are_taken_in_then_fail_probing_with_their_reason(
    client: TestClient, db: Session, admin_auth: dict[str, str], tmp_path: Path
) -> None:
    project = create_project(db)
    expected = {f.path.name: f.kind for f in make_bad_files(tmp_path)}
    for name, kind in expected.items():
        response = upload(client, admin_auth, project, name, (tmp_path / name).read_bytes())
        assert response.status_code == 200, (name, response.text)  # type: ignore[attr-defined]
        clip = db.get_one(Clip, response.json()["clip_id"])  # type: ignore[attr-defined]
        with pytest.raises(StepFailed) as failed:
            get_step("probe").run(db, clip)
        assert failed.value.kind == kind and failed.value.fail_clip, (name, failed.value.message)
        assert len(failed.value.message) > 10 and "Traceback" not in failed.value.message


def test_fuzzed_uploads_get_4xx_or_a_clip_and_refusals_leave_nothing_behind(
    client: TestClient,
    db: Session,
    admin_auth: dict[str, str],
    media_root: Path,
    small_uploads: None,
) -> None:
    rng = random.Random(SEED)
    project = create_project(db)
    names = ["x.mp4", "clip.MOV", "a.webm", "page.html", "image.svg", "run.sh", "noext",
             "../../../etc/evil.mp4", "a\\..\\b.mp4", "ünïcode.mkv", "x" * 300 + ".mp4",
             "dot.mp4.html", ".mp4"]  # fmt: skip
    seen: set[int] = set()
    for round_ in range(40):
        name = rng.choice(names)
        size = rng.choice([0, 1, 100, 4096, LIMIT - 1, LIMIT + 1, 3 * LIMIT])
        data = rng.randbytes(size)
        before_files, before_clips = media_files(media_root), clip_count(db, project)
        response = upload(client, admin_auth, project, name, data)
        status = response.status_code  # type: ignore[attr-defined]
        where = f"round {round_}: {name!r}, {size} bytes -> {status}"
        assert status < 500, where
        seen.add(status)
        if status == 200:
            body = response.json()  # type: ignore[attr-defined]
            assert body["status"] in ("created", "duplicate"), where
            clip = db.get_one(Clip, body["clip_id"])
            assert "/" not in clip.filename, where  # the name is kept, never used as a path
            source = source_path(clip)
            assert source.parent == clip_media_dir(clip), where
            assert source.name in ("source.mp4", "source.mov", "source.webm", "source.mkv"), where
            continue
        video = Path(name).suffix.lower() in intake.VIDEO_EXTENSIONS
        expected = 413 if video and size > LIMIT else 422
        assert status == expected, f"{where}: {response.text}"  # type: ignore[attr-defined]
        assert response.json()["message"], where  # type: ignore[attr-defined]
        assert clip_count(db, project) == before_clips, where
        assert media_files(media_root) == before_files, where
    assert seen == {200, 413, 422}  # every path was taken


def _raw_request(base_url: str, head: bytes, body: bytes, *, close_early: bool = False) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)
        if close_early:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and len(b"".join(chunks)) > 200:
                break
        return b"".join(chunks)


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "reliabilityboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_lying_and_cut_off_uploads_are_refused_without_waiting_or_leftovers(
    engine: object, media_root: Path, small_uploads: None
) -> None:
    with session_scope() as s:
        project = create_project(s)
        user = create_user(s, Role.admin)
        _, token = auth_service.create_api_token(s, user, "raw")
        project_id = project.id
    before = media_files(media_root)
    body, ctype = _multipart("lie.mp4", b"\0" * 1000)

    def head(length: int | str) -> bytes:
        return (
            f"POST /api/projects/{project_id}/clips HTTP/1.1\r\nHost: test\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
        ).encode()

    with serve(create_app()) as live:  # an app built with the small limit
        # A huge declared size with a small body: refused at once, not after waiting for it.
        reply = _raw_request(live, head(10**12), body)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert b"Too Large" in reply
        # A body cut off half-way (the client goes away): no clip and no file.
        _raw_request(live, head(len(body) * 4), body, close_early=True)
        # Chunked (no Content-Length) and over the limit: cut off with a 413 as it arrives.
        big, ctype_big = _multipart("chunked.mp4", b"\1" * (LIMIT + FORM_OVERHEAD + 1))
        chunked = (
            f"POST /api/projects/{project_id}/clips HTTP/1.1\r\nHost: test\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: {ctype_big}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        payload = f"{len(big):x}\r\n".encode() + big + b"\r\n0\r\n\r\n"
        reply = _raw_request(live, chunked, payload)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    with session_scope() as s:
        assert s.scalar(select(func.count(Clip.id)).where(Clip.project_id == project_id)) == 0
    assert media_files(media_root) == before


MALFORMED_MANIFESTS = {
    "broken.jsonl": ('{"path": "a.mp4"}\n{not json\n', "line 2"),
    "array.jsonl": ('["a.mp4"]\n', "line 1"),
    "nopath.jsonl": ('{"subsets": ["i2v"]}\n', "missing 'path'"),
    "url.jsonl": ('{"path": "https://example.org/a.mp4"}\n', "URLs are not imported"),
    "subsets.jsonl": ('{"path": "a.mp4", "subsets": {"i2v": 1}}\n', "subsets must be a list"),
    "unknown.jsonl": ('{"path": "a.mp4", "subsets": ["dance"]}\n', "Unknown subsets"),
    "tags.csv": ("path,tags\na.mp4,{broken\n", "tags must be JSON"),
    "header.csv": ("file,subsets\na.mp4,i2v\n", "'path' column"),
    "empty.csv": ("", "'path' column"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_MANIFESTS))
def test_malformed_manifests_are_refused_whole_with_the_line(
    db: Session, tmp_path: Path, name: str
) -> None:
    text, message = MALFORMED_MANIFESTS[name]
    (tmp_path / "a.mp4").write_bytes(b"\0" * 100)  # a good row before the bad one
    manifest = tmp_path / name
    manifest.write_text(text)
    project = create_project(db)
    with pytest.raises(Invalid) as refused:
        intake.import_manifest(db, project, manifest)
    assert message in refused.value.message
    assert clip_count(db, project) == 0


def test_the_cli_reports_a_malformed_manifest_without_a_traceback(
    engine: object, tmp_path: Path
) -> None:
    with session_scope() as s:
        name = create_project(s).name
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "a.mp4"}\n{not json\n')
    done = subprocess.run(
        [str(CELLABEL), "clips", "import", "--manifest", str(manifest), "--project", name],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "line 2" in output and "Traceback" not in output


MALFORMED_BODIES = [
    b"{not json", b"[]", b"null", b'"text"', b"1e999", b'{"text": 5}', b'{"version": "x"}',
    b'{"text": "a", "version": 0}', b'{"text": "a", "version": 1.5}',
    b'{"text": "\\ud800", "version": 1}', b'{"text": "' + b"x" * 30_000 + b'"}',
    b"\xff\xfe{}",
]  # fmt: skip


@pytest.mark.parametrize("body", MALFORMED_BODIES, ids=lambda b: repr(b[:16]))
def test_malformed_json_bodies_get_422_and_change_nothing(
    client: TestClient, db: Session, body: bytes
) -> None:
    clip = create_clip(db, frame_count=6, width=320, height=240)
    create_model_draft(db, clip)
    owner = create_user(db)
    annotation = open_annotation(db, clip, owner)
    caption = annotation_payload(db, annotation)["captions"][0]
    _, token = auth_service.create_api_token(db, owner, "t")
    response = client.put(
        f"/api/captions/{caption['id']}",
        content=body,
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid" and response.json()["message"]
    if body == MALFORMED_BODIES[0]:  # deep nesting cannot be parsed at all: a 400, not a 500
        nested = client.put(
            f"/api/captions/{caption['id']}",
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        assert nested.status_code == 400 and nested.json()["message"], nested.text
    after = annotation_payload(db, annotation)["captions"][0]
    assert (after["text"], after["version"]) == (caption["text"], caption["version"])


@pytest.fixture
def editable_track(db: Session) -> tuple[Track, Clip, dict[str, str]]:
    clip = create_clip(db, frame_count=6, width=320, height=240)
    create_model_draft(db, clip)
    owner = create_user(db)
    annotation = open_annotation(db, clip, owner)
    track_id = annotation_payload(db, annotation)["characters"][0]["tracks"][0]["id"]
    _, token = auth_service.create_api_token(db, owner, "t")
    return db.get_one(Track, track_id), clip, {"Authorization": f"Bearer {token}"}


def _points(k: int, x: float = 10.0, y: float = 10.0, v: int = 2) -> list[list[float]]:
    return [[x, y, v] for _ in range(k)]


def test_out_of_range_keypoints_get_422_and_the_frame_is_untouched(
    client: TestClient, db: Session, editable_track: tuple[Track, Clip, dict[str, str]]
) -> None:
    track, clip, auth = editable_track
    k = track.num_points
    row = db.scalars(
        select(KeypointFrame).where(
            KeypointFrame.track_id == track.id, KeypointFrame.frame_index == 2
        )
    ).one()
    before = (row.version, decode_points(row.points)[0].copy())
    width, height = clip.width or 0, clip.height or 0
    outside = [
        (2, _points(k, x=width + 5)),  # right of the frame
        (2, _points(k, y=-3)),  # above it
        (2, _points(k, y=height + 1)),  # below it
        (2, _points(k, x=1e308, y=1e308)),
        (2, _points(k, v=3)),  # v is 0, 1 or 2
        (2, _points(k - 1)),  # a point missing
        (2, [[1.0, 2.0]] * k),  # v missing
        (2, _points(k + 1)),  # one too many
        (-1, _points(k)),  # before the first frame
        (clip.frame_count, _points(k)),  # after the last
    ]
    for frame, points in outside:
        response = client.put(
            f"/api/tracks/{track.id}/frames/{frame}",
            json={"points": points, "version": before[0]},
            headers=auth,
        )
        assert response.status_code == 422, (frame, points[0], response.text)
        assert response.json()["message"]
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        raw = (
            b'{"version": %d, "points": [[%s, 1, 2]' % (before[0], literal)
            + b", [1, 1, 2]" * (k - 1)
            + b"]}"
        )
        response = client.put(
            f"/api/tracks/{track.id}/frames/2",
            content=raw,
            headers={**auth, "content-type": "application/json"},
        )
        assert response.status_code == 422, (literal, response.text)
    db.refresh(row)
    assert row.version == before[0]
    assert np.array_equal(decode_points(row.points)[0], before[1], equal_nan=True)
    ok = client.put(
        f"/api/tracks/{track.id}/frames/2",
        json={"points": _points(k), "version": before[0]},
        headers=auth,
    )
    assert ok.status_code == 200  # the same request inside the frame is accepted
    assert json.loads(ok.text)[0]["version"] == before[0] + 1


def test_a_form_address_with_a_non_numeric_id_is_a_422_not_a_500(
    app: Any, client: TestClient, db: Session
) -> None:
    """Found by the random fuzz run: `POST /clips/false/pipeline`. A refused form is shown
    again on its page, but an address whose id is not a number has no page to show."""
    csrf = login(client, db, create_user(db, Role.admin))
    posted = 0
    for path, route in api_routes(app):
        if route.endpoint not in forms._PAGES or "{" not in path:
            continue
        address = re.sub(r"{\w+}", "false", path)
        response = client.post(address, data={"csrf_token": csrf})
        assert response.status_code == 422, (address, response.status_code)
        posted += 1
    assert posted >= 5
