"""Our workflow → ComfyUI's formats: the API prompt and the editor workflow (version 0.4).

Both read the class table (`mapping.py`) and sort nodes the same way (`export_common.py`);
`export_api.py` resolves modes and writes what ComfyUI runs, `export_editor.py` writes what
ComfyUI's canvas shows. Neither raises for a node ComfyUI cannot run: it is left out and the
`ExportReport` says which and why, so a saved PNG always gets its chunks.
"""

from __future__ import annotations

from latentloom.interop.comfy.export_api import export_api
from latentloom.interop.comfy.export_editor import editor_ids, export_editor

__all__ = ["editor_ids", "export_api", "export_editor"]
