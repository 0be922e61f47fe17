"""Model-folder listings: a cached listing against walking the folder again, same run.

A library of 200 folders holding 5,000 model files (and one symlink loop), as a validation
sees it: `ModelFolders.list` per request. Prints the median time of a fresh walk (the cache
forgotten before each call) and of a cached listing (a stat of each folder, no listing of
files), and their ratio.

    .venv/bin/python -m bench.model_listing
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from latentloom.models.folders import ModelFolders

FOLDERS, FILES_PER_FOLDER, REPEATS = 200, 25, 30
SETTLED = (1_600_000_000, 1_600_000_000)  # mtimes far enough back that the cache trusts them


def build(root: Path) -> None:
    checkpoints = root / "checkpoints"
    for folder in range(FOLDERS):
        here = checkpoints / f"family-{folder:03d}"
        here.mkdir(parents=True)
        for file in range(FILES_PER_FOLDER):
            (here / f"model-{file:02d}.safetensors").touch()
        os.utime(here, SETTLED)
    (checkpoints / "family-000" / "loop").symlink_to(checkpoints, target_is_directory=True)
    for path in (checkpoints / "family-000", checkpoints, root):
        os.utime(path, SETTLED)


def median_ms(folders: ModelFolders, *, forget: bool) -> float:
    timings = []
    for _ in range(REPEATS):
        if forget:
            folders.refresh()
        started = time.perf_counter()
        names = folders.list("checkpoints")
        timings.append(time.perf_counter() - started)
        assert len(names) == FOLDERS * FILES_PER_FOLDER, len(names)
    return statistics.median(timings) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        build(root)
        folders = ModelFolders.of([root])
        walked = median_ms(folders, forget=True)
        folders.list("checkpoints")
        cached = median_ms(folders, forget=False)
    print(f"{FOLDERS * FILES_PER_FOLDER:,} files in {FOLDERS} folders, median of {REPEATS}:")
    print(f"  walk every time (baseline)  {walked:8.2f} ms")
    print(f"  cached, folders re-stat'ed  {cached:8.2f} ms")
    print(f"  ratio cached / walk         {cached / walked:8.3f}")


if __name__ == "__main__":
    main()
