"""Secrets stored in the database (bucket credentials) sealed with Fernet (cryptography).

The Fernet key is derived with HKDF-SHA256 from ``CREDENTIALS_KEY`` or, when that is unset,
from ``SECRET_KEY``: a database dump alone never reveals a secret, and the key can be kept
apart from the session-signing key. Changing the key makes stored secrets unreadable
(:func:`unseal` says so); they have to be entered again.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core.config import get_settings
from app.core.errors import Invalid


def _material() -> str:
    settings = get_settings()
    if settings.credentials_key is not None:
        return settings.credentials_key.get_secret_value()
    return settings.effective_secret_key()


@lru_cache(maxsize=4)
def _fernet(material: str) -> Fernet:
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"cellabel stored credentials")
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(material.encode())))


def seal(secret: str) -> str:
    """``secret`` encrypted and authenticated, as text for a database column."""
    return _fernet(_material()).encrypt(secret.encode()).decode("ascii")


def unseal(token: str) -> str:
    """The secret sealed in ``token``; Invalid when the key has changed since it was sealed."""
    try:
        return _fernet(_material()).decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise Invalid(
            "The stored credentials cannot be decrypted (CREDENTIALS_KEY or SECRET_KEY changed "
            "since they were saved); enter the secret key again."
        ) from exc
