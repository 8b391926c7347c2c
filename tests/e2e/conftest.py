"""The end-to-end suite drives the same live server and Chromium as the browser tests."""

from tests.browser.conftest import (  # noqa: F401 (fixtures, found by name)
    cleanup,
    committed,
    live_server,
    new_page,
    page,
    page_checks,
    unique,
)
