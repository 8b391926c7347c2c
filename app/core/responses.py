"""JSON responses serialised by orjson directly, for large payloads and hot paths.

FastAPI would validate a returned value against the route's ``response_model`` and encode it
with pydantic (milliseconds for a 133-point frame, much more for a 300-frame track); routes
that build their payloads from already-checked service values skip that. The route still
declares ``response_model`` so the OpenAPI document describes the body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from fastapi import Response

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def json_response(payload: Any, status_code: int = 200) -> Response:
    """``payload`` as JSON (numpy arrays and non-string keys allowed, other types by str)."""
    body = orjson.dumps(payload, default=str, option=_OPTIONS)
    return Response(body, status_code=status_code, media_type="application/json")


def attachment(filename: str) -> dict[str, str]:
    """``Content-Disposition`` for a download named ``filename`` (RFC 6266): an ASCII
    fallback for old clients and the exact UTF-8 name for the others."""
    ascii_name = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in filename
    )
    exact = quote(filename, safe="")
    return {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{exact}"
    }
