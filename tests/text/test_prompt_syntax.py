from __future__ import annotations

import pytest

from latentloom.text.prompt_syntax import Break, WeightedText, parse_prompt, parse_prompt_comfy


def weights(prompt: str) -> list[tuple[str, float] | str]:
    return [
        "BREAK" if isinstance(segment, Break) else (segment.text, segment.weight)
        for segment in parse_prompt(prompt)
    ]


def test_plain_text_is_one_run() -> None:
    assert parse_prompt("a photo of a cat") == [WeightedText("a photo of a cat", 1.0)]


def test_empty_prompt_has_no_segments() -> None:
    assert parse_prompt("") == []


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("(cat)", 1.1),
        ("((cat))", 1.1 * 1.1),
        ("(((cat)))", 1.1**3),
        ("[cat]", 1 / 1.1),
        ("[[cat]]", 1 / 1.1 / 1.1),
        ("(cat:1.3)", 1.3),
        ("(cat: 0.5 )", 0.5),
        ("(cat:.5)", 0.5),
        ("(cat:-1)", -1.0),
        ("((cat:1.5))", 1.5 * 1.1),
        ("[(cat)]", 1.0),
    ],
)
def test_emphasis_weights(prompt: str, expected: float) -> None:
    [segment] = parse_prompt(prompt)
    assert isinstance(segment, WeightedText)
    assert segment.text == "cat"
    assert segment.weight == pytest.approx(expected, rel=1e-12)


def test_nesting_multiplies_and_runs_keep_their_text() -> None:
    assert weights("a ((b:1.5) c) d") == [
        ("a ", 1.0),
        ("b", pytest.approx(1.65)),
        (" c", pytest.approx(1.1)),
        (" d", 1.0),
    ]


def test_neighbours_of_equal_weight_merge() -> None:
    assert weights("a (b:1.0) c") == [("a b c", 1.0)]
    assert weights("(a)(b)") == [("ab", 1.1)]


def test_escaped_brackets_are_literal() -> None:
    assert weights(r"\(cat\) \[dog\] a\\b") == [(r"(cat) [dog] a\b", 1.0)]
    assert weights(r"(smile \(happy\))") == [("smile (happy)", pytest.approx(1.1))]


def test_unclosed_opener_weights_the_rest_of_the_prompt() -> None:
    assert weights("a (b c") == [("a ", 1.0), ("b c", pytest.approx(1.1))]
    assert weights("a [b c") == [("a ", 1.0), ("b c", pytest.approx(1 / 1.1))]


def test_stray_closer_is_literal() -> None:
    assert weights("a) b] c") == [("a) b] c", 1.0)]
    assert weights("x:1.2) y") == [("x:1.2) y", 1.0)]


def test_colon_without_valid_number_is_literal() -> None:
    assert weights("time: 5pm") == [("time: 5pm", 1.0)]
    assert weights("(a:1.2.3)") == [("a:1.2.3", pytest.approx(1.1))]
    assert weights("(a:b)") == [("a:b", pytest.approx(1.1))]


def test_square_closer_does_not_close_round_opener() -> None:
    # `]` has no `[` to close, so it is literal; the `(` is closed at the end.
    assert weights("(a] b") == [("a] b", pytest.approx(1.1))]


def test_break_splits_and_trims_whitespace() -> None:
    assert weights("a cat BREAK a dog") == [("a cat", 1.0), "BREAK", ("a dog", 1.0)]
    assert weights("BREAK a") == ["BREAK", ("a", 1.0)]
    assert weights("(a BREAK b)") == [("a", pytest.approx(1.1)), "BREAK", ("b", pytest.approx(1.1))]


def test_break_must_be_a_whole_upper_case_word() -> None:
    assert weights("BREAKING break Break") == [("BREAKING break Break", 1.0)]


def comfy(prompt: str) -> list[tuple[str, float]]:
    return [(segment.text, segment.weight) for segment in parse_prompt_comfy(prompt)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a photo", [("a photo", 1.0)]),
        ("a (b) c", [("a ", 1.0), ("b", 1.1), (" c", 1.0)]),
        ("((b))", [("b", 1.1 * 1.1)]),
        ("(b:0.5)", [("b", 0.5)]),
        # An explicit weight replaces the weight, it does not multiply it.
        ("((a:1.5))", [("a", 1.5)]),
        ("((a:1.5) b)", [("a", 1.5), (" b", 1.1)]),
        # The last colon counts; text after it that is not a number keeps the colon literal.
        ("(a:b:2)", [("a:b", 2.0)]),
        ("(a:b)", [("a:b", 1.1)]),
        ("( a : 1.3 )", [(" a ", 1.3)]),
        ("(a:1e-1)", [("a", 0.1)]),
        ("()", []),
    ],
)
def test_comfy_weights(prompt: str, expected: list[tuple[str, float]]) -> None:
    assert comfy(prompt) == expected


def test_comfy_has_no_square_brackets_or_break() -> None:
    assert comfy("[a] BREAK [[b]]") == [("[a] BREAK [[b]]", 1.0)]


def test_comfy_escapes_only_round_brackets() -> None:
    assert comfy(r"\(a\) (b) \[c\] d\e") == [("(a) ", 1.0), ("b", 1.1), (r" \[c\] d\e", 1.0)]


def test_comfy_unbalanced_brackets_are_literal() -> None:
    # An unclosed group runs to the end as text; a stray `)` stops groups from closing
    # until the nesting is back at zero.
    assert comfy("a (b (c) d") == [("a ", 1.0), ("(b (c) d", 1.0)]
    assert comfy("a) (b) c") == [("a) (b) c", 1.0)]
    assert comfy("x)((y)") == [("x)(", 1.0), ("y", 1.1)]


def test_comfy_never_merges_runs() -> None:
    # Each bracket boundary is its own piece for the tokenizer, even at equal weights.
    assert comfy("a(b:1.0)c") == [("a", 1.0), ("b", 1.0), ("c", 1.0)]


@pytest.mark.parametrize("weight", ["nan", "inf", "-inf"])
def test_comfy_refuses_non_finite_weights(weight: str) -> None:
    with pytest.raises(ValueError, match=f"prompt weight '{weight}' is not a finite number"):
        parse_prompt_comfy(f"(a:{weight})")
