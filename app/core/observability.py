"""Structured JSON logs carrying request and job ids, and Prometheus metrics.

Request latency is measured in the web process; job outcomes, queue depth and pipeline
throughput are read from PostgreSQL and the broker when Prometheus scrapes, so the numbers are
right whichever process (web or any worker) did the work.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str] = ContextVar("request_id", default="-")
job_id: ContextVar[str] = ContextVar("job_id", default="-")
log = logging.getLogger("cellabel.http")

REGISTRY = CollectorRegistry()
REQUEST_SECONDS = Histogram(
    "cellabel_request_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr with timestamp, level, logger, message, request_id, job_id."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level"},
        )
    )
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


async def request_context(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Give each request an id (or keep the caller's X-Request-ID), time it, log one line."""
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        response.headers["X-Request-ID"] = rid
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = _route_template(request)
        REQUEST_SECONDS.labels(request.method, route, str(status)).observe(elapsed)
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "path": request.url.path,
                "status": status,
                "ms": round(elapsed * 1000, 2),
                "user": getattr(request.state, "user_id", None),
            },
        )
        request_id.reset(token)


class PipelineCollector(Collector):
    """Job outcomes, queue depth and recent pipeline throughput, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from app.core.db import session_scope
        from app.pipeline.models import Job
        from app.pipeline.service import broker_queue_depths

        jobs = GaugeMetricFamily(
            "cellabel_jobs", "Pipeline jobs by step and state", labels=["step", "state"]
        )
        fps = GaugeMetricFamily(
            "cellabel_pipeline_frames_per_second",
            "Frames per second of finished steps (last 200 per step)",
            labels=["step"],
        )
        with session_scope() as session:
            for step, state, n in session.execute(
                select(Job.step, Job.state, func.count()).group_by(Job.step, Job.state)
            ):
                jobs.add_metric([step, state.value], n)
            for step in ("frames", "shots", "keypoints"):
                rows = session.execute(
                    select(Job.result, Job.duration_s)
                    .where(Job.step == step, Job.state == "done")
                    .order_by(Job.finished_at.desc())
                    .limit(200)
                ).all()
                frames = sum(int((r.result or {}).get("frames", 0) or 0) for r in rows)
                seconds = sum(r.duration_s or 0.0 for r in rows)
                if seconds > 0:
                    fps.add_metric([step], frames / seconds)
        yield jobs
        yield fps
        depth = GaugeMetricFamily(
            "cellabel_queue_depth", "Messages waiting in the broker", labels=["queue"]
        )
        for queue, n in broker_queue_depths().items():
            depth.add_metric([queue], n)
        yield depth


REGISTRY.register(PipelineCollector())
