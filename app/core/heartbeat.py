"""A running job's sign of life, written from a thread while the work runs.

A worker killed with ``-9`` stops beating with it, so a job silent for ``JOB_STALE_AFTER_S``
is known to be abandoned and the reconciler hands it to another worker, however long the
step itself takes. Each beat is fenced like the result: it only touches the row while the
run's attempt still owns it, and a refused beat stops the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from app.core.config import get_settings

log = logging.getLogger(__name__)


def stale_before(now: datetime) -> datetime:
    """Runs with no sign of life since then lost their worker (``JOB_STALE_AFTER_S``)."""
    return now - timedelta(seconds=get_settings().job_stale_after_s)


@contextmanager
def heartbeat(beat: Callable[[], bool]) -> Iterator[None]:
    """Call ``beat()`` every JOB_HEARTBEAT_S until the block ends or ``beat`` returns False.

    A beat that raises (the database briefly away) is logged and tried again next time."""
    every_s = get_settings().job_heartbeat_s
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            try:
                if not beat():
                    return  # taken over: this run's result will be refused too
            except Exception:
                log.warning("heartbeat failed; trying again", exc_info=True)

    thread = threading.Thread(target=run, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
