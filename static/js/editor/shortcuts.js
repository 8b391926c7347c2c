// The workspace's keyboard shortcuts, written once: the key handler and the help sheet (the
// `?` dialog) are both made from SHORTCUTS. Each row of the sheet lists its keys as
// [KeyboardEvent.key, the workspace command it runs, how the sheet writes it (default: the
// key)], then what they do; rows without keys describe pointer gestures.
export const SHORTCUTS = [
  { keys: [["ArrowLeft", "stepBack", "←"], ["ArrowRight", "stepForward", "→"]], does: "previous / next frame (Shift: 10)" },
  { keys: [[" ", "play", "Space"]], does: "play / pause" },
  { keys: [["[", "previousKeyframe"], ["]", "nextKeyframe"]], does: "previous / next keyframe" },
  { keys: [["f", "nextFlagged"], ["F", "previousFlagged"]], does: "next / previous flagged frame" },
  { keys: [["n", "nextShot"], ["p", "previousShot"]], does: "next / previous shot" },
  { gesture: "click, Shift+click, drag a box", does: "select points; drag to move them together" },
  { gesture: "Alt+drag or middle drag, wheel", does: "pan, zoom" },
  { keys: [["1", "visible"], ["2", "hidden"], ["0", "absent"], ["3", "absent"]], does: "selected points visible / occluded / not present (0 or 3)" },
  { keys: [["x", "drawBox"], ["X", "boxFromPoints", "Shift+X"]], does: "character box: draw it (then drag on the frame) / take it from the labelled body points, padded as the export pads them; drag a corner to adjust" },
  { keys: [["Delete", "deleteBox"], ["Backspace", "deleteBox"]], does: "clear the selected character box (click its edge to select it)" },
  { keys: [["k", "keyframe"]], does: "toggle keyframe" },
  { keys: [["i", "interpolate"]], does: "interpolate from the previous keyframe to this one" },
  { keys: [["c", "copyPrevious"]], does: "copy the previous drawing's pose" },
  { keys: [["Enter", "acceptPoint"]], does: "accept the selected model points: a faded suggestion becomes a labelled point" },
  { keys: [["a", "accept"]], does: "accept model points above the threshold (faded suggestions on the frame too)" },
  { keys: [["t", "trackForward"], ["T", "trackBackward", "Shift+T"]], does: "accept the points shown on this frame (it becomes a keyframe) and track them forward / backward through the shot (only the selected ones when points are selected); tracked points are faded guesses until accepted" },
  { keys: [["A", "acceptSpan", "Shift+A"]], does: "accept the tracked points from the last keyframe up to this frame (the frames just stepped through)" },
  { keys: [["s", "split"], ["m", "merge"], ["b", "moveBoundary"]], does: "split the shot here / merge with the previous shot / move the nearest shot boundary here" },
  { keys: [["g", "tags"]], then: ", then Tab / arrows / Space", does: "tag chips: jump to the tags, move between groups and values, choose" },
  { keys: [["z", "undoKey", "Ctrl+Z"], ["Z", "redoKey", "Ctrl+Shift+Z"], ["y", "redoKey", "Ctrl+Y"]], does: "undo / redo (undo first shows the frame it changes)" },
  { keys: [["?", "help"]], does: "this sheet" },
];

// The key handler's map, KeyboardEvent.key -> handler(event), from the workspace's commands.
export function keyHandlers(commands) {
  const handlers = {};
  for (const [key, command] of SHORTCUTS.flatMap((row) => row.keys || [])) {
    if (!commands[command]) throw new Error(`The shortcut ${key} names no workspace command ${command}.`);
    handlers[key] = commands[command];
  }
  return handlers;
}

// Fill the help sheet's table: one row per entry, each key in a <kbd>.
export function renderSheet(table) {
  table.replaceChildren(...SHORTCUTS.map((row) => {
    const keys = document.createElement("td");
    if (row.gesture) keys.textContent = row.gesture;
    row.keys?.forEach(([key, , shown = key], i) => {
      if (i) keys.append(" / ");
      keys.append(Object.assign(document.createElement("kbd"), { textContent: shown }));
    });
    if (row.then) keys.append(row.then);
    const does = Object.assign(document.createElement("td"), { textContent: row.does });
    const tr = document.createElement("tr");
    tr.append(keys, does);
    return tr;
  }));
}
