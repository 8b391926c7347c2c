// The annotator workspace: wires the stage, timeline, frame source, autosave and shortcuts.
import { FrameSource, clampFrame } from "../frames.js";
import { api, ApiError } from "./api.js";
import { AnnotationModel, V_HIDDEN, V_NONE, V_VISIBLE } from "./model.js";
import { Stage } from "./stage.js";
import { Timeline } from "./timeline.js";

const root = document.getElementById("workspace");
const $ = (sel) => root.querySelector(sel);
const annotationId = Number(root.dataset.annotation);
const editable = root.dataset.editable === "true";
const statusEl = $("#save-status");
const frameInput = $("#ws-frame");

let model, frames, stage, timeline;
let current = 0;
let trackId = null;
let playing = null;
const pending = new Map(); // "track:frame" -> timer
const SAVE_DELAY = 400; // ms: saves land well within a second of the change

function say(text, kind = "") {
  statusEl.textContent = text;
  statusEl.dataset.kind = kind;
}

function track() { return trackId ? model.tracks.get(trackId) : null; }

async function show(n) {
  current = clampFrame(n, model.clip.frame_count);
  frameInput.value = current;
  timeline.seek(current);
  const t = track();
  const frame = t ? model.frame(t.id, current) : null;
  stage.show({ points: frame ? frame.points : null, human: frame ? frame.human : null, skeleton: t ? model.skeletonOf(t) : null });
  $("#frame-info").textContent = describeFrame(frame);
  renderLowConfidence(frame);
  try {
    const img = await frames.load(current);
    stage.show({ image: img });
    root.dataset.shown = String(current);
  } catch (err) { say(err.message, "error"); }
  frames.prefetch(current);
}

function describeFrame(frame) {
  const held = model.isHeld(current) ? (() => { const [s, e] = model.heldRun(current); return `held drawing ${s}-${e - 1}`; })() : "own drawing";
  const bits = [`frame ${current}`, held];
  if (frame?.keyframe) bits.push("keyframe");
  if (frame?.flags?.length) bits.push(`flags: ${frame.flags.join(", ")}`);
  return bits.join(" · ");
}

function renderLowConfidence(frame) {
  const list = $("#low-conf");
  list.replaceChildren();
  if (!frame) return;
  const threshold = Number($("#accept-threshold").value);
  const skeleton = model.skeletonOf(track());
  frame.points
    .map((p, i) => ({ i, conf: p[3] ?? 1, v: p[2], human: frame.human[i] }))
    .filter((p) => p.v !== V_NONE && !p.human && p.conf < threshold)
    .sort((a, b) => a.conf - b.conf)
    .slice(0, 12)
    .forEach((p) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `${skeleton.keypoints[p.i]} ${(p.conf * 100).toFixed(0)}%`;
      button.addEventListener("click", () => { stage.selected = new Set([p.i]); stage.draw(); });
      li.append(button);
      list.append(li);
    });
}

function refreshTimeline() {
  const marks = model.marks();
  timeline.update({
    shots: model.payload.shots, held: model.clip.held_runs || [],
    keyframes: marks.keyframes, flagged: marks.flagged, speech: model.payload.speech,
  });
}

// ------------------------------------------------------------------ editing and saving

function edit(points) {
  if (!editable) { say("This annotation is not editable now.", "error"); return; }
  const t = track();
  model.setPoints(t.id, current, points);
  stage.show({ points: model.frame(t.id, current).points });
  queueSave(t.id, current);
}

function queueSave(tid, n) {
  const key = `${tid}:${n}`;
  clearTimeout(pending.get(key));
  say("saving…");
  pending.set(key, setTimeout(() => { pending.delete(key); save(tid, n); }, SAVE_DELAY));
}

async function save(tid, n, { force = false } = {}) {
  const frame = model.frame(tid, n);
  const applyHeld = $("#apply-held").checked && model.isHeld(n);
  try {
    const saved = await api("PUT", `/api/tracks/${tid}/frames/${n}`, {
      points: frame.points.map((p) => [p[0], p[1], p[2]]), version: frame.version,
      apply_to_held_run: applyHeld, keyframe: frame.keyframe,
    });
    absorb(tid, saved);
    say(`saved frame ${n}${applyHeld ? " and its held run" : ""}`, "ok");
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && !force) conflict(tid, n, err.body.detail.current);
    else say(err.message, "error");
  }
}

function absorb(tid, savedFrames) {
  const t = model.tracks.get(tid);
  for (const f of savedFrames) t.frames.set(f.frame, f);
  if (tid === trackId) show(current);
  refreshTimeline();
}

function conflict(tid, n, theirs) {
  const dialog = document.getElementById("conflict");
  const mine = model.frame(tid, n);
  const changed = mine.points.map((p, i) => i).filter((i) =>
    Math.abs(mine.points[i][0] - theirs.points[i][0]) > 0.01 || Math.abs(mine.points[i][1] - theirs.points[i][1]) > 0.01 || mine.points[i][2] !== theirs.points[i][2]);
  dialog.querySelector(".conflict-summary").textContent =
    `Frame ${n} was saved by someone else (version ${theirs.version}). ${changed.length} point(s) differ from yours.`;
  dialog.querySelector(".theirs").textContent = changed.slice(0, 8).map((i) => `#${i}: ${theirs.points[i].slice(0, 3).map((v) => Math.round(v)).join(", ")}`).join("\n");
  dialog.querySelector(".mine").textContent = changed.slice(0, 8).map((i) => `#${i}: ${mine.points[i].slice(0, 3).map((v) => Math.round(v)).join(", ")}`).join("\n");
  dialog.querySelector("[data-choice=mine]").onclick = () => {
    dialog.close();
    mine.version = theirs.version;
    save(tid, n, { force: true });
  };
  dialog.querySelector("[data-choice=theirs]").onclick = () => {
    dialog.close();
    model.tracks.get(tid).frames.set(n, theirs);
    show(current);
    say(`kept their version of frame ${n}`, "ok");
  };
  dialog.showModal();
}

function setVisibility(v) {
  const t = track();
  if (!t || !stage.selected.size) return;
  const points = model.frame(t.id, current).points.map((p) => p.slice());
  for (const i of stage.selected) {
    points[i][2] = v;
    if (v !== V_NONE && points[i][0] === 0 && points[i][1] === 0) [points[i][0], points[i][1]] = [model.clip.width / 2, model.clip.height / 2];
  }
  edit(points);
}

function toggleKeyframe() {
  const t = track();
  const frame = model.frame(t.id, current);
  frame.keyframe = !frame.keyframe;
  queueSave(t.id, current);
  refreshTimeline();
  show(current);
}

async function runAction(label, promise) {
  say(`${label}…`);
  try { const result = await promise; say(`${label}: done`, "ok"); return result; }
  catch (err) { say(err.message, "error"); return null; }
}

async function interpolate() {
  const t = track();
  const keys = [...t.frames.values()].filter((f) => f.keyframe).map((f) => f.frame).sort((a, b) => a - b);
  const prev = keys.filter((k) => k < current).pop();
  if (prev === undefined || !model.frame(t.id, current).keyframe) { say("Interpolation runs from the previous keyframe to this keyframe (press K on both).", "error"); return; }
  const rows = await runAction("interpolate", api("POST", `/api/tracks/${t.id}/interpolate`, { start: prev, end: current }));
  if (rows) absorb(t.id, rows);
}

async function copyPrevious() {
  const t = track();
  const rows = await runAction("copy previous drawing", api("POST", `/api/tracks/${t.id}/copy-previous`, { frame: current, version: model.frame(t.id, current).version }));
  if (rows) absorb(t.id, rows);
}

async function acceptAbove() {
  const t = track();
  const threshold = Number($("#accept-threshold").value);
  const scope = $("#accept-scope").value === "clip" ? null : [current];
  const result = await runAction("accept", api("POST", `/api/tracks/${t.id}/accept`, { threshold, frames: scope }));
  if (result) { say(`accepted ${result.accepted} point(s) at ≥ ${threshold}`, "ok"); await reload(); }
}

// The clip-level node's version lives in the HTMX forms (tags, quality) and in the model;
// whichever saved last is newest, and every save hands the new version to the others.
function annotationVersion() {
  const inForms = [...document.querySelectorAll("#tags input[name=version], #quality input[name=version]")]
    .map((input) => Number(input.value) || 0);
  return Math.max(model.payload.annotation.version, ...inForms);
}

function setAnnotationVersion(version) {
  model.payload.annotation.version = version;
  document.querySelectorAll("#tags input[name=version], #quality input[name=version]").forEach((input) => { input.value = version; });
}

async function shots(change) {
  const starts = model.payload.shots.map((s) => s.start);
  const result = await runAction("shots", api("PUT", `/api/annotations/${annotationId}/shots`, { starts: change(starts), version: annotationVersion() }));
  if (result) { await reload(); setAnnotationVersion(model.payload.annotation.version); }
}

function seekMark(list, direction) {
  const next = direction > 0 ? list.find((f) => f > current) : [...list].reverse().find((f) => f < current);
  if (next !== undefined) show(next);
}

function togglePlay() {
  const button = $("[data-action=play]");
  if (playing) { clearInterval(playing); playing = null; button.textContent = "▶"; return; }
  button.textContent = "⏸";
  playing = setInterval(() => {
    if (current >= model.clip.frame_count - 1) { togglePlay(); return; }
    show(current + 1);
  }, 1000 / ((model.clip.fps || 24) * Number($("#ws-speed").value)));
}

async function reload() {
  const payload = await api("GET", `/api/annotations/${annotationId}`);
  model = new AnnotationModel(payload);
  fillTracks();
  refreshTimeline();
  show(current);
}

function fillTracks() {
  const select = $("#track-select");
  const keep = trackId;
  select.replaceChildren();
  for (const t of model.trackList()) {
    const option = document.createElement("option");
    option.value = t.id;
    option.textContent = `${t.character.name} (${t.character.kind}, ${t.character.skeleton})`;
    select.append(option);
  }
  trackId = model.tracks.has(keep) ? keep : model.trackList()[0]?.id ?? null;
  if (trackId) select.value = trackId;
  const parts = $("#parts");
  parts.replaceChildren();
  const skeleton = track() ? model.skeletonOf(track()) : null;
  for (const part of Object.keys(skeleton?.parts || {})) {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" checked> ${part}`;
    label.querySelector("input").addEventListener("change", (e) => {
      e.target.checked ? stage.hiddenParts.delete(part) : stage.hiddenParts.add(part);
      stage.draw();
    });
    parts.append(label);
  }
}

const actions = {
  back: () => show(current - 1), fwd: () => show(current + 1),
  back10: () => show(current - 10), fwd10: () => show(current + 10), play: togglePlay,
  visible: () => setVisibility(V_VISIBLE), hidden: () => setVisibility(V_HIDDEN), absent: () => setVisibility(V_NONE),
  keyframe: toggleKeyframe, interpolate, copyPrevious, accept: acceptAbove,
  undo: () => { const s = model.undo(); if (s) { queueSave(s.trackId, s.n); show(current); } },
  redo: () => { const s = model.redo(); if (s) { queueSave(s.trackId, s.n); show(current); } },
  split: () => shots((starts) => [...starts, current]),
  merge: () => shots((starts) => { const own = starts.filter((s) => s <= current).pop(); return starts.filter((s) => s !== own || s === 0); }),
  // Move the current shot's start (its boundary with the previous shot) to this frame.
  // Move the shot boundary nearest to this frame onto it.
  moveBoundary: () => shots((starts) => {
    const cuts = starts.filter((s) => s > 0);
    if (!cuts.length) return starts;
    const nearest = cuts.reduce((a, b) => (Math.abs(b - current) < Math.abs(a - current) ? b : a));
    return starts.map((s) => (s === nearest ? current : s));
  }),
  tags: () => document.querySelector("#tags input[type=radio]:checked, #tags input[type=radio]")?.focus(),
  fit: () => stage.fit(),
  deleteCharacter: async () => {
    const t = track();
    if (!t || !window.confirm(`Delete ${t.character.name} and its keypoints? (It stays in the history.)`)) return;
    const done = await runAction("delete character",
      api("DELETE", `/api/characters/${t.character.id}?version=${t.character.version}`));
    if (done !== null || statusEl.dataset.kind === "ok") { trackId = null; await reload(); }
  },
  help: () => document.getElementById("shortcuts").showModal(),
  submit: async () => {
    const result = await runAction("submit", api("POST", `/api/annotations/${annotationId}/submit`));
    if (result) { say("Submitted for review.", "ok"); root.dataset.editable = "false"; setTimeout(() => location.assign("/queue"), 800); }
  },
};

const keys = {
  ArrowRight: (e) => show(current + (e.shiftKey ? 10 : 1)), ArrowLeft: (e) => show(current - (e.shiftKey ? 10 : 1)),
  " ": togglePlay, "1": actions.visible, "2": actions.hidden, "0": actions.absent, "3": actions.absent,
  k: actions.keyframe, i: actions.interpolate, c: actions.copyPrevious, a: actions.accept,
  "]": () => seekMark(model.marks().keyframes, 1), "[": () => seekMark(model.marks().keyframes, -1),
  f: () => seekMark(model.marks().flagged, 1), F: () => seekMark(model.marks().flagged, -1),
  n: () => seekMark(model.payload.shots.map((s) => s.start), 1), p: () => seekMark(model.payload.shots.map((s) => s.start), -1),
  s: actions.split, m: actions.merge, b: actions.moveBoundary, t: actions.tags, "?": actions.help, z: (e) => (e.ctrlKey || e.metaKey) && actions.undo(),
  y: (e) => (e.ctrlKey || e.metaKey) && actions.redo(), Z: (e) => (e.ctrlKey || e.metaKey) && actions.redo(),
};

async function start() {
  const payload = await api("GET", `/api/annotations/${annotationId}`);
  model = new AnnotationModel(payload);
  frames = new FrameSource(payload.clip.id, payload.clip.frame_count);
  stage = new Stage($("#stage"), { width: payload.clip.width, height: payload.clip.height, onChange: edit });
  timeline = new Timeline($("#timeline"), { count: payload.clip.frame_count, fps: payload.clip.fps, onSeek: show });
  fillTracks();
  refreshTimeline();
  root.addEventListener("click", (e) => {
    const action = e.target.closest("[data-action]")?.dataset.action;
    if (action && actions[action]) actions[action]();
  });
  $("#track-select").addEventListener("change", (e) => { trackId = Number(e.target.value); fillTracks(); show(current); });
  // After jumping to a frame, hand the keyboard back to the editor's shortcuts.
  frameInput.addEventListener("change", () => { show(Number(frameInput.value)); frameInput.blur(); });
  $("#accept-threshold").addEventListener("change", () => show(current));
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select") || document.querySelector("dialog[open]")) return;
    const handler = keys[e.key];
    if (handler) { e.preventDefault(); handler(e); }
  });
  document.getElementById("add-character")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    const made = await runAction("add character", api("POST", `/api/annotations/${annotationId}/characters`,
      { name: form.get("name"), kind: form.get("kind"), skeleton: form.get("skeleton") }));
    if (made) { trackId = null; await reload(); }
  });
  document.body.addEventListener("htmx:afterSwap", () => setAnnotationVersion(annotationVersion()));
  window.CelLabelWorkspace = { show, get current() { return current; }, get model() { return model; }, stage };
  root.dataset.ready = "true";
  await show(Number(root.dataset.startFrame) || 0); // ?frame=N: opened at a pinned comment
  // Fetch the first frames of the next clip in the queue while this one is being worked on.
  if (root.dataset.nextClip) {
    const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 1500));
    idle(() => new FrameSource(root.dataset.nextClip, Number(root.dataset.nextCount)).prefetch(-1));
  }
}

start().catch((err) => say(`The workspace could not load: ${err.message}`, "error"));
