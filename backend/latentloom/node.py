"""Node specs: the declarative description of a node type.

A spec is the single source for input validation, cache keys, the catalog the editor builds
its widgets from, and the docs. Its function is a plain Python function that takes a
`NodeContext` and one keyword argument per input, and returns a mapping from output names
to values. `registry.py` checks at load time that the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latentloom.graph.cost import CostFunction


class SocketType(StrEnum):
    """Values that travel along links."""

    MODEL = "MODEL"
    CLIP = "CLIP"
    VAE = "VAE"
    CONDITIONING = "CONDITIONING"
    LATENT = "LATENT"
    IMAGE = "IMAGE"
    MASK = "MASK"
    # The custom-sampling set: a schedule, a noise source, a sampler, a guided denoiser.
    SIGMAS = "SIGMAS"
    NOISE = "NOISE"
    SAMPLER = "SAMPLER"
    GUIDER = "GUIDER"
    # Steering and enlarging: control models, image prompts, upscalers.
    CONTROL_NET = "CONTROL_NET"
    CLIP_VISION = "CLIP_VISION"
    CLIP_VISION_OUTPUT = "CLIP_VISION_OUTPUT"
    IPADAPTER = "IPADAPTER"
    UPSCALE_MODEL = "UPSCALE_MODEL"


class WidgetType(StrEnum):
    """Values typed into the node itself (they may also arrive over a link)."""

    INT = "INT"
    FLOAT = "FLOAT"
    STRING = "STRING"
    BOOLEAN = "BOOLEAN"
    ENUM = "ENUM"


@dataclass(frozen=True)
class DynamicChoices:
    """ENUM choices read at catalog time, e.g. the files in the `checkpoints` model folder."""

    folder: str


@dataclass(frozen=True)
class FileReference:
    """A model file a widget's value names inside its text (`embedding:name` in a prompt).

    Validation checks it like a file chosen from a list: one of `candidates` (the name as
    written, or with an extension added) must be listed in the `kind` model folders.
    """

    kind: str
    name: str
    candidates: tuple[str, ...]
    what: str = "file"  # how messages call it: "embedding"


# A widget value -> the files it names (an input's `references` hook).
ReferenceFinder = Callable[[object], tuple[FileReference, ...]]


@dataclass(frozen=True)
class Input:
    name: str
    type: SocketType | WidgetType
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] | DynamicChoices | None = None
    multiline: bool = False
    optional: bool = False
    # A list input accepts one value or a list of values (e.g. interpolation ratios).
    accepts_list: bool = False
    tooltip: str = ""
    # Files the value names inside its text, checked by validation and fingerprinted in cache
    # keys like files chosen from DynamicChoices (e.g. the embeddings a prompt uses).
    references: ReferenceFinder | None = field(default=None, compare=False)

    @property
    def is_widget(self) -> bool:
        return isinstance(self.type, WidgetType)

    @property
    def required(self) -> bool:
        return not self.optional and (self.default is None or not self.is_widget)


@dataclass(frozen=True)
class Output:
    name: str
    type: SocketType | WidgetType


NodeFunction = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class NodeSpec:
    id: str  # "family.name", stable forever: workflows refer to it
    display_name: str
    category: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    function: NodeFunction = field(compare=False)
    description: str = ""
    # Names users know from other tools (ComfyUI's class names first): search matches them,
    # and the ComfyUI interop table must name one of them for the class it maps.
    aliases: tuple[str, ...] = ()
    version: int = 1  # bump when results change for the same inputs: it is in the cache key
    output_node: bool = False  # produces a result for the user (saves, previews)
    nondeterministic: bool = False  # never served from the cache
    # What running it will cost, estimated from its inputs before anything runs (graph/cost.py);
    # None: nothing the budget needs to count.
    cost: CostFunction | None = field(default=None, compare=False)

    def input(self, name: str) -> Input | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    def output(self, name: str) -> Output | None:
        return next((spec for spec in self.outputs if spec.name == name), None)


# Constructors that read like the catalog. Widgets carry their default; sockets never do.


def socket(name: str, type: SocketType, *, optional: bool = False, tooltip: str = "") -> Input:
    return Input(name, type, optional=optional, tooltip=tooltip)


def int_input(
    name: str, default: int, *, min: int, max: int, step: int = 1, tooltip: str = ""
) -> Input:
    return Input(name, WidgetType.INT, default, min, max, step, tooltip=tooltip)


def float_input(
    name: str,
    default: float,
    *,
    min: float,
    max: float,
    step: float = 0.01,
    accepts_list: bool = False,
    tooltip: str = "",
) -> Input:
    return Input(
        name, WidgetType.FLOAT, default, min, max, step, accepts_list=accepts_list, tooltip=tooltip
    )


def string_input(
    name: str,
    default: str = "",
    *,
    multiline: bool = False,
    tooltip: str = "",
    references: ReferenceFinder | None = None,
) -> Input:
    return Input(
        name,
        WidgetType.STRING,
        default,
        multiline=multiline,
        tooltip=tooltip,
        references=references,
    )


def boolean_input(name: str, default: bool, *, tooltip: str = "") -> Input:
    return Input(name, WidgetType.BOOLEAN, default, tooltip=tooltip)


def enum_input(
    name: str,
    choices: tuple[str, ...] | DynamicChoices,
    default: str | None = None,
    *,
    tooltip: str = "",
) -> Input:
    if default is None and isinstance(choices, tuple):
        default = choices[0]
    return Input(name, WidgetType.ENUM, default, choices=choices, tooltip=tooltip)
