// The person box rule of the export (app/export/formats/boxes.py), written once for the
// workspace: the tight box of the labelled body and feet points (COCO-WholeBody points 0-22)
// scaled by BOX_PADDING about its centre, clipped to the frame; a pose with no labelled body
// or feet point takes the padded box of all its labelled points. "Box from points" fills the
// character box with it, which the person may then adjust; the export writes a drawn box in
// place of the padded one.
export const BODY_AND_FEET = 23; // COCO-WholeBody points 0..22: body 17, then feet 6
export const BOX_PADDING = 1.25; // mmpose's bbox_xyxy2cs(..., padding=1.25)

// `first`: the COCO-WholeBody index of the skeleton's point 0 (23 for face68, else 0).
// Returns [x, y, w, h] in clip pixels (as the server stores a box), or null when no point is
// labelled.
export function paddedBox(points, width, height, first = 0) {
  const seen = points.map((p, i) => i).filter((i) => points[i][2] > 0);
  const body = seen.filter((i) => i + first < BODY_AND_FEET);
  const use = body.length ? body : seen;
  if (!use.length) return null;
  const xs = use.map((i) => points[i][0]), ys = use.map((i) => points[i][1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const grow = (BOX_PADDING - 1) / 2;
  const [dx, dy] = [(x1 - x0) * grow, (y1 - y0) * grow];
  [x0, x1, y0, y1] = [Math.max(x0 - dx, 0), Math.min(x1 + dx, width), Math.max(y0 - dy, 0), Math.min(y1 + dy, height)];
  return [x0, y0, x1 - x0, y1 - y0];
}
