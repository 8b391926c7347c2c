import threading

import pytest

from app.core.prefetch import prefetched


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "prefetch"]


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_items_come_out_in_order(depth):
    assert list(prefetched(iter([3, None, 1, 2]), depth)) == [3, None, 1, 2]
    assert not _workers()


def test_items_are_produced_on_another_thread_ahead_of_the_consumer():
    produced: list[tuple[int, str]] = []

    def source():
        for i in range(5):
            produced.append((i, threading.current_thread().name))
            yield i

    items = prefetched(source(), 2)
    assert next(items) == 0
    while len(produced) < 3:  # the worker fills the queue while the consumer holds item 0
        threading.Event().wait(0.01)
    assert {name for _, name in produced} == {"prefetch"}
    assert list(items) == [1, 2, 3, 4]


def test_a_producer_error_is_raised_in_the_consumer_after_the_items_before_it():
    def source():
        yield 1
        raise ValueError("broken frame 1")

    got = []
    with pytest.raises(ValueError, match="broken frame 1"):
        for item in prefetched(source(), 3):
            got.append(item)
    assert got == [1]
    assert not _workers()


def test_leaving_early_stops_the_worker_and_closes_the_source():
    closed = threading.Event()

    def source():
        try:
            yield from range(1000)
        finally:
            closed.set()

    items = prefetched(source(), 2)
    assert next(items) == 0
    items.close()
    assert closed.is_set() and not _workers()


def test_items_that_cannot_be_iterated_fail_in_the_consumer():
    class Broken:
        def __iter__(self):
            raise OSError("no such video")

    with pytest.raises(OSError, match="no such video"):
        list(prefetched(Broken(), 2))
    assert not _workers()
