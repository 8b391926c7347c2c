"""Iterate ahead in a worker thread: ``prefetched(items, depth)``.

Decoding a video (PyAV) and OpenCV release the GIL, so a loop that spends its time in a model
call can have its next items produced on the other core meanwhile. The items come out in
their order, at most ``depth`` of them wait in a bounded queue, an exception the producer
raises is raised in the consumer at the point it happened, and leaving the loop early stops
the worker and closes the source iterator (a decoder's container) in the worker's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL_S = 0.05  # how often a producer blocked on a full queue looks whether to stop


class _End:
    """Marks the end of the items (None may be an item)."""


class _Failed:
    """The producer's exception, to raise in the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterable[T], depth: int) -> Generator[T, None, None]:
    """``items`` in order, produced up to ``depth`` ahead in a worker thread (``depth`` 0:
    the items themselves, on this thread)."""
    if depth <= 0:
        yield from items
        return
    ready: queue.Queue[T | _End | _Failed] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: T | _End | _Failed) -> bool:
        """Queue ``item``; False when the consumer left first."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source: Iterator[T] | None = None
        try:
            source = iter(items)
            for item in source:
                if not offer(item):
                    return
            offer(_End())
        except BaseException as error:  # handed to the consumer, raised there
            offer(_Failed(error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
