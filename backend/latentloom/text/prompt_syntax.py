"""Prompt emphasis syntax: split a prompt into runs of text with an attention weight.

The syntax is the one AUTOMATIC1111's web UI made common, and this parser follows its rules:

* `(text)` multiplies the weight of `text` by 1.1, `((text))` by 1.1², and so on;
* `[text]` divides it by 1.1;
* `(text:1.3)` multiplies it by 1.3 (the number may be negative or fractional);
* nesting multiplies: `((a:1.5) b)` gives `a` 1.65 and `b` 1.1;
* `\\(`, `\\)`, `\\[`, `\\]` and `\\\\` are literal characters;
* `BREAK` (upper case, a whole word) ends the current 75-token chunk (see `text/encode.py`).

Unbalanced brackets never raise, because prompts are typed by hand and a stray parenthesis
should not stop a render. As in A1111: an opening bracket that is never closed applies its
weight to the rest of the prompt ("closed at the end"), and a closing bracket with no opener is
kept as a literal character. A `:` not followed by a valid number and `)` is literal text.

Adjacent runs with the same weight are merged, so `a (b:1.0) c` is one run `a b c` — which is
why weight 1.0 everywhere tokenizes exactly like the plain prompt.

`parse_prompt_comfy` reads the same text the way ComfyUI's CLIPTextEncode does, which differs:

* `(text:w)` *sets* the weight to w instead of multiplying: `((a:1.5))` is 1.5, not 1.65;
  the last `:` inside the brackets counts if what follows parses as a Python float;
* only round brackets weigh: `[text]` is literal text, and so is `BREAK`;
* only `\\(` and `\\)` are escapes; any other backslash stays in the text;
* an unclosed `(` weighs nothing: the bracket and what follows it are literal text, and after
  a stray `)` brackets stop weighing until the nesting comes back to zero;
* runs are never merged: each bracket boundary is a separate piece for the tokenizer (and, in
  ComfyUI's chunking, a "word" kept whole in one 75-token chunk when shorter than 8 tokens).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1

_TOKEN = re.compile(
    r"""
      \\[()\[\]\\]                                  # escaped bracket or backslash
    | \\                                            # lone backslash: literal
    | \(
    | \[
    | :\s*(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\)   # explicit weight closing a `(`
    | \)
    | \]
    | [^\\()\[\]:]+
    | :
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


@dataclass(frozen=True)
class WeightedText:
    """A run of prompt text and the attention weight its tokens get."""

    text: str
    weight: float


@dataclass(frozen=True)
class Break:
    """`BREAK`: the text after it starts a fresh 75-token chunk."""


Segment = WeightedText | Break


@dataclass
class _Run:
    # Mutable while parsing, because a closing bracket rescales every run since its opener.
    text: str
    weight: float


def parse_prompt(prompt: str) -> list[Segment]:
    """Split `prompt` into weighted text runs and breaks; an empty prompt gives `[]`."""
    runs: list[_Run | Break] = []
    round_openers: list[int] = []
    square_openers: list[int] = []

    def scale(start: int, factor: float) -> None:
        for run in runs[start:]:
            if isinstance(run, _Run):
                run.weight *= factor

    for match in _TOKEN.finditer(prompt):
        token = match.group(0)
        weight = match.group("weight")
        if token == "(":
            round_openers.append(len(runs))
        elif token == "[":
            square_openers.append(len(runs))
        elif weight is not None and round_openers:
            scale(round_openers.pop(), float(weight))
        elif token == ")" and round_openers:
            scale(round_openers.pop(), ROUND_MULTIPLIER)
        elif token == "]" and square_openers:
            scale(square_openers.pop(), SQUARE_MULTIPLIER)
        else:
            runs.extend(_literal_runs(token))

    # Unclosed openers weight everything after them, innermost first (order does not matter).
    for start in round_openers:
        scale(start, ROUND_MULTIPLIER)
    for start in square_openers:
        scale(start, SQUARE_MULTIPLIER)
    return _merge(runs)


def _literal_runs(token: str) -> list[_Run | Break]:
    """Text outside the bracket grammar, with escapes resolved and BREAKs split out."""
    if len(token) == 2 and token.startswith("\\"):
        return [_Run(token[1], 1.0)]
    pieces: list[_Run | Break] = []
    for index, part in enumerate(_BREAK.split(token)):
        if index > 0:
            pieces.append(Break())
        pieces.append(_Run(part, 1.0))
    return pieces


def _merge(runs: list[_Run | Break]) -> list[Segment]:
    """Drop empty runs and join neighbours of equal weight (A1111 does the same)."""
    merged: list[Segment] = []
    for run in runs:
        if isinstance(run, Break):
            merged.append(run)
        elif run.text:
            previous = merged[-1] if merged else None
            if isinstance(previous, WeightedText) and previous.weight == run.weight:
                merged[-1] = WeightedText(previous.text + run.text, run.weight)
            else:
                merged.append(WeightedText(run.text, run.weight))
    return merged


# ComfyUI's syntax: escaped round brackets are hidden behind private-use characters while the
# brackets are parsed, then restored in the text handed to the tokenizer.
_ESCAPES = {"\\(": "\ue000", "\\)": "\ue001"}


def parse_prompt_comfy(prompt: str) -> list[WeightedText]:
    """Split `prompt` into weighted runs by ComfyUI's rules (see the module docstring)."""
    for escaped, hidden in _ESCAPES.items():
        prompt = prompt.replace(escaped, hidden)
    return [WeightedText(_unhide(text), weight) for text, weight in _comfy_runs(prompt, 1.0)]


def _comfy_runs(text: str, weight: float) -> list[tuple[str, float]]:
    runs: list[tuple[str, float]] = []
    for piece in _top_level_pieces(text):
        if len(piece) < 2 or not (piece.startswith("(") and piece.endswith(")")):
            runs.append((piece, weight))
            continue
        inner, inner_weight = piece[1:-1], weight * ROUND_MULTIPLIER
        colon = inner.rfind(":")
        explicit = _float_or_none(inner[colon + 1 :]) if colon > 0 else None
        if explicit is not None:
            inner, inner_weight = inner[:colon], explicit
        runs.extend(_comfy_runs(inner, inner_weight))
    return runs


def _top_level_pieces(text: str) -> list[str]:
    """The text cut at depth-0 bracket groups: each `(...)` group whole, the text between.

    Depth counts every `(` up and every `)` down, so a stray `)` leaves it negative and no
    group closes until it is back at zero; an unclosed group runs to the end as plain text.
    """
    pieces: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char == "(":
            if depth == 0 and index > start:
                pieces.append(text[start:index])
                start = index
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                pieces.append(text[start : index + 1])
                start = index + 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _float_or_none(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        raise ValueError(
            f"prompt weight {text.strip()!r} is not a finite number; write a weight like "
            "(word:1.2), or escape the brackets as \\( \\) to keep them as text"
        )
    return value


def _unhide(text: str) -> str:
    for escaped, hidden in _ESCAPES.items():
        text = text.replace(hidden, escaped[1])
    return text
