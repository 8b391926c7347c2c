"""Pluggable draft captioners for clips, shots and characters.

`BuiltinCaptioner` turns the pipeline's measurements into plain sentences and says nothing it
did not measure. `OpenAICompatibleCaptioner` sends a few frames and the same facts to an
OpenAI-compatible vision endpoint (``POST {base_url}/v1/chat/completions``) and asks for a
JSON object; on any failure it returns the builtin draft with ``fallback_reason`` set, so the
pipeline always gets a caption and the UI can say why it is the plain one.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import cv2
import httpx
import numpy as np

from app.media.decode import Image
from app.pipeline.held import resize_long_side

NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CAMERA_PHRASES = {
    "static": "the camera holds still",
    "pan_left": "the camera pans left",
    "pan_right": "the camera pans right",
    "pan_up": "the camera pans up",
    "pan_down": "the camera pans down",
    "zoom_in": "the camera zooms in",
    "zoom_out": "the camera zooms out",
}
# Clip motion score (percent of the frame's long side per frame) -> words.
MOTION_WORDS = ((0.05, "almost no motion"), (0.3, "gentle motion"), (1.0, "moderate motion"))
FRAME_LONG_SIDE = 512


@dataclass(frozen=True)
class ShotFacts:
    start: int
    end: int  # exclusive
    camera: str | None = None
    colours: Sequence[str] = ()


@dataclass(frozen=True)
class CharacterFacts:
    kind: str  # humanoid | animal | creature | object
    detected: bool  # located by a model (False: added without a detection)
    box: tuple[float, float, float, float] | None = None  # x, y, w, h in pixels
    framing: str | None = None  # close-up | medium shot | long shot
    motion: str | None = None  # e.g. "still", "moves slowly", "moves quickly"
    colours: Sequence[str] = ()
    shots: Sequence[int] = ()  # shot indices it appears in; empty = every shot


@dataclass(frozen=True)
class ClipFacts:
    """What the pipeline measured about a clip: the only things a builtin caption may say."""

    width: int
    height: int
    fps: float
    frame_count: int
    shots: Sequence[ShotFacts] = ()
    timing: str | None = None  # ones | twos | threes
    colours: Sequence[str] = ()
    motion: float | None = None
    characters: Sequence[CharacterFacts] = ()

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass
class ShotCaption:
    narrative: str  # what happens
    descriptive: str  # what it looks like


@dataclass
class CaptionDraft:
    short: str
    detailed: str
    shots: list[ShotCaption] = field(default_factory=list)
    characters: list[str] = field(default_factory=list)  # appearance, one per character
    source: str = "builtin"
    fallback_reason: str | None = None


class Captioner(Protocol):
    def caption(self, facts: ClipFacts, frames: Sequence[Image]) -> CaptionDraft: ...


def framing_from_box(box: tuple[float, float, float, float], frame_height: int) -> str:
    """Shot framing from how much of the frame height a character's box fills."""
    share = box[3] / frame_height if frame_height else 0.0
    if share >= 0.6:
        return "close-up"
    return "medium shot" if share >= 0.3 else "long shot"


def _count(n: int, noun: str) -> str:
    word = NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)
    return f"{word} {noun}{'' if n == 1 else 's'}"


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _join(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _character_phrase(c: CharacterFacts, *, motion: bool = True) -> str:
    parts = [_a(f"{c.kind} character")]
    if c.framing:
        parts.append(f"in a {c.framing}")
    if motion and c.motion:
        parts.append(f"that {c.motion}" if c.motion.startswith("moves") else f"({c.motion})")
    if not c.detected:
        parts.append("(not located by a model)")
    return " ".join(parts)


def _characters_sentence(chars: Sequence[CharacterFacts]) -> str:
    if not chars:
        return "No characters were found."
    return f"Characters found: {_join([_character_phrase(c) for c in chars])}."


class BuiltinCaptioner:
    """Describes the measured facts only; never looks at the frames."""

    name = "builtin"

    def caption(self, facts: ClipFacts, frames: Sequence[Image]) -> CaptionDraft:
        shots = list(facts.shots) or [ShotFacts(0, facts.frame_count)]
        timing = f", drawn on {facts.timing}" if facts.timing else ""
        head = f"A {facts.duration_s:.1f} s clip in {_count(len(shots), 'shot')}{timing}"
        who = (
            f"with {_join([_count(1, c.kind) for c in facts.characters[:3]])}"
            if facts.characters
            else "with no characters found"
        )
        short = f"{head}, {who}."
        sentences = [
            f"A {facts.duration_s:.1f} s clip at {facts.fps:g} fps ({facts.width}x{facts.height})"
            f" in {_count(len(shots), 'shot')}{timing}."
        ]
        if facts.motion is not None:
            sentences.append(f"It has {self._motion_words(facts.motion)}.")
        if facts.colours:
            sentences.append(f"Dominant colours: {_join(facts.colours)}.")
        sentences.append(_characters_sentence(facts.characters))
        shot_captions = [self._shot(facts, i, s) for i, s in enumerate(shots)]
        for i, (s, cap) in enumerate(zip(shots, shot_captions, strict=True)):
            sentences.append(
                f"Shot {i + 1} (frames {s.start}-{s.end - 1}): {cap.narrative} {cap.descriptive}"
            )
        return CaptionDraft(
            short=short,
            detailed=" ".join(sentences),
            shots=shot_captions,
            characters=[self._appearance(c) for c in facts.characters],
            source=self.name,
        )

    @staticmethod
    def _motion_words(score: float) -> str:
        return next((w for limit, w in MOTION_WORDS if score < limit), "fast motion")

    @staticmethod
    def _shot(facts: ClipFacts, index: int, shot: ShotFacts) -> ShotCaption:
        chars = [c for c in facts.characters if not c.shots or index in c.shots]
        action = CAMERA_PHRASES.get(shot.camera or "", "the camera motion was not measured")
        movers = [_character_phrase(c) for c in chars if c.motion]
        narrative = f"{action[0].upper()}{action[1:]}"
        narrative += f"; {_join(movers)}." if movers else "."
        look = f"A scene dominated by {_join(shot.colours)}" if shot.colours else "A scene"
        seen = (
            _join([_character_phrase(c, motion=False) for c in chars])
            if chars
            else "no characters found"
        )
        return ShotCaption(narrative=narrative, descriptive=f"{look}, with {seen}.")

    @staticmethod
    def _appearance(c: CharacterFacts) -> str:
        text = _a(f"{c.kind} character").capitalize()
        if c.colours:
            text += f", mostly {_join(c.colours)}"
        if c.framing:
            text += f", seen in a {c.framing}"
        return text + "."


def _data_url(rgb: Image) -> str:
    bgr = cv2.cvtColor(resize_long_side(rgb, FRAME_LONG_SIDE), cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")


def _sample(frames: Sequence[Image], count: int) -> list[Image]:
    if len(frames) <= count:
        return list(frames)
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [frames[i] for i in picks]


class CaptionError(Exception):
    """Why the endpoint's answer could not be used (becomes ``fallback_reason``)."""


class OpenAICompatibleCaptioner:
    """Captions through an OpenAI-compatible chat-completions vision endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 2,
        *,
        max_frames: int = 4,
        backoff_s: float = 1.0,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = (base[: -len("/v1")] if base.endswith("/v1") else base) + "/v1/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_frames = max_frames
        self.backoff_s = backoff_s
        self.builtin = BuiltinCaptioner()

    def caption(self, facts: ClipFacts, frames: Sequence[Image]) -> CaptionDraft:
        try:
            answer = self._post(self._request(facts, frames))
            return self._parse(answer, facts)
        except CaptionError as exc:
            draft = self.builtin.caption(facts, frames)
            draft.fallback_reason = str(exc)
            return draft

    def _request(self, facts: ClipFacts, frames: Sequence[Image]) -> dict[str, Any]:
        schema = {
            "short": "one sentence storyline",
            "detailed": "a paragraph: story, setting, characters, camera",
            "shots": [{"narrative": "what happens", "descriptive": "what it looks like"}]
            * len(facts.shots or [None]),
            "characters": ["appearance of each listed character, same order"]
            * len(facts.characters),
        }
        prompt = (
            "You write dataset captions for a cartoon animation clip. The frames are samples in "
            "time order. Measured facts (trust them; do not contradict them):\n"
            f"{json.dumps(asdict(facts))}\n"
            f"There are {len(facts.shots or [None])} shots and {len(facts.characters)} "
            "characters. Answer with ONLY a JSON object of this shape, with exactly that many "
            f"shot and character entries:\n{json.dumps(schema)}"
        )
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        content += [
            {"type": "image_url", "image_url": {"url": _data_url(f)}}
            for f in _sample(frames, self.max_frames)
        ]
        return {
            "model": self.model,
            "temperature": 0.2,
            "messages": [{"role": "user", "content": content}],
        }

    def _post(self, body: dict[str, Any]) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        attempts = self.retries + 1
        reason = "no attempt made"
        with httpx.Client(timeout=self.timeout_s) as client:
            for attempt in range(attempts):
                if attempt:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                try:
                    response = client.post(self.url, json=body, headers=headers)
                except httpx.TimeoutException:
                    reason = f"timeout after {self.timeout_s:g} s"
                    continue
                except httpx.HTTPError as exc:
                    reason = f"request failed: {exc.__class__.__name__}: {exc}"
                    continue
                if response.status_code == 200:
                    try:
                        return str(response.json()["choices"][0]["message"]["content"])
                    except (ValueError, KeyError, IndexError, TypeError) as exc:
                        raise CaptionError(f"unexpected response shape: {exc!r}") from exc
                reason = f"HTTP {response.status_code}"
                # Client errors (bad key, unknown model) will not fix themselves.
                if response.status_code < 500 and response.status_code != 429:
                    break
        raise CaptionError(f"{reason} ({attempts} attempt(s) to {self.url})")

    def _parse(self, content: str, facts: ClipFacts) -> CaptionDraft:
        text = content.strip()
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end < start:
            raise CaptionError("answer is not a JSON object")
        try:
            data = json.loads(text[start : end + 1])
        except json.JSONDecodeError as exc:
            raise CaptionError(f"answer is not valid JSON: {exc}") from exc
        shots_n = len(facts.shots or [None])
        try:
            short, detailed = _text(data["short"]), _text(data["detailed"])
            shots = [
                ShotCaption(_text(s["narrative"]), _text(s["descriptive"])) for s in data["shots"]
            ]
            characters = [_text(c) for c in data.get("characters", [])]
        except (KeyError, TypeError) as exc:
            raise CaptionError(f"answer is missing a field: {exc!r}") from exc
        if len(shots) != shots_n or len(characters) != len(facts.characters):
            raise CaptionError(
                f"answer has {len(shots)} shots / {len(characters)} characters, "
                f"expected {shots_n} / {len(facts.characters)}"
            )
        return CaptionDraft(short, detailed, shots, characters, source=self.model)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"expected non-empty text, got {value!r}")
    return value.strip()


def make_captioner(
    url: str | None,
    model: str | None,
    key: str | None = None,
    timeout_s: float = 60.0,
    retries: int = 2,
) -> Captioner:
    """The endpoint captioner when a URL is configured, else the builtin one."""
    if not url:
        return BuiltinCaptioner()
    if not model:
        raise ValueError("a caption model name is required when a caption API URL is set")
    return OpenAICompatibleCaptioner(url, model, key, timeout_s, retries)
