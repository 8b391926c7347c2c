"""The host's media cache after a worker died mid-build: its leftovers go, nobody else's do."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from app.core.media_cache import MediaCache


def test_a_cache_opened_after_a_killed_build_removes_its_scratch_and_downloads(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    # A process that dies (no clean-up runs) inside a build and a download.
    dying = textwrap.dedent(f"""
        import os, tempfile
        from pathlib import Path
        from app.core.media_cache import MediaCache
        cache = MediaCache(Path({str(root)!r}), 1024**2)
        with cache.scratch() as folder:
            (folder / "chunk_0000.bin").write_bytes(b"x" * 1000)
            fd, _ = tempfile.mkstemp(dir=cache.root / "tmp", prefix=cache._owner)
            os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", dying], check=True, cwd=Path(__file__).parents[2])
    assert len(list((root / "scratch").iterdir())) == 1
    assert len(list((root / "tmp").iterdir())) == 1
    another_host = root / "scratch" / "elsewhere~1~abc"  # a folder shared with another host
    another_host.mkdir()

    cache = MediaCache(root, 1024**2)
    with cache.scratch() as mine:
        MediaCache(root, 1024**2)  # opened again meanwhile, as by another worker
        assert mine.is_dir()  # a running build keeps its folder
        assert sorted((root / "scratch").iterdir()) == sorted([mine, another_host])
    assert list((root / "tmp").iterdir()) == []
