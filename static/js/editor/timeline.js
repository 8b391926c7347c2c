// The timeline under the stage: shots, held runs, keyframes, flagged frames, speech, playhead.
export class Timeline {
  constructor(canvas, { count, fps, onSeek }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.count = count;
    this.fps = fps;
    this.data = { shots: [], held: [], keyframes: [], flagged: [], speech: [] };
    this.current = 0;
    canvas.addEventListener("pointerdown", (e) => {
      const r = canvas.getBoundingClientRect();
      onSeek(Math.floor(((e.clientX - r.left) / r.width) * this.count));
    });
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  update(data) { Object.assign(this.data, data); this.draw(); }

  seek(n) { this.current = n; this.draw(); }

  x(frame) { return (frame / this.count) * this.canvas.width; }

  draw() {
    const { ctx, canvas, data } = this;
    canvas.width = Math.max(200, canvas.parentElement.getBoundingClientRect().width);
    canvas.height = 64;
    ctx.fillStyle = "#1d232b";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    data.shots.forEach((s, i) => {
      ctx.fillStyle = i % 2 ? "#4a6fa5" : "#6b8fc7";
      ctx.fillRect(this.x(s.start), 4, this.x(s.end) - this.x(s.start) - 1, 14);
    });
    ctx.fillStyle = "#9aa3ad";
    for (const [start, end] of data.held) ctx.fillRect(this.x(start), 22, Math.max(1, this.x(end) - this.x(start) - 1), 8);
    ctx.fillStyle = "#f1c40f";
    for (const k of data.keyframes) ctx.fillRect(this.x(k) - 1, 33, 3, 9);
    ctx.fillStyle = "#e74c3c";
    for (const f of data.flagged) ctx.fillRect(this.x(f), 44, Math.max(1, this.x(f + 1) - this.x(f)), 6);
    ctx.fillStyle = "#2ecc71";
    for (const s of data.speech) ctx.fillRect(this.x(s.start * this.fps), 53, Math.max(1, this.x((s.end - s.start) * this.fps)), 7);
    ctx.fillStyle = "#fff";
    ctx.fillRect(this.x(this.current), 0, Math.max(2, this.x(1)), canvas.height);
  }
}
