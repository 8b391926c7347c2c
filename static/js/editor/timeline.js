// The timeline under the stage, one row per kind of mark: shots, held runs, frames a person
// edited, keyframes, frames with unsaved edits, flagged frames, speech; and the playhead.
// Hovering it names what is marked at that frame. Unsaved frames come from the save queue's
// `cellabel:unsaved` event ({trackId, frames}) on the document.
import { HoverTip } from "./hovertip.js";

// Each row: [top, height] in canvas pixels (also published on the canvas as data-rows).
export const ROWS = {
  shots: [3, 12], held: [18, 6], edited: [27, 6], keyframes: [36, 8], unsaved: [47, 6],
  flagged: [56, 6], speech: [65, 6],
};
const HEIGHT = 74;
const COLOURS = {
  shots: ["#6b8fc7", "#4a6fa5"], held: "#9aa3ad", edited: "#3fc1ff", keyframes: "#f1c40f",
  unsaved: "#ff8c1a", flagged: "#e74c3c", speech: "#2ecc71",
};

export class Timeline {
  constructor(canvas, { count, fps, onSeek }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.count = count;
    this.fps = fps;
    this.data = { shots: [], held: [], edited: [], keyframes: [], unsaved: [], flagged: [], speech: [] };
    this.current = 0;
    canvas.dataset.rows = JSON.stringify(ROWS);
    canvas.addEventListener("pointerdown", (e) => onSeek(this.frameAt(e)));
    this.tip = new HoverTip(canvas.parentElement);
    canvas.addEventListener("pointermove", (e) => this.tip.show(this.describe(this.frameAt(e)), e));
    canvas.addEventListener("pointerleave", () => this.tip.hide());
    document.addEventListener("cellabel:unsaved", (e) => this.update({ unsaved: e.detail.frames }));
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  update(data) { Object.assign(this.data, data); this.draw(); }

  seek(n) { this.current = n; this.draw(); }

  x(frame) { return (frame / this.count) * this.canvas.width; }

  frameAt(e) {
    const r = this.canvas.getBoundingClientRect();
    return Math.min(this.count - 1, Math.max(0, Math.floor(((e.clientX - r.left) / r.width) * this.count)));
  }

  // What the marks say about frame n, in words.
  describe(n) {
    const { data } = this;
    const inRun = ([start, end]) => start <= n && n < end;
    const bits = [`frame ${n}`];
    const shot = data.shots.findIndex((s) => s.start <= n && n < s.end);
    if (shot >= 0) bits.push(`shot ${shot + 1}`);
    const held = data.held.find(inRun);
    if (held) bits.push(`held drawing ${held[0]}-${held[1] - 1}`);
    if (data.edited.includes(n)) bits.push("edited by a person");
    if (data.keyframes.includes(n)) bits.push("keyframe");
    if (data.unsaved.includes(n)) bits.push("unsaved edits");
    if (data.flagged.includes(n)) bits.push("flagged");
    if (data.speech.some((s) => s.start * this.fps <= n && n < s.end * this.fps)) bits.push("speech");
    return bits.join(" · ");
  }

  draw() {
    const { ctx, canvas, data } = this;
    canvas.width = Math.max(200, canvas.parentElement.getBoundingClientRect().width);
    canvas.height = HEIGHT;
    ctx.fillStyle = "#1d232b";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const span = (row, colour, start, end) => {
      ctx.fillStyle = colour;
      ctx.fillRect(this.x(start), ROWS[row][0], Math.max(1, this.x(end) - this.x(start) - 1), ROWS[row][1]);
    };
    data.shots.forEach((s, i) => span("shots", COLOURS.shots[i % 2], s.start, s.end));
    for (const [start, end] of data.held) span("held", COLOURS.held, start, end);
    for (const f of data.edited) span("edited", COLOURS.edited, f, f + 1);
    ctx.fillStyle = COLOURS.keyframes;
    for (const k of data.keyframes) {
      const [top, h] = ROWS.keyframes, cx = this.x(k + 0.5);
      ctx.beginPath(); // a diamond, centred on the frame
      ctx.moveTo(cx, top); ctx.lineTo(cx + h / 2, top + h / 2); ctx.lineTo(cx, top + h); ctx.lineTo(cx - h / 2, top + h / 2);
      ctx.fill();
    }
    for (const f of data.unsaved) span("unsaved", COLOURS.unsaved, f, f + 1);
    for (const f of data.flagged) span("flagged", COLOURS.flagged, f, f + 1);
    for (const s of data.speech) span("speech", COLOURS.speech, s.start * this.fps, s.end * this.fps);
    ctx.strokeStyle = "#fff"; // the playhead: an outline, so the marks under it stay readable
    ctx.lineWidth = 2;
    ctx.strokeRect(this.x(this.current) + 1, 1, Math.max(2, this.x(1) - 2), canvas.height - 2);
  }
}
