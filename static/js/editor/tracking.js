// The workspace's point tracking: the labelled points on the shown frame are accepted (the
// press is the person's acceptance of what the frame shows; it becomes a keyframe) and
// carried through the shot by the server (POST /api/tracks/{id}/track), forward (T) or
// backward (Shift+T), only the selected ones when points are selected ("track this point").
// Shift+A accepts the tracked points from the last keyframe up to the shown frame
// (POST /api/tracks/{id}/accept-span). Each is one undo step; a progress note shows when it takes longer than
// PROGRESS_DELAY; a refusal is said in the page. A character just added is offered tracking
// through the whole shot once its points are set on a frame.
import { api } from "./api.js";

const PROGRESS_DELAY = 200; // ms: quicker than this feels instant, slower shows progress

// `shown()` gives the shown {track, frame (its number), selected (point indices)} or null;
// `version(trackId, n)` the frame's version when the request goes out; `runAction`,
// `recordAction`, `absorb` and `say` are the workspace's; `progress` and `offer` are the
// page's progress note and the add-character offer (with its Track and Not now buttons).
export function trackingCommands({ shown, version, runAction, recordAction, absorb, say, progress, offer }) {
  const fresh = new Set(); // tracks of characters just added, not yet offered tracking

  async function track(directions, { all = false } = {}) {
    const s = shown();
    if (!s) return;
    const { track: t, frame: n } = s;
    const points = !all && s.selected.length ? s.selected : null;
    const what = points ? `${points.length} selected point(s)` : "the points";
    const label = `tracking ${what} ${directions.join(" and ")} from frame ${n}`;
    const timer = setTimeout(() => { progress.hidden = false; }, PROGRESS_DELAY);
    const results = [];
    try {
      for (const direction of directions) {
        const result = await runAction(label, () => api("POST", `/api/tracks/${t.id}/track`,
          { frame: n, version: version(t.id, n), direction, points }));
        if (!result) break; // refused: runAction said why
        absorb(t.id, result.frames); // the key's new version goes with the next direction
        results.push(result);
      }
    } finally {
      clearTimeout(timer);
      progress.hidden = true;
    }
    if (!results.length) return;
    const frames = results.flatMap((r) => r.frames);
    recordAction(label, t.id, n, frames);
    say(summary(results, n), frames.length ? "ok" : "");
  }

  function summary(results, n) {
    const written = results.reduce((sum, r) => sum + r.points, 0);
    if (!written) return `Nothing tracked from frame ${n}: the next frame is a keyframe, set by a person, in another shot, or every point was lost.`;
    const reached = results.map((r) => r.reached).filter((f) => f !== null && f !== n);
    const lost = results.flatMap((r) => Object.entries(r.lost));
    const stopped = lost.length
      ? ` ${lost.reduce((sum, [, p]) => sum + p.length, 0)} point(s) lost on frame(s) ${lost.map(([f]) => f).join(", ")} (flagged).`
      : "";
    return `Accepted frame ${n} as a keyframe and tracked ${written} point position(s) from it to frame ${reached.join(" and ")}, faded until accepted (Enter, or Shift+A for the span).${stopped}`;
  }

  async function acceptSpan() {
    const s = shown();
    if (!s) return;
    const { track: t, frame: n } = s;
    const label = `accepting the tracked span up to frame ${n}`;
    const result = await runAction(label, () => api("POST", `/api/tracks/${t.id}/accept-span`, { frame: n }));
    if (!result) return; // refused: runAction said why
    recordAction(label, t.id, n, result.frames);
    absorb(t.id, result.frames);
    say(result.frames.length ? `Accepted the points of frames ${result.start} to ${result.end}.` : `Nothing to accept in frames ${result.start} to ${result.end}.`, result.frames.length ? "ok" : "");
  }

  function closeOffer() {
    offer.hidden = true;
  }

  offer.querySelector("[data-offer=track]").addEventListener("click", () => { closeOffer(); track(["forward", "backward"], { all: true }); });
  offer.querySelector("[data-offer=dismiss]").addEventListener("click", closeOffer);

  return {
    commands: { trackForward: () => track(["forward"]), trackBackward: () => track(["backward"]), acceptSpan },
    // A character was just added: offer tracking once a person has set its points on a frame.
    added(trackId) { if (trackId) fresh.add(trackId); },
    // The shown frame of track `t` was edited: the first time a fresh character has points
    // there, offer to track it through the shot (its button is next in the tab order; T too).
    edited(t, frame) {
      if (!fresh.has(t.id) || !frame.human.some(Boolean)) return;
      fresh.delete(t.id);
      offer.querySelector("[data-offer=text]").textContent =
        `Track ${t.character.name} through the shot from frame ${frame.frame}? Its points become faded guesses to check and accept.`;
      offer.hidden = false;
    },
  };
}
