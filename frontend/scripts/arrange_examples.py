"""Lay out every example in workflows/ with the editor's Arrange (left to right, no link
crossing a node) and write back only each node's ``ui.pos``.

    .venv/bin/python frontend/scripts/arrange_examples.py

1. dumps the full node catalog (what ``GET /api/nodes`` serves, no model choices) to
   frontend/src/model/fixtures/catalog-all.json, so node sizes match what the editor draws;
2. runs frontend/scripts/arrange-examples.ts (vite-node), which prints the positions;
3. rewrites each file with the same JSON formatting the examples use (indent 2, ASCII).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from latentloom.catalog import catalog
from latentloom.registry import build_registry

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    specs = catalog(build_registry(entry_point_packs=False), lambda kind: [])
    fixture = ROOT / "frontend/src/model/fixtures/catalog-all.json"
    fixture.write_text(json.dumps(specs, indent=1) + "\n")
    printed = subprocess.run(
        [str(ROOT / "node_modules/.bin/vite-node"), "scripts/arrange-examples.ts"],
        cwd=ROOT / "frontend",
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    positions: dict[str, dict[str, list[int]]] = json.loads(printed.strip().splitlines()[-1])
    for name, nodes in positions.items():
        path = ROOT / "workflows" / name
        document = json.loads(path.read_text())
        for node_id, pos in nodes.items():
            document["nodes"][node_id].setdefault("ui", {})["pos"] = pos
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"{name}: {len(nodes)} nodes placed")


if __name__ == "__main__":
    main()
