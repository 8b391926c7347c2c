"""HTML forms that refuse input show the same form again: what was typed, each error beside its
field, in words a person uses.

A form's POST route names the function that renders the page holding the form with
:func:`form_page`. When the submission is refused (FastAPI's request validation, a pydantic
model built in the route, or a service's :class:`~app.core.errors.DomainError`), the error
handlers in ``app.main`` call :func:`rerender`, which renders that page again with a
:class:`FormState`: the submitted values and one message per field. JSON callers keep the
structured errors; HTMX posts get the fragment back with the header ``X-Form-Errors`` so
``static/js/app.js`` swaps it in place instead of treating the 4xx as a failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core import deps
from app.core.errors import DomainError
from app.core.security import CSRF_FIELD

FORM_ERRORS_HEADER = "X-Form-Errors"
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})


@dataclass
class FormState:
    """One form's submitted values and errors; empty (not ``submitted``) on a first visit."""

    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""
    prefix: str = "form"

    @property
    def submitted(self) -> bool:
        return bool(self.values or self.errors or self.message)

    def value(self, name: str, default: object = "") -> str:
        """What was typed into ``name``, or ``default`` before the form was submitted."""
        if not self.submitted:
            return "" if default is None else str(default)
        got = self.values.get(name)
        return got[0] if got else ""

    def getlist(self, name: str) -> list[str]:
        return list(self.values.get(name, ()))

    def rows(self, *names: str) -> list[dict[str, str]]:
        """Repeated fields (a table of inputs) as one dict per submitted row."""
        columns = [self.getlist(n) for n in names]
        return [dict(zip(names, row, strict=False)) for row in zip(*columns, strict=False)]

    def checked(self, name: str, option: object = "true", default: bool = False) -> bool:
        """Whether checkbox/option ``option`` of ``name`` was on (``default`` on a first visit)."""
        if not self.submitted:
            return default
        return str(option) in self.values.get(name, ())

    def error(self, name: str) -> str:
        return self.errors.get(name, "")

    def field_id(self, name: str) -> str:
        return f"{self.prefix}-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}"

    def error_id(self, name: str) -> str:
        return f"{self.field_id(name)}-error"

    def named(self, prefix: str) -> FormState:
        """This state if it belongs to the form called ``prefix``, else a blank one for it (a
        page with several forms shows the refusal only on the form that was sent)."""
        return self if self.prefix == prefix else FormState(prefix=prefix)

    @property
    def problems(self) -> list[tuple[str, str, str]]:
        """(field id, label, message) for the summary above the form."""
        return [(self.field_id(n), label_for(n), m) for n, m in self.errors.items()]


FormPage = Callable[[Request, Session, Any, FormState], Response]
_PAGES: dict[Callable[..., Any], tuple[str, FormPage]] = {}


def form_page(name: str, page: FormPage) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a POST route as the HTML form ``name`` whose refusals re-render ``page`` in place.

    ``page(request, db, principal, form)`` renders the page (or, for HTMX, the fragment) that
    holds the form, passing ``form`` to the template, which picks it up with
    ``form.named(name)`` (``name`` may name path parameters: ``"reassign-{assignment_id}"``);
    it runs with a read-only session. Put it under ``@router.post``.
    """

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        _PAGES[endpoint] = (name, page)
        return endpoint

    return register


def with_form(context: dict[str, Any], form: FormState | None) -> dict[str, Any]:
    """``context`` with the refused ``form`` for the template (none: every form starts blank)."""
    return context if form is None else {**context, "form": form}


def label_for(name: str) -> str:
    words = re.sub(r"_ids?$", lambda m: " ids" if m.group(0) == "_ids" else "", name)
    return re.sub(r"[_-]+", " ", words).strip().capitalize() or "Form"


def _number(bound: object) -> str:
    """A bound as a person writes it: 50, not 50.0."""
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def plain_message(error: Mapping[str, Any]) -> str:
    """A pydantic error in the words a person filling in a form uses."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    msg = str(error.get("msg", "")) or "This value is not accepted."
    match kind:
        case "missing":
            return "Fill this in."
        case "string_too_short":
            n = ctx.get("min_length", 1)
            return "Fill this in." if n == 1 else f"Use at least {n} characters."
        case "string_too_long":
            return f"Use at most {ctx.get('max_length')} characters."
        case "too_short":
            n = ctx.get("min_length", 1)
            return "Choose at least one." if n == 1 else f"Choose at least {n}."
        case "too_long":
            return f"Choose at most {ctx.get('max_length')}."
        case "int_parsing" | "int_from_float" | "int_type":
            return "Enter a whole number."
        case "float_parsing" | "float_type" | "decimal_parsing":
            return "Enter a number."
        case "greater_than_equal":
            return f"Enter {_number(ctx.get('ge'))} or more."
        case "greater_than":
            return f"Enter a number above {_number(ctx.get('gt'))}."
        case "less_than_equal":
            return f"Enter {_number(ctx.get('le'))} or less."
        case "less_than":
            return f"Enter a number below {_number(ctx.get('lt'))}."
        case "enum" | "literal_error":
            return f"Choose one of {ctx.get('expected', 'the options offered')}."
        case "bool_parsing" | "bool_type":
            return "Choose yes or no."
        case "date_parsing" | "datetime_parsing" | "date_from_datetime_parsing":
            return "Enter a date like 2026-12-31 (and a time like 18:00 if you want one)."
        case "string_pattern_mismatch":
            return "Use only the characters allowed here (letters, digits, '_', '-', '.')."
        case "json_invalid":
            return "This is not valid JSON."
        case "value_error" | "assertion_error":
            msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
        case "list_type" | "dict_type" | "model_type" | "string_type":
            return "This value has the wrong shape."
    return msg[:1].upper() + msg[1:]


def field_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[dict[str, str], str]:
    """Per-field messages (first one per field) and the rest joined into one message."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for error in errors:
        loc = [p for p in error.get("loc", ()) if isinstance(p, str)]
        name = loc[1] if loc and loc[0] in _SOURCES and loc[0] != "path" and len(loc) > 1 else (
            loc[0] if loc and loc[0] not in _SOURCES else None
        )  # fmt: skip
        text = plain_message(error)
        if name is None:
            general.append(text)
        else:
            by_field.setdefault(name, text)
    return by_field, " ".join(dict.fromkeys(general))


@contextmanager
def _read_session(request: Request) -> Iterator[Session]:
    """A session from the app's DB dependency (tests override it); rolled back, as a page
    re-render changes nothing."""
    provider = request.app.dependency_overrides.get(deps.db_session, deps.db_session)
    sessions = provider()
    try:
        yield next(sessions)
    finally:
        sessions.close()


async def rerender(
    request: Request, errors: dict[str, str], message: str, status_code: int
) -> Response | None:
    """The form page of the route that refused ``request``, or None when it has none."""
    registered = _PAGES.get(request.scope.get("endpoint"))  # type: ignore[arg-type]
    principal = getattr(request.state, "principal", None)
    ctype = request.headers.get("content-type", "")
    browser_form = ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
    if registered is None or request.method != "POST" or not browser_form:
        return None  # scripts (JSON, or no body) get the plain structured error
    name, page = registered
    # The form the route (or its CSRF check) parsed; the body is never read a second time: an
    # error raised before parsing, or while handling another error, has no form to show again.
    submitted = getattr(request, "_form", None)
    if submitted is None:
        return None
    values = {
        key: [v for v in submitted.getlist(key) if isinstance(v, str)]
        for key in submitted
        if key != CSRF_FIELD
    }
    prefix = name.format(**request.path_params)
    form = FormState(values, errors, message or _summary(errors), prefix=prefix)

    def render_page() -> Response:
        with _read_session(request) as db:
            return page(request, db, principal, form)

    try:
        response = await run_in_threadpool(render_page)
    except DomainError:
        return None  # the page itself is gone (say, its project): the error page explains
    response.status_code = status_code
    response.headers[FORM_ERRORS_HEADER] = str(len(errors) or 1)
    return response


def _summary(errors: dict[str, str]) -> str:
    if not errors:
        return ""
    return "Nothing was saved: correct the field marked below." if len(errors) == 1 else (
        f"Nothing was saved: correct the {len(errors)} fields marked below."
    )  # fmt: skip
