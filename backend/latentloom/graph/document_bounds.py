"""Bounds on a workflow document and on JSON bodies, checked before anything else reads them.

A document is walked once, iteratively (no recursion, so depth itself cannot crash the
walk): it nests at most MAX_DEPTH levels, holds only finite numbers (JSON has no NaN or
Infinity; Python's reader accepts them, and they would poison hashes, sampling and every
response that echoes them), strings of at most MAX_STRING_LENGTH characters, and at most
MAX_NODES nodes with ids of at most MAX_ID_LENGTH characters. `load_json` reads a request
body under the same rules, so a hostile body is a clear 4xx, never a 500.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

MAX_DEPTH: Final = 64  # a workflow nests ~6 levels; editor state a few more
MAX_NODES: Final = 5_000
MAX_ID_LENGTH: Final = 200  # node ids, types, input and output names
MAX_STRING_LENGTH: Final = 100_000  # characters in any one string (a prompt is far less)
PATH_SHOWN: Final = 6  # path components shown in a message before "..."


class DocumentBoundsError(ValueError):
    """The document passes a bound; the message names where and the bound."""


def check_document(document: dict[str, Any]) -> None:
    """Raise DocumentBoundsError naming the first bound the document passes."""
    check_json_value(document, MAX_DEPTH)
    nodes = document.get("nodes")
    if not isinstance(nodes, dict):
        return
    if len(nodes) > MAX_NODES:
        raise DocumentBoundsError(
            f"nodes: the workflow has {len(nodes):,} nodes; the most is {MAX_NODES:,}"
        )
    for node_id, node in nodes.items():
        _check_id(f"nodes: node id {node_id[:20]!r}...", node_id)
        if not isinstance(node, dict):
            continue
        _check_id(f"nodes.{node_id}.type", node.get("type"))
        inputs = node.get("inputs")
        for name, value in inputs.items() if isinstance(inputs, dict) else ():
            _check_id(f"nodes.{node_id}.inputs: input name {name[:20]!r}...", name)
            if isinstance(value, dict):
                for key in ("node", "output"):
                    _check_id(f"nodes.{node_id}.inputs.{name}.{key}", value.get(key))


def _check_id(where: str, value: Any) -> None:
    if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
        raise DocumentBoundsError(
            f"{where}: {len(value):,} characters; ids and names are at most {MAX_ID_LENGTH}"
        )


def check_json_value(value: Any, max_depth: int) -> None:
    """Depth, finite numbers and string lengths of parsed JSON, walked without recursion."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            children = [(v, (*path, str(k))) for k, v in item.items()]
            for key in item:
                _check_string(path, str(key))
        elif isinstance(item, list):
            children = [(v, (*path, str(i))) for i, v in enumerate(item)]
        else:
            _check_scalar(path, item)
            continue
        if children and len(path) + 1 > max_depth:
            raise DocumentBoundsError(
                f"{_where(path)}: nested more than {max_depth} levels deep; "
                f"documents nest at most {max_depth} levels"
            )
        stack.extend(children)


def _check_scalar(path: tuple[str, ...], item: Any) -> None:
    if isinstance(item, float) and not math.isfinite(item):
        raise DocumentBoundsError(
            f"{_where(path)}: {item!r} is not a finite number (JSON has no NaN or Infinity)"
        )
    if isinstance(item, str):
        _check_string(path, item)


def _check_string(path: tuple[str, ...], text: str) -> None:
    if len(text) > MAX_STRING_LENGTH:
        raise DocumentBoundsError(
            f"{_where(path)}: a string of {len(text):,} characters; "
            f"the most is {MAX_STRING_LENGTH:,}"
        )


def _where(path: tuple[str, ...]) -> str:
    if not path:
        return "the document"
    shown = ".".join(path[:PATH_SHOWN])
    return shown + ("..." if len(path) > PATH_SHOWN else "")


def _no_constant(name: str) -> Any:
    raise DocumentBoundsError(f"{name} is not a number JSON allows (no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DocumentBoundsError(f"{text} is too large for a number (it overflows to Infinity)")
    return value


def load_json(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON body under the document bounds; DocumentBoundsError says what is wrong."""
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise DocumentBoundsError(
            f"nested too deeply; documents nest at most {max_depth} levels"
        ) from None
    except json.JSONDecodeError as error:
        raise DocumentBoundsError(f"not valid JSON: {error}") from None
    except DocumentBoundsError:
        raise
    except (ValueError, UnicodeDecodeError) as error:  # e.g. an integer of 5,000 digits
        raise DocumentBoundsError(f"not valid JSON: {error}") from None
    check_json_value(value, max_depth)
    return value


_PIECEWISE_ENCODER: Final = json.JSONEncoder()


def dump_json(document: Any) -> str:
    """`json.dumps(document)`, character for character, made in pieces.

    The one-shot C encoder holds the GIL for a whole document (30 ms for 10 MB), and the
    server's event loop waits that long for its next turn; the piecewise encoder yields
    between values, so no single hold is longer than one string. Slower in total, which a
    request-sized document does not notice.
    """
    return "".join(_PIECEWISE_ENCODER.iterencode(document, _one_shot=False))
