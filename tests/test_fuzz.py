"""Mutated specs: every outcome is an Analysis or an ArchDSLError that renders with a position.

Valid specs (the shipped ones and a few below) are damaged by character edits, which mostly
exercise the lexer and parser, and by token edits, which mostly keep the text parseable and so
reach argument binding and the shape analysis. Random calls of every registered layer test the
binding and the shape rules head-on.
"""
import dataclasses
import re

import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import archdsl
from archdsl.compiler import build
from archdsl.ir import INPUT
from archdsl.layers import layer_class, layer_names
from archdsl.train.config import TrainConfig
from conftest import ROOT, assert_plain, assert_plain_fields

EXTRA = [
    # repeats, rectangular kernels, tuples, keyword aliases, comments everywhere
    "# a small VGG-like network\n"
    "input 3x32x32  # colour images\n"
    "[Conv(32, k=3, p=1) -> BatchNorm -> ReLU]*2 -> MaxPool(2)\n"
    "  -> [Conv(64, k=(1, 7), p=(0, 3)) -> ReLU -> Conv(64, (7, 1), padding=(3, 0))]*2\n"
    "  -> GlobalAvgPool -> Dropout(p=0.5) -> Linear(10, bias=false)\n",
    # no input line: analyzed with 1x28x28
    "Conv(8, 3, s=2, d=1, g=1) -> LeakyReLU(slope=0.1)\n"
    "-> AvgPool(2, stride=2, ceil_mode=true) -> Flatten -> Linear(10) -> Softmax(dim=-1)\n",
    "input 784\nLinear(256) -> GELU(approximate='tanh') -> [Linear(64) -> ReLU6]*3 -> Linear(10)",
    "input 1x28x28\n"
    "Conv(4, 3, padding=\"same\", bias=false) -> SiLU -> AdaptiveAvgPool((2, 2)) -> Flatten\n"
    "-> Linear(10, frozen=true)  # trailing comment\n",
    "input 1x16x16x16\n[Conv(2, (3, 1, 3), p=1) -> Tanh]*2 -> MaxPool(2, dilation=2) -> Sigmoid",
    "input 1x8x8\nConv(4, 3, p=1) as conv1 -> ReLU -> Conv(4, 3, p=1) as skip -> Conv(4, 3)\n"
    "-> Concat(conv1, crop=true) -> [Conv(2, 1) as c] + [Conv(2, 1) as c]\n",
    "input 1x28x28\n"
    "train(epochs=10, optimizer=adamw, lr=3e-3, scheduler=onecycle, label_smoothing=0.1)\n"
    "Flatten -> Linear(128) -> ReLU -> Linear(10)\n",
]
SEEDS = [path.read_text(encoding="utf-8") for path in sorted((ROOT / "specs").rglob("*.spec"))]
SEEDS += EXTRA

# Tokens, roughly as the grammar has them; the pattern covers every character of a spec.
TOKEN = re.compile(r"#[^\n]*|\s+|->|[A-Za-z_]\w*|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
                   r"(?:x\d+)*|'[^'\n]*'|\"[^\"\n]*\"|.", re.DOTALL)
# Replacements that keep a spec near valid, or make it just invalid.
POOL = sorted({t for seed in SEEDS for t in TOKEN.findall(seed) if not t.isspace()} | {
    "0", "1", "-1", "2", "7", "3.5", "-0.5", "1e9", "1e400", "100000", "99999999999999999999",
    "(", ")", "[", "]", ",", "=", "->", "*", "x", "1x0x28", "28x28", "(1, 7)", "(0, 3)",
    "(1, 2, 3)", "'same'", "'valid'", "true", "false", "none", "input", "k", "s", "p", "d", "g",
    "stride", "padding", "kernel", "out", "dilation", "groups", "Conv", "Linear", "Flatten",
    "MaxPool", "BatchNorm", "Softmax", "relu", "Conv2", "#", "\n", " ", "\t", "'", '"', "×",
})
ALPHABET = "0123456789abcxyzACKLR_()[],=->*x#. \n\t'\""


def _edit(text: str, at: int, delete: int, insert: str) -> str:
    at = min(at, len(text))
    return text[:at] + insert + text[at + delete:]


@st.composite
def character_mutations(draw) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "insert-unicode", "replace", "swap"]))
        if kind == "delete":
            text = _edit(text, at, draw(st.integers(1, 4)), "")
        elif kind == "insert":
            text = _edit(text, at, 0, draw(st.text(ALPHABET, min_size=1, max_size=4)))
        elif kind == "insert-unicode":
            text = _edit(text, at, 0, draw(st.text(st.characters(codec="utf-8"),
                                                   min_size=1, max_size=3)))
        elif kind == "replace":
            text = _edit(text, at, 1, draw(st.text(ALPHABET, min_size=1, max_size=1)))
        elif len(text) > 1:  # swap two characters
            i, j = sorted((min(at, len(text) - 1), draw(st.integers(0, len(text) - 1))))
            text = text[:i] + text[j] + text[i + 1:j] + text[i] + text[j + 1:]
    return text


def _kind(token: str) -> str:
    """'shape', 'value' (numbers, tuples, strings), 'name' (words), or else the token itself."""
    if re.fullmatch(r"\d+x[\dx]*", token):
        return "shape"
    if re.fullmatch(r"[-.\d(][-+.\deE, ()]*|'.*'|\".*\"", token) and token not in "()":
        return "value"
    return "name" if re.fullmatch(r"[A-Za-z_]\w*", token) and token != "input" else token


ALIKE = {kind: sorted(t for t in POOL if _kind(t) == kind) for kind in ("shape", "value", "name")}


@st.composite
def token_mutations(draw) -> str:
    tokens = TOKEN.findall(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(tokens) - 1)) if tokens else 0
        kind = draw(st.sampled_from(["alike"] * 5 + ["delete", "insert", "replace",
                                     "duplicate", "swap"]))
        if kind == "alike":  # a value for a value, a word for a word: stays parseable
            spots = [i for i, t in enumerate(tokens) if _kind(t) in ALIKE]
            if spots:
                spot = draw(st.sampled_from(spots))
                tokens[spot] = draw(st.sampled_from(ALIKE[_kind(tokens[spot])]))
        elif kind == "delete" and tokens:
            del tokens[at]
        elif kind == "insert":
            tokens.insert(at, draw(st.sampled_from(POOL)))
        elif kind == "replace" and tokens:
            tokens[at] = draw(st.sampled_from(POOL))
        elif kind == "duplicate" and tokens:
            tokens.insert(at, tokens[at])
        elif kind == "swap" and len(tokens) > 1:
            other = draw(st.integers(0, len(tokens) - 1))
            tokens[at], tokens[other] = tokens[other], tokens[at]
    # Tokens are joined as they were, so a replaced word may glue onto its neighbour: fine too.
    return "".join(tokens)


# Mostly values that some argument takes, so that calls often bind and reach the shape rules.
VALUES = ["1", "2", "3"] * 4 + [
    "0", "-1", "7", "0.5", "1.5", "-0.5", "1e-3", "1e400", "(1, 7)", "(3, 3)", "(0, 3)",
    "(1, 2, 3)", "(2, (1, 1))", "'same'", "'valid'", "'tanh'", "none", "true", "false", "word"]
SHAPES = ["1x28x28", "3x8x8", "2x5", "784", "1x4x4x4", "1x1x1", "4x3x2x1x1"]


@st.composite
def layer_calls(draw) -> str:
    """One to three layer calls with random arguments, after a random input: required arguments
    come first, positionally, then keywords, so that most calls bind and reach the shape rules."""
    calls = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(layer_names()))
        fields = [f for f in dataclasses.fields(layer_class(name)) if f.name != "frozen"]
        required = [f for f in fields if f.default is dataclasses.MISSING]
        # every required argument, though now and then one is left out
        arguments = [draw(st.sampled_from(VALUES)) for _ in required if draw(st.integers(0, 20))]
        for _ in range(draw(st.integers(0, 2 if fields else 1))):
            keyword = draw(st.sampled_from([f.name for f in fields] * 4 + ["k", "s", "p", "x"]))
            arguments.append(f"{keyword}={draw(st.sampled_from(VALUES))}")
        calls.append(f"{name}({', '.join(arguments)})")
    return f"input {draw(st.sampled_from(SHAPES))}\n" + " -> ".join(calls)


# What would drive a terminal: C0 and C1 controls but tab and newline, bidirectional overrides.
TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_analysis_or_spec_error(text: str) -> None:
    try:
        spec = archdsl.parse(text, "f.spec")
        config = TrainConfig.from_spec(spec)  # as `check` does: a bad train(...) is a spec error
        analysis = archdsl.analyze(spec, None if spec.input else "1x28x28")
    except archdsl.ArchDSLError as error:
        rendered = error.render(text, "f.spec")
        span = error.span
        if span is None:
            assert re.match(r"f\.spec:1:1: ", rendered), rendered
            return
        assert rendered.startswith(f"f.spec:{span.line}:{span.column}: "), rendered
        lines = re.split(r"\r\n|\r|\n", text)  # a CR alone ends a line too
        assert 1 <= span.line <= len(lines), (span, rendered)
        source = lines[span.line - 1].rstrip("\r")
        assert 1 <= span.column <= len(lines[span.line - 1]) + 1, (span, rendered)
        shown = rendered.split("\n")[1]
        if source.isprintable() and len(source) <= 200:
            assert shown == f"  {source}", rendered
        assert not TERMINAL_CONTROL.search(rendered), rendered  # escaped, never raw
        assert "^" in rendered.split("\n")[2], rendered
        return
    assert isinstance(analysis, archdsl.Analysis)
    assert analysis.rows and analysis.output == analysis.rows[-1].output
    # past binding, only builtins: in the layers, their facts, the settings and the JSON data
    assert_plain_fields(config, "TrainConfig")
    for node, row in zip(analysis.nodes, analysis.rows):
        assert_plain_fields(node.layer, node.name)
        assert_plain_fields(row.facts, f"{row.name}.facts")
    assert_plain([row.args for row in analysis.rows], "args")
    assert_compiled_model_matches(analysis)


def assert_compiled_model_matches(analysis) -> None:
    """The module holds every parameter and buffer the analysis counts: two rows sharing a name
    would leave one's weights out. Built on torch's meta device, so that no memory is spent."""
    with torch.device("meta"):
        model = build(analysis)
    assert sum(p.numel() for p in model.parameters()) == analysis.totals.params
    assert sum(b.numel() for b in model.buffers()) == analysis.totals.buffers
    assert len({row.name for row in analysis.rows} | {INPUT}) == len(analysis.rows) + 1


def test_seeds_are_valid():
    for text in SEEDS:
        spec = archdsl.parse(text)
        TrainConfig.from_spec(spec)
        assert archdsl.analyze(spec, None if spec.input else "1x28x28").rows


FUZZ = settings(max_examples=2500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@FUZZ
@given(character_mutations())
def test_character_mutations(text):
    assert_analysis_or_spec_error(text)


@FUZZ
@given(token_mutations())
def test_token_mutations(text):
    assert_analysis_or_spec_error(text)


@settings(max_examples=500, deadline=None)
@given(st.text(ALPHABET, max_size=60) | st.text(max_size=30))
def test_arbitrary_text(text):
    assert_analysis_or_spec_error(text)


@settings(max_examples=1000, deadline=None)
@given(layer_calls())
def test_layer_arguments(text):
    assert_analysis_or_spec_error(text)
