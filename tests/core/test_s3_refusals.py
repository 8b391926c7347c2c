"""The one reading of a store's refusals (`classify`), against what a real SeaweedFS answers:
the uploads, export targets and bucket sources word their messages from it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from app.core.s3_storage import Refusal, classify, make_s3_client
from tests.object_store import ACCESS_KEY, REGION, SeaweedServer


def refusal_of(call: Callable[[], Any]) -> Refusal:
    with pytest.raises(ClientError) as raised:
        call()
    return classify(raised.value).kind


def test_each_refusal_of_a_real_store_is_read_as_what_it_means(
    object_store: SeaweedServer,
) -> None:
    s3 = object_store.client()
    bucket = object_store.make_bucket("refusals")
    gone = "no-such-bucket-refusals"
    assert refusal_of(lambda: s3.list_objects_v2(Bucket=gone)) is Refusal.NO_BUCKET
    assert refusal_of(lambda: s3.head_bucket(Bucket=gone)) is Refusal.NOT_FOUND  # a bare 404
    assert refusal_of(lambda: s3.get_object(Bucket=bucket, Key="nothing")) is Refusal.NOT_FOUND
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.mp4")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="big.mp4", UploadId=upload)
    listed = lambda: s3.list_parts(Bucket=bucket, Key="big.mp4", UploadId=upload)  # noqa: E731
    assert refusal_of(listed) is Refusal.NO_UPLOAD
    wrong = make_s3_client(object_store.endpoint, REGION, ACCESS_KEY, "not-the-secret")
    assert refusal_of(lambda: wrong.list_objects_v2(Bucket=bucket)) is Refusal.DENIED
    stranger = make_s3_client(object_store.endpoint, REGION, "nobody", "nothing")
    assert refusal_of(lambda: stranger.list_objects_v2(Bucket=bucket)) is Refusal.DENIED
