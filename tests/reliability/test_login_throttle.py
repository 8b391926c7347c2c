"""Password guessing against a live server: guesses sent in parallel are counted like guesses
sent one by one, so no more than the limit are ever checked."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import delete

from app.auth.models import LoginThrottle, Role
from app.core.config import get_settings
from app.core.db import session_scope
from tests.factories import PASSWORD, create_user

GUESSERS = 25
GUESSES_EACH = 2


def _guess(base: str, username: str, password: str) -> int:
    with httpx.Client(base_url=base, timeout=60) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token
        form = {"username": username, "password": password, "csrf_token": token.group(1)}
        return client.post("/login", data=form).status_code


def test_parallel_wrong_passwords_check_no_more_than_the_limit(live_api: str) -> None:
    name = f"guessed-{uuid.uuid4().hex[:8]}"
    with session_scope() as s:
        create_user(s, Role.admin, username=name)
    try:
        with ThreadPoolExecutor(GUESSERS) as pool:
            answers = list(
                pool.map(
                    lambda i: _guess(live_api, name, f"wrong-{i}"),
                    range(GUESSERS * GUESSES_EACH),
                )
            )
        checked = answers.count(401)
        assert checked == get_settings().login_max_failures, answers
        assert answers.count(429) == len(answers) - checked
        # Locked now: even the right password is refused until the window ends.
        assert _guess(live_api, name, PASSWORD) == 429
    finally:
        with session_scope() as s:
            s.execute(delete(LoginThrottle))
