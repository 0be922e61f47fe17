"""`latentloom import-comfy IN [-o OUT]`: the importer for scripts and shells.

The workflow goes to OUT or stdout and the report to stderr, so `import-comfy a.png > a.json`
works. The exit status tells a script what happened: 0 every node mapped, 3 some nodes are
placeholders (the workflow is written all the same, and validation will name them), 2 the
file could not be read or is malformed (nothing is written).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from latentloom.interop.comfy.report import ComfyFormatError, ImportReport

EXIT_COMPLETE = 0
EXIT_MALFORMED = 2
EXIT_UNSUPPORTED = 3


def import_comfy(source: Path, output: Path | None, node_folders: Sequence[Path] = ()) -> int:
    from latentloom.interop.comfy.importer import import_file_bytes
    from latentloom.registry import RegistryError, build_registry

    try:
        data = source.read_bytes()
        registry = build_registry(node_folders)
        result = import_file_bytes(data, source.name, registry)
    except (OSError, RegistryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_MALFORMED
    except ComfyFormatError as error:
        print(f"error: {source}: {error}", file=sys.stderr)
        return EXIT_MALFORMED
    text = json.dumps(result.workflow, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    print_report(result.report, sys.stderr)
    return EXIT_COMPLETE if result.report.complete else EXIT_UNSUPPORTED


def print_report(report: ImportReport, stream: TextIO) -> None:
    where = f" ({report.source})" if report.source else ""
    print(f"read {report.format}{where}", file=stream)
    print(f"mapped {len(report.mapped)} node(s):", file=stream)
    for node in report.mapped:
        print(f'  "{node.node}" {node.comfy_class} -> {node.type}', file=stream)
    if report.unsupported:
        print(f"unsupported {len(report.unsupported)} node(s), kept as placeholders:", file=stream)
        for entry in report.unsupported:
            print(f'  "{entry.node}" {entry.comfy_class}: {entry.reason}', file=stream)
    for note in report.notes:
        print(f"note: {note}", file=stream)
