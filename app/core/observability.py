"""Logs carrying request and job ids (readable lines or JSON), and Prometheus metrics.

Request latency is measured in the web process. Collectors that read features' tables (the
pipeline's, :mod:`app.pipeline.metrics`) register on :data:`REGISTRY` in ``app.main``.
"""

from __future__ import annotations

import logging
import time
import uuid
from contextvars import ContextVar

from prometheus_client import CollectorRegistry, Histogram
from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from app.core.asgi import HttpMiddleware, editing_headers
from app.core.config import get_settings

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


# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


# Extra fields that repeat the message (uvicorn's coloured copy of it).
_NOISE = {"color_message"}
# Celery's per-task "received" / "succeeded" lines repeat the pipeline's own one line per step.
_CHATTY_IN_A_TERMINAL = ("celery.worker.strategy", "celery.app.trace")


class ReadableFormatter(logging.Formatter):
    """One line a person reads: ``12:04:05 INFO  cellabel.http  GET /clips 200 12.3 ms``.

    Extra fields follow as ``key=value``; the request and job ids when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s  %(message)s", datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        if {"method", "path", "status", "ms"} <= extra.keys():  # the request line
            line = f"{extra['method']} {extra['path']} {extra['status']} {extra['ms']} ms"
            record = logging.makeLogRecord({**vars(record), "message": line})
            for key in ("method", "path", "status", "ms", "route"):
                extra.pop(key)
        ids = {k: extra.pop(k) for k in ("request_id", "job_id") if k in extra}
        extra.update({k: v for k, v in ids.items() if v != "-"})
        fields = " ".join(
            f"{k}={v}"
            for k, v in extra.items()
            if isinstance(v, str | int | float) and k not in _NOISE
        )
        line = super().formatMessage(record)
        return f"{line}  {fields}" if fields else line


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines on stderr: readable text by default, JSON with ``LOG_FORMAT=json``.

    JSON lines carry time, level, logger, message, request_id, job_id and the extra fields."""
    handler = logging.StreamHandler()
    if get_settings().log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level"},
            )
        )
    else:
        handler.setFormatter(ReadableFormatter())
        for name in _CHATTY_IN_A_TERMINAL:  # failures are still logged (at ERROR)
            logging.getLogger(name).setLevel(logging.WARNING)
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
