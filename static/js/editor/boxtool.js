// The workspace's character box commands: the Box tool (then a drag on the frame draws the
// box; the stage's corner handles adjust it), Box from points, and clearing the selected box.
// Every change goes through the workspace's `editBox` (history and the save queue).
import { paddedBox } from "./boxes.js";

// Where a skeleton's point 0 sits in COCO-WholeBody (face68 is its points 23-90), so that
// Box from points knows the body points as the export does.
const FIRST_WHOLEBODY_POINT = { face68: 23 };

// `stage()` and `button()` give the stage and the Box button, `shown()` the shown
// {track, frame, clip} (null with no track).
export function boxCommands({ stage, say, editBox, button, shown }) {
  return {
    drawBox: () => {
      const st = stage();
      st.drawingBox = !st.drawingBox;
      button()?.setAttribute("aria-pressed", String(st.drawingBox));
      say(st.drawingBox ? "Box: drag on the frame to draw the character's box." : "");
    },
    // The box the export would pad around the labelled body points (boxes.js), to adjust.
    boxFromPoints: () => {
      const { track, frame, clip } = shown() ?? {};
      if (!frame) return;
      const first = FIRST_WHOLEBODY_POINT[track.character.skeleton] ?? 0;
      const box = paddedBox(frame.points, clip.width, clip.height, first);
      if (!box || box[2] <= 0 || box[3] <= 0) { say("Box from points needs labelled points that span an area.", "error"); return; }
      editBox(box, "box from points");
    },
    deleteBox: () => {
      if (stage().boxSelected && shown()?.frame.box) editBox(null, "clearing the box");
    },
  };
}
