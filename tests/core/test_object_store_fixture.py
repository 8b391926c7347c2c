from __future__ import annotations

from tests.object_store import BUCKET, SeaweedServer


def test_the_store_comes_back_with_its_data_after_being_killed(
    object_store: SeaweedServer,
) -> None:
    client = object_store.client()
    client.put_object(Bucket=BUCKET, Key="probe/kept.txt", Body=b"kept")
    object_store.stop()
    object_store.start()
    body = object_store.client().get_object(Bucket=BUCKET, Key="probe/kept.txt")["Body"].read()
    assert body == b"kept"
