"""ComfyUI subgraphs kept as our version-3 subgraphs: the flattened import folded back.

The editor-format importer first flattens (subgraphs.py) and converts every node as if the
file had no subgraphs, so class mapping, widgets, primitives and modes work one way only.
Folding then undoes the flattening on the converted document, innermost instances first:
the nodes of instance `10` (ids `10:<inner id>`) become the nodes of a definition stored
once per ComfyUI definition under its id, and an instance node `10` of type
`subgraph:<definition id>` takes their place:

- each ComfyUI subgraph input becomes our input, named as in the file (made unique), whose
  targets are the inner inputs its links fed; the value flattening put there (an outside
  link, or the widget value the instance shows) moves onto the instance node;
- each ComfyUI subgraph output becomes our output exposing the inner node output its link
  came from, and outside links to that inner output go to the instance's output instead.

Inner positions and modes come from the definition as written (flattening moved them to the
instance and gave them its mode). What folding cannot express (a reroute inside a subgraph,
an output fed straight from an input) raises `FoldError`; the importer then keeps the
flattened form and says why in its report.
"""

from __future__ import annotations

from typing import Any

from latentloom.interop.comfy.convert import PLACEHOLDER_PREFIX, RawLink, mapping_for
from latentloom.interop.comfy.mapping import MODES_FROM_COMFY
from latentloom.interop.comfy.subgraphs import FlatNode, Flattened, Instance
from latentloom.registry import Registry

SEPARATOR = ":"
INSTANCE_PREFIX = "subgraph:"

Json = dict[str, Any]


class FoldError(Exception):
    """A subgraph of the file that our format cannot hold as a subgraph (kept flattened)."""


class _Folder:
    def __init__(self, document: Json, flat: Flattened, registry: Registry) -> None:
        self.nodes: Json = dict(document["nodes"])
        self.reroutes: list[Json] = list((document.get("meta") or {}).get("reroutes") or [])
        self.flat_nodes: dict[str, FlatNode] = {node.id: node for node in flat.nodes}
        self.instances: dict[str, Instance] = {instance.id: instance for instance in flat.instances}
        self.registry = registry
        self.definitions: dict[str, Json] = {}
        # Per folded instance: our input name by ComfyUI slot, our output name by slot.
        self.input_names: dict[str, list[str]] = {}
        self.output_names: dict[str, list[str]] = {}

    def fold(self, instance: Instance) -> None:
        prefix = instance.id + SEPARATOR
        inside = [node_id for node_id in self.nodes if node_id.startswith(prefix)]
        if any(SEPARATOR in node_id[len(prefix) :] for node_id in inside):
            raise FoldError(f'node "{instance.id}" holds nodes that were not folded')
        if any(str(route.get("id", "")).startswith(prefix) for route in self.reroutes):
            raise FoldError(f'subgraph node "{instance.id}" has a reroute inside')
        definition = instance.definition
        inputs = _unique(
            [str(e.get("name") or f"input_{k}") for k, e in enumerate(_list(definition, "inputs"))]
        )
        outputs = _unique(
            [
                str(e.get("name") or f"output_{k}")
                for k, e in enumerate(_list(definition, "outputs"))
            ]
        )
        self.input_names[instance.id], self.output_names[instance.id] = inputs, outputs
        targets = self._targets(inside, prefix, len(inputs))
        values: Json = {}
        for slot, found in enumerate(targets):
            for node_id, name in found:
                value = self.nodes[node_id]["inputs"].get(name)
                if value is not None and inputs[slot] not in values:
                    values[inputs[slot]] = value
        exposed = self._exposed(instance, prefix, outputs)
        inner = self._inner_nodes(instance, inside, prefix, targets)
        self._replace(instance, inside, values, exposed)
        definition_id = str(definition["id"])
        if definition_id not in self.definitions:
            types = [e.get("type") for e in _list(definition, "inputs")]
            out_types = [e.get("type") for e in _list(definition, "outputs")]
            local = len(prefix)
            self.definitions[definition_id] = {
                "name": str(definition.get("name") or "Subgraph"),
                "inputs": [
                    {
                        "name": name,
                        "type": _type(types[slot]),
                        "targets": [{"node": n[local:], "input": i} for n, i in targets[slot]],
                    }
                    for slot, name in enumerate(inputs)
                ],
                "outputs": [
                    {
                        "name": outputs[slot],
                        "type": _type(out_types[slot]),
                        "node": node_id[local:],
                        "output": output,
                    }
                    for slot, (node_id, output) in sorted(exposed.items())
                ],
                "nodes": inner,
            }

    def _targets(self, inside: list[str], prefix: str, count: int) -> list[list[tuple[str, str]]]:
        """Per subgraph input slot: the (flat node id, our input name) pairs it feeds."""
        targets: list[list[tuple[str, str]]] = [[] for _ in range(count)]
        for node_id in inside:
            if node_id in self.input_names:  # a nested instance, folded already
                nested = self.instances[node_id]
                for own, parent in nested.from_inputs.items():
                    if parent < count and own < len(self.input_names[node_id]):
                        targets[parent].append((node_id, self.input_names[node_id][own]))
                continue
            flat = self.flat_nodes.get(node_id)
            if flat is None:
                continue
            for comfy_name, slot in flat.from_inputs.items():
                if slot < count:
                    targets[slot].append((node_id, self._our_input(flat, comfy_name)))
        return targets

    def _exposed(
        self, instance: Instance, prefix: str, outputs: list[str]
    ) -> dict[int, tuple[str, str]]:
        """Per output slot: the inner (flat node id, our output name) it exposes."""
        exposed: dict[int, tuple[str, str]] = {}
        for slot, source in instance.outputs.items():
            if slot >= len(outputs):
                continue
            if not isinstance(source, RawLink) or not source.node.startswith(prefix):
                raise FoldError(
                    f'output "{outputs[slot]}" of subgraph node "{instance.id}" is fed straight '
                    "from an input or a value"
                )
            exposed[slot] = (source.node, self._our_output(source))
        return exposed

    def _inner_nodes(
        self,
        instance: Instance,
        inside: list[str],
        prefix: str,
        targets: list[list[tuple[str, str]]],
    ) -> Json:
        fed = {pair for found in targets for pair in found}
        written = {str(n.get("id")): n for n in _list(instance.definition, "nodes")}
        inner: Json = {}
        for node_id in inside:
            node = dict(self.nodes[node_id])
            inputs: Json = {}
            for name, value in node["inputs"].items():
                if (node_id, name) in fed:
                    continue  # the instance holds it now
                if _is_link(value):
                    if not value["node"].startswith(prefix):
                        raise FoldError(f'node "{node_id}" links out of its subgraph')
                    value = {**value, "node": value["node"][len(prefix) :]}
                inputs[name] = value
            node["inputs"] = inputs
            data = written.get(node_id[len(prefix) :], {})
            node.pop("mode", None)
            mode = MODES_FROM_COMFY.get(data.get("mode", 0), "run")
            if mode != "run":
                node["mode"] = mode
            if isinstance(data.get("pos"), list) and isinstance(node.get("ui"), dict):
                node["ui"] = {**node["ui"], "pos": data["pos"]}
            inner[node_id[len(prefix) :]] = node
        return inner

    def _replace(
        self,
        instance: Instance,
        inside: list[str],
        values: Json,
        exposed: dict[int, tuple[str, str]],
    ) -> None:
        """The instance node in place of its inner nodes; outside links to it."""
        outputs = self.output_names[instance.id]
        redirect = {
            source: {"node": instance.id, "output": outputs[slot]}
            for slot, source in exposed.items()
        }
        data = instance.data
        node: Json = {"type": INSTANCE_PREFIX + str(instance.definition["id"]), "inputs": values}
        mode = MODES_FROM_COMFY.get(data.get("mode", 0), "run")
        if mode != "run":
            node["mode"] = mode
        if isinstance(data.get("title"), str) and data["title"] != instance.definition.get("name"):
            node["title"] = data["title"]
        ui = {key: data[key] for key in ("pos", "size") if isinstance(data.get(key), list)}
        if ui:
            node["ui"] = ui
        gone = set(inside)
        rebuilt: Json = {}
        for node_id, other in self.nodes.items():
            if node_id in gone:
                if instance.id not in rebuilt:
                    rebuilt[instance.id] = node
                continue
            rebuilt[node_id] = {
                **other,
                "inputs": {
                    n: _redirect(v, redirect, gone, node_id) for n, v in other["inputs"].items()
                },
            }
        rebuilt.setdefault(instance.id, node)
        self.nodes = rebuilt
        for route in self.reroutes:
            if "input" in route:
                route["input"] = _redirect(route["input"], redirect, gone, str(route.get("id")))

    def _our_input(self, flat: FlatNode, comfy_name: str) -> str:
        found = mapping_for(str(flat.data["type"]), self.registry)
        return found[0].ours(comfy_name) if found else comfy_name

    def _our_output(self, source: RawLink) -> str:
        if source.node in self.output_names:  # a nested instance
            return self.output_names[source.node][source.output]
        node = self.nodes.get(source.node)
        flat = self.flat_nodes.get(source.node)
        if node is None or flat is None:
            raise FoldError(f'a subgraph output comes from "{source.node}", which was not imported')
        if str(node["type"]).startswith(PLACEHOLDER_PREFIX):
            return str(source.output)
        found = mapping_for(str(flat.data["type"]), self.registry)
        spec = self.registry.get(str(node["type"]))
        names = (
            found[0].output_names(found[1])
            if found
            else tuple(o.name for o in spec.outputs)
            if spec
            else ()
        )
        name = names[source.output] if source.output < len(names) else None
        if name is None:
            raise FoldError(f'output {source.output} of node "{source.node}" has no name of ours')
        return name


def fold_subgraphs(document: Json, flat: Flattened, registry: Registry) -> Json:
    """`document` (the flattened import) with ComfyUI's subgraphs as version-3 subgraphs."""
    if not flat.instances:
        return document
    folder = _Folder(document, flat, registry)
    # Innermost first: an outer instance's inside then holds its nested instances' nodes.
    for instance in sorted(flat.instances, key=lambda i: -i.id.count(SEPARATOR)):
        folder.fold(instance)
    result: Json = {
        **document,
        "version": 3,
        "nodes": folder.nodes,
        "subgraphs": folder.definitions,
    }
    groups = [group for group in document.get("groups") or [] if "subgraph" not in group]
    if groups:
        result["groups"] = groups
    else:
        result.pop("groups", None)
    return result


def _redirect(value: Any, redirect: dict[tuple[str, str], Json], gone: set[str], where: str) -> Any:
    if not _is_link(value):
        return value
    key = (value["node"], value["output"])
    if key in redirect:
        return redirect[key]
    if value["node"] in gone:
        raise FoldError(f'"{where}" links into a subgraph past its outputs')
    return value


def _is_link(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"node", "output"}


def _list(definition: Json, key: str) -> list[Json]:
    return [entry for entry in definition.get(key) or [] if isinstance(entry, dict)]


def _type(value: Any) -> str:
    return value if isinstance(value, str) and value else "*"


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    unique: list[str] = []
    for name in names:
        candidate, n = name, 2
        while candidate in seen:
            candidate, n = f"{name}_{n}", n + 1
        seen.add(candidate)
        unique.append(candidate)
    return unique
