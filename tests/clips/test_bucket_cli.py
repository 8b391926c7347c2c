"""`cellabel clips import s3://bucket/prefix/`: registers the prefix the first time, syncs it
again after, with the keys from options or the standard AWS variables; ``--process`` queues
the pipeline for its records."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import delete, select
from typer.testing import CliRunner

from app.cli import cli
from app.clips.models import BucketSource, Clip, ClipState
from app.core.db import session_scope
from app.projects.models import Project
from tests.clips.test_bucket_sources import put_objects
from tests.conftest import Worker, wait_until_settled
from tests.factories import create_project
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer


def test_the_cli_registers_a_prefix_then_syncs_only_new_objects(
    object_store: SeaweedServer, celery_worker: Worker
) -> None:
    bucket = object_store.make_bucket("cli-clips")
    put_objects(object_store, bucket, [f"set/c{n}.mp4" for n in range(25)])
    name = f"cli-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        create_project(session, name=name)
    command = ["clips", "import", f"s3://{bucket}/set/", "--project", name,
               "--endpoint", object_store.endpoint, "--region", REGION, "--json"]  # fmt: skip
    keys = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    clip_ids: list[int] = []
    try:
        first = CliRunner().invoke(cli, command, env=keys)
        assert first.exit_code == 0, first.output
        summary = json.loads(first.stdout)
        assert (summary["registered"], summary["created"]) == (True, 25)

        put_objects(object_store, bucket, ["set/new1.mp4", "set/new2.webm", "set/note.txt"])
        again = CliRunner().invoke(cli, [*command, "--process"], env={})  # the stored keys
        assert again.exit_code == 0, again.output
        summary = json.loads(again.stdout)
        assert (summary["registered"], summary["listed"], summary["created"]) == (False, 27, 2)
        assert summary["queued"] == 27  # every record not processed yet, old and new
        with session_scope() as session:
            source = session.scalars(select(BucketSource).join(Project).where(
                Project.name == name)).one()  # fmt: skip
            assert (source.object_count, source.access_key_id) == (27, ACCESS_KEY)
            assert SECRET_KEY not in source.secret_encrypted
            clip_ids = list(session.scalars(select(Clip.id).where(Clip.source_id == source.id)))
        # The worker takes every record (these objects are not videos: each clip fails its probe).
        wait_until_settled(celery_worker, clip_ids)
        with session_scope() as session:
            states = set(session.scalars(select(Clip.state).where(Clip.id.in_(clip_ids))))
        assert len(clip_ids) == 27 and ClipState.uploaded not in states

        elsewhere = [*command[:2], "s3://no-such-cli-bucket/set/", *command[3:]]
        wrong = CliRunner().invoke(cli, elsewhere, env=keys)
        assert wrong.exit_code != 0
        assert "no bucket 'no-such-cli-bucket'" in wrong.output
    finally:
        if clip_ids:  # no worker still writing their jobs while the project goes
            wait_until_settled(celery_worker, clip_ids)
        with session_scope() as session:
            session.execute(delete(Project).where(Project.name == name))
