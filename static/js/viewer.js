// Frame-exact viewer: draws frame N from the server's frame cache onto a canvas, steps, plays,
// and prefetches ahead so stepping never waits at a chunk boundary.
const root = document.getElementById("viewer");
const canvas = document.getElementById("frame-canvas");
const ctx = canvas.getContext("2d");
const input = document.getElementById("frame-input");
const status = document.getElementById("frame-status");
const speed = document.getElementById("speed");
const clip = root.dataset.clip;
const count = Number(root.dataset.count);
const fps = Number(root.dataset.fps) || 24;
const PREFETCH = 24;
const cache = new Map();
let current = Math.min(Math.max(Number(root.dataset.frame) || 0, 0), count - 1);
let playing = null;

function load(n) {
  if (!cache.has(n)) {
    const img = new Image();
    img.decoding = "async";
    const ready = new Promise((resolve, reject) => { img.onload = () => resolve(img); img.onerror = reject; });
    img.src = `/media/clips/${clip}/frames/${n}.jpg`;
    cache.set(n, ready);
    if (cache.size > 400) cache.delete(cache.keys().next().value);
  }
  return cache.get(n);
}

function prefetch(from) {
  for (let i = 1; i <= PREFETCH && from + i < count; i++) load(from + i);
}

async function show(n) {
  n = Math.min(Math.max(n, 0), count - 1);
  current = n;
  input.value = n;
  status.textContent = `frame ${n}`;
  try {
    const img = await load(n);
    if (current !== n) return; // a later step won
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    root.dataset.shown = String(n);
    root.dispatchEvent(new CustomEvent("frame-shown", { detail: { frame: n } }));
  } catch {
    status.textContent = `frame ${n} could not be loaded`;
  }
  prefetch(n);
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
window.CelLabelViewer = { show, get current() { return current; } };
show(current);
