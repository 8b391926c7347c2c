// The workspace's one save queue. Every edit (keypoints, shots, captions, tags, quality,
// emotions, undo and redo) is saved through it: an edit is scheduled under a key (the same key
// replaces a waiting save of the same thing), saves run one at a time in the order they
// start (so each one reads the versions the previous one returned), and nothing is lost when
// the page is left: requests go out with `keepalive`, and `pagehide` sends whatever is still
// waiting at once. A save that failed stays listed until it succeeds or is given up.
import { csrfToken } from "../csrf.js";
import { KEEPALIVE_LIMIT } from "./api.js";

export class SaveFailed extends Error {}

export class SaveQueue extends EventTarget {
  constructor() {
    super();
    this.waiting = new Map(); // key -> entry not started yet (debounced, or until a flush)
    this.started = new Set(); // entries started and not finished (one runs, the rest wait)
    this.failed = new Map(); // key -> {meta, message}
    this.chain = Promise.resolve();
  }

  // Save `run` under `key` after `delay` ms (null: only when flushed). `run({keepalive})`
  // reads the state at the time it runs and throws (SaveFailed or any error) when not saved.
  schedule(key, run, { delay = 0, meta = {} } = {}) {
    const old = this.waiting.get(key);
    if (old) clearTimeout(old.timer);
    const entry = { key, run, meta, manual: delay === null, timer: null, promise: null, result: undefined };
    this.waiting.set(key, entry);
    if (delay !== null) entry.timer = setTimeout(() => this.start(entry), delay);
    this.changed();
    return entry;
  }

  // Run `run` as soon as the saves before it are done; resolves with its result (null if it failed).
  now(key, run, meta = {}) {
    const entry = this.schedule(key, run, { delay: null, meta });
    this.start(entry);
    return entry.done.then(() => (entry.error ? null : entry.result));
  }

  start(entry) {
    if (this.waiting.get(entry.key) !== entry) return;
    clearTimeout(entry.timer);
    this.waiting.delete(entry.key);
    this.started.add(entry);
    entry.done = this.chain = this.chain.then(() => this.execute(entry));
  }

  async execute(entry) {
    try {
      entry.result = await (entry.promise ??= entry.run({ keepalive: true }));
      entry.error = null;
      this.failed.delete(entry.key);
    } catch (err) {
      entry.error = err;
      this.failed.set(entry.key, { meta: entry.meta, message: err.message });
      this.dispatchEvent(new CustomEvent("failed", { detail: { key: entry.key, message: err.message } }));
    } finally {
      this.started.delete(entry);
      this.changed();
    }
  }

  // Start every waiting save now; resolves once all saves are done: true if none failed.
  async settled() {
    do {
      for (const entry of [...this.waiting.values()]) this.start(entry);
      await this.chain;
    } while (this.waiting.size || this.started.size);
    return this.failed.size === 0;
  }

  // Start the saves waiting on a timer now, without waiting for them (frame jumps, undo, a
  // hidden tab). A form the user saves by hand (a half-typed emotion row) is left alone.
  flush() {
    for (const entry of [...this.waiting.values()]) if (!entry.manual) this.start(entry);
  }

  // The page is going away: send everything not sent yet at once (keepalive requests outlive
  // the page), not one after another.
  sendNow() {
    for (const entry of [...this.waiting.values()]) this.start(entry);
    for (const entry of this.started) entry.promise ??= Promise.resolve().then(() => entry.run({ keepalive: true }));
  }

  // Give up a failed save (the user kept the other version).
  forget(key) {
    if (this.failed.delete(key)) this.changed();
  }

  // Whether an edit of frame n of track tid is still to be sent (so a saved answer for that
  // frame is older than what the page shows).
  waitingFor(tid, n) {
    return [...this.waiting.values(), ...this.started].some((e) => !e.promise && e.meta.trackId === tid && e.meta.frames?.includes(n));
  }

  get busy() { return this.waiting.size > 0 || this.started.size > 0; }

  // What is not saved yet or failed: the metas given to schedule().
  unsaved() {
    return [...this.waiting.values(), ...this.started].map((e) => e.meta).concat([...this.failed.values()].map((f) => f.meta));
  }

  changed() { this.dispatchEvent(new Event("change")); }
}

// HTMX-rendered panels (captions, tags, quality, emotions) save through the queue too: their
// forms carry `data-autosave` ("<ms>": save that long after a change, and while typing when
// `data-autosave-input` is set; "manual": only on submit or when the page is left) and post
// with fetch (keepalive), the HTML answer being swapped in as HTMX would have.
export function watchForms(queue, root, onError) {
  const formOf = (e) => e.target.closest?.("form[data-autosave]");
  const scheduleForm = (form, delay) => queue.schedule(`form:${form.id}`, (opts) => saveForm(form.id, opts, onError),
    { delay, meta: { form: form.id } });
  const onEdit = (e) => {
    const form = formOf(e);
    if (!form) return;
    const mode = form.dataset.autosave;
    const typing = e.type === "input" && !form.hasAttribute("data-autosave-input");
    scheduleForm(form, mode === "manual" || typing ? null : Number(mode));
  };
  root.addEventListener("input", onEdit);
  root.addEventListener("change", onEdit);
  root.addEventListener("submit", (e) => {
    const form = formOf(e);
    if (!form) return;
    e.preventDefault();
    e.stopPropagation(); // HTMX's own submit handling on the form: the queue posts it
    queue.start(scheduleForm(form, null));
  }, true);
}

async function saveForm(id, { keepalive }, onError) {
  const form = document.getElementById(id);
  if (!form) return;
  const body = new URLSearchParams(new FormData(form)).toString();
  const response = await fetch(form.getAttribute("hx-post"), {
    method: "POST", body, credentials: "same-origin", keepalive: keepalive && body.length < KEEPALIVE_LIMIT,
    headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrfToken(), "HX-Request": "true", "HX-Target": id },
  });
  const html = await response.text();
  const isHtml = (response.headers.get("content-type") || "").includes("text/html");
  // A refused form comes back re-rendered with each error beside its field (X-Form-Errors).
  const refused = response.headers.get("X-Form-Errors");
  if (isHtml && (response.ok || response.status === 409 || refused)) {
    const selector = form.getAttribute("hx-target");
    const target = selector ? document.querySelector(selector) : form;
    window.htmx.swap(target, html, { swapStyle: form.getAttribute("hx-swap") || "innerHTML" });
    if (refused) document.querySelector('[aria-invalid="true"]')?.focus();
  } else if (!response.ok && isHtml && onError) {
    onError(html);
  }
  if (!response.ok) {
    throw new SaveFailed(response.status === 409 ? "Someone else changed this first; their version is shown."
      : refused ? "Not saved: correct the fields marked in the form."
      : `The change was not saved (error ${response.status}).`);
  }
}

// Leaving the page never drops a save: in-app links and plain forms (sign out) wait for the
// queue, the browser's own navigation (Back, closing the tab) is warned about while a save is
// pending or failed, and `pagehide` / a hidden tab sends what is waiting.
export function guardLeaving(queue, { say }) {
  let leaving = false;
  const leaveAfterSaving = async (go) => {
    say("saving before leaving…");
    const saved = await queue.settled();
    if (!saved) {
      const why = [...queue.failed.values()].map((f) => f.message).join(" ");
      if (!window.confirm(`Some of your changes are not saved: ${why} Leave anyway?`)) { say(why, "error"); return; }
    }
    leaving = true;
    go();
  };
  const mustWait = () => queue.busy || queue.failed.size > 0;
  document.addEventListener("click", (e) => {
    const link = e.target.closest?.("a[href]");
    if (!link || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (link.target || link.hasAttribute("download") || link.origin !== location.origin || !mustWait()) return;
    e.preventDefault();
    leaveAfterSaving(() => location.assign(link.href));
  });
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (e.defaultPrevented || form.matches("[data-autosave], [hx-post], [method=dialog]") || !mustWait()) return;
    e.preventDefault();
    leaveAfterSaving(() => form.submit());
  });
  window.addEventListener("beforeunload", (e) => {
    if (leaving || !mustWait()) return;
    queue.flush();
    e.preventDefault();
    e.returnValue = "";
  });
  window.addEventListener("pagehide", () => queue.sendNow());
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") queue.flush(); });
  window.addEventListener("pageshow", (e) => { if (e.persisted) leaving = false; });
}
