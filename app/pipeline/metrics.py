"""Prometheus metrics of the pipeline: job outcomes, broker queue depth and throughput.

They are read from PostgreSQL and the broker when Prometheus scrapes, so the numbers are right
whichever process (web or any worker) did the work. ``app.main`` registers the collector.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.core.db import session_scope
from app.pipeline.models import Job
from app.pipeline.service import broker_queue_depths


class PipelineCollector(Collector):
    """Job outcomes, queue depth and recent pipeline throughput, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
