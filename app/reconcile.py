"""One reconciler sweep over everything a crash or an outage can lose, in this order:

1. pipeline jobs whose message the broker lost, or whose worker went silent (re-enqueued);
2. export builds whose worker went silent or whose message was lost (re-enqueued);
3. the outbox: every task send not known to have reached the broker, including the two
   above (see :mod:`app.core.jobs`).

Run by ``cellabel reconcile`` and by the periodic ``cellabel.reconcile`` task (celery beat,
every ``RECONCILE_EVERY_S``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from app.core.db import session_scope
from app.core.jobs import SendReport, send_outbox
from app.export.build import reconcile_exports
from app.pipeline.service import reconcile as reconcile_jobs


@dataclass
class ReconcileReport:
    jobs: list[int] = field(default_factory=list)
    exports: list[int] = field(default_factory=list)
    sends: SendReport = field(default_factory=SendReport)


def reconcile_all(*, min_age: timedelta = timedelta(minutes=2)) -> ReconcileReport:
    """Re-enqueue lost or abandoned work, then send the outbox; ``report.sends.failed`` names
    every send that did not reach the broker (its row stays for the next sweep)."""
    with session_scope() as session:
        jobs = reconcile_jobs(session, min_age=min_age)
        exports = reconcile_exports(session)
    # The commit above tried the new sends; this sends whatever is still unsent.
    with session_scope() as session:
        sends = send_outbox(session, min_age=min_age)
    return ReconcileReport(jobs, exports, sends)
