"""A clip manifest (JSONL) for a folder of generated samples, so imports carry their subsets."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST_NAME = "manifest.jsonl"


def write_samples_manifest(directory: Path) -> Path:
    """One row per `<name>.mp4` with a `<name>.json` truth: path, subsets, tags, external id."""
    rows = []
    for truth_file in sorted(directory.glob("*.json")):
        truth = json.loads(truth_file.read_text())
        if not isinstance(truth, dict) or "clip" not in truth:
            continue
        rows.append(
            {
                "path": truth["clip"],
                "subsets": truth.get("subsets", []),
                "tags": truth.get("tags", {}),
                "external_id": truth_file.stem,
            }
        )
    manifest = directory / MANIFEST_NAME
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest
