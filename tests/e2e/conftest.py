"""The end-to-end suite drives the same live server and Chromium as the browser tests, and
the worker hosts of the reliability tests on a bucket (tests/bucket_hosts.py)."""

from tests.browser.conftest import (  # noqa: F401 (fixtures, found by name)
    cleanup,
    committed,
    live_server,
    new_page,
    page,
    page_checks,
    unique,
)
from tests.bucket_hosts import bucket_broker  # noqa: F401
from tests.reliability.conftest import private_redis, workers  # noqa: F401
