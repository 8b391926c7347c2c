// One undo history per workspace. A step is one user action on one track, kept as whole-frame
// states ({frame, before, after}, a state being the points with their confidence, who set
// each point, and the keyframe mark): a compound action (interpolate over many frames, a
// held-run edit, copy previous) is one step, and undo knows which frame to show first.
// Saving the states is the workspace's job (through the save queue, version-checked).
const LIMIT = 200;

export class History extends EventTarget {
  constructor() {
    super();
    this.done = [];
    this.undone = [];
  }

  // {label, trackId, frame (the frame to show), changes: [{frame, before, after}]}, or a
  // character added or deleted: {label, kind: "character", added, fields, characterId,
  // trackId, frames (the deleted track's frame states)}.
  record(step) {
    if (step.changes && !step.changes.length) return;
    this.done.push(step);
    if (this.done.length > LIMIT) this.done.shift();
    this.undone = [];
    this.changed();
  }

  takeUndo() { return this.move(this.done, this.undone); }

  takeRedo() { return this.move(this.undone, this.done); }

  // Forget a step that can no longer be applied (someone else changed its frames).
  drop(step) {
    this.done = this.done.filter((s) => s !== step);
    this.undone = this.undone.filter((s) => s !== step);
    this.changed();
  }

  // A character brought back by undo or redo has new ids: steps on the old ones follow.
  remap(old, made) {
    const { characterId, trackId } = old;
    for (const step of [...this.done, ...this.undone]) {
      if (step.characterId === characterId) step.characterId = made.characterId;
      if (trackId !== null && step.trackId === trackId) step.trackId = made.trackId;
    }
  }

  move(from, to) {
    const step = from.pop();
    if (!step) return null;
    to.push(step);
    this.changed();
    return step;
  }

  get canUndo() { return this.done.length > 0; }

  get canRedo() { return this.undone.length > 0; }

  changed() { this.dispatchEvent(new Event("change")); }
}
