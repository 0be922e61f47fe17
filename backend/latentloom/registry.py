"""The node registry, built once at start-up from the packs' explicit lists.

A pack is a Python module with a `NODES` list of `NodeSpec`s. Packs come from folders of
Python files (the built-in `nodes/` folder is one) and from installed packages that expose
an entry point in the `latentloom.nodes` group; both go through `register_pack`. Everything
that can be wrong with a spec is found here, at load time, and named — never at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from latentloom.node import DynamicChoices, Input, NodeSpec, WidgetType

ENTRY_POINT_GROUP = "latentloom.nodes"
# An installed package carries the built-in pack inside it (copied there by setup.py's build
# step); a source checkout (and an editable install) has it at the top of the tree.
PACKAGED_PACK_FOLDER = Path(__file__).resolve().parent / "_builtin_nodes"
SOURCE_PACK_FOLDER = Path(__file__).resolve().parents[2] / "nodes"
BUILTIN_PACK_FOLDER = PACKAGED_PACK_FOLDER if PACKAGED_PACK_FOLDER.is_dir() else SOURCE_PACK_FOLDER
_NODE_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class RegistryError(Exception):
    """A pack or spec is malformed; the message names the pack and the node."""


@dataclass
class Registry:
    specs: dict[str, NodeSpec] = field(default_factory=dict)
    pack_of: dict[str, str] = field(default_factory=dict)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.specs

    def __iter__(self) -> Iterator[NodeSpec]:
        return iter(self.specs.values())

    def __len__(self) -> int:
        return len(self.specs)

    def get(self, node_id: str) -> NodeSpec | None:
        return self.specs.get(node_id)

    def register_pack(self, pack_name: str, specs: Iterable[NodeSpec]) -> None:
        problems: list[str] = []
        new: dict[str, NodeSpec] = {}
        for spec in specs:
            if not isinstance(spec, NodeSpec):
                problems.append(f"{spec!r} is not a NodeSpec")
                continue
            owner = self.pack_of.get(spec.id) or (pack_name if spec.id in new else None)
            if owner is not None:
                problems.append(f"node id {spec.id!r} is already registered by pack {owner!r}")
                continue
            problems.extend(f"node {spec.id!r}: {p}" for p in spec_problems(spec))
            new[spec.id] = spec
        if problems:
            raise RegistryError(f"pack {pack_name!r} cannot be loaded:\n  " + "\n  ".join(problems))
        self.specs.update(new)
        self.pack_of.update(dict.fromkeys(new, pack_name))


def spec_problems(spec: NodeSpec) -> list[str]:
    """Everything wrong with one spec, including disagreement with its function's signature."""
    problems: list[str] = []
    if not _NODE_ID.match(spec.id):
        problems.append("id must look like 'family.name' (lowercase letters, digits, _)")
    for kind, names in (
        ("input", [i.name for i in spec.inputs]),
        ("output", [o.name for o in spec.outputs]),
    ):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"duplicate {kind} names {duplicates}")
    for spec_input in spec.inputs:
        problems.extend(f"input {spec_input.name!r}: {p}" for p in _widget_problems(spec_input))
    problems.extend(_signature_problems(spec))
    return problems


def _widget_problems(spec_input: Input) -> list[str]:
    if spec_input.type == WidgetType.ENUM and spec_input.choices is None:
        return ["an ENUM needs choices"]
    if isinstance(spec_input.choices, tuple) and spec_input.default not in spec_input.choices:
        return [
            f"default {spec_input.default!r} is not among the choices {list(spec_input.choices)}"
        ]
    if isinstance(spec_input.choices, DynamicChoices) or spec_input.default is None:
        return []
    low, high, default = spec_input.min, spec_input.max, spec_input.default
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric and ((low is not None and default < low) or (high is not None and default > high)):
        return [f"default {default} is outside [{low}, {high}]"]
    return []


def _signature_problems(spec: NodeSpec) -> list[str]:
    try:
        parameters = list(inspect.signature(spec.function).parameters.values())
    except (TypeError, ValueError):
        return ["its function has no inspectable signature"]
    if not parameters or parameters[0].name != "ctx":
        return ["its function's first parameter must be 'ctx' (the NodeContext)"]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return ["its function must not take *args or **kwargs: name every input"]
    declared = {spec_input.name for spec_input in spec.inputs}
    accepted = {p.name for p in parameters[1:]}
    problems = []
    if declared - accepted:
        problems.append(f"its function has no parameter for inputs {sorted(declared - accepted)}")
    if accepted - declared:
        problems.append(
            f"its function takes {sorted(accepted - declared)}, which the spec does not declare"
        )
    return problems


def load_pack_folder(registry: Registry, folder: Path) -> None:
    """Register every `*.py` file (or package) in a folder that defines `NODES`."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise RegistryError(f"node pack folder {folder} does not exist")
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py" or (path / "__init__.py").is_file():
            module = _import_file(folder, path)
            specs = getattr(module, "NODES", None)
            if specs is None:
                continue  # helper modules of a pack
            registry.register_pack(f"{folder.name}/{path.name}", specs)


def _import_file(folder: Path, path: Path) -> ModuleType:
    folder_tag = hashlib.sha1(str(folder).encode()).hexdigest()[:8]
    module_name = f"latentloom_pack_{folder_tag}_{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    location = path / "__init__.py" if path.is_dir() else path
    spec = importlib.util.spec_from_file_location(module_name, location)
    if spec is None or spec.loader is None:
        raise RegistryError(f"cannot import node pack file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise RegistryError(f"node pack file {path} failed to import: {error!r}") from error
    return module


def load_entry_points(registry: Registry) -> None:
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        specs = entry_point.load()
        registry.register_pack(
            f"{entry_point.dist.name if entry_point.dist else '?'}:{entry_point.name}", specs
        )


def build_registry(
    extra_folders: Iterable[Path] = (), *, entry_point_packs: bool = True
) -> Registry:
    registry = Registry()
    load_pack_folder(registry, BUILTIN_PACK_FOLDER)
    for folder in extra_folders:
        load_pack_folder(registry, Path(folder))
    if entry_point_packs:
        load_entry_points(registry)
    return registry
