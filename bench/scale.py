"""Performance at dataset scale, measured on the database seeded by ``bench/scale_seed.py``.

    .venv/bin/python bench/scale_seed.py            # once: 400k clips, 50k tracks x 120 frames
    .venv/bin/python bench/scale.py                 # every measurement, then BENCHMARKS.md
    .venv/bin/python bench/scale.py --only next_clip,http   # some of them (results are merged)

Parts (results kept in ``bench/.work/scale_results.json``, each with the load average):

* ``next_clip``: ``next_clip`` + commit from 32 threads with a session each (paced, ~1 call/s
  per caller) and one caller back to back, on the 400k-clip batch;
* ``http``: uvicorn with ``--workers`` processes on loopback; a bounded asyncio httpx load
  generator in this process plays 50 annotators (keypoint saves with think time, and loads of
  their 300-frame clip), then pages are fetched one at a time as an admin: clip list (first
  and a deep keyset page), batch page, agreement dashboard, review queue, annotator queue,
  and a cached frame from the frame endpoint;
* ``export``: one snapshot of ``--export-clips`` approved pose clips (120 frames each) built
  in a fresh child process (wall time, peak RSS);
* ``pipeline``: pre-annotation (keypoints + faces model steps) on generated sample clips in
  1 and then 2 worker processes at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = ROOT / "bench" / ".work"
RESULTS = WORK / "scale_results.json"
MEDIA = WORK / "scale-media"
SECRET = "bench-scale-secret"
os.environ.setdefault("SECRET_KEY", SECRET)
os.environ.setdefault("MEDIA_ROOT", str(MEDIA))
os.environ.setdefault("DATA_DIR", str(WORK / "scale-data"))

from bench._report import percentiles, write_section  # noqa: E402
from bench.scale_seed import SEED_FILE  # noqa: E402

SECTION = "Performance at dataset scale"
PORT = 8765


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def seed_info() -> dict[str, Any]:
    if not SEED_FILE.exists():
        raise SystemExit("Run bench/scale_seed.py first.")
    info: dict[str, Any] = json.loads(SEED_FILE.read_text())
    os.environ["DATABASE_URL"] = info["db_url"]
    return info


def save_result(name: str, value: dict[str, Any]) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = {**value, "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.write_text(json.dumps(results, indent=1))


def ms(samples: list[float]) -> dict[str, float]:
    return {k: round(v, 1) for k, v in percentiles(samples).items()}


# --------------------------------------------------------------------------- next clip


def _next_clip_callers(url: str, names: list[str], threads: int, calls: int, mode: str,
                       out: Any) -> None:  # fmt: skip
    """One process of callers (a web worker's worth): per-call ms and wall seconds."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import sessionmaker

    from app.auth.models import User
    from bench.next_clip import run_callers

    engine = create_engine(url, pool_size=threads, max_overflow=4)
    make = sessionmaker(engine, expire_on_commit=False)
    with make() as s:
        users = list(s.scalars(select(User.id).where(User.username.in_(names))))
    out.put(run_callers(make, users, threads, calls, mode=mode))
    engine.dispose()


def measure_next_clip(info: dict[str, Any], threads: int, calls: int, procs: int) -> None:
    """Callers as threads of ``procs`` processes (web workers), each with its own pool."""
    ctx = multiprocessing.get_context("spawn")
    out: dict[str, Any] = {}
    names = info["annotators"]
    for name, n_procs, n_threads, n_calls, mode in (
        ("single", 1, 1, 40, "closed"),
        ("paced_threads", 1, threads, calls, "paced"),
        ("paced", procs, threads // procs, calls, "paced"),
    ):
        load = load_avg()
        queue = ctx.Queue()
        workers = [
            ctx.Process(target=_next_clip_callers,
                        args=(info["db_url"], names[i::n_procs], n_threads, n_calls, mode, queue))
            for i in range(n_procs)
        ]  # fmt: skip
        for w in workers:
            w.start()
        parts = [queue.get() for _ in workers]
        for w in workers:
            w.join()
        lat = [x for part, _ in parts for x in part]
        wall = max(w for _, w in parts)
        out[name] = {**ms(lat), "calls_per_s": round(len(lat) / wall, 1), "load": load,
                     "processes": n_procs, "callers": n_procs * n_threads}  # fmt: skip
        print(name, out[name], flush=True)
    save_result("next_clip", out)


# --------------------------------------------------------------------------- http


def sessions_for(info: dict[str, Any]) -> tuple[dict[str, tuple[str, str]], int]:
    """A signed session cookie and CSRF token for the admin and every annotator."""
    from sqlalchemy import select

    from app.auth import service as auth
    from app.auth.models import User
    from app.core.db import session_scope
    from app.core.security import sign

    from app.annotations.models import Annotation

    out: dict[str, tuple[str, str]] = {}
    with session_scope() as s:
        for user in s.scalars(select(User).where(User.username.in_([*info["annotators"], "admin"]))):
            new = auth.start_session(s, user)
            out[user.username] = (sign(new.key), new.csrf_token)
        owners = dict(s.execute(
            select(Annotation.id, User.username).join(User, User.id == Annotation.annotator_id)
            .where(Annotation.id.in_([w["annotation_id"] for w in info["workspace"]]))
        ).all())  # fmt: skip
    for ws in info["workspace"]:
        ws["owner"] = owners[ws["annotation_id"]]
    return out, info["workspace"][0]["clip_id"]


def build_frames(info: dict[str, Any]) -> int:
    """A real frame cache (48 frames, 640x360) for the first workspace clip."""
    import cv2
    import numpy as np

    from app.clips import service as clips
    from app.core.db import session_scope
    from app.media.framecache import build_frame_cache

    source = WORK / "scale-frames.mp4"
    if not source.exists():
        writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 24, (640, 360))
        rng = np.random.default_rng(0)
        for i in range(48):
            frame = np.full((360, 640, 3), 40 + i * 3, np.uint8)
            cv2.circle(frame, (50 + i * 10, 180), 30, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
            writer.write(frame)
        writer.release()
    with session_scope() as s:
        clip = clips.get_clip(s, info["workspace"][0]["clip_id"])
        folder = clips.clip_media_dir(clip) / "frames"
    if not folder.exists():
        build_frame_cache(source, folder)
    return 48


class Server:
    """uvicorn with several worker processes on loopback, stopped on exit."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        import httpx

        env = {**os.environ, "LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        log = (WORK / "scale-uvicorn.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(PORT), "--workers", str(self.workers),
             "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1).status_code == 200:
                    time.sleep(2)  # let every worker finish importing
                    return self
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError("uvicorn did not start; see bench/.work/scale-uvicorn.log")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


async def annotators_load(
    info: dict[str, Any], cookies: dict[str, tuple[str, str]], seconds: float, think_s: float
) -> dict[str, Any]:
    """50 annotators: each loads their clip, then saves frames with exponential think time,
    reloading the whole clip every 20 saves. Latency is measured at the client (loopback)."""
    import httpx

    from app.core.security import SESSION_COOKIE

    saves: list[float] = []
    loads: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=len(info["workspace"]) + 5)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", limits=limits,
                                 timeout=30) as client:  # fmt: skip

        async def load(ws: dict[str, int], cookie: str) -> dict[str, Any]:
            t0 = time.perf_counter()
            r = await client.get(f"/api/annotations/{ws['annotation_id']}",
                                 cookies={SESSION_COOKIE: cookie})  # fmt: skip
            loads.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors.append(f"load {r.status_code}")
                return {}
            body: dict[str, Any] = r.json()
            return body

        async def annotator(index: int, ws: dict[str, int]) -> None:
            rng = random.Random(index)
            cookie, csrf = cookies[ws["owner"]]
            body = await load(ws, cookie)
            if not body:
                return
            track = body["characters"][0]["tracks"][0]
            versions = {f["frame"]: f["version"] for f in track["frames"]}
            points = [p[:3] for p in track["frames"][0]["points"]]
            end = time.perf_counter() + seconds
            n = 0
            while time.perf_counter() < end:
                await asyncio.sleep(rng.expovariate(1 / think_s))
                frame = rng.randrange(len(versions))
                moved = [[x + rng.uniform(-1, 1), y, v] for x, y, v in points]
                t0 = time.perf_counter()
                r = await client.put(
                    f"/api/tracks/{ws['track_id']}/frames/{frame}",
                    json={"points": moved, "version": versions[frame]},
                    headers={"X-CSRF-Token": csrf}, cookies={SESSION_COOKIE: cookie},
                )  # fmt: skip
                saves.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors.append(f"save {r.status_code} {r.text[:80]}")
                    continue
                versions[frame] = r.json()[0]["version"]
                n += 1
                if n % 20 == 0:
                    await load(ws, cookie)

        wall = time.perf_counter()
        await asyncio.gather(*(annotator(i, ws) for i, ws in enumerate(info["workspace"])))
        wall = time.perf_counter() - wall
    return {
        "annotators": len(info["workspace"]),
        "save": ms(saves), "load": ms(loads), "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "saves_per_s": round(len(saves) / wall, 1), "seconds": round(wall, 1),
    }  # fmt: skip


def page_latencies(info: dict[str, Any], cookies: dict[str, tuple[str, str]], frame_clip: int,
                   rounds: int) -> dict[str, Any]:  # fmt: skip
    """One request at a time: each page ``rounds`` times after one warm-up request."""
    import httpx

    from app.core.security import SESSION_COOKIE

    project, batch = info["project_id"], info["batch_id"]
    with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=60) as admin:
        admin.cookies.set(SESSION_COOKIE, cookies["admin"][0])
        deep = admin.get("/api/clips", params={"project_id": project, "after": info["clips"] // 2,
                                               "limit": 1}).json()[0]["id"]  # fmt: skip
        pages = {
            "/clips?project= (first page)": f"/clips?project={project}",
            "/clips?project= (keyset page at 200k)": f"/clips?project={project}&after={deep}",
            "/api/clips (keyset, 100)": f"/api/clips?project_id={project}&after={deep}",
            "/batches/{id}": f"/batches/{batch}",
            "/agreement": f"/agreement?project_id={project}",
            "/review": "/review",
        }
        out: dict[str, Any] = {}
        for label, url in pages.items():
            out[label] = timed(admin, url, rounds)
    with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=60) as ann:
        ann.cookies.set(SESSION_COOKIE, cookies[info["workspace"][0]["owner"]][0])
        out["/queue (annotator)"] = timed(ann, "/queue", rounds)
        out["frame (cached, 200)"] = timed(
            ann, f"/media/clips/{frame_clip}/frames/7.jpg", rounds * 3
        )
        etag = ann.get(f"/media/clips/{frame_clip}/frames/7.jpg").headers["etag"]
        out["frame (revalidated, 304)"] = timed(
            ann, f"/media/clips/{frame_clip}/frames/7.jpg", rounds * 3,
            headers={"If-None-Match": etag}, expect=304,
        )  # fmt: skip
    return out


def timed(client: Any, url: str, rounds: int, headers: dict[str, str] | None = None,
          expect: int = 200) -> dict[str, Any]:  # fmt: skip
    first = client.get(url, headers=headers)
    assert first.status_code == expect, (url, first.status_code, first.text[:300])
    samples = []
    load = load_avg()
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        samples.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == expect, (url, r.status_code)
    result = {**ms(samples), "load": load, "bytes": len(first.content)}
    print(url, result, flush=True)
    return result


def measure_http(info: dict[str, Any], workers: int, seconds: float, think_s: float,
                 rounds: int) -> None:  # fmt: skip
    cookies, frame_clip = sessions_for(info)
    build_frames(info)
    with Server(workers):
        load = load_avg()
        annotate = asyncio.run(annotators_load(info, cookies, seconds, think_s))
        annotate["load"] = load
        print(annotate, flush=True)
        pages = page_latencies(info, cookies, frame_clip, rounds)
    save_result("http", {"workers": workers, "think_s": think_s, "annotate": annotate,
                         "pages": pages})  # fmt: skip


# --------------------------------------------------------------------------- export

EXPORT_FORMATS = ["coco_person", "captions", "manifests", "cellabel"]


def export_child(limit: int) -> None:
    """Build one snapshot of ``limit`` pose clips in this (fresh) process; print JSON."""
    seed_info()
    from app.batches.schemas import ClipFilter
    from app.core.db import session_scope
    from app.export import service
    from app.export.schemas import ExportCreate
    from app.projects.models import Subset
    from bench.export import proc_status_kb, reset_peak

    with session_scope() as session:
        data = ExportCreate(
            project_id=json.loads(SEED_FILE.read_text())["project_id"],
            name=f"scale-{time.time_ns()}", formats=EXPORT_FORMATS,
            filter=ClipFilter(subset=Subset.pose, limit=limit),
        )  # fmt: skip
        snapshot_id = service.create_export(session, data, None, send=False).id
    reset_peak()
    start_rss = proc_status_kb("VmRSS")
    t0 = time.perf_counter()
    state = service.run_build(snapshot_id)
    seconds = time.perf_counter() - t0
    with session_scope() as session:
        snap = service.get_export(session, snapshot_id)
        result = {"state": state, "seconds": round(seconds, 1),
                  "clips": len(snap.annotation_versions), "zip_mb": round(snap.size_bytes / 2**20),
                  "rss_before_mb": round(start_rss / 1024), "peak_rss_mb":
                  round(proc_status_kb("VmHWM") / 1024)}  # fmt: skip
        service.archive_path(snap).unlink()
    print("RESULT " + json.dumps(result), flush=True)


def measure_export(sizes: list[int]) -> None:
    rows = []
    for size in sizes:
        load = load_avg()
        out = subprocess.run(
            [sys.executable, __file__, "--export-child", str(size)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        row = {**json.loads(line[7:]), "load": load, "frames_per_clip": 120}
        row["clips_per_s"] = round(row["clips"] / row["seconds"], 1)
        print(row, flush=True)
        rows.append(row)
    save_result("export", {"formats": EXPORT_FORMATS, "rows": rows})


# --------------------------------------------------------------------------- pipeline


def _pipeline_worker(folder: str, names: list[str], out: Any) -> None:
    """One worker process: run the model steps (keypoints, faces) on its clips, embedded."""
    from bench.pipeline import embedded_app, import_clips

    with embedded_app(Path(folder)):
        from app.core.db import session_scope
        from app.pipeline import service as pipeline

        ids = import_clips(Path(folder) / "clips", "scale")
        frames = 0
        t0 = time.perf_counter()
        for name in names:
            clip_id = ids[name]
            pipeline.run_queued_inline([clip_id])
            with session_scope() as s:
                from app.clips.models import Clip

                frames += s.get_one(Clip, clip_id).frame_count or 0
        out.put({"frames": frames, "seconds": time.perf_counter() - t0})


def measure_pipeline(count: int) -> None:
    """Whole-clip pre-annotation (all steps, embedded inline runner) per worker process."""
    from app.samples.generator import generate_samples

    rows = []
    for workers in (1, 2):
        load = load_avg()
        procs, queue = [], multiprocessing.get_context("spawn").Queue()
        for w in range(workers):
            folder = WORK / f"scale-pipe-{workers}-{w}"
            if not (folder / "clips").exists():
                generate_samples(folder / "clips", count=count, seed=w)
            names = sorted(p.name for p in (folder / "clips").glob("*.mp4"))
            ctx = multiprocessing.get_context("spawn")
            proc = ctx.Process(target=_pipeline_worker, args=(str(folder), names, queue))
            procs.append(proc)
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        parts = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        wall = time.perf_counter() - t0
        frames = sum(p["frames"] for p in parts)
        row = {"workers": workers, "frames": frames, "wall_s": round(wall, 1),
               "frames_per_s": round(frames / wall, 1),
               "per_worker_fps": [round(p["frames"] / p["seconds"], 1) for p in parts],
               "load": load}  # fmt: skip
        print(row, flush=True)
        rows.append(row)
    save_result("pipeline", {"clips_per_worker": count, "rows": rows})


# --------------------------------------------------------------------------- report


def _met(value: float, target: float) -> str:
    return "**met**" if value < target else "**missed**"


def render(info: dict[str, Any], results: dict[str, Any]) -> str:
    lines = [
        f"Data: {info['clips']:,} clips in one project and one batch (overlap 2 on 20 %), "
        f"{info['pose_clips']:,} approved pose clips with one COCO-17 track of "
        f"{info['frames_per_track']} frames each ({info['pose_clips'] * info['frames_per_track']:,}"
        " keypoint rows), 10k annotations waiting for review, 10k agreement scores, 50 "
        "annotators with a 300-frame 133-point clip each. PostgreSQL 15 on the same machine, "
        "shared with other jobs: every figure has the 1-minute load average at its start.",
        "",
        "Seeding (`bench/scale_seed.py`, COPY for clips and keypoint rows, INSERT ... SELECT "
        "for the rest), seconds: "
        + ", ".join(f"{k} {v}" for k, v in info["seconds"].items()) + ".",
        "",
        "| measurement | p50 ms | p95 ms | p99 ms | target | status | load |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    nc = results.get("next_clip")
    if nc:
        for key, label in (
            ("single", "next clip, 1 caller back to back (service time)"),
            ("paced_threads", "next clip, 32 callers ~1 call/s, threads of 1 process"),
            ("paced", f"next clip, 32 callers ~1 call/s, {nc['paced']['processes']} processes"),
        ):
            r = nc[key]
            target = "p99 < 20" if key.startswith("paced") else "—"
            status = _met(r["p99"], 20) if key.startswith("paced") else "—"
            lines.append(f"| {label} | {r['p50']} | {r['p95']} | {r['p99']} | {target} | "
                         f"{status} | {r['load']} |")  # fmt: skip
    http = results.get("http")
    if http:
        a = http["annotate"]
        lines.append(f"| keypoint save, {a['annotators']} annotators ({a['saves_per_s']} saves/s,"
                     f" {a['errors']} errors) | {a['save']['p50']} | {a['save']['p95']} | "
                     f"{a['save']['p99']} | p95 < 50, no errors | "
                     f"{_met(a['save']['p95'], 50) if not a['errors'] else '**missed**'} | "
                     f"{a['load']} |")  # fmt: skip
        lines.append(f"| annotation load, 300 frames x 133 points, same run | {a['load']['p50']}"
                     f" | {a['load']['p95']} | {a['load']['p99']} | — | — | {a['load']} |")  # fmt: skip
        for label, r in http["pages"].items():
            frame = label.startswith("frame")
            target = 10 if frame else 150
            lines.append(f"| {label} | {r['p50']} | {r['p95']} | {r['p99']} | p95 < {target} | "
                         f"{_met(r['p95'], target)} | {r['load']} |")  # fmt: skip
    ex = results.get("export")
    if ex:
        lines += ["", f"Export (formats {', '.join(ex['formats'])}; fresh child process per size):",
                  "", "| clips | frames | wall s | clips/s | frames/s | zip MB | RSS before MB | "
                  "peak RSS MB | load |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in ex["rows"]:
            frames = r["clips"] * r["frames_per_clip"]
            lines.append(f"| {r['clips']:,} | {frames:,} | {r['seconds']} | {r['clips_per_s']} | "
                         f"{frames / r['seconds']:.0f} | {r['zip_mb']} | {r['rss_before_mb']} | "
                         f"{r['peak_rss_mb']} | {r['load']} |")  # fmt: skip
    pipe = results.get("pipeline")
    if pipe:
        lines += ["", f"Pre-annotation, all steps per clip, {pipe['clips_per_worker']} generated "
                  "sample clips per worker process (embedded runner, MediaPipe model_complexity=1):",
                  "", "| worker processes | frames | wall s | frames/s total | frames/s per worker"
                  " | load |", "|---:|---:|---:|---:|---|---:|"]  # fmt: skip
        for r in pipe["rows"]:
            lines.append(f"| {r['workers']} | {r['frames']} | {r['wall_s']} | {r['frames_per_s']}"
                         f" | {', '.join(map(str, r['per_worker_fps']))} | {r['load']} |")  # fmt: skip
    stamps = ", ".join(f"{k} {v['at']}" for k, v in results.items())
    lines += ["", f"Measured: {stamps}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="next_clip,http,export,pipeline")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--procs", type=int, default=4, help="next-clip caller processes")
    parser.add_argument("--workers", type=int, default=3, help="uvicorn worker processes")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between saves")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--export-clips", default="2000")
    parser.add_argument("--pipeline-clips", type=int, default=2)
    parser.add_argument("--export-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.export_child:
        export_child(args.export_child)
        return
    info = seed_info()
    parts = set(args.only.split(",")) if not args.report_only else set()
    if "next_clip" in parts:
        measure_next_clip(info, args.threads, args.calls, args.procs)
    if "http" in parts:
        measure_http(info, args.workers, args.seconds, args.think, args.rounds)
    if "export" in parts:
        measure_export([int(x) for x in args.export_clips.split(",")])
    if "pipeline" in parts:
        measure_pipeline(args.pipeline_clips)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    command = ".venv/bin/python bench/scale_seed.py && .venv/bin/python bench/scale.py"
    write_section(SECTION, render(info, results) + EXPLANATION, command)
    print(shlex.join(sys.argv))


EXPLANATION = ""

if __name__ == "__main__":
    main()
