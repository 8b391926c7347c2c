"""Accounts, login with throttling, server-side sessions and personal API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from app.auth import throttle
from app.auth.models import USERNAME_PATTERN, ApiToken, Role, User, UserSession
from app.auth.throttle import LoginKeys
from app.core.config import get_settings
from app.core.db import utcnow
from app.core.errors import Conflict, Invalid, NotFound, TooManyRequests, Unauthorized
from app.core.security import dummy_hash, hash_password, new_token, sha256_hex, verify_password

TOKEN_PREFIX = "clb_"
WRONG_LOGIN = "Wrong username or password."


MIN_PASSWORD_SCORE = 2  # zxcvbn's "somewhat guessable": common passwords and patterns score 0-1


def check_password(password: str, username: str = "") -> None:
    """Refuse short passwords and ones a guesser tries early (common passwords, keyboard
    walks, the username), in words that say how to do better."""
    if len(password) < 8:
        raise Invalid("Passwords need at least 8 characters.")
    strength = zxcvbn(password[:100], user_inputs=[username, "cellabel"])
    if strength["score"] < MIN_PASSWORD_SCORE:
        hint = strength["feedback"]["warning"] or "It is too easy to guess."
        raise Invalid(f"Choose a harder password: {hint} A few unrelated words work well.")


def create_user(session: Session, username: str, password: str, role: Role) -> User:
    """Create an account; usernames are unique and plain (see USERNAME_PATTERN)."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise Invalid("Usernames are 2-64 letters, digits, '_', '.' or '-'.", field="username")
    check_password(password, username)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"A user named {username!r} already exists.", field="username")
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
    session: Session,
    user_id: int,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    by: User | None = None,
) -> User:
    """Change a user's role or disable them; disabling ends their sessions at once. Nobody
    demotes or disables themselves (``by``), and the last active admin stays one."""
    user = get_user(session, user_id)
    loses_admin = (
        user.role == Role.admin
        and user.is_active
        and ((role is not None and role != Role.admin) or is_active is False)
    )
    if loses_admin and by is not None and by.id == user.id:
        raise Invalid("You cannot disable or demote your own account.")
    if loses_admin and not session.scalar(
        select(
            select(User.id)
            .where(User.role == Role.admin, User.is_active, User.id != user.id)
            .exists()
        )
    ):
        raise Conflict(f"{user.username} is the last active admin: make another admin first.")
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
    user = get_user(session, user_id)
    check_password(password, user.username)
    user.password_hash = hash_password(password)
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def start_login(session: Session, username: str, client: str) -> LoginKeys:
    """Count a login attempt before its password is checked (the caller commits the count
    first, so parallel guesses see it); a throttled name or client is refused here, in the
    time a password check takes, alike for real and unknown names."""
    keys = LoginKeys.of(username, client)
    locked_until = throttle.count_attempt(session, keys)
    if locked_until is not None:
        verify_password(dummy_hash(), "")
        wait = max(1, int((locked_until - utcnow()).total_seconds()) + 1)
        raise TooManyRequests(f"Too many failed logins. Try again in {wait} s.")
    return keys


def finish_login(session: Session, keys: LoginKeys, username: str, password: str) -> User:
    """Check the password of an attempt counted by :func:`start_login`. Unknown names, wrong
    passwords and disabled accounts get one answer, after a password check, so the answer
    tells nothing about which names exist or which password was right."""
    user = get_user_by_name(session, username)
    matches = verify_password(user.password_hash if user else dummy_hash(), password)
    if user is None or not matches or not user.is_active:
        raise Unauthorized(WRONG_LOGIN)
    throttle.give_back(session, keys)
    user.last_login_at = utcnow()
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
    if row.expires_at <= utcnow():
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
    """A new token; the plain value is returned once and only its hash is stored. No scopes
    given means read and write; an empty list is refused (it cannot mean "everything")."""
    scopes = ["read", "write"] if scopes is None else scopes
    if not scopes:
        raise Invalid("Choose at least one scope: read and/or write.")
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
