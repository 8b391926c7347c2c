"""Jinja2 rendering with the caller, CSRF token and HTMX-aware partials."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.core.forms import FormState
from app.core.security import ANON_COOKIE, anonymous_csrf_token, new_token
from app.core.textdiff import word_diff

ROOT = Path(__file__).resolve().parents[2]
templates = Jinja2Templates(directory=str(ROOT / "templates"))  # autoescape is on for .html
templates.env.globals["word_diff"] = word_diff
templates.env.globals["form"] = FormState()  # no form refused: every form starts blank


# Explicit direction controls (embeddings, overrides, isolates, marks): in a file name they can
# make "evil\u202egpj.mp4" read as "evilmp4.jpg". Shown as visible codes instead.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def bidi_visible(text: object) -> str:
    """``text`` with each bidirectional control character replaced by a visible ``<U+202E>``."""
    return _BIDI_CONTROLS.sub(lambda m: f"<U+{ord(m.group()):04X}>", str(text))


templates.env.filters["bidi_visible"] = bidi_visible


def is_htmx(request: Request) -> bool:
    """An HTMX request for a fragment (a history restore, on Back, wants the whole page)."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true" and headers.get("HX-History-Restore-Request") != "true"
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``name``, or ``partial`` instead when HTMX asked for a fragment."""
    principal = getattr(request.state, "principal", None)
    anon_id = None
    if principal is not None:
        csrf = principal.csrf_token or ""
    else:
        anon_id = request.cookies.get(ANON_COOKIE) or new_token(16)
        csrf = anonymous_csrf_token(anon_id)
    ctx = {"principal": principal, "csrf_token": csrf, **(context or {})}
    template = partial if partial and is_htmx(request) else name
    response = templates.TemplateResponse(request, template, ctx, status_code=status_code)
    if partial:  # the same URL answers a page or a fragment: never let a cache mix them up
        response.headers["Vary"] = "HX-Request, HX-History-Restore-Request"
    if anon_id and ANON_COOKIE not in request.cookies:
        response.set_cookie(
            ANON_COOKIE,
            anon_id,
            httponly=True,
            samesite="lax",
        )
    return response
