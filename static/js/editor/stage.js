// The editing stage: one canvas showing the frame and the skeleton, with zoom, pan, point
// dragging and box selection. Image coordinates are the clip's pixels. Panels that add to
// the picture (review's pins and model draft) put a draw function in `overlays`. The shown
// character's box ([x, y, w, h], drawn by a person) has corner handles that drag to adjust
// it; with `drawingBox` on, a drag on the frame draws it; `onBox(box)` hears each change.
import { HoverTip } from "./hovertip.js";
import { V_HIDDEN, V_NONE, V_VISIBLE, isSuggestion } from "./model.js";

const HIT_RADIUS = 7; // screen px
const HANDLE = 5; // screen px: half the side of a box's corner handle

export class Stage {
  constructor(canvas, { width, height, onChange, onBox }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.width = width;
    this.height = height;
    this.onChange = onChange;
    this.onBox = onBox;
    this.box = null; // the shown character's box [x, y, w, h], or null
    this.boxSelected = false; // Delete clears a selected box
    this.drawingBox = false; // the Box tool: a drag on the frame draws the box
    this.image = null;
    this.points = null;
    this.skeleton = null;
    this.human = null;
    this.tracked = null;
    this.hiddenParts = new Set();
    this.selected = new Set();
    this.scale = 1;
    this.ox = 0;
    this.oy = 0;
    this.drag = null;
    this.editable = true; // false: points can be selected (to pin a comment) but not moved
    this.lastBox = null; // {x, y, w, h} of the last box dragged on the frame (a review pin)
    this.confidenceView = true;
    this.skeletonShown = true; // false: the frame without the skeleton (a reviewer's choice)
    this.overlays = []; // functions drawing over the frame, in image coordinates: (ctx, stage)
    this.resize();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    canvas.addEventListener("pointerdown", (e) => this.pointerDown(e));
    canvas.addEventListener("pointermove", (e) => this.pointerMove(e));
    canvas.addEventListener("pointerup", (e) => this.pointerUp(e));
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    this.tip = new HoverTip(canvas.parentElement);
    canvas.addEventListener("pointerleave", () => this.tip.hide());
  }

  // The canvas takes its wrap's size (set by the page layout); fit() letterboxes the frame in it.
  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    this.canvas.width = Math.max(200, Math.floor(box.width));
    this.canvas.height = Math.max(150, Math.floor(box.height));
    this.fit();
  }

  fit() {
    this.scale = Math.min(this.canvas.width / this.width, this.canvas.height / this.height);
    this.ox = (this.canvas.width - this.width * this.scale) / 2;
    this.oy = (this.canvas.height - this.height * this.scale) / 2;
    this.draw();
  }

  toImage(e) {
    const r = this.canvas.getBoundingClientRect();
    const sx = ((e.clientX - r.left) * this.canvas.width) / r.width;
    const sy = ((e.clientY - r.top) * this.canvas.height) / r.height;
    return [(sx - this.ox) / this.scale, (sy - this.oy) / this.scale];
  }

  visibleIndex(i) {
    if (!this.skeleton) return true;
    for (const [part, idx] of Object.entries(this.skeleton.parts)) if (idx.includes(i)) return !this.hiddenParts.has(part);
    return true;
  }

  partColour(i) {
    for (const [part, idx] of Object.entries(this.skeleton.parts)) if (idx.includes(i)) return this.skeleton.part_colors[part] || "#39f";
    return "#39f";
  }

  // A model suggestion (stored unlabelled, v=0, with the model's place and confidence) that
  // lies on the frame: drawn faded, and a person may select it to accept or drag it.
  shownSuggestion(i) {
    const p = this.points[i];
    return isSuggestion(p, this.human?.[i]) && p[0] >= 0 && p[0] <= this.width && p[1] >= 0 && p[1] <= this.height;
  }

  hit(x, y) {
    if (!this.points) return -1;
    let best = -1, bestD = HIT_RADIUS / this.scale;
    this.points.forEach((p, i) => {
      if ((p[2] === V_NONE && !this.shownSuggestion(i)) || !this.visibleIndex(i)) return;
      const d = Math.hypot(p[0] - x, p[1] - y);
      if (d <= bestD) { best = i; bestD = d; }
    });
    return best;
  }

  pointerDown(e) {
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur(); // keys go to the editor
    const [x, y] = this.toImage(e);
    this.canvas.setPointerCapture(e.pointerId);
    if (e.button === 1 || e.altKey) { this.drag = { kind: "pan", sx: e.clientX, sy: e.clientY, ox: this.ox, oy: this.oy }; return; }
    const corner = this.editable ? this.cornerAt(x, y) : -1;
    if (corner >= 0 || (this.editable && this.drawingBox)) {
      const [bx, by, bw, bh] = this.box ?? [x, y, 0, 0];
      // The corner that stays put while the dragged one follows the pointer.
      const fixed = corner >= 0 ? [corner % 2 ? bx : bx + bw, corner < 2 ? by + bh : by] : [x, y];
      this.drag = { kind: "boxEdit", fixed, x2: x, y2: y, moved: false };
      this.boxSelected = true;
      this.draw();
      return;
    }
    this.boxSelected = this.onBoxEdge(x, y);
    const i = this.hit(x, y);
    if (i >= 0) {
      if (e.shiftKey) { this.selected.has(i) ? this.selected.delete(i) : this.selected.add(i); }
      else if (!this.selected.has(i)) { this.selected = new Set([i]); }
      if (this.editable) this.drag = { kind: "move", x, y, start: this.points.map((p) => p.slice()), moved: false };
    } else {
      this.drag = { kind: "box", x, y, x2: x, y2: y, add: e.shiftKey };
    }
    this.draw();
  }

  pointerMove(e) {
    if (!this.drag) { this.hover(e); return; }
    this.tip.hide();
    if (this.drag.kind === "pan") {
      const r = this.canvas.getBoundingClientRect();
      const k = this.canvas.width / r.width;
      this.ox = this.drag.ox + (e.clientX - this.drag.sx) * k;
      this.oy = this.drag.oy + (e.clientY - this.drag.sy) * k;
    } else if (this.drag.kind === "move") {
      const [x, y] = this.toImage(e);
      const dx = x - this.drag.x, dy = y - this.drag.y;
      for (const i of this.selected) {
        const p = this.points[i], s = this.drag.start[i];
        p[0] = Math.min(Math.max(s[0] + dx, 0), this.width);
        p[1] = Math.min(Math.max(s[1] + dy, 0), this.height);
      }
      this.drag.moved = true;
    } else {
      [this.drag.x2, this.drag.y2] = this.toImage(e);
      this.drag.moved = true;
    }
    this.draw();
  }

  // Name the point under the pointer, and who set it (a person, or the model and how sure).
  hover(e) {
    const i = this.hit(...this.toImage(e));
    this.tip.show(i >= 0 ? this.describePoint(i) : "", e);
  }

  describePoint(i) {
    const p = this.points[i];
    const bits = [this.skeleton?.keypoints?.[i] ?? `point ${i}`];
    const sure = `${Math.round((p[3] ?? 1) * 100)}% sure`;
    if (this.shownSuggestion(i)) bits.push(`model suggestion, ${sure}, not labelled (Enter accepts, dragging places it)`);
    else if (this.human?.[i]) bits.push("set by a person");
    else if (this.tracked?.[i]) bits.push(`tracked from a keyframe, ${sure}, not labelled until accepted (Enter) or moved`);
    else bits.push(`model guess, ${sure}`);
    if (p[2] === V_HIDDEN) bits.push("occluded");
    return bits.join(" · ");
  }

  pointerUp() {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    if (drag.kind === "boxEdit") {
      const [fx, fy] = drag.fixed;
      const found = drag.moved && this.boxInFrame(Math.min(fx, drag.x2), Math.min(fy, drag.y2), Math.max(fx, drag.x2), Math.max(fy, drag.y2));
      if (found) {
        this.drawingBox = false; // one box per character and frame: the tool is done
        this.onBox([found.x, found.y, found.w, found.h]);
      }
      this.draw();
      return;
    }
    if (drag.kind === "move" && drag.moved) {
      const after = this.points.map((p) => p.slice());
      // A suggestion a person drags is placed by them: visible, labelled.
      for (const i of this.selected) if (isSuggestion(drag.start[i], this.human?.[i])) after[i][2] = V_VISIBLE;
      this.points.splice(0, this.points.length, ...drag.start.map((p) => p.slice()));
      this.onChange(after, [...this.selected]);
    } else if (drag.kind === "box") {
      const [x1, x2] = [Math.min(drag.x, drag.x2), Math.max(drag.x, drag.x2)];
      const [y1, y2] = [Math.min(drag.y, drag.y2), Math.max(drag.y, drag.y2)];
      if (!drag.add) this.selected.clear();
      this.lastBox = this.boxInFrame(x1, y1, x2, y2);
      if (x2 - x1 > 2 || y2 - y1 > 2) {
        this.points.forEach((p, i) => {
          if (p[2] !== V_NONE && this.visibleIndex(i) && p[0] >= x1 && p[0] <= x2 && p[1] >= y1 && p[1] <= y2) this.selected.add(i);
        });
      }
    }
    this.draw();
  }

  // The corner handle of the box under (x, y): 0 top left, 1 top right, 2 bottom left,
  // 3 bottom right; -1 for none.
  cornerAt(x, y) {
    if (!this.box) return -1;
    const [bx, by, bw, bh] = this.box;
    const reach = (HANDLE + 2) / this.scale;
    return [[bx, by], [bx + bw, by], [bx, by + bh], [bx + bw, by + bh]]
      .findIndex(([cx, cy]) => Math.abs(cx - x) <= reach && Math.abs(cy - y) <= reach);
  }

  onBoxEdge(x, y) {
    if (!this.box) return false;
    const [bx, by, bw, bh] = this.box;
    const reach = HIT_RADIUS / this.scale;
    const inX = x >= bx - reach && x <= bx + bw + reach, inY = y >= by - reach && y <= by + bh + reach;
    const nearX = Math.abs(x - bx) <= reach || Math.abs(x - bx - bw) <= reach;
    const nearY = Math.abs(y - by) <= reach || Math.abs(y - by - bh) <= reach;
    return (inX && nearY) || (inY && nearX);
  }

  boxInFrame(x1, y1, x2, y2) {
    const [left, top] = [Math.max(x1, 0), Math.max(y1, 0)];
    const [right, bottom] = [Math.min(x2, this.width), Math.min(y2, this.height)];
    if (right - left <= 2 || bottom - top <= 2) return null; // a click, or outside the frame
    return { x: left, y: top, w: right - left, h: bottom - top };
  }

  wheel(e) {
    e.preventDefault();
    const [x, y] = this.toImage(e);
    const factor = e.deltaY < 0 ? 1.15 : 1 / 1.15;
    this.scale = Math.min(Math.max(this.scale * factor, 0.1), 40);
    const r = this.canvas.getBoundingClientRect();
    const sx = ((e.clientX - r.left) * this.canvas.width) / r.width;
    const sy = ((e.clientY - r.top) * this.canvas.height) / r.height;
    this.ox = sx - x * this.scale;
    this.oy = sy - y * this.scale;
    this.draw();
  }

  show({ image, points, human, tracked, skeleton, box }) {
    if (image !== undefined) this.image = image;
    if (box !== undefined) {
      if (!box) this.boxSelected = false;
      this.box = box ? box.slice() : null;
    }
    if (points !== undefined) this.points = points ? points.map((p) => p.slice()) : null;
    if (human !== undefined) this.human = human;
    if (tracked !== undefined) this.tracked = tracked;
    if (skeleton !== undefined) this.skeleton = skeleton;
    this.draw();
  }

  draw() {
    const { ctx } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(this.scale, 0, 0, this.scale, this.ox, this.oy);
    if (this.image) ctx.drawImage(this.image, 0, 0, this.width, this.height);
    if (this.points && this.skeleton && this.skeletonShown) this.drawSkeleton();
    this.drawCharacterBox();
    if (this.drag?.kind === "box") {
      ctx.strokeStyle = "#fff";
      ctx.setLineDash([4 / this.scale, 4 / this.scale]);
      ctx.lineWidth = 1 / this.scale;
      ctx.strokeRect(this.drag.x, this.drag.y, this.drag.x2 - this.drag.x, this.drag.y2 - this.drag.y);
      ctx.setLineDash([]);
    }
    for (const overlay of this.overlays) overlay(ctx, this);
  }

  drawSkeleton() {
    const { ctx, points } = this;
    const lw = 2 / this.scale;
    for (const [a, b] of this.skeleton.edges) {
      const p = points[a], q = points[b];
      if (!p || !q || p[2] === V_NONE || q[2] === V_NONE || !this.visibleIndex(a) || !this.visibleIndex(b)) continue;
      ctx.strokeStyle = this.partColour(a);
      ctx.globalAlpha = p[2] === V_HIDDEN || q[2] === V_HIDDEN ? 0.45 : 0.9;
      ctx.lineWidth = lw;
      ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); ctx.stroke();
    }
    ctx.globalAlpha = 1;
    points.forEach((p, i) => {
      if (this.shownSuggestion(i) && this.visibleIndex(i)) { this.drawSuggestion(p, i); return; }
      if (p[2] === V_NONE || !this.visibleIndex(i)) return;
      const r = (this.selected.has(i) ? 5 : 3.5) / this.scale;
      const conf = p[3] ?? 1;
      const human = this.human && this.human[i];
      // Model and tracked points are coloured by confidence (red = unsure); human points by
      // their part. Tracked points are faded too: guesses carried from a keyframe.
      ctx.fillStyle = human || !this.confidenceView ? this.partColour(i) : `hsl(${Math.round(conf * 120)}, 85%, 50%)`;
      ctx.globalAlpha = !human && this.tracked?.[i] && !this.selected.has(i) ? 0.55 : 1;
      ctx.beginPath(); ctx.arc(p[0], p[1], r, 0, Math.PI * 2); ctx.fill();
      ctx.lineWidth = 1.2 / this.scale;
      ctx.strokeStyle = this.selected.has(i) ? "#fff" : "#000";
      if (p[2] === V_HIDDEN) ctx.setLineDash([2 / this.scale, 2 / this.scale]);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
    });
  }

  // The character box (while a drag draws or adjusts it, the box it will become), in the
  // colour of the skeleton's first part, with a square handle on each corner.
  drawCharacterBox() {
    const { ctx, drag } = this;
    let box = this.box;
    if (drag?.kind === "boxEdit" && drag.moved) {
      const [fx, fy] = drag.fixed;
      box = [Math.min(fx, drag.x2), Math.min(fy, drag.y2), Math.abs(drag.x2 - fx), Math.abs(drag.y2 - fy)];
    }
    if (!box) return;
    const [x, y, w, h] = box;
    const colour = Object.values(this.skeleton?.part_colors ?? {})[0] || "#39f";
    ctx.strokeStyle = colour;
    ctx.lineWidth = (this.boxSelected ? 2.5 : 1.5) / this.scale;
    ctx.strokeRect(x, y, w, h);
    const side = (2 * HANDLE) / this.scale;
    ctx.fillStyle = this.boxSelected ? "#fff" : colour;
    for (const [cx, cy] of [[x, y], [x + w, y], [x, y + h], [x + w, y + h]]) ctx.fillRect(cx - side / 2, cy - side / 2, side, side);
  }

  // Faded, hollow and dashed: the model's suggestion, not a label.
  drawSuggestion(p, i) {
    const { ctx } = this;
    ctx.globalAlpha = this.selected.has(i) ? 0.85 : 0.45;
    ctx.lineWidth = 1.5 / this.scale;
    ctx.strokeStyle = this.selected.has(i) ? "#fff" : this.partColour(i);
    ctx.setLineDash([2 / this.scale, 2 / this.scale]);
    ctx.beginPath(); ctx.arc(p[0], p[1], (this.selected.has(i) ? 5 : 3.5) / this.scale, 0, Math.PI * 2); ctx.stroke();
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
  }
}
