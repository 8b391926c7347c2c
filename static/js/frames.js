// Frame images from the server's frame cache, with a bounded cache and look-ahead prefetch so
// stepping never waits at a chunk boundary.
export class FrameSource {
  constructor(clipId, count, { prefetch = 24, keep = 400 } = {}) {
    this.clipId = clipId;
    this.count = count;
    this.prefetchAhead = prefetch;
    this.keep = keep;
    this.cache = new Map();
  }

  url(n) {
    return `/media/clips/${this.clipId}/frames/${n}.jpg`;
  }

  load(n) {
    if (!this.cache.has(n)) {
      const img = new Image();
      img.decoding = "async";
      const ready = new Promise((resolve, reject) => {
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error(`frame ${n} could not be loaded`));
      });
      img.src = this.url(n);
      this.cache.set(n, ready);
      if (this.cache.size > this.keep) this.cache.delete(this.cache.keys().next().value);
    }
    return this.cache.get(n);
  }

  prefetch(from, direction = 1) {
    for (let i = 1; i <= this.prefetchAhead; i++) {
      const n = from + i * direction;
      if (n >= 0 && n < this.count) this.load(n).catch(() => {});
    }
  }
}

export function clampFrame(n, count) {
  return Math.min(Math.max(Math.round(n), 0), count - 1);
}
