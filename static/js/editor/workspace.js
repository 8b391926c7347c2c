// The annotator workspace: wires the stage, timeline, frame source, autosave and shortcuts.
import { FrameSource, clampFrame } from "../frames.js";
import { api, ApiError } from "./api.js";
import { boxCommands } from "./boxtool.js";
import { describeHeld, describeTiming } from "./drawings.js";
import { AnnotationModel, V_HIDDEN, V_NONE, V_VISIBLE } from "./model.js";
import { History } from "./history.js";
import { workspaceBuilt } from "./hook.js";
import { SaveFailed, SaveQueue, guardLeaving, watchForms } from "./saver.js";
import { keyHandlers, renderSheet } from "./shortcuts.js";
import { Stage } from "./stage.js";
import { Timeline } from "./timeline.js";
import { trackingCommands } from "./tracking.js";

const root = document.getElementById("workspace");
const $ = (sel) => root.querySelector(sel);
const annotationId = Number(root.dataset.annotation);
let editable = false; // the server's "may this person edit" (payload.editable)
let divert = null; // review's Fix and accept: point edits go to it, unsaved, instead of autosave
const statusEl = $("#save-status");
const frameInput = $("#ws-frame");

let model, frames, stage, timeline;
let current = 0;
let trackId = null;
let playing = null;
const saver = new SaveQueue();
const editHistory = new History();
const SAVE_DELAY = 400; // ms: saves land well within a second of the change

function say(text, kind = "") {
  statusEl.textContent = text;
  statusEl.dataset.kind = kind;
}

function track() { return trackId ? model.tracks.get(trackId) : null; }

async function show(n) {
  const next = clampFrame(n, model.clip.frame_count);
  if (next !== current) saver.flush(); // leaving a frame saves its edits now
  current = next;
  frameInput.value = current;
  timeline.seek(current);
  const t = track();
  const frame = t ? model.frame(t.id, current) : null;
  stage.show({ points: frame ? frame.points : null, human: frame ? frame.human : null, tracked: frame ? frame.tracked : null, skeleton: t ? model.skeletonOf(t) : null,
    box: frame?.box ?? null });
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
  const bits = [`frame ${current}`, describeHeld(model.drawingRun(trackId, current), current)];
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
    .map((p, i) => ({ i, conf: p[3] ?? 1, v: p[2], human: frame.human[i], suggested: stage.shownSuggestion(i), tracked: frame.tracked?.[i] }))
    .filter((p) => (p.v !== V_NONE || p.suggested) && !p.human && p.conf < threshold)
    .sort((a, b) => a.conf - b.conf)
    .slice(0, 12)
    .forEach((p) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `${skeleton.keypoints[p.i]} ${(p.conf * 100).toFixed(0)}%${p.suggested ? " (suggested)" : p.tracked ? " (tracked)" : ""}`;
      button.addEventListener("click", () => { stage.selected = new Set([p.i]); stage.draw(); });
      li.append(button);
      list.append(li);
    });
}

function refreshTimeline() {
  const marks = model.marks();
  timeline.update({
    shots: model.payload.shots, held: model.drawingRuns(trackId).map((run) => [run.start, run.end]),
    keyframes: marks.keyframes, flagged: marks.flagged, edited: marks.edited, speech: model.payload.speech,
  });
}

// ------------------------------------------------------------------ editing and saving

function refuseEdit() { say("Read-only: nothing can be changed here (reviewers: Fix and accept in the review panel).", "error"); }

const range = ([start, end]) => Array.from({ length: end - start }, (_, i) => start + i);
const applyToHeldRun = (tid, n) => $("#apply-held").checked && model.isHeld(tid, n);

// A person's change to the shown frame's points (and its held run when that applies): shown
// at once, recorded as one history step, saved shortly after. During a reviewer's Fix and
// accept the change goes to the review panel instead, unsaved until the reviewer saves it.
function edit(points, label = "point edit", accepted = []) {
  if (!editable && !divert) { refuseEdit(); return; }
  const t = track();
  if (divert) {
    model.setPoints(t.id, current, points, accepted);
    stage.show({ points: model.frame(t.id, current).points });
    divert(t.id, current);
    return;
  }
  frameEdit(t, label, (n) => model.setPoints(t.id, n, model.pointsOn(t.id, current, n, points), accepted));
  tracker.edited(t, model.frame(t.id, current));
}

// `change(n)` made to the shown frame n of track t (and to the other frames of its held
// drawing when that applies): shown at once, recorded as one history step, saved shortly after.
function frameEdit(t, label, change) {
  const frames = range(applyToHeldRun(t.id, current) ? model.heldRun(t.id, current) : [current, current + 1]);
  const changes = frames.map((n) => {
    const before = model.snapshot(t.id, n);
    change(n);
    return { frame: n, before, after: model.snapshot(t.id, n) };
  });
  editHistory.record({ label, trackId: t.id, frame: current, changes });
  show(current);
  queueSave(t.id, current);
}

// A person's change to the shown character's box ([x, y, w, h], null clears it) on this
// frame, and its held run when that applies; saved like a point edit. Not during a review fix.
function editBox(box, label) {
  const t = track();
  if (!editable) refuseEdit();
  else if (t) frameEdit(t, label, (n) => model.setBox(t.id, n, model.boxOn(t.id, current, n, box)));
}

// Start (with a callback told of each changed frame) or end a review fix of points.
function fix(onEdit) {
  divert = onEdit;
  stage.editable = editable || Boolean(divert);
}

// Save frame n of track tid (and its held run when asked) SAVE_DELAY after the last change.
function queueSave(tid, n, { delay = SAVE_DELAY } = {}) {
  const applyHeld = applyToHeldRun(tid, n);
  const frames = range(applyHeld ? model.heldRun(tid, n) : [n, n + 1]);
  say("saving…");
  return saver.schedule(`frame:${tid}:${n}`, () => saveFrame(tid, n, applyHeld), { delay, meta: { trackId: tid, frames } });
}

async function saveFrame(tid, n, applyHeld) {
  const frame = model.frame(tid, n);
  const accepted = frame.accepted || [];
  try {
    const saved = await api("PUT", `/api/tracks/${tid}/frames/${n}`, {
      points: frame.points.map((p) => [p[0], p[1], p[2]]), version: frame.version,
      apply_to_held_run: applyHeld, keyframe: frame.keyframe, accepted, box: frame.box ?? null,
    }, { keepalive: true });
    frame.accepted = (frame.accepted || []).filter((i) => !accepted.includes(i));
    absorb(tid, saved);
    say(`saved frame ${n}${applyHeld ? " and its held run" : ""}`, "ok");
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      const theirs = err.body?.detail?.current;
      if (theirs?.frame === n && theirs.points) {
        conflict(tid, n, theirs);
        throw new SaveFailed(`Frame ${n} was changed by someone else; choose which version to keep.`);
      }
      // Another row of the save (a frame of the held run) moved on: show the saved state.
      await reload();
      throw new SaveFailed(`${err.message} Their version is shown; nothing was overwritten.`);
    }
    say(`Frame ${n} was not saved: ${err.message}`, "error");
    throw err;
  }
}

// Take saved frames from the server; a frame edited again meanwhile keeps the newer edit
// (its save is still to come) and takes only the new version.
function absorb(tid, savedFrames) {
  const t = model.tracks.get(tid);
  if (!t) return;
  for (const { before, ...saved } of savedFrames) {
    const mine = t.frames.get(saved.frame);
    if (mine && saver.waitingFor(tid, saved.frame)) Object.assign(mine, { id: saved.id, version: saved.version });
    else t.frames.set(saved.frame, saved);
  }
  if (tid === trackId) show(current);
  refreshTimeline();
}

// ------------------------------------------------------------------ characters

const characterFields = (c) => ({ name: c.name, kind: c.kind, skeleton: c.skeleton });

// Add a character and show its track; resolves with the new ids, or null if refused.
async function createCharacter(fields) {
  const made = await runAction(`add ${fields.name}`, () => api("POST", `/api/annotations/${annotationId}/characters`, fields));
  if (!made) return null;
  trackId = null;
  await reload();
  const added = model.trackList().find((t) => t.character.id === made.id);
  if (added) { trackId = added.id; fillTracks(); show(current); }
  return { characterId: made.id, trackId: added?.id ?? null };
}

async function removeCharacter(characterId) {
  const character = model.payload.characters.find((c) => c.id === characterId);
  if (!character) return false;
  const done = await runAction(`delete ${character.name}`,
    () => api("DELETE", `/api/characters/${character.id}?version=${character.version}`));
  if (done) { trackId = null; await reload(); }
  return Boolean(done);
}

// Undo or redo adding or deleting a character. Bringing one back makes a new character (new
// ids, which the history follows) and puts its keypoints back as they were.
async function travelCharacter(step, direction) {
  const done = `${direction === "undo" ? "undid" : "redid"} ${step.label}`;
  if ((direction === "undo") === step.added) {
    if (await removeCharacter(step.characterId)) say(done, "ok");
    else editHistory.drop(step);
    return;
  }
  const made = await createCharacter(step.fields);
  if (!made) { editHistory.drop(step); return; }
  editHistory.remap(step, made);
  if (step.frames?.length && made.trackId) {
    const frames = step.frames.map((f) => ({ ...f, version: model.frame(made.trackId, f.frame).version }));
    const rows = await runAction(`${direction} keypoints`, () => api("POST", `/api/tracks/${made.trackId}/frames/restore`, { action: direction, frames }));
    if (!rows) return;
    absorb(made.trackId, rows);
  }
  say(done, "ok");
}

// ------------------------------------------------------------------ undo and redo

// The step a server action made: the frames it wrote, each with its state before.
function recordAction(label, tid, frame, changed) {
  editHistory.record({
    label, trackId: tid, frame,
    changes: changed.map((r) => ({ frame: r.frame, before: r.before,
      after: { points: r.points, human: Array.from(r.human, Number), tracked: Array.from(r.tracked, Number), keyframe: r.keyframe, box: r.box ?? null } })),
  });
}

// Undo (or redo) the last step: show its track and frame first, then put its frames back
// and save them like any edit (version-checked: if someone else changed them since, nothing
// is overwritten, the user is told and sees their version).
async function travel(direction) {
  const step = direction === "undo" ? editHistory.takeUndo() : editHistory.takeRedo();
  if (!step) { say(`Nothing to ${direction}.`); return; }
  if (step.kind === "character") { await travelCharacter(step, direction); return; }
  if (!model.tracks.has(step.trackId)) { editHistory.drop(step); say(`Cannot ${direction} ${step.label}: its character was deleted.`, "error"); return; }
  saver.flush();
  if (trackId !== step.trackId) { trackId = step.trackId; fillTracks(); }
  await show(step.frame);
  const side = direction === "undo" ? "before" : "after";
  for (const change of step.changes) model.restore(step.trackId, change.frame, change[side]);
  show(current);
  refreshTimeline();
  say(`${direction === "undo" ? "undoing" : "redoing"} ${step.label} on frame ${step.frame}…`);
  saver.start(saver.schedule(`history:${direction}:${step.trackId}:${step.frame}:${Date.now()}`, () => saveStep(step, side, direction),
    { delay: null, meta: { trackId: step.trackId, frames: step.changes.map((c) => c.frame) } }));
}

async function saveStep(step, side, direction) {
  const tid = step.trackId;
  const frames = step.changes.map((c) => ({ frame: c.frame, version: model.frame(tid, c.frame).version, ...c[side] }));
  try {
    absorb(tid, await api("POST", `/api/tracks/${tid}/frames/restore`, { action: direction, frames }, { keepalive: true }));
    say(`${direction === "undo" ? "undid" : "redid"} ${step.label} on frame ${step.frame}`, "ok");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) { say(`The ${direction} was not saved: ${err.message}`, "error"); throw err; }
    const theirs = err.body?.detail?.current;
    editHistory.drop(step);
    await reload();
    const what = theirs?.frame === undefined ? "it" : `frame ${theirs.frame}`;
    say(`Could not ${direction} ${step.label}: ${what} was changed by someone else meanwhile (now version ${err.body?.detail?.current_version ?? "newer"}). `
      + "Their version is shown; nothing was overwritten.", "error");
  }
}

function conflict(tid, n, theirs) {
  const dialog = document.getElementById("conflict");
  const mine = model.frame(tid, n);
  const changed = mine.points.map((p, i) => i).filter((i) =>
    Math.abs(mine.points[i][0] - theirs.points[i][0]) > 0.01 || Math.abs(mine.points[i][1] - theirs.points[i][1]) > 0.01 || mine.points[i][2] !== theirs.points[i][2]);
  const boxDiffers = JSON.stringify(mine.box ?? null) !== JSON.stringify(theirs.box ?? null);
  dialog.querySelector(".conflict-summary").textContent =
    `Frame ${n} was saved by someone else (version ${theirs.version}). ${changed.length} point(s)${boxDiffers ? " and the box" : ""} differ from yours.`;
  dialog.querySelector(".theirs").textContent = changed.slice(0, 8).map((i) => `#${i}: ${theirs.points[i].slice(0, 3).map((v) => Math.round(v)).join(", ")}`).join("\n");
  dialog.querySelector(".mine").textContent = changed.slice(0, 8).map((i) => `#${i}: ${mine.points[i].slice(0, 3).map((v) => Math.round(v)).join(", ")}`).join("\n");
  dialog.querySelector("[data-choice=mine]").onclick = () => {
    dialog.close();
    mine.version = theirs.version;
    saver.start(queueSave(tid, n, { delay: null }));
  };
  dialog.querySelector("[data-choice=theirs]").onclick = () => {
    dialog.close();
    saver.forget(`frame:${tid}:${n}`);
    model.tracks.get(tid).frames.set(n, theirs);
    show(current);
    say(`kept their version of frame ${n}`, "ok");
  };
  dialog.showModal();
}

// Frames of the shown track whose edits are not saved yet (or failed), for the timeline; a
// `cellabel:unsaved` event on the document says when they change.
function unsavedFrames(tid = trackId) {
  return [...new Set(saver.unsaved().filter((m) => m.trackId === tid).flatMap((m) => m.frames))].sort((a, b) => a - b);
}

function announceUnsaved() {
  const frames = unsavedFrames();
  root.dataset.unsavedFrames = frames.join(" ");
  document.dispatchEvent(new CustomEvent("cellabel:unsaved", { detail: { trackId, frames } }));
}

function setVisibility(v) {
  const t = track();
  if (!t || !stage.selected.size) return;
  const points = model.frame(t.id, current).points.map((p) => p.slice());
  for (const i of stage.selected) {
    points[i][2] = v;
    if (v !== V_NONE && points[i][0] === 0 && points[i][1] === 0) [points[i][0], points[i][1]] = [model.clip.width / 2, model.clip.height / 2];
  }
  edit(points, "visibility");
}

// Accept the selected model points where the model put them: a faded suggestion becomes a
// visible, labelled point; a model guess becomes the person's, with the model's confidence.
function acceptSelected() {
  const t = track();
  if (!t || !stage.selected.size) return;
  const frame = model.frame(t.id, current);
  const taken = [...stage.selected].filter((i) => !frame.human[i] && (frame.points[i][2] !== V_NONE || stage.shownSuggestion(i)));
  if (!taken.length) { say("Select a model point or a faded suggestion to accept it.", "error"); return; }
  const points = frame.points.map((p) => p.slice());
  for (const i of taken) if (points[i][2] === V_NONE) points[i][2] = V_VISIBLE;
  edit(points, "accepting a point", taken);
  say(`accepted ${taken.length} point(s)`, "ok");
}

function toggleKeyframe() {
  const t = track();
  const frame = model.frame(t.id, current);
  const before = model.snapshot(t.id, current);
  frame.keyframe = !frame.keyframe;
  editHistory.record({ label: "keyframe mark", trackId: t.id, frame: current, changes: [{ frame: current, before, after: model.snapshot(t.id, current) }] });
  queueSave(t.id, current);
  refreshTimeline();
  show(current);
}

// A server-side action (interpolate, copy, accept, shots, characters), run in the save queue
// after the edits before it; a refused action is reported, not kept as an unsaved change.
// Resolves with its answer (true when it has none), or null when it failed.
function runAction(label, call) {
  say(`${label}…`);
  saver.flush();
  return saver.now(`action:${label}`, async () => {
    try { const result = await call(); say(`${label}: done`, "ok"); return result ?? true; }
    catch (err) { say(err.message, "error"); return null; }
  });
}

async function interpolate() {
  const t = track();
  const keys = [...t.frames.values()].filter((f) => f.keyframe).map((f) => f.frame).sort((a, b) => a - b);
  const prev = keys.filter((k) => k < current).pop();
  if (prev === undefined || !model.frame(t.id, current).keyframe) { say("Interpolation runs from the previous keyframe to this keyframe (press K on both).", "error"); return; }
  const frame = current;
  const rows = await runAction("interpolate", () => api("POST", `/api/tracks/${t.id}/interpolate`, { start: prev, end: frame }));
  if (rows) { recordAction(`interpolation ${prev}-${frame}`, t.id, frame, rows); absorb(t.id, rows); }
}

async function copyPrevious() {
  const t = track();
  const frame = current;
  const rows = await runAction("copy previous drawing", () => api("POST", `/api/tracks/${t.id}/copy-previous`, { frame, version: model.frame(t.id, frame).version }));
  if (rows) { recordAction("copy previous drawing", t.id, frame, rows); absorb(t.id, rows); }
}

async function acceptAbove() {
  const t = track();
  const threshold = Number($("#accept-threshold").value);
  const scope = $("#accept-scope").value === "clip" ? null : [current];
  const frame = current;
  const result = await runAction("accept", () => api("POST", `/api/tracks/${t.id}/accept`, { threshold, frames: scope }));
  if (result) {
    recordAction(`accepting ${result.accepted} point(s)`, t.id, frame, result.frames);
    absorb(t.id, result.frames);
    say(`accepted ${result.accepted} point(s) at ≥ ${threshold}`, "ok");
  }
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
  const result = await runAction("shots", () => api("PUT", `/api/annotations/${annotationId}/shots`, { starts: change(starts), version: annotationVersion() }));
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
  $("#character-timing").textContent = describeTiming(track()?.character);
  const parts = $("#parts");
  parts.replaceChildren();
  const skeleton = track() ? model.skeletonOf(track()) : null;
  for (const part of Object.keys(skeleton?.parts || {})) {
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: true });
    label.append(box, ` ${part}`);
    box.addEventListener("change", (e) => {
      e.target.checked ? stage.hiddenParts.delete(part) : stage.hiddenParts.add(part);
      stage.draw();
    });
    parts.append(label);
  }
}

const tracker = trackingCommands({ runAction, recordAction, absorb, say, progress: $("#track-progress"), offer: $("#track-offer"),
  shown: () => { const t = track(); return t && { track: t, frame: current, selected: [...stage.selected] }; }, version: (tid, n) => model.frame(tid, n).version });
const actions = {
  back: () => show(current - 1), fwd: () => show(current + 1),
  back10: () => show(current - 10), fwd10: () => show(current + 10), play: togglePlay,
  visible: () => setVisibility(V_VISIBLE), hidden: () => setVisibility(V_HIDDEN), absent: () => setVisibility(V_NONE),
  keyframe: toggleKeyframe, interpolate, copyPrevious, accept: acceptAbove, acceptPoint: acceptSelected,
  ...boxCommands({ stage: () => stage, say, editBox, button: () => $("[data-action=drawBox]"),
    shown: () => { const t = track(); return t && { track: t, frame: model.frame(t.id, current), clip: model.clip }; } }),
  ...tracker.commands,
  undo: () => travel("undo"),
  redo: () => travel("redo"),
  split: () => shots((starts) => [...starts, current]),
  merge: () => shots((starts) => { const own = starts.filter((s) => s <= current).pop(); return starts.filter((s) => s !== own || s === 0); }),
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
    if (!t || !window.confirm(`Delete ${t.character.name} and its keypoints? (Undo brings them back.)`)) return;
    const frames = [...t.frames.keys()].sort((a, b) => a - b).map((n) => ({ frame: n, ...model.snapshot(t.id, n) }));
    const step = { label: `deleting ${t.character.name}`, kind: "character", added: false, fields: characterFields(t.character),
      characterId: t.character.id, trackId: t.id, frame: current, frames };
    if (await removeCharacter(t.character.id)) editHistory.record(step);
  },
  help: () => document.getElementById("shortcuts").showModal(),
  submit: async () => {
    if (!(await saver.settled())) { say("Some changes are not saved yet (see above); resolve them before submitting.", "error"); return; }
    const result = await runAction("submit", () => api("POST", `/api/annotations/${annotationId}/submit`));
    if (result) { say("Submitted for review.", "ok"); editable = false; stage.editable = false; setTimeout(() => location.assign("/queue"), 800); }
  },
};

// Edit actions do nothing, from a button or a key, for someone who may not edit.
const EDIT_ACTIONS = ["keyframe", "interpolate", "copyPrevious", "accept", "acceptPoint", "drawBox", "boxFromPoints", "deleteBox", "trackForward", "trackBackward", "acceptSpan",
  "undo", "redo", "split", "merge", "moveBoundary", "deleteCharacter", "submit"];
for (const name of EDIT_ACTIONS) {
  const action = actions[name];
  actions[name] = (...args) => (editable ? action(...args) : refuseEdit());
}

// What the keys of the shortcut table (shortcuts.js) run: the actions, plus steps and seeks.
const commands = {
  ...actions,
  stepBack: (e) => show(current - (e.shiftKey ? 10 : 1)), stepForward: (e) => show(current + (e.shiftKey ? 10 : 1)),
  nextKeyframe: () => seekMark(model.marks().keyframes, 1), previousKeyframe: () => seekMark(model.marks().keyframes, -1),
  nextFlagged: () => seekMark(model.marks().flagged, 1), previousFlagged: () => seekMark(model.marks().flagged, -1),
  nextShot: () => seekMark(model.payload.shots.map((s) => s.start), 1), previousShot: () => seekMark(model.payload.shots.map((s) => s.start), -1),
  undoKey: (e) => (e.ctrlKey || e.metaKey) && (e.shiftKey ? actions.redo() : actions.undo()),
  redoKey: (e) => (e.ctrlKey || e.metaKey) && actions.redo(),
};
const keys = keyHandlers(commands);
renderSheet(document.querySelector("#shortcuts table"));

async function start() {
  const payload = await api("GET", `/api/annotations/${annotationId}`);
  model = new AnnotationModel(payload);
  editable = payload.editable;
  frames = new FrameSource(payload.clip.id, payload.clip.frame_count);
  stage = new Stage($("#stage"), { width: payload.clip.width, height: payload.clip.height, onChange: (points) => edit(points),
    onBox: (box) => { $("[data-action=drawBox]")?.setAttribute("aria-pressed", "false"); editBox(box, "drawing the box"); } });
  stage.editable = editable;
  timeline = new Timeline($("#timeline"), { count: payload.clip.frame_count, fps: payload.clip.fps, onSeek: show });
  fillTracks();
  refreshTimeline();
  root.addEventListener("click", (e) => {
    const action = e.target.closest("[data-action]")?.dataset.action;
    if (action && actions[action]) actions[action]();
  });
  $("#track-select").addEventListener("change", (e) => { trackId = Number(e.target.value); fillTracks(); refreshTimeline(); show(current); });
  // After jumping to a frame, hand the keyboard back to the editor's shortcuts.
  frameInput.addEventListener("change", () => { show(Number(frameInput.value)); frameInput.blur(); });
  $("#accept-threshold").addEventListener("change", () => show(current));
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select") || document.querySelector("dialog[open]")) return;
    if (e.key === "Enter" && e.target.closest("button, a, summary")) return; // Enter presses a focused button
    const handler = keys[e.key];
    if (handler) { e.preventDefault(); handler(e); }
  });
  document.getElementById("add-character")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    const fields = { name: form.get("name"), kind: form.get("kind"), skeleton: form.get("skeleton") };
    const made = await createCharacter(fields);
    if (made) editHistory.record({ label: `adding ${fields.name}`, kind: "character", added: true, fields, frame: current, ...made });
    tracker.added(made?.trackId);
  });
  document.body.addEventListener("htmx:afterSwap", () => setAnnotationVersion(annotationVersion()));
  watchForms(saver, document, (html) => window.CelLabel?.showToast(html));
  guardLeaving(saver, { say });
  // Back (or Forward) to a page kept in the back-forward cache: it may have been submitted,
  // reviewed or edited elsewhere since; let what was sent on the way out land, then read it anew.
  window.addEventListener("pageshow", async (e) => {
    if (!e.persisted) return;
    await saver.settled();
    location.reload();
  });
  saver.addEventListener("failed", (e) => { if (e.detail.key.startsWith("form:")) say(e.detail.message, "error"); });
  saver.addEventListener("change", announceUnsaved);
  const historyButtons = () => { // absent from a read-only workspace
    const [undo, redo] = [$("[data-action=undo]"), $("[data-action=redo]")];
    if (undo) undo.disabled = !editHistory.canUndo;
    if (redo) redo.disabled = !editHistory.canRedo;
  };
  editHistory.addEventListener("change", historyButtons);
  historyButtons();
  const workspace = {
    show, get current() { return current; }, get model() { return model; }, stage, reload, fix,
    saver, history: editHistory, unsavedFrames,
  };
  window.CelLabelWorkspace = workspace; // the handle browser tests and the console read
  workspaceBuilt(workspace);
  root.dataset.ready = "true";
  await show(Number(root.dataset.startFrame) || 0); // ?frame=N: opened at a pinned comment
  // Fetch the first frames of the next clip in the queue while this one is being worked on.
  if (root.dataset.nextClip) {
    const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 1500));
    idle(() => new FrameSource(root.dataset.nextClip, Number(root.dataset.nextCount)).prefetch(-1));
  }
}

start().catch((err) => say(`The workspace could not load: ${err.message}`, "error"));
