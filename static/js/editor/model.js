// The workspace's in-memory annotation: tracks, frames (poses and character boxes), each
// character's held drawings.
import { carriedBox, carriedPoints, characterRuns, moveIn, runAt } from "./drawings.js";

export const V_NONE = 0, V_HIDDEN = 1, V_VISIBLE = 2;

// The model's suggestion: stored not labelled (v=0) but with the model's place and confidence
// (it lay outside the frame or below the project's confidence floor). Not counted as labelled
// until a person accepts or moves it.
export const isSuggestion = (p, human) => p[2] === V_NONE && !human && (p[3] ?? 0) > 0;

export class AnnotationModel {
  constructor(payload) {
    this.payload = payload;
    this.clip = payload.clip;
    this.skeletons = payload.skeletons;
    this.tracks = new Map();
    for (const character of payload.characters) {
      for (const track of character.tracks) {
        const frames = new Map(track.frames.map((f) => [f.frame, f]));
        this.tracks.set(track.id, { ...track, character, frames, runs: characterRuns(character, this.clip) });
      }
    }
  }

  trackList() { return [...this.tracks.values()]; }

  skeletonOf(track) { return this.skeletons[track.character.skeleton]; }

  frame(trackId, n) {
    const track = this.tracks.get(trackId);
    let frame = track.frames.get(n);
    if (!frame) {
      const k = track.num_points;
      frame = { id: null, frame: n, version: 1, keyframe: false, flags: [], box: null,
        points: Array.from({ length: k }, () => [0, 0, 0, 0]), human: new Array(k).fill(0), tracked: new Array(k).fill(0) };
      track.frames.set(n, frame);
    }
    return frame;
  }

  // The held drawings of the track's character (drawings.js); with no track, the clip's holds.
  drawingRuns(trackId) { return this.tracks.get(trackId)?.runs ?? characterRuns(null, this.clip); }

  // The held drawing frame n shows for the track's character, or null (a drawing of its own).
  drawingRun(trackId, n) { return runAt(this.drawingRuns(trackId), n); }

  heldRun(trackId, n) {
    const run = this.drawingRun(trackId, n);
    return run ? [run.start, run.end] : [n, n + 1];
  }

  isHeld(trackId, n) { return this.drawingRun(trackId, n) !== null; }

  // Points (or a box) set on frame `from` as they stand on frame n of the same held drawing:
  // carried by the drawing's moves, as the server carries a held-run edit.
  pointsOn(trackId, from, n, points) {
    if (n === from) return points;
    const run = this.drawingRun(trackId, from);
    return carriedPoints(points, this.frame(trackId, n).points, moveIn(run, from), moveIn(run, n), this.clip);
  }

  boxOn(trackId, from, n, box) {
    const run = this.drawingRun(trackId, from);
    return n === from ? box : carriedBox(box, moveIn(run, from), moveIn(run, n), this.clip);
  }

  // A person's edit: as the server will store it, a point that moved or changed visibility
  // becomes the person's (confidence 1); the others keep who set them and their confidence.
  // `accepted` points (the model's or the tracker's, left where they put them) become the
  // person's with their confidence; the frame keeps them in `accepted` until its next save
  // says so. A point that becomes the person's is no longer a tracked guess.
  setPoints(trackId, n, points, accepted = []) {
    const frame = this.frame(trackId, n);
    frame.human = frame.human.slice();
    frame.tracked = (frame.tracked || []).slice();
    const taken = new Set(accepted);
    frame.points = frame.points.map((old, i) => {
      const p = points[i];
      const moved = Math.hypot(old[0] - p[0], old[1] - p[1]) > 0.01;
      if (taken.has(i) && !moved && !frame.human[i]) {
        frame.human[i] = 1;
        frame.tracked[i] = 0;
        frame.accepted = [...new Set([...(frame.accepted || []), i])];
        return [old[0], old[1], p[2], old[3]];
      }
      if (!moved && old[2] === p[2]) return old.slice();
      frame.human[i] = 1;
      frame.tracked[i] = 0;
      return [p[0], p[1], p[2], 1];
    });
    return frame;
  }

  // A person's character box for a frame: [x, y, w, h] in clip pixels, or null (none).
  setBox(trackId, n, box) {
    const frame = this.frame(trackId, n);
    frame.box = box ? box.map((v) => Math.round(v * 100) / 100) : null;
    return frame;
  }

  // The whole state of a frame (what undo and redo put back) and putting it back.
  snapshot(trackId, n) {
    const frame = this.frame(trackId, n);
    return { points: frame.points.map((p) => [...p.slice(0, 3), p[3] ?? 1]), human: Array.from(frame.human, Number),
      tracked: Array.from(frame.tracked || [], Number), keyframe: !!frame.keyframe, box: frame.box ? frame.box.slice() : null };
  }

  restore(trackId, n, state) {
    const frame = this.frame(trackId, n);
    frame.points = state.points.map((p) => p.slice());
    frame.human = state.human.slice();
    frame.tracked = (state.tracked || []).slice();
    frame.keyframe = state.keyframe;
    frame.box = state.box ? state.box.slice() : null;
    frame.accepted = [];
  }

  // Frames flagged by the model's sanity checks, keyframes, and frames where a person set a
  // point (placed, moved, accepted), across all tracks.
  marks() {
    const flagged = new Set(), keyframes = new Set(), edited = new Set();
    for (const track of this.tracks.values()) {
      for (const f of track.frames.values()) {
        if (f.flags && f.flags.length) flagged.add(f.frame);
        if (f.keyframe) keyframes.add(f.frame);
        if (f.human?.some(Boolean)) edited.add(f.frame);
      }
    }
    const sorted = (set) => [...set].sort((a, b) => a - b);
    return { flagged: sorted(flagged), keyframes: sorted(keyframes), edited: sorted(edited) };
  }
}
