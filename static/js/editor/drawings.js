// A character's held drawings, as the server edits them (app/annotations/held_drawings.py):
// runs of frames that show one drawing, each frame placing it by its move [scale, dx, dy] (a
// point p of the run's first frame is at scale * p + (dx, dy)), so a drawing held while it
// slides, or while the camera pans or zooms, is edited as one: an edit on one frame is carried
// to the others by their moves.

const IDENTITY = [1, 0, 0];

// The character's runs once they were looked for (its timing is set), else the clip's
// whole-frame holds, which do not move.
export function characterRuns(character, clip) {
  if (character?.drawing_runs?.length || character?.timing != null) return character.drawing_runs;
  return (clip.held_runs || []).filter(([start, end]) => end - start >= 2)
    .map(([start, end]) => ({ start, end, moves: Array.from({ length: end - start }, () => IDENTITY) }));
}

export const runAt = (runs, n) => runs.find((run) => run.start <= n && n < run.end) ?? null;

export const moveIn = (run, n) => (run ? run.moves[n - run.start] : IDENTITY);

export function carry([x, y], [s0, dx0, dy0], [s1, dx1, dy1]) {
  return [((x - dx0) / s0) * s1 + dx1, ((y - dy0) / s0) * s1 + dy1];
}

const inside = ([x, y], clip) => x >= -0.5 && x <= clip.width + 0.5 && y >= -0.5 && y <= clip.height + 0.5;

// Points set on a frame placed by `source`, as they stand on the frame placed by `target`
// whose own points are `onto`: a labelled point is carried (and no longer labelled when that
// takes it off the frame); the others keep their place on that frame.
export function carriedPoints(points, onto, source, target, clip) {
  return points.map((p, i) => {
    if (p[2] <= 0) return [onto[i][0], onto[i][1], p[2]];
    const xy = carry(p, source, target);
    return [...xy, inside(xy, clip) ? p[2] : 0];
  });
}

// A character box [x, y, w, h] carried like the points, cut to the frame (null: off it).
export function carriedBox(box, source, target, clip) {
  if (!box) return null;
  const [x0, y0] = carry([box[0], box[1]], source, target).map((v) => Math.max(v, 0));
  const [x1, y1] = carry([box[0] + box[2], box[1] + box[3]], source, target);
  const [w, h] = [Math.min(x1, clip.width) - x0, Math.min(y1, clip.height) - y0];
  return w > 0 && h > 0 ? [x0, y0, w, h] : null;
}

// Frame n's drawing in words: "own drawing", or "held drawing 12-15" and where this frame
// places it against the run's first frame ("· slid 12, 6 px", "· ×1.5, slid -50, -20 px").
export function describeHeld(run, n) {
  if (!run) return "own drawing";
  const [scale, dx, dy] = moveIn(run, n);
  const moved = [];
  if (Math.abs(scale - 1) > 1e-3) moved.push(`×${+scale.toFixed(3)}`);
  if (Math.abs(dx) > 0.05 || Math.abs(dy) > 0.05) moved.push(`slid ${Math.round(dx)}, ${Math.round(dy)} px`);
  return [`held drawing ${run.start}-${run.end - 1}`, ...(moved.length ? [moved.join(", ")] : [])].join(" · ");
}

const TIMINGS = { ones: "on ones", twos: "on twos", threes: "on threes", mixed: "mixed timing" };

// The character's drawing timing in words, for the character panel.
export function describeTiming(character) {
  if (!character) return "";
  if (character.timing == null) return "Drawing timing: not detected for this character (the clip's whole-frame holds apply).";
  const held = character.drawing_runs.length;
  return `Drawn ${TIMINGS[character.timing] ?? character.timing} · ${held} held drawing${held === 1 ? "" : "s"}`;
}
