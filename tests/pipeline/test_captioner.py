"""Draft captioners: the builtin one, and the OpenAI-compatible one against a fake endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from app.pipeline.captioner import (
    BuiltinCaptioner,
    CharacterFacts,
    ClipFacts,
    OpenAICompatibleCaptioner,
    ShotFacts,
    framing_from_box,
    make_captioner,
)

FACTS = ClipFacts(
    width=640,
    height=360,
    fps=24,
    frame_count=96,
    shots=[
        ShotFacts(0, 48, camera="pan_left", colours=["sky blue", "grass green"]),
        ShotFacts(48, 96, camera="zoom_in", colours=["navy", "beige"]),
    ],
    timing="twos",
    colours=["sky blue", "grass green", "navy"],
    motion=0.6,
    characters=[
        CharacterFacts(
            "humanoid",
            True,
            (100, 90, 80, 160),
            framing="medium shot",
            motion="moves quickly",
            colours=["yellow"],
            shots=[0],
        ),
        CharacterFacts("animal", False, framing="long shot", shots=[1]),
    ],
)
FRAMES = [np.full((90, 160, 3), (i * 20) % 255, np.uint8) for i in range(8)]


def test_builtin_caption_states_measured_facts():
    draft = BuiltinCaptioner().caption(FACTS, FRAMES)
    assert draft.source == "builtin" and draft.fallback_reason is None
    assert "4.0 s" in draft.short and "two shots" in draft.short and "twos" in draft.short
    for fact in (
        "24 fps",
        "640x360",
        "sky blue",
        "grass green",
        "navy",
        "humanoid",
        "animal",
        "medium shot",
        "moves quickly",
        "not located by a model",
    ):
        assert fact in draft.detailed, fact
    assert len(draft.shots) == 2
    assert "pans left" in draft.shots[0].narrative and "humanoid" in draft.shots[0].narrative
    assert "animal" not in draft.shots[0].descriptive  # it appears in shot 2 only
    assert "quickly" not in draft.shots[0].descriptive  # how it looks, not what it does
    assert "zooms in" in draft.shots[1].narrative and "navy" in draft.shots[1].descriptive
    assert draft.characters == [
        "A humanoid character, mostly yellow, seen in a medium shot.",
        "An animal character, seen in a long shot.",
    ]


def test_builtin_caption_invents_nothing_when_little_was_measured():
    bare = ClipFacts(width=320, height=240, fps=12, frame_count=30)
    draft = BuiltinCaptioner().caption(bare, [])
    shots = [f"{s.narrative} {s.descriptive}" for s in draft.shots]
    text = " ".join([draft.short, draft.detailed, *shots])
    assert "no characters found" in draft.short
    assert "No characters were found." in draft.detailed
    assert "one shot" in draft.short and "2.5 s" in draft.short
    for absent in ("drawn on", "colours", "dominated", "pans", "zooms", "humanoid", "motion."):
        assert absent not in text, absent
    assert draft.characters == []


def test_framing_from_box():
    assert framing_from_box((0, 0, 50, 300), 360) == "close-up"
    assert framing_from_box((0, 0, 50, 150), 360) == "medium shot"
    assert framing_from_box((0, 0, 50, 40), 360) == "long shot"


# --- The fake of the outside captioning service -------------------------------------------


@dataclass
class FakeCaptionService:
    """A stand-in for an external OpenAI-compatible vision endpoint, on 127.0.0.1."""

    answers: list[tuple[int, str, float]] = field(default_factory=list)  # status, body, delay
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer_json(self, payload: Any, status: int = 200, delay: float = 0.0) -> None:
        body = {"choices": [{"message": {"role": "assistant", "content": payload}}]}
        self.answers.append((status, json.dumps(body), delay))


@pytest.fixture
def service() -> Iterator[FakeCaptionService]:
    fake = FakeCaptionService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            status, text, delay = fake.answers.pop(0) if fake.answers else (500, "empty", 0)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(text.encode())
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


GOOD: dict[str, Any] = {
    "short": "A boy runs across a meadow, then a fox watches at night.",
    "detailed": "The camera follows a boy running left to right...",
    "shots": [
        {"narrative": "A boy runs.", "descriptive": "Bright meadow under a blue sky."},
        {"narrative": "The camera moves closer to a fox.", "descriptive": "Night scene."},
    ],
    "characters": ["A boy in a yellow shirt.", "A small red fox."],
}


def captioner(url: str, **kw: Any) -> OpenAICompatibleCaptioner:
    options = {"timeout_s": 2.0, "retries": 1, "backoff_s": 0.01, **kw}
    return OpenAICompatibleCaptioner(url, "fake-vision-1", "sk-test", **options)


def test_endpoint_captions_are_used_and_request_is_well_formed(service):
    service.answer_json("Here you go:\n```json\n" + json.dumps(GOOD) + "\n```")
    draft = captioner(service.url).caption(FACTS, FRAMES)
    assert draft.source == "fake-vision-1" and draft.fallback_reason is None
    assert draft.short == GOOD["short"]
    assert [s.narrative for s in draft.shots] == [s["narrative"] for s in GOOD["shots"]]
    assert draft.characters == GOOD["characters"]

    (request,) = service.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["json"]["model"] == "fake-vision-1"
    content = request["json"]["messages"][0]["content"]
    images = [c["image_url"]["url"] for c in content if c["type"] == "image_url"]
    assert len(images) == 4 and all(u.startswith("data:image/jpeg;base64,") for u in images)
    prompt = next(c["text"] for c in content if c["type"] == "text")
    assert "pan_left" in prompt and "twos" in prompt and "humanoid" in prompt


def test_server_error_is_retried(service):
    service.answers.append((500, "boom", 0.0))
    service.answer_json(json.dumps(GOOD))
    draft = captioner(service.url + "/v1/").caption(FACTS, FRAMES)
    assert draft.fallback_reason is None and draft.short == GOOD["short"]
    assert len(service.requests) == 2


def test_persistent_server_error_falls_back_with_reason(service):
    service.answers += [(503, "down", 0.0), (503, "down", 0.0)]
    draft = captioner(service.url).caption(FACTS, FRAMES)
    assert draft.source == "builtin"
    assert "HTTP 503" in str(draft.fallback_reason) and "2 attempt" in str(draft.fallback_reason)
    assert draft.short == BuiltinCaptioner().caption(FACTS, FRAMES).short


def test_client_error_is_not_retried(service):
    service.answers.append((401, '{"error": "bad key"}', 0.0))
    draft = captioner(service.url, retries=3).caption(FACTS, FRAMES)
    assert "HTTP 401" in str(draft.fallback_reason) and len(service.requests) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("I cannot help with that.", "not a JSON object"),
        ("{not json at all}", "not valid JSON"),
        (json.dumps({**GOOD, "short": ""}), "missing a field"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "detailed"}), "missing a field"),
        (json.dumps({**GOOD, "shots": GOOD["shots"][:1]}), "expected 2 / 2"),
    ],
)
def test_garbage_answer_falls_back_to_builtin(service, content: str, reason: str):
    service.answer_json(content)
    draft = captioner(service.url).caption(FACTS, FRAMES)
    assert draft.source == "builtin" and reason in str(draft.fallback_reason)
    assert "two shots" in draft.short


def test_non_chat_response_falls_back(service):
    service.answers.append((200, "<html>proxy login</html>", 0.0))
    draft = captioner(service.url).caption(FACTS, FRAMES)
    assert draft.source == "builtin" and "unexpected response shape" in str(draft.fallback_reason)


def test_slow_endpoint_times_out_and_falls_back(service):
    service.answer_json(json.dumps(GOOD), delay=1.0)
    service.answer_json(json.dumps(GOOD), delay=1.0)
    started = time.monotonic()
    draft = captioner(service.url, timeout_s=0.2, retries=1).caption(FACTS, FRAMES)
    assert time.monotonic() - started < 1.5
    assert draft.source == "builtin" and "timeout" in str(draft.fallback_reason)
    assert len(service.requests) == 2


def test_make_captioner_picks_by_configuration():
    assert isinstance(make_captioner("", ""), BuiltinCaptioner)
    assert isinstance(make_captioner(None, None), BuiltinCaptioner)
    made = make_captioner("http://captions.example", "m", "k", timeout_s=5, retries=0)
    assert isinstance(made, OpenAICompatibleCaptioner)
    assert made.url == "http://captions.example/v1/chat/completions" and made.retries == 0
    with pytest.raises(ValueError):
        make_captioner("http://captions.example", "")
