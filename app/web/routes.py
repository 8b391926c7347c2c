"""Home page by role and the health endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from app.auth.deps import AdminOnly, AnyUser, Public
from app.auth.models import Role
from app.core.config import get_settings
from app.core.deps import DB
from app.core.templating import ROOT, render
from app.review.sent_back import sent_back

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: DB, principal: Public) -> Response:
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    waiting = sent_back(db, principal.user) if principal.role == Role.annotator else []
    return render(request, "web/home.html", {"sent_back": waiting})


@router.get("/favicon.ico", include_in_schema=False)
def favicon(principal: Public) -> Response:
    """Browsers ask for /favicon.ico whatever the page links; answer with the app's icon."""
    return FileResponse(ROOT / "static" / "favicon.svg", media_type="image/svg+xml")


@router.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request, principal: Public) -> Response:
    """The API reference (Swagger UI served from static/vendor) for signed-in users; anyone
    else is sent to sign in (a page, although it lives under /api)."""
    if principal is None:
        return RedirectResponse("/login?next=/api/docs", status_code=303)
    return render(request, "web/api_docs.html")


@router.get("/api/openapi.json", include_in_schema=False)
def openapi_schema(request: Request, principal: AnyUser) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/metrics")
def metrics(principal: AdminOnly) -> Response:
    """Prometheus metrics (scrape with an admin's read-only API token as a Bearer token)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from app.core.observability import REGISTRY

    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz(db: DB, principal: Public) -> Response:
    """Liveness plus the dependencies: the database and, when configured, Redis."""
    checks: dict[str, str] = {}
    try:
        db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, never raise: this is what monitors read
        checks["database"] = f"error: {type(exc).__name__}"
    settings = get_settings()
    if settings.redis_url:
        try:
            import redis

            redis.Redis.from_url(settings.redis_url, socket_timeout=2).ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    else:
        checks["redis"] = "not configured (embedded worker)"
    healthy = all(v == "ok" or v.startswith("not configured") for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", **checks}, 200 if healthy else 503
    )
