"""Writing a sample clip's mp4: H.264 (+ AAC) with deterministic settings, so one seed makes
the same bytes, and exact frame timestamps."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from app.samples.audio import SAMPLE_RATE


class ClipWriter:
    """H.264 (+ AAC) mp4 writer with deterministic settings and exact frame timestamps."""

    def __init__(self, path: Path, width: int, height: int, fps: int, audio: bool) -> None:
        self.container = av.open(str(path), "w")
        self.fps = fps
        v = self.container.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.codec_context.thread_count = 1
        v.codec_context.gop_size = 2 * fps
        v.codec_context.options = {
            "preset": "veryfast",
            "crf": "20",
            "x264-params": f"threads=1:bframes=0:keyint={2 * fps}",
        }
        self.video = v
        self.audio = None
        if audio:
            a = self.container.add_stream("aac", rate=SAMPLE_RATE)
            a.layout = "mono"
            self.audio = a
        self.n = 0

    def frame(self, img: npt.NDArray[np.uint8]) -> None:
        f = av.VideoFrame.from_ndarray(img, format="bgr24")
        f.pts, f.time_base = self.n, Fraction(1, self.fps)
        self.n += 1
        self.container.mux(self.video.encode(f))

    def close(self, samples: npt.NDArray[np.float32] | None) -> None:
        self.container.mux(self.video.encode(None))
        if self.audio is not None and samples is not None:
            for k in range(0, len(samples), 1024):
                chunk = samples[k : k + 1024]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, k, Fraction(1, SAMPLE_RATE)
                self.container.mux(self.audio.encode(af))
            self.container.mux(self.audio.encode(None))
        self.container.close()
