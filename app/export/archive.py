"""Deterministic zip archives of a folder, written and read one entry at a time.

Entries are sorted by path and carry a fixed date and mode, so the same files always give
the same bytes (and the same SHA-256).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
CHUNK = 1024 * 1024


def walk_sorted(folder: Path, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every file under ``folder``, depth first in name order,
    holding one directory listing at a time."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = f"{prefix}{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            yield from walk_sorted(Path(entry.path), f"{name}/")
        elif entry.is_file(follow_symlinks=False):
            yield name, Path(entry.path)


def zip_folder(folder: Path, target: Path) -> None:
    """Write every file of ``folder`` into the zip ``target`` (deflated, streamed)."""
    # Level 1: the default level spent more CPU than writing the formats (bench/export.py).
    with zipfile.ZipFile(target, "w", allowZip64=True, compresslevel=1) as zf:
        for name, path in walk_sorted(folder):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            info.file_size = path.stat().st_size
            with path.open("rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, CHUNK)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def extract(archive: Path, folder: Path) -> None:
    """Unpack a snapshot zip into ``folder`` (zipfile refuses names that leave it)."""
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(folder)
