// The workspace's in-memory annotation: tracks, frames (poses), held runs, undo/redo.

export const V_NONE = 0, V_HIDDEN = 1, V_VISIBLE = 2;

export class AnnotationModel {
  constructor(payload) {
    this.payload = payload;
    this.clip = payload.clip;
    this.skeletons = payload.skeletons;
    this.tracks = new Map();
    for (const character of payload.characters) {
      for (const track of character.tracks) {
        const frames = new Map(track.frames.map((f) => [f.frame, f]));
        this.tracks.set(track.id, { ...track, character, frames });
      }
    }
    this.undoStack = [];
    this.redoStack = [];
  }

  trackList() { return [...this.tracks.values()]; }

  skeletonOf(track) { return this.skeletons[track.character.skeleton]; }

  frame(trackId, n) {
    const track = this.tracks.get(trackId);
    let frame = track.frames.get(n);
    if (!frame) {
      const k = track.num_points;
      frame = { id: null, frame: n, version: 1, keyframe: false, flags: [],
        points: Array.from({ length: k }, () => [0, 0, 0, 0]), human: new Array(k).fill(0) };
      track.frames.set(n, frame);
    }
    return frame;
  }

  heldRun(n) {
    for (const [start, end] of this.clip.held_runs || []) if (start <= n && n < end) return [start, end];
    return [n, n + 1];
  }

  isHeld(n) { const [s, e] = this.heldRun(n); return e - s > 1; }

  // Replace the frame's points, keeping what is needed to undo it.
  setPoints(trackId, n, points, { record = true } = {}) {
    const frame = this.frame(trackId, n);
    const before = frame.points.map((p) => p.slice());
    frame.points = points.map((p) => p.slice());
    if (record) { this.undoStack.push({ trackId, n, before, after: frame.points.map((p) => p.slice()) }); this.redoStack = []; }
    return frame;
  }

  undo() {
    const step = this.undoStack.pop();
    if (!step) return null;
    this.redoStack.push(step);
    this.setPoints(step.trackId, step.n, step.before, { record: false });
    return step;
  }

  redo() {
    const step = this.redoStack.pop();
    if (!step) return null;
    this.undoStack.push(step);
    this.setPoints(step.trackId, step.n, step.after, { record: false });
    return step;
  }

  // Frames flagged by the model's sanity checks, and keyframes, across all tracks.
  marks() {
    const flagged = new Set(), keyframes = new Set();
    for (const track of this.tracks.values()) {
      for (const f of track.frames.values()) {
        if (f.flags && f.flags.length) flagged.add(f.frame);
        if (f.keyframe) keyframes.add(f.frame);
      }
    }
    return { flagged: [...flagged].sort((a, b) => a - b), keyframes: [...keyframes].sort((a, b) => a - b) };
  }
}
