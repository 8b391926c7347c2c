from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.core.errors import Forbidden, TooLarge
from app.core.local_storage import LocalStorage


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/etc/passwd", "clips/../../x", "clips/1/\x00x", "", "a/../../b"]
)
def test_keys_cannot_escape_the_media_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(Forbidden):
        LocalStorage(tmp_path / "media").path(key)


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(Forbidden):
        LocalStorage(root).path("link/secret")


def test_save_is_atomic_and_enforces_the_size_limit(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    size, digest = storage.save_stream("clips/1/2/source.mp4", io.BytesIO(b"abc"))
    assert size == 3 and digest.startswith("ba7816bf")
    with pytest.raises(TooLarge):
        storage.save_stream("clips/1/3/source.mp4", io.BytesIO(b"x" * 100), max_bytes=10)
    assert not storage.exists("clips/1/3/source.mp4")
    assert list((tmp_path / "clips/1/3").iterdir()) == []
