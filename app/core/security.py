"""Password hashing (argon2), signed cookie values (itsdangerous), token hashing, CSRF checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from app.core.asgi import HttpMiddleware, editing_headers
from app.core.config import get_settings
from app.core.storage import media_bucket

SESSION_COOKIE = "cellabel_session"
ANON_COOKIE = "cellabel_anon"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the username is unknown, so timing does not reveal it.
@lru_cache
def dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


@lru_cache
def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().effective_secret_key(), salt="cellabel-cookie")


def sign(value: str) -> str:
    return _serializer().dumps(value)


def unsign(signed: str) -> str | None:
    try:
        value = _serializer().loads(signed)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def anonymous_csrf_token(anon_id: str) -> str:
    """CSRF token for visitors without a session (the login form), bound to their anon cookie."""
    key = get_settings().effective_secret_key().encode()
    return hmac.new(key, f"anon:{anon_id}".encode(), hashlib.sha256).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected, given or "")


CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


# Sent when the app is served over HTTPS (COOKIE_SECURE): browsers then refuse plain HTTP to
# this host for a year, so a cookie can never travel unencrypted.
HSTS = "max-age=31536000"


class SecurityHeaders(HttpMiddleware):
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response that does not set
    its own; over HTTPS (COOKIE_SECURE) also HSTS, and every cookie the app sets (sign-in,
    sign-out, the anonymous CSRF cookie, any future one) is marked ``Secure`` here."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, editing_headers(send, _add_security_headers))


@lru_cache
def _content_security_policy(storage_url: str, endpoint: str, public_endpoint: str) -> str:
    """CSP, letting pages send upload parts to the media store and play previews from it
    (they are redirected to its presigned URLs: app.clips.paths.DIRECT_MEDIA) when media
    live in one."""
    if not storage_url.startswith("s3://"):
        return CSP
    store = media_bucket("").browser_origin()  # the store every request uses, not another
    return CSP.replace("connect-src 'self'", f"connect-src 'self' {store}").replace(
        "media-src 'self' blob:", f"media-src 'self' blob: {store}"
    )


def content_security_policy() -> str:
    """The CSP every response gets with the current settings."""
    settings = get_settings()
    return _content_security_policy(
        settings.storage_url, settings.s3_endpoint_url, settings.s3_public_endpoint_url
    )


def _add_security_headers(_message: Message, headers: MutableHeaders) -> None:
    policy = content_security_policy()
    for name, value in {**SECURITY_HEADERS, "Content-Security-Policy": policy}.items():
        if name not in headers:
            headers[name] = value
    if get_settings().cookie_secure:
        headers["Strict-Transport-Security"] = HSTS
        cookies = headers.getlist("set-cookie")
        if cookies:
            del headers["set-cookie"]
            for cookie in cookies:
                secure = any(p.strip().lower() == "secure" for p in cookie.split(";")[1:])
                headers.append("set-cookie", cookie if secure else f"{cookie}; Secure")
    # Pages and the JSON they load show one person's live work: Back must ask the server
    # again (a submitted clip is read-only now, a signed-out browser is signed out, a moved
    # point is where it was saved), never show a stored copy. Chromium serves a page's
    # fetches from its cache on Back unless the response forbids storing it.
    live = headers.get("content-type", "").startswith(("text/html", "application/json"))
    if live and "cache-control" not in headers:
        headers["Cache-Control"] = "no-store"
