"""Structured JSON logs carrying request and job ids, and Prometheus metrics.

Request latency is measured in the web process; job outcomes, queue depth and pipeline
throughput are read from PostgreSQL and the broker when Prometheus scrapes, so the numbers are
right whichever process (web or any worker) did the work.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from app.core.asgi import HttpMiddleware, editing_headers

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


class RequestContext(HttpMiddleware):
    """ASGI middleware: a request id (the caller's X-Request-ID or a new one), the time to
    answer as a ``Server-Timing`` header, the latency histogram by route and one log line."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        def stamp(message: Message, headers: MutableHeaders) -> None:
            nonlocal status
            status = message["status"]
            headers["X-Request-ID"] = rid
            elapsed_ms = (time.perf_counter() - started) * 1000
            headers.append("Server-Timing", f"app;dur={elapsed_ms:.1f}")

        try:
            await self.app(scope, receive, editing_headers(send, stamp))
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "user": scope.get("state", {}).get("user_id"),
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
