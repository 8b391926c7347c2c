"""Media storage behind one small interface; keys are relative paths that cannot escape the root.

Layout under MEDIA_ROOT (see docs/media-layout.md): ``clips/<project>/<clip>/source.<ext>``
plus the clip's derived media beside it, ``uploads/`` for partial uploads, ``exports/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import Forbidden, TooLarge

CHUNK = 1024 * 1024


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        """The absolute path of ``key``; refuses anything that would leave the media root."""
        rel = PurePosixPath(key)
        if rel.is_absolute() or ".." in rel.parts or "\x00" in key or not key.strip():
            raise Forbidden("That media path is not allowed.")
        full = (self.root / rel).resolve()
        if full != self.root and self.root not in full.parents:
            raise Forbidden("That media path is not allowed.")
        return full

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def save_stream(
        self, key: str, stream: BinaryIO, *, max_bytes: int | None = None
    ) -> tuple[int, str]:
        """Copy ``stream`` to ``key`` atomically; returns (bytes written, sha256 hex)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"The file is larger than the limit of {max_bytes:,} bytes.")
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size, digest.hexdigest()

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        with self.path(key).open("rb") as fh:
            yield fh

    def delete_tree(self, key: str) -> None:
        path = self.path(key)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def get_storage() -> LocalStorage:
    root = get_settings().effective_media_root
    root.mkdir(parents=True, exist_ok=True)
    return LocalStorage(root)


_DOOMED_KEY = "cellabel_doomed_media"


def delete_after_commit(session: Session, key: str) -> None:
    """Remove media ``key`` once ``session`` commits (kept if it rolls back)."""
    session.info.setdefault(_DOOMED_KEY, []).append(key)


@event.listens_for(Session, "after_commit")
def _delete_doomed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a released SAVEPOINT: the outer transaction may still roll back
    for key in session.info.pop(_DOOMED_KEY, []):
        get_storage().delete_tree(key)


@event.listens_for(Session, "after_rollback")
def _keep_doomed(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_DOOMED_KEY, None)


def project_prefix(project_id: int) -> str:
    """Where a project's clips' media live (one folder a clip below it)."""
    return f"clips/{project_id}"


def clip_prefix(project_id: int, clip_id: int) -> str:
    return f"{project_prefix(project_id)}/{clip_id}"
