// The workspace's hook for the panels that join it (the review panel): a promise of the
// workspace, resolved once the editor is built. A panel draws on the stage through
// `stage.overlays` and acts through the workspace's functions; it never replaces them.
let built;
export const workspaceReady = new Promise((resolve) => { built = resolve; });

// workspace.js calls this once with its handle (show, current, model, stage, reload, fix, ...).
export function workspaceBuilt(workspace) { built(workspace); }
