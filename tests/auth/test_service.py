from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.models import Role, User
from app.core.db import utcnow
from app.core.errors import Conflict, Invalid, TooManyRequests, Unauthorized
from tests.factories import PASSWORD, create_user


def test_passwords_are_stored_as_argon2_hashes(db: Session) -> None:
    user = create_user(db, Role.admin)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert service.authenticate(db, user.username, PASSWORD).id == user.id


def test_duplicate_username_and_short_password_are_refused(db: Session) -> None:
    user = create_user(db)
    with pytest.raises(Conflict):
        service.create_user(db, user.username, PASSWORD, Role.annotator)
    with pytest.raises(Invalid):
        service.create_user(db, "newname", "short", Role.annotator)


def test_repeated_failures_lock_the_account_for_a_while(db: Session) -> None:
    user = create_user(db)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            service.authenticate(db, user.username, "wrong password")
    with pytest.raises(TooManyRequests):
        service.authenticate(db, user.username, PASSWORD)
    user.locked_until = utcnow() - timedelta(seconds=1)
    assert service.authenticate(db, user.username, PASSWORD).id == user.id


def test_disabling_a_user_ends_sessions_and_tokens(db: Session) -> None:
    user = create_user(db)
    new = service.start_session(db, user)
    _, plain = service.create_api_token(db, user, "script")
    assert service.resolve_session(db, new.key) is not None
    assert service.resolve_api_token(db, plain) is not None
    service.update_user(db, user.id, is_active=False)
    assert service.resolve_session(db, new.key) is None
    assert service.resolve_api_token(db, plain) is None
    with pytest.raises(Unauthorized, match="disabled"):
        service.authenticate(db, user.username, PASSWORD)


def test_expired_session_is_refused(db: Session) -> None:
    user = create_user(db)
    new = service.start_session(db, user)
    found = service.resolve_session(db, new.key)
    assert found is not None
    found[1].expires_at = utcnow() - timedelta(minutes=1)
    db.flush()
    assert service.resolve_session(db, new.key) is None


def test_api_tokens_are_hashed_and_revocable(db: Session) -> None:
    user = create_user(db)
    token, plain = service.create_api_token(db, user, "ci", ["read"])
    assert plain.startswith("clb_") and plain not in token.token_hash
    found = service.resolve_api_token(db, plain)
    assert found is not None and found[0].id == user.id and found[1].scopes == "read"
    service.revoke_api_token(db, user, token.id)
    assert service.resolve_api_token(db, plain) is None
    with pytest.raises(Invalid):
        service.create_api_token(db, user, "bad", ["delete"])


def test_unknown_user_gets_the_same_error_as_a_wrong_password(db: Session) -> None:
    with pytest.raises(Unauthorized, match="Wrong username or password"):
        service.authenticate(db, "nobody-here", PASSWORD)
    assert db.query(User).filter_by(username="nobody-here").count() == 0
