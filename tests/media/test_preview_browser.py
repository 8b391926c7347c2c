"""Debian's Chromium plays the preview and shows exactly frame n at (n + 0.5) / fps."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from app.media.preview import PreviewCodec, make_preview
from tests.media.conftest import FPS, FRAMES

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PAGE = b"<!doctype html><video id=v muted preload=auto></video><canvas id=c></canvas>"
# Seek to each frame's middle, draw it, and read the 8 index bits back from the pixels.
PROBE_JS = """async ([src, mime, fps, frames, blocks]) => {
  const v = document.getElementById('v');
  const can = v.canPlayType(mime);
  v.src = src;
  await new Promise((ok, bad) => { v.onloadeddata = ok; v.onerror = () => bad(v.error.message); });
  const c = document.getElementById('c');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d', {willReadFrequently: true});
  const shown = [];
  for (const n of frames) {
    const presented = new Promise(ok => v.requestVideoFrameCallback((now, meta) => ok(meta)));
    v.currentTime = (n + 0.5) / fps;
    await new Promise(ok => { v.onseeked = ok; });
    await presented;  // 'seeked' can fire before the new frame is decoded
    ctx.drawImage(v, 0, 0);
    let value = 0;
    for (let bit = 0; bit < 8; bit++) {
      const px = ctx.getImageData(bit * blocks + blocks / 2, blocks / 2, 1, 1).data;
      if (px[0] > 127) value |= 1 << bit;
    }
    shown.push(value);
  }
  return {can, width: v.videoWidth, height: v.videoHeight, duration: v.duration, shown};
}"""


def _handler(root: Path) -> type[BaseHTTPRequestHandler]:
    class RangeHandler(BaseHTTPRequestHandler):
        """Serves files with HTTP Range support, which <video> needs to seek."""

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match:
                start = int(match[1])
                end = int(match[2]) if match[2] else len(data) - 1
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                data = data[start : end + 1]
            else:
                self.send_response(200)
            types = {".html": "text/html", ".mp4": "video/mp4", ".webm": "video/webm"}
            self.send_header("Content-Type", types.get(path.suffix, "application/octet-stream"))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return RangeHandler


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    (tmp_path / "page.html").write_bytes(PAGE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(tmp_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("codec", "suffix"), [("h264", "mp4"), ("vp9", "webm")])
def test_chromium_plays_the_preview_frame_exactly(
    clips: dict[str, Path],
    served: tuple[Path, str],
    codec: PreviewCodec,
    suffix: str,
    browser: Browser,
) -> None:
    root, base = served
    info = make_preview(clips["h264_audio"], root / f"preview.{suffix}", codec=codec)
    frames = [0, 1, 7, 8, 20, 33, FRAMES - 1]
    page = browser.new_page()
    try:
        page.goto(base + "page.html")
        result = page.evaluate(PROBE_JS, [info.path.name, info.mime, FPS, frames, 8])
    finally:
        page.close()
    assert result["can"] == "probably"
    assert (result["width"], result["height"]) == (info.width, info.height)
    assert result["duration"] == pytest.approx(FRAMES / FPS, abs=0.05)
    assert result["shown"] == frames
