"""How large a request body may be, decided per request before any of it is read.

FastAPI parses a JSON or form body before it runs the route's dependencies, so a limit that
waited for authentication would come too late: here the limit follows only from the path and
whether the request carries credentials at all. Without a session cookie or a token nobody
may send more than a sign-in form; signed-in JSON and forms get a few MB; only the upload
route streams up to the upload limit. Over the limit the request gets a 413 as soon as its
declared length or its bytes so far say so (never after spooling it).
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import Receive, Scope, Send

from app.core.asgi import HttpMiddleware
from app.core.config import get_settings
from app.core.security import SESSION_COOKIE

FORM_OVERHEAD = 1024 * 1024  # multipart framing and form fields around an upload
UPLOAD_PATH = re.compile(r"/api/projects/\d+/clips")


def body_limit(scope: Scope) -> int:
    """The most bytes this request's body may have."""
    settings = get_settings()
    headers = Headers(scope=scope)
    signed_in = "authorization" in headers or f"{SESSION_COOKIE}=" in headers.get("cookie", "")
    if not signed_in:
        return settings.max_anonymous_body_bytes
    if scope["method"] == "POST" and UPLOAD_PATH.fullmatch(scope["path"]):
        return settings.max_upload_bytes + FORM_OVERHEAD
    return settings.max_body_bytes


class BodyLimits(HttpMiddleware):
    """Applies :func:`body_limit` to every request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await RequestBodyLimitMiddleware(self.app, body_limit(scope))(scope, receive, send)
