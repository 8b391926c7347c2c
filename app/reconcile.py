"""One reconciler sweep over everything a crash or an outage can lose, in this order:

1. pipeline jobs whose message the broker lost, or whose worker went silent (re-enqueued);
2. export builds whose worker went silent or whose message was lost (re-enqueued);
3. browser uploads to the bucket abandoned for UPLOAD_ABANDONED_AFTER_HOURS (aborted);
4. the outbox: every task send not known to have reached the broker, including the first
   two (see :mod:`app.core.jobs`).

Run by ``cellabel reconcile`` and by the periodic ``cellabel.reconcile`` task (celery beat,
every ``RECONCILE_EVERY_S``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.jobs import SendReport, send_outbox
from app.export.build import reconcile_exports
from app.pipeline.service import reconcile as reconcile_jobs
from app.pipeline.uploads import abort_stale_uploads


@dataclass
class ReconcileReport:
    jobs: list[int] = field(default_factory=list)
    exports: list[int] = field(default_factory=list)
    uploads: list[int] = field(default_factory=list)
    sends: SendReport = field(default_factory=SendReport)


def reconcile_all(*, min_age: timedelta = timedelta(minutes=2)) -> ReconcileReport:
    """Re-enqueue lost or abandoned work, then send the outbox; ``report.sends.failed`` names
    every send that did not reach the broker (its row stays for the next sweep)."""
    with session_scope() as session:
        jobs = reconcile_jobs(session, min_age=min_age)
        exports = reconcile_exports(session)
    abandoned = timedelta(hours=get_settings().upload_abandoned_after_hours)
    with session_scope() as session:
        uploads = abort_stale_uploads(session, older_than=abandoned)
    # The commit above tried the new sends; this sends whatever is still unsent.
    with session_scope() as session:
        sends = send_outbox(session, min_age=min_age)
    return ReconcileReport(jobs, exports, uploads, sends)
