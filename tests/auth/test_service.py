from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.models import LoginThrottle, Role, User
from app.core.db import utcnow
from app.core.errors import Conflict, Invalid, TooManyRequests, Unauthorized
from tests.factories import PASSWORD, create_user


def test_passwords_are_stored_as_argon2_hashes(db: Session) -> None:
    user = create_user(db, Role.admin)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert _login(db, user.username, PASSWORD).id == user.id


def test_duplicate_username_and_short_password_are_refused(db: Session) -> None:
    user = create_user(db)
    with pytest.raises(Conflict):
        service.create_user(db, user.username, PASSWORD, Role.annotator)
    with pytest.raises(Invalid):
        service.create_user(db, "newname", "short", Role.annotator)


def _login(db: Session, username: str, password: str, client: str = "10.0.0.1") -> User:
    keys = service.start_login(db, username, client)
    return service.finish_login(db, keys, username, password)


def test_repeated_failures_lock_that_name_for_that_client_only(db: Session) -> None:
    user = create_user(db)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            _login(db, user.username, "wrong password")
    with pytest.raises(TooManyRequests):
        _login(db, user.username, PASSWORD)
    # Someone else's five guesses do not lock the owner out from their own address.
    assert _login(db, user.username, PASSWORD, client="10.0.0.2").id == user.id
    db.execute(update(LoginThrottle).values(window_start=utcnow() - timedelta(minutes=6)))
    assert _login(db, user.username, PASSWORD).id == user.id


def test_an_unknown_name_locks_and_answers_exactly_like_a_real_one(db: Session) -> None:
    user = create_user(db)
    answers = {}
    for name in (user.username, "nobody-here"):
        for _ in range(5):
            with pytest.raises(Unauthorized) as wrong:
                _login(db, name, "wrong password")
        with pytest.raises(TooManyRequests) as locked:
            _login(db, name, "wrong password")
        answers[name] = (wrong.value.message, re.sub(r"\d+ s", "N s", locked.value.message))
    assert answers[user.username] == answers["nobody-here"]


def test_disabling_a_user_ends_sessions_and_tokens(db: Session) -> None:
    user = create_user(db)
    new = service.start_session(db, user)
    _, plain = service.create_api_token(db, user, "script")
    assert service.resolve_session(db, new.key) is not None
    assert service.resolve_api_token(db, plain) is not None
    service.update_user(db, user.id, is_active=False)
    assert service.resolve_session(db, new.key) is None
    assert service.resolve_api_token(db, plain) is None
    # The right password on a disabled account is not confirmed: the same answer as a wrong one.
    with pytest.raises(Unauthorized, match="Wrong username or password"):
        _login(db, user.username, PASSWORD)


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
        _login(db, "nobody-here", PASSWORD)
    assert db.query(User).filter_by(username="nobody-here").count() == 0


def test_nobody_demotes_themselves_and_the_last_active_admin_stays(db: Session) -> None:
    db.execute(update(User).where(User.role == Role.admin).values(is_active=False))
    admin = create_user(db, Role.admin)
    with pytest.raises(Invalid, match="your own account"):
        service.update_user(db, admin.id, role=Role.annotator, by=admin)
    with pytest.raises(Conflict, match="last active admin"):
        service.update_user(db, admin.id, is_active=False)
    second = create_user(db, Role.admin)
    service.update_user(db, admin.id, is_active=False, by=second)
    assert not admin.is_active
    with pytest.raises(Conflict, match="last active admin"):
        service.update_user(db, second.id, role=Role.reviewer)


def test_a_token_with_no_scopes_is_refused_not_made_all_powerful(db: Session) -> None:
    user = create_user(db)
    with pytest.raises(Invalid, match="at least one scope"):
        service.create_api_token(db, user, "nothing", [])
    assert service.create_api_token(db, user, "default")[0].scopes == "read,write"


@pytest.mark.parametrize("name", ["<script>", "{{7*7}}", "a b", "x", "ünï"])
def test_odd_usernames_are_refused_everywhere_not_only_in_the_api(db: Session, name: str) -> None:
    with pytest.raises(Invalid, match="Usernames are"):
        service.create_user(db, name, PASSWORD, Role.annotator)


@pytest.mark.parametrize("password", ["password", "qwertyuiop", "12345678", "annotator7"])
def test_common_and_guessable_passwords_are_refused(db: Session, password: str) -> None:
    with pytest.raises(Invalid, match="harder password"):
        service.create_user(db, "annotator7", password, Role.annotator)


def test_a_new_password_is_held_to_the_same_rule(db: Session) -> None:
    user = create_user(db)
    with pytest.raises(Invalid, match="harder password"):
        service.set_password(db, user.id, "password")
    service.set_password(db, user.id, "violet tram ladder")
