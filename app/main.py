"""create_app(): routers, static files, error pages and security headers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from app.agreement.routes import api as agreement_api
from app.agreement.routes import router as agreement_router
from app.annotations.routes import api as annotations_api
from app.annotations.routes import router as annotations_router
from app.auth.routes import api as auth_api
from app.auth.routes import router as auth_router
from app.batches.routes import api as batches_api
from app.batches.routes import router as batches_router
from app.clips.routes import api as clips_api
from app.clips.routes import router as clips_router
from app.clips.source_routes import api as sources_api
from app.clips.source_routes import router as sources_router
from app.core.asgi import HttpMiddleware
from app.core.db import is_contention
from app.core.errors import DomainError
from app.core.forms import field_errors, rerender
from app.core.limits import BodyLimits, body_limit
from app.core.observability import REGISTRY, RequestContext, request_id
from app.core.security import SecurityHeaders
from app.core.templating import is_htmx, render
from app.export.routes import api as export_api
from app.export.routes import router as export_router
from app.pipeline.metrics import PipelineCollector
from app.projects.routes import api as projects_api
from app.projects.routes import router as projects_router
from app.review.routes import api as review_api
from app.review.routes import router as review_router
from app.web.routes import router as web_router

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)
REGISTRY.register(PipelineCollector())  # once per process; create_app() may run many times


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or "application/json" in request.headers.get(
        "accept", ""
    )


def _error_response(
    request: Request, status: int, code: str, message: str, detail: object = None
) -> Response:
    if _wants_json(request):
        body: dict[str, object] = {"error": code, "message": message}
        if detail is not None:
            body["detail"] = detail
        return JSONResponse(body, status_code=status)
    # Browsers are sent to sign in; a script with a bad token gets the 401 (a redirect would
    # loop: the sign-in page refuses the same token).
    if (
        status == 401
        and request.method == "GET"
        and not is_htmx(request)
        and "authorization" not in request.headers
    ):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return render(
        request,
        "web/error.html",
        {"status": status, "code": code, "message": message},
        partial="web/_error.html",
        status_code=status,
    )


# Refusals an HTML form shows beside its fields (not sign-in, permission or rate limits).
FORM_REFUSALS = frozenset({400, 404, 409, 413, 422})


async def _form_refused(request: Request, errors: Sequence[Any]) -> Response | None:
    """The form again with the errors beside their fields; not when the address itself is
    wrong (a path parameter), since there is then no page holding the form to show."""
    if any(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors):
        return None
    by_field, message = field_errors(errors)
    return await rerender(request, by_field, message, 422)


class ServerErrors(HttpMiddleware):
    """An unexpected exception is logged with its request id and still answered through the
    app's own middlewares (request id, security headers) as the app's error page or JSON,
    never as the server's bare text."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:
                raise
            message = (
                "Something went wrong on our side; nothing you did caused it. "
                f"Quote error id {request_id.get()} when you report it."
            )
            request = Request(scope)
            try:
                response = _error_response(request, 500, "server_error", message)
            except Exception:  # the error page itself failed: the plain answer, still headed
                response = JSONResponse({"error": "server_error", "message": message}, 500)
            await response(scope, receive, send)


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    # Everything imported and built at start-up lives as long as the process: take it out of
    # the cyclic garbage collector's full passes, which otherwise walk all of it (a few
    # hundred milliseconds on a slow core) in the middle of whichever request triggers them.
    gc.freeze()
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="CelLabel",
        lifespan=_lifespan,
        version="0.1.0",
        # Served by app/web/routes.py to signed-in users, from the app's own copy of Swagger UI.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    for router in (
        web_router, auth_router, auth_api, clips_router, clips_api, sources_router, sources_api,
        annotations_router, annotations_api,
        projects_router, projects_api, batches_router, batches_api,
        review_router, review_api,
        export_router, export_api,
        agreement_router, agreement_api,
    ):  # fmt: skip
        app.include_router(router)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if exc.status_code in FORM_REFUSALS and not _wants_json(request):
            errors = {exc.field: exc.message} if exc.field else {}
            message = "" if exc.field else exc.message
            if form := await rerender(request, errors, message, exc.status_code):
                return form
        return _error_response(request, exc.status_code, exc.code, exc.message, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if not _wants_json(request) and (form := await _form_refused(request, exc.errors())):
            return form
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return _error_response(request, 422, "invalid", message or "Invalid request.", errors)

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, exc: ValidationError) -> Response:
        if not _wants_json(request) and (form := await _form_refused(request, exc.errors())):
            return form
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _error_response(request, 422, "invalid", message)

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> Response:
        if is_contention(exc):
            # A deadlock or lock timeout: the records were busy, the database is up. Still a
            # 503, so that clients retry the same request (a 409 would make the workspace
            # drop the edit and load the stored version).
            message = (
                "Someone else was changing the same records at that moment, so nothing was "
                "saved. Try again."
            )
            if not _wants_json(request) and (form := await rerender(request, {}, message, 503)):
                return form
            return _error_response(request, 503, "busy", message)
        return _error_response(
            request, 503, "unavailable", "The database is unavailable right now. Try again shortly."
        )

    @app.exception_handler(DataError)
    async def refused_value(request: Request, exc: DataError) -> Response:
        # Values the database cannot store (NUL characters in text, integers out of range)
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        message = f"A value cannot be stored: {reason}"
        if not _wants_json(request) and (form := await rerender(request, {}, message, 422)):
            return form
        return _error_response(request, 422, "invalid", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = "There is nothing at this address."
        if exc.status_code == 413:
            limit = body_limit(request.scope)
            message = f"The request is larger than the limit of {limit:,} bytes for it."
        return _error_response(request, exc.status_code, "http_error", message)

    app.add_middleware(ServerErrors)
    app.add_middleware(BodyLimits)
    app.add_middleware(RequestContext)
    app.add_middleware(SecurityHeaders)

    return app


app = create_app()
