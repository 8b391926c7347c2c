"""Domain errors raised by services; app.main turns them into HTML pages or JSON bodies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, detail: Any = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.field = field  # the form field the message is about, shown beside it


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Conflict(DomainError):
    """A write lost a race or duplicates data; ``detail`` carries the current version."""

    status_code = 409
    code = "conflict"


class Invalid(DomainError):
    status_code = 422
    code = "invalid"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


class TooManyRequests(DomainError):
    status_code = 429
    code = "too_many_requests"


class StorageUnavailable(DomainError):
    """The object store did not answer (refused, timed out, 5xx after retries): retryable."""

    status_code = 503
    code = "storage_unavailable"


@contextmanager
def about_field(name: str) -> Iterator[None]:
    """Errors raised inside concern the input field ``name`` (forms show them beside it)."""
    try:
        yield
    except DomainError as exc:
        exc.field = exc.field or name
        raise
