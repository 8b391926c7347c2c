"""Login, logout, user administration and personal API tokens (pages and JSON API)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.deps import AdminOnly, AnyUser, Principal, Public
from app.auth.models import Role
from app.auth.schemas import TokenCreate, TokenCreated, TokenRead, UserCreate, UserRead, UserUpdate
from app.core.config import get_settings
from app.core.deps import DB
from app.core.errors import DomainError
from app.core.forms import FormState, form_page, with_form
from app.core.security import SESSION_COOKIE, sign, unsign
from app.core.templating import render

router = APIRouter()
api = APIRouter(prefix="/api", tags=["auth"])


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so `next` cannot redirect off the app."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, principal: Public, next: str | None = None) -> Response:
    if principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "auth/login.html", {"next": _safe_next(next)})


def _login_refused(
    request: Request, db: Session, principal: Principal | None, form: FormState | None = None
) -> Response:
    """The sign-in form again when a field is missing (wrong passwords are the route's)."""
    context = {"next": _safe_next(form.value("next") if form else None), "username": ""}
    return render(request, "auth/login.html", with_form(context, form))


@router.post("/login", response_class=HTMLResponse)
@form_page("login", _login_refused)
def login(
    request: Request,
    db: DB,
    principal: Public,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    client = request.client.host if request.client else "unknown"
    try:
        attempt = service.start_login(db, username, client)
        db.commit()  # parallel guesses must see this attempt before its password is checked
        user = service.finish_login(db, attempt, username.strip(), password)
    except DomainError as exc:
        return render(
            request,
            "auth/login.html",
            {"error": exc.message, "next": _safe_next(next), "username": username},
            status_code=exc.status_code,
        )
    old = request.cookies.get(SESSION_COOKIE)
    old_key = unsign(old) if old else None
    if old_key:
        service.end_session(db, old_key)
    new = service.start_session(db, user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sign(new.key),
        httponly=True,
        samesite="lax",
        max_age=get_settings().session_hours * 3600,
    )
    return response


@router.post("/logout")
def logout(request: Request, db: DB, principal: AnyUser) -> Response:
    signed = request.cookies.get(SESSION_COOKIE)
    key = unsign(signed) if signed else None
    if key:
        service.end_session(db, key)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _users(
    request: Request,
    db: Session,
    principal: Principal,
    form: FormState | None = None,
    notice: str = "",
) -> Response:
    context = {"users": service.list_users(db), "roles": list(Role), "notice": notice}
    return render(
        request, "auth/users.html", with_form(context, form), partial="auth/_users_table.html"
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, db: DB, principal: AdminOnly) -> Response:
    return _users(request, db, principal)


@router.post("/admin/users", response_class=HTMLResponse)
@form_page("user", _users)
def users_create(
    request: Request,
    db: DB,
    principal: AdminOnly,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[Role, Form()] = Role.annotator,
) -> Response:
    data = UserCreate(username=username.strip(), password=password, role=role)
    service.create_user(db, data.username, data.password, data.role)
    return _users(request, db, principal, notice=f"Created {data.role.value} {data.username}.")


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
@form_page("user-edit", _users)
def users_update(
    request: Request,
    db: DB,
    principal: AdminOnly,
    user_id: int,
    role: Annotated[Role | None, Form()] = None,
    is_active: Annotated[bool | None, Form()] = None,
) -> Response:
    service.update_user(db, user_id, role=role, is_active=is_active, by=principal.user)
    return _users(request, db, principal)


def _tokens(
    request: Request,
    db: Session,
    principal: Principal,
    form: FormState | None = None,
    created: str | None = None,
) -> Response:
    context = {"tokens": service.list_api_tokens(db, principal.user), "created": created}
    return render(request, "auth/tokens.html", with_form(context, form))


@router.get("/account/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, db: DB, principal: AnyUser) -> Response:
    return _tokens(request, db, principal)


@router.post("/account/tokens", response_class=HTMLResponse)
@form_page("token", _tokens)
def tokens_create(
    request: Request,
    db: DB,
    principal: AnyUser,
    name: Annotated[str, Form()] = "",
    read_only: Annotated[bool, Form()] = False,
) -> Response:
    data = TokenCreate(name=name.strip(), scopes=["read"] if read_only else ["read", "write"])
    _, plain = service.create_api_token(db, principal.user, data.name, data.scopes)
    return _tokens(request, db, principal, created=plain)


@router.post("/account/tokens/{token_id}/revoke", response_class=HTMLResponse)
@form_page("token-revoke", _tokens)
def tokens_revoke(request: Request, db: DB, principal: AnyUser, token_id: int) -> Response:
    service.revoke_api_token(db, principal.user, token_id)
    return _tokens(request, db, principal)


@api.get("/me", response_model=UserRead)
def api_me(principal: AnyUser) -> UserRead:
    return UserRead.model_validate(principal.user)


@api.get("/users", response_model=list[UserRead])
def api_users(db: DB, principal: AdminOnly) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in service.list_users(db)]


@api.post("/users", response_model=UserRead, status_code=201)
def api_users_create(body: UserCreate, db: DB, principal: AdminOnly) -> UserRead:
    return UserRead.model_validate(service.create_user(db, body.username, body.password, body.role))


@api.patch("/users/{user_id}", response_model=UserRead)
def api_users_update(user_id: int, body: UserUpdate, db: DB, principal: AdminOnly) -> UserRead:
    user = service.update_user(
        db, user_id, role=body.role, is_active=body.is_active, by=principal.user
    )
    return UserRead.model_validate(user)


@api.get("/tokens", response_model=list[TokenRead])
def api_tokens(db: DB, principal: AnyUser) -> list[TokenRead]:
    return [TokenRead.model_validate(t) for t in service.list_api_tokens(db, principal.user)]


@api.post("/tokens", response_model=TokenCreated, status_code=201)
def api_tokens_create(body: TokenCreate, db: DB, principal: AnyUser) -> TokenCreated:
    token, plain = service.create_api_token(db, principal.user, body.name, body.scopes)
    return TokenCreated.model_validate(
        {**TokenRead.model_validate(token).model_dump(), "token": plain}
    )


@api.delete("/tokens/{token_id}", response_model=TokenRead)
def api_tokens_revoke(token_id: int, db: DB, principal: AnyUser) -> TokenRead:
    return TokenRead.model_validate(service.revoke_api_token(db, principal.user, token_id))
