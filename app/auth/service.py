"""Accounts, login with throttling, server-side sessions and personal API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from app.auth.models import ApiToken, Role, User, UserSession
from app.core.config import get_settings
from app.core.db import utcnow
from app.core.errors import Conflict, Invalid, NotFound, TooManyRequests, Unauthorized
from app.core.security import dummy_hash, hash_password, new_token, sha256_hex, verify_password

TOKEN_PREFIX = "clb_"


def create_user(session: Session, username: str, password: str, role: Role) -> User:
    """Create an account; usernames are unique."""
    if len(password) < 8:
        raise Invalid("Passwords need at least 8 characters.")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"A user named {username!r} already exists.")
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


def get_user_by_name(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def update_user(
    session: Session, user_id: int, *, role: Role | None = None, is_active: bool | None = None
) -> User:
    """Change a user's role or disable them; disabling ends their sessions at once."""
    user = get_user(session, user_id)
    if role is not None:
        user.role = role
    if is_active is not None:
        user.is_active = is_active
        if not is_active:
            session.execute(delete(UserSession).where(UserSession.user_id == user.id))
            for token in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)):
                token.revoked_at = token.revoked_at or utcnow()
    session.flush()
    return user


def set_password(session: Session, user_id: int, password: str) -> None:
    if len(password) < 8:
        raise Invalid("Passwords need at least 8 characters.")
    user = get_user(session, user_id)
    user.password_hash = hash_password(password)
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def authenticate(session: Session, username: str, password: str) -> User:
    """Check a password, counting failures; a locked or disabled account cannot log in."""
    settings = get_settings()
    user = get_user_by_name(session, username)
    if user is None:
        verify_password(dummy_hash(), password)
        raise Unauthorized("Wrong username or password.")
    now = utcnow()
    locked_until = user.locked_until
    if locked_until and locked_until > now:
        wait = int((locked_until - now).total_seconds()) + 1
        raise TooManyRequests(f"Too many failed logins. Try again in {wait} s.")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            user.failed_logins = 0
        session.flush()
        raise Unauthorized("Wrong username or password.")
    if not user.is_active:
        raise Unauthorized("This account is disabled. Ask an admin.")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.flush()
    return user


@dataclass(frozen=True)
class NewSession:
    key: str
    csrf_token: str


def start_session(session: Session, user: User) -> NewSession:
    """A fresh session id on every login (no fixation); the cookie holds only the key."""
    key = new_token()
    csrf = new_token(24)
    hours = get_settings().session_hours
    session.add(
        UserSession(
            key_hash=sha256_hex(key),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    session.flush()
    return NewSession(key=key, csrf_token=csrf)


# Built once: every request runs it.
_SESSION_USER = (
    select(UserSession, User)
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.key_hash == bindparam("key_hash"))
)


def resolve_session(session: Session, key: str) -> tuple[User, UserSession] | None:
    """The active user and session row for a cookie key, or None when expired or revoked."""
    found = session.execute(_SESSION_USER, {"key_hash": sha256_hex(key)}).one_or_none()
    if found is None:
        return None
    row, user = found
    expires = row.expires_at
    if expires is None or expires <= utcnow():
        session.delete(row)
        return None
    if not user.is_active:
        return None
    return user, row


def end_session(session: Session, key: str) -> None:
    session.execute(delete(UserSession).where(UserSession.key_hash == sha256_hex(key)))


def create_api_token(
    session: Session, user: User, name: str, scopes: list[str] | None = None
) -> tuple[ApiToken, str]:
    """A new token; the plain value is returned once and only its hash is stored."""
    scopes = scopes or ["read", "write"]
    unknown = set(scopes) - {"read", "write"}
    if unknown:
        raise Invalid(f"Unknown scopes: {', '.join(sorted(unknown))}. Use read and/or write.")
    plain = TOKEN_PREFIX + new_token()
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=plain[:10],
        token_hash=sha256_hex(plain),
        scopes=",".join(sorted(scopes)),
    )
    session.add(token)
    session.flush()
    return token, plain


def resolve_api_token(session: Session, plain: str) -> tuple[User, ApiToken] | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == sha256_hex(plain)))
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.is_active:
        return None
    token.last_used_at = utcnow()
    return user, token


def list_api_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    )


def revoke_api_token(session: Session, user: User, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != user.id and user.role != Role.admin):
        raise NotFound(f"No token {token_id}.")
    token.revoked_at = token.revoked_at or utcnow()
    session.flush()
    return token
