// Review mode of the workspace: node statuses with approve (y) / reject (x), pinned comment
// threads, model-draft / final / difference overlays on the stage, and each node's history with
// diff and restore. The server enforces every rule; this module only shows and asks.
import { api } from "./api.js";
import { workspaceReady } from "./hook.js";

const panel = document.getElementById("review-panel");
const annotationId = Number(panel.dataset.annotation);
const $ = (sel) => document.querySelector(sel);
const shown = new Set(); // "type:id" of every node displayed to the reviewer (for approve-children)
let doc = null;
let selected = null; // the node the keys act on
let ws = null;

function say(text, kind = "") {
  const out = $("#review-status");
  out.textContent = text;
  out.dataset.kind = kind;
}

const key = (node) => `${node.type}:${node.id}`;
const nodeOf = (type, id) => doc.nodes.find((n) => n.type === type && n.id === id);
const label = (type, id) => nodeOf(type, id)?.label || `${type.replace("_", " ")} ${id}`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

async function act(label, promise) {
  say(`${label}…`);
  try {
    const result = await promise;
    say(`${label}: done`, "ok");
    return result;
  } catch (err) {
    say(err.message, "error");
    return null;
  }
}

// ------------------------------------------------------------------ the document

async function load() {
  doc = await api("GET", `/api/annotations/${annotationId}/review`);
  if (selected) selected = nodeOf(selected.type, selected.id) || null;
  renderNotice();
  renderActions();
  renderNodes();
  renderComments();
  ws?.stage.draw();
}

function renderNotice() {
  const notice = $("#review-notice");
  const open = doc.comments.filter((c) => c.reason && !c.resolved);
  const status = doc.annotation.status;
  const badge = $("[data-testid=annotation-status]");  // the page title's, as the review left it
  if (badge) {
    badge.textContent = status;
    badge.className = `state state-${status}`;
  }
  let text = "";
  if (status === "rejected" && doc.can_edit) {
    text = `A reviewer sent this clip back: ${open.length} rejection(s) are open. `;
    text += doc.unanswered.length
      ? `${doc.unanswered.length} still need a change to the rejected item or your reply before you can resubmit.`
      : "Each has a change or a reply: you can resubmit.";
  } else if (status === "rejected") {  // a reviewer or admin looking at a clip sent back
    text = `This clip went back to its annotator: ${open.length} rejection(s) are open. `;
    text += doc.unanswered.length
      ? `${doc.unanswered.length} still wait for their change or reply.`
      : "Each has a change or a reply: the annotator can resubmit.";
  } else if (doc.annotation.awaiting_acceptance) {
    text = "A reviewer approved this clip; it awaits an admin's acceptance.";
  } else if (status === "approved") {
    text = "This clip is approved.";
  }
  if (doc.fixes.length) {
    const items = [...new Set(doc.fixes.map((f) => label(f.node_type, f.node_id)))];
    const who = [...new Set(doc.fixes.map((f) => f.user))].join(", ");
    text += `${text ? " " : ""}${who} corrected ${items.join("; ")} while reviewing (see each item's history).`;
  }
  notice.textContent = text;
  notice.hidden = !text;
  notice.className = status === "rejected" ? "error-box" : "notice";
}

function renderActions() {
  const box = $("#review-actions");
  box.replaceChildren();
  $("#review-keys").hidden = !doc.can_review;
  if (doc.can_accept) {
    box.append(el("button", { type: "button", class: "primary", "data-testid": "accept-clip", onclick: acceptClip }, "Accept the clip"));
  }
}

const STATE_MARK = { draft: "○", submitted: "●", approved: "✓", rejected: "✗" };

// The tree as nested lists (a character's tracks under it, under the clip): indented by level,
// each row with its state as a labelled badge.
function renderNodes() {
  const byParent = new Map();
  for (const node of doc.nodes) {
    const parent = node.parent ? key(node.parent) : "";
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(node);
  }
  const branch = (parent, level) => (byParent.get(parent) || []).map((node) => el("li", { "data-level": level },
    nodeRow(node),
    byParent.has(key(node)) ? el("ol", { class: "review-branch" }, ...branch(key(node), level + 1)) : null));
  $("#review-nodes").replaceChildren(...branch("", 1));
}

function nodeRow(node) {
  const isSelected = selected && key(selected) === key(node);
  const row = el("div", {
    class: "node-row", "data-node": key(node), "data-testid": `node-${node.type}-${node.id}`, "data-status": node.status,
    "aria-current": isSelected ? "true" : null,
  },
  el("button", { type: "button", class: "link node-name", onclick: () => select(node) }, node.label),
  el("span", { class: `state-badge state-badge-${node.status}`, "data-testid": "node-status" },
    el("span", { "aria-hidden": "true" }, STATE_MARK[node.status] || ""), ` ${node.status}`));
  const fixedBy = [...new Set(doc.fixes.filter((f) => f.node_type === node.type && f.node_id === node.id).map((f) => f.user))];
  if (fixedBy.length) row.append(el("span", { class: "badge", "data-testid": "fixed-by" }, `fixed in review by ${fixedBy.join(", ")}`));
  if (doc.can_review && node.status === "submitted") {
    row.append(
      el("button", { type: "button", "data-testid": "approve", onclick: () => approve(node) }, "Approve"),
      el("button", { type: "button", "data-testid": "reject", onclick: () => openReject(node) }, "Reject"),
    );
    if (FIXABLE[node.type]) {
      row.append(el("button", { type: "button", "data-testid": "fix-accept", onclick: () => FIXABLE[node.type](node) }, "Fix and accept"));
    }
    if (["annotation", "character"].includes(node.type)) {
      row.append(el("button", { type: "button", "data-testid": "approve-children", onclick: () => approveChildren(node) }, "Approve shown children"));
    }
  } else if (doc.can_accept) {
    row.append(el("button", { type: "button", "data-testid": "reject", onclick: () => openReject(node) }, "Reject"));
  }
  if (doc.can_reopen && node.status !== "draft") {
    row.append(el("button", { type: "button", "data-testid": "reopen", onclick: () => openReopen(node) }, "Reopen"));
  }
  if (doc.can_comment) {
    row.append(el("button", { type: "button", "data-testid": "comment", onclick: () => openComment(node) }, "Comment"));
  }
  row.append(el("button", { type: "button", "data-testid": "history", onclick: () => openHistory(node) }, "History"));
  return row;
}

function pinText(c) {
  const bits = [label(c.node_type, c.node_id)];
  if (c.frame !== null) bits.push(`frame ${c.frame}`);
  if (c.point !== null) bits.push(`point ${c.point}`);
  if (c.region) bits.push(`region ${Math.round(c.region.w)}×${Math.round(c.region.h)}`);
  return bits.join(" · ");
}

function when(iso) {
  const date = new Date(iso);
  return el("time", { datetime: iso }, date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }));
}

// A thread reads as a person writes it: who, why (in words), about what, and when.
function commentHead(c, ...extra) {
  return el("p", { class: "comment-head", "data-testid": "comment-head" },
    el("strong", {}, c.author), " ",
    ...extra.flatMap((part) => (part ? [part, " "] : [])),
    when(c.created_at));
}

function renderComments() {
  const list = $("#review-comments");
  list.replaceChildren();
  if (!doc.comments.length) list.append(el("li", { class: "muted" }, "No comments."));
  for (const c of doc.comments) {
    const needs = doc.unanswered.includes(c.id);
    const item = el("li", { class: "comment", "data-comment": c.id, "data-testid": `comment-${c.id}`, "data-resolved": String(c.resolved) },
      commentHead(c,
        c.reason ? el("span", { class: "badge badge-rejected", "data-testid": "comment-reason" }, `rejected: ${c.reason_label}`) : "commented",
        el("span", {}, "on"),
        el("button", { type: "button", class: "link", "data-testid": "goto-pin", onclick: () => goToPin(c) }, pinText(c)),
        c.resolved ? el("span", { class: "badge" }, "resolved") : null,
        needs ? el("strong", { "data-testid": "needs-answer" }, "needs your change or reply") : null),
      el("p", { class: "comment-body" }, c.body),
      el("ol", { class: "replies" }, ...c.replies.map((r) => el("li", { "data-testid": "reply" },
        commentHead(r, el("span", {}, "replied")), el("p", { class: "comment-body" }, r.body)))));
    const text = el("input", { type: "text", placeholder: "Reply…", "aria-label": "Reply", "data-testid": "reply-text" });
    item.append(el("div", { class: "button-row" }, text,
      el("button", { type: "button", "data-testid": "reply-send", onclick: () => replyTo(c, text.value) }, "Reply"),
      doc.can_reopen || doc.can_review || doc.can_accept
        ? el("button", { type: "button", "data-testid": "resolve", onclick: () => resolveThread(c, !c.resolved) }, c.resolved ? "Reopen thread" : "Resolve")
        : null,
    ));
    list.append(item);
  }
}

// ------------------------------------------------------------------ showing nodes on the stage

function trackSelect() { return document.getElementById("track-select"); }

async function showTrack(trackId, frame) {
  const select = trackSelect();
  if (select && Number(select.value) !== trackId) {
    select.value = String(trackId);
    select.dispatchEvent(new Event("change"));
  }
  if (frame !== undefined && frame !== null) await ws.show(frame);
}

async function select(node) {
  selected = node;
  shown.add(key(node));
  if (node.type === "track") await showTrack(node.id);
  else if (node.type === "shot" && node.frame !== null) await ws.show(node.frame);
  else if (node.type === "caption") document.getElementById(`caption-${node.id}`)?.scrollIntoView({ block: "nearest" });
  else if (node.type === "speech_segment") document.getElementById("speech-panel")?.scrollIntoView({ block: "nearest" });
  renderNodes();
  say(`selected ${node.label}`);
}

async function goToPin(c) {
  const node = nodeOf(c.node_type, c.node_id);
  if (node) await select(node);
  if (c.node_type === "track") await showTrack(c.node_id, c.frame);
  else if (c.frame !== null) await ws.show(c.frame);
  if (c.point !== null) { ws.stage.selected = new Set([c.point]); ws.stage.draw(); }
}

// ------------------------------------------------------------------ transitions

async function approve(node) {
  if (await act(`approve ${node.label}`, api("POST", `/api/review/${node.type}/${node.id}/approve`, { version: node.version }))) await load();
}

async function approveChildren(node) {
  const children = [...shown].map((k) => k.split(":")).map(([type, id]) => ({ type, id: Number(id) }))
    .filter((ref) => { const n = nodeOf(ref.type, ref.id); return n && n.parent && key(n.parent) === key(node); });
  const result = await act("approve shown children", api("POST", `/api/review/${node.type}/${node.id}/approve-children`, { shown: children }));
  if (!result) return;
  await load();
  const blocked = Object.keys(result.blocked).length;
  say(`approved ${result.approved.length}; not shown yet: ${result.not_shown.length}${blocked ? `; blocked: ${blocked}` : ""}`, "ok");
}

// What needs words (reject, reopen, comment) is asked in a modal form; when the server refuses
// it, the reason is shown in the form, which stays open so nothing typed is lost.
function askVerdict(dialogId, node, prepare, send, done) {
  const dialog = $(`#${dialogId}`);
  const form = dialog.querySelector("form");
  form.reset();
  dialog.querySelector(".target").textContent = node.label;
  prepare(form);
  const error = form.querySelector(".error-box");
  error.hidden = true;
  form.onsubmit = async (e) => {
    if (e.submitter?.value === "cancel") return;
    e.preventDefault();
    try {
      await send(form);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      return;
    }
    dialog.close();
    await done();
  };
  dialog.showModal();
  form.querySelector("textarea").focus();
}

// The pin fields of the reject and comment forms: the current frame, the point selected on
// the stage (tracks only) and the last box dragged on the frame.
function preparePin(form, node, box) {
  form.querySelector(".frame").textContent = String(ws.current);
  form.point.value = node.type === "track" && ws.stage.selected.size === 1 ? [...ws.stage.selected][0] : "";
  form.point.disabled = node.type !== "track";
  form.pin_region.checked = Boolean(box);
  form.pin_region.disabled = !box;
  form.querySelector(".region").textContent = box
    ? `${Math.round(box.w)}×${Math.round(box.h)} at ${Math.round(box.x)}, ${Math.round(box.y)}`
    : "(drag a box on the frame first)";
}

function pinOf(form, box) {
  return {
    frame: form.pin_frame.checked ? ws.current : null,
    point: form.point.value === "" || form.point.disabled ? null : Number(form.point.value),
    region: form.pin_region.checked ? box : null,
  };
}

// The reasons offered fit the item (a caption is never a "wrong keypoint"); none is chosen
// for the reviewer, and sending without one is refused in the form.
function openReject(node) {
  const box = ws.stage.lastBox;
  askVerdict("reject-dialog", node, (form) => {
    form.reason.replaceChildren(el("option", { value: "" }, "Choose a reason…"),
      ...(doc.reasons[node.type] || []).map((r) => el("option", { value: r.value }, r.label)));
    preparePin(form, node, box);
  }, (form) => {
    if (!form.reason.value) {
      form.reason.focus();
      throw new Error(`Choose a reason: what is wrong with this ${node.label}?`);
    }
    return api("POST", `/api/review/${node.type}/${node.id}/reject`, {
      version: node.version, reason: form.reason.value, body: form.body.value, ...pinOf(form, box),
    });
  }, async () => {
    say(`rejected ${node.label}: the clip went back to its annotator`, "ok");
    await load();
  });
}

function openComment(node) {
  const box = ws.stage.lastBox;
  askVerdict("comment-dialog", node, (form) => preparePin(form, node, box),
    (form) => api("POST", `/api/review/${node.type}/${node.id}/comments`, { body: form.body.value, ...pinOf(form, box) }),
    async () => {
      say(`commented on ${node.label}`, "ok");
      await load();
    });
}

function openReopen(node) {
  askVerdict("reopen-dialog", node, () => {},
    (form) => api("POST", `/api/review/${node.type}/${node.id}/reopen`, { version: node.version, reason: form.reason.value }),
    () => location.reload()); // the clip is editable again: the workspace starts over
}

// ------------------------------------------------------------------ fix and accept

// A reviewer corrects a small thing and approves the item in one step; the correction is saved
// as the reviewer's revision (the annotator sees it; agreement still scores their version).
const FIXABLE = { caption: fixCaption, track: fixTrack };
let fixing = null; // the track being fixed: { node, frames: Set of changed frame numbers }

function fixCaption(node) {
  const text = () => ws.model.payload.captions.find((c) => c.id === node.id)?.text ?? "";
  askVerdict("fix-dialog", node, (form) => { form.text.value = text(); },
    (form) => api("POST", `/api/review/caption/${node.id}/fix-accept`, { version: node.version, text: form.text.value }),
    async () => {
      await ws.reload();
      const field = document.getElementById(`caption-text-${node.id}`);
      if (field) field.value = text();
      say(`fixed and accepted ${node.label}`, "ok");
      await load();
    });
}

async function fixTrack(node) {
  if (fixing) endFix();
  await select(node);
  fixing = { node, frames: new Set() };
  ws.fix((trackId, frame) => {
    if (trackId !== node.id) { say(`Only ${node.label} is being fixed: that change is not kept.`, "error"); return; }
    fixing.frames.add(frame);
    renderFix();
  });
  document.getElementById("point-tools").hidden = false;
  renderFix();
  say(`fixing ${node.label}: drag points on the frame, then Save fix and accept`);
}

function renderFix() {
  const bar = $("#review-fix");
  bar.hidden = !fixing;
  if (!fixing) return;
  bar.querySelector(".target").textContent = fixing.node.label;
  const n = fixing.frames.size;
  bar.querySelector(".count").textContent = n ? `${n} frame(s) changed: ${[...fixing.frames].sort((a, b) => a - b).join(", ")}` : "No change yet.";
}

function endFix() {
  fixing = null;
  ws.fix(null);
  document.getElementById("point-tools").hidden = !doc.can_edit;
  renderFix();
}

async function saveFix() {
  const { node, frames } = fixing;
  const changed = [...frames].map((frame) => {
    const f = ws.model.frame(node.id, frame);
    return { frame, points: f.points.map((p) => [p[0], p[1], p[2]]), version: f.version };
  });
  if (await act(`fix and accept ${node.label}`, api("POST", `/api/review/track/${node.id}/fix-accept`, { version: node.version, frames: changed }))) {
    endFix();
    await ws.reload();
    await load();
    say(`fixed and accepted ${node.label}`, "ok");
  }
}

async function cancelFix() {
  endFix();
  await ws.reload(); // back to the annotator's points
  say("fix cancelled: nothing was saved");
}

async function acceptClip() {
  if (await act("accept the clip", api("POST", `/api/review/annotations/${annotationId}/accept`, { version: doc.annotation.version }))) await load();
}

async function replyTo(c, body) {
  if (!body.trim()) { say("Write a reply first.", "error"); return; }
  if (await act("reply", api("POST", `/api/review/comments/${c.id}/replies`, { body }))) await load();
}

async function resolveThread(c, resolved) {
  if (await act(resolved ? "resolve" : "reopen thread", api("POST", `/api/review/comments/${c.id}/resolve`, { resolved }))) await load();
}

// ------------------------------------------------------------------ history, diff, restore

function fmt(value) { return value === undefined || value === null ? "—" : JSON.stringify(value); }

async function openHistory(node) {
  const dialog = $("#history-dialog");
  dialog.querySelector(".target").textContent = node.label;
  const rows = await act("history", api("GET", `/api/review/history/${node.type}/${node.id}`));
  if (!rows) return;
  const body = dialog.querySelector("tbody");
  const diffOut = dialog.querySelector(".diff");
  diffOut.textContent = "";
  body.replaceChildren();
  const pick = { a: null, b: null };
  const compare = async () => {
    if (!pick.a || !pick.b) return;
    const result = await act("diff", api("GET", `/api/review/revisions/${pick.a}/diff/${pick.b}`));
    if (!result) { diffOut.textContent = ""; return; }
    diffOut.textContent = result.changes.length
      ? result.changes.map((c) => `${/^\d+$/.test(c.field) ? `point ${c.field}` : c.field}: ${fmt(c.a)} → ${fmt(c.b)}`).join("\n")
      : "No difference.";
  };
  for (const r of rows) {
    const radio = (side) => el("input", { type: "radio", name: `history-${side}`, value: r.id, "aria-label": `${side.toUpperCase()}: revision ${r.id}`,
      onchange: () => { pick[side] = r.id; compare(); } });
    const restorable = doc.can_edit && r.action !== "status" && r.after;
    body.append(el("tr", { "data-revision": r.id, "data-action": r.action, "data-testid": `revision-${r.action}` },
      el("td", {}, radio("a")), el("td", {}, radio("b")), el("td", {}, String(r.id)),
      el("td", {}, new Date(r.created_at).toLocaleString()), el("td", {}, r.user || r.source),
      el("td", {}, r.action === "status" ? `${r.before?.status || ""} → ${r.after?.status || ""}` : r.action === "review_fix" ? "fixed in review" : r.action),
      el("td", {}, r.frame === null ? "" : String(r.frame)), el("td", {}, r.comment || ""),
      el("td", {}, restorable ? el("button", { type: "button", "data-testid": "restore", onclick: () => restore(node, r) }, "Restore") : null),
    ));
  }
  if (!dialog.open) dialog.showModal();
}

function currentVersion(node, revision) {
  if (revision.node_type === "keypoint_frame") return ws.model.frame(node.id, revision.frame).version;
  if (revision.node_type === "annotation") return ws.model.payload.annotation.version;
  const fresh = nodeOf(revision.node_type, revision.node_id);
  return fresh ? fresh.version : 1;
}

async function restore(node, revision) {
  const done = await act(`restore revision ${revision.id}`,
    api("POST", `/api/review/revisions/${revision.id}/restore`, { version: currentVersion(node, revision) }));
  if (done) {
    sessionStorage.setItem("cellabel-restored", `restored revision ${revision.id}`);
    location.reload(); // the editor reloads every version it holds
  }
}

// ------------------------------------------------------------------ the stage overlay

// Drawn by the stage after the frame and the skeleton (stage.overlays), in image coordinates.
function overlay(ctx, stage) {
  if (!doc) return;
  const tid = Number(trackSelect()?.value);
  const draft = doc.model?.[tid]?.[ws.current];
  const final = tid ? ws.model.frame(tid, ws.current)?.points : null;
  const r = 3 / stage.scale;
  if (draft && $("#show-model").checked) {
    ctx.fillStyle = "rgba(220, 220, 220, 0.9)";
    for (const p of draft) if (p[2] > 0) { ctx.beginPath(); ctx.arc(p[0], p[1], r, 0, Math.PI * 2); ctx.fill(); }
  }
  if (draft && final && $("#show-diff").checked) {
    ctx.strokeStyle = "#ff4da6";
    ctx.lineWidth = 1.5 / stage.scale;
    draft.forEach((p, i) => {
      const q = final[i];
      if (!q || (Math.hypot(p[0] - q[0], p[1] - q[1]) < 0.5 && p[2] === q[2])) return;
      ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); ctx.stroke();
    });
  }
  if (stage.lastBox && doc?.can_comment) { // the box a rejection or a comment would pin
    const b = stage.lastBox;
    ctx.strokeStyle = "#ffd60a";
    ctx.lineWidth = 1.5 / stage.scale;
    ctx.setLineDash([6 / stage.scale, 4 / stage.scale]);
    ctx.strokeRect(b.x, b.y, b.w, b.h);
    ctx.setLineDash([]);
  }
  for (const c of doc?.comments || []) {
    if (c.resolved || c.frame !== ws.current) continue;
    ctx.strokeStyle = "#ff3b30";
    ctx.lineWidth = 2 / stage.scale;
    if (c.region) ctx.strokeRect(c.region.x, c.region.y, c.region.w, c.region.h);
    const p = c.point !== null && c.node_type === "track" && c.node_id === tid && final ? final[c.point] : null;
    if (p) { ctx.beginPath(); ctx.arc(p[0], p[1], 9 / stage.scale, 0, Math.PI * 2); ctx.stroke(); }
  }
}

// The stage shows the annotator's skeleton as "annotator version" says, and the overlay.
function joinStage() {
  const { stage } = ws;
  const showFinal = $("#show-final");
  stage.skeletonShown = showFinal.checked;
  showFinal.addEventListener("change", () => { stage.skeletonShown = showFinal.checked; stage.draw(); });
  for (const id of ["#show-model", "#show-diff"]) $(id).addEventListener("change", () => stage.draw());
  stage.overlays.push(overlay);
}

// ------------------------------------------------------------------ keys and start

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || e.target.matches("input, textarea, select") || document.querySelector("dialog[open]")) return;
  if (!doc?.can_review || !selected) return;
  if (e.key === "y") { e.preventDefault(); approve(selected); }
  else if (e.key === "x") { e.preventDefault(); openReject(selected); }
}

async function start() {
  ws = await workspaceReady;
  joinStage();
  document.addEventListener("keydown", onKey);
  $("#review-fix [data-testid=fix-save]").addEventListener("click", saveFix);
  $("#review-fix [data-testid=fix-cancel]").addEventListener("click", cancelFix);
  window.addEventListener("beforeunload", (e) => { if (fixing?.frames.size) e.preventDefault(); }); // an unsaved fix
  const markTrack = () => { if (trackSelect()?.value) shown.add(`track:${Number(trackSelect().value)}`); };
  markTrack(); // the track the stage opened with is on screen too
  trackSelect()?.addEventListener("change", markTrack);
  await load();
  const restored = sessionStorage.getItem("cellabel-restored");
  if (restored) { sessionStorage.removeItem("cellabel-restored"); say(restored, "ok"); }
  panel.dataset.ready = "true";
}

start().catch((err) => say(`The review panel could not load: ${err.message}`, "error"));
