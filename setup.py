"""Build hook: a wheel (and so a non-editable `pip install .`) carries the built-in node pack
and the built editor.

The source tree keeps them where people look for them (`nodes/`, `frontend/dist/`), outside the
Python package; `build_py` copies them into the package as `latentloom/_builtin_nodes/` and
`latentloom/_editor/`, where the registry and the server look first (`registry.py`,
`server/app.py`). An editable install copies nothing: it runs from the source tree. Everything
else about the package is in `pyproject.toml`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
NODE_PACK = ROOT / "nodes"
EDITOR = ROOT / "frontend" / "dist"


class BuildWithAssets(build_py):
    """`build_py`, then the node pack's files and the editor's built files."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        package = Path(self.build_lib) / "latentloom"
        pack_target = package / "_builtin_nodes"
        shutil.rmtree(pack_target, ignore_errors=True)
        shutil.copytree(NODE_PACK, pack_target, ignore=shutil.ignore_patterns("__pycache__"))
        editor_target = package / "_editor"
        shutil.rmtree(editor_target, ignore_errors=True)
        if (EDITOR / "index.html").is_file():
            shutil.copytree(EDITOR, editor_target)
        else:
            print(
                "warning: frontend/dist/index.html is missing, so this build has no editor; "
                "run `npm run build` first (the server then shows a page saying so)"
            )


setup(cmdclass={"build_py": BuildWithAssets})
