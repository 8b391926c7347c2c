// Frame-exact viewer page: draws frame N from the frame cache onto a canvas, steps and plays.
import { FrameSource, clampFrame } from "./frames.js";

const root = document.getElementById("viewer");
const canvas = document.getElementById("frame-canvas");
const ctx = canvas.getContext("2d");
const input = document.getElementById("frame-input");
const status = document.getElementById("frame-status");
const speed = document.getElementById("speed");
const count = Number(root.dataset.count);
const fps = Number(root.dataset.fps) || 24;
const frames = new FrameSource(root.dataset.clip, count);
let current = clampFrame(Number(root.dataset.frame) || 0, count);
let playing = null;

async function show(n) {
  n = clampFrame(n, count);
  current = n;
  input.value = n;
  status.textContent = `frame ${n}`;
  try {
    const img = await frames.load(n);
    if (current !== n) return; // a later step won
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    root.dataset.shown = String(n);
  } catch (err) {
    status.textContent = err.message;
  }
  frames.prefetch(n);
}

function togglePlay() {
  const button = root.querySelector("[data-action=play]");
  if (playing) { clearInterval(playing); playing = null; button.textContent = "▶"; return; }
  button.textContent = "⏸";
  playing = setInterval(() => {
    if (current >= count - 1) { togglePlay(); return; }
    show(current + 1);
  }, 1000 / (fps * Number(speed.value)));
}

const actions = {
  back: () => show(current - 1), fwd: () => show(current + 1),
  back10: () => show(current - 10), fwd10: () => show(current + 10), play: togglePlay,
};
root.addEventListener("click", (e) => {
  const action = e.target.closest("[data-action]")?.dataset.action;
  if (action) actions[action]();
});
input.addEventListener("change", () => show(Number(input.value)));
speed.addEventListener("change", () => { if (playing) { togglePlay(); togglePlay(); } });
document.addEventListener("keydown", (e) => {
  if (e.target.matches("input, textarea, select")) return;
  if (e.key === "ArrowRight") { e.preventDefault(); show(current + (e.shiftKey ? 10 : 1)); }
  else if (e.key === "ArrowLeft") { e.preventDefault(); show(current - (e.shiftKey ? 10 : 1)); }
  else if (e.key === " ") { e.preventDefault(); togglePlay(); }
});
show(current);
