"""Syntax highlighting: the Pygments lexer (a plugin found by name and suffix) and the
TextMate grammar under editors/, both over every shipped spec."""
import json
import re

import pytest
from pygments.lexers import find_lexer_class_for_filename, get_lexer_by_name
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String

from archdsl.highlight import ArchDSLLexer
from archdsl.layers import layer_names
from conftest import ROOT, SPECS

BUDGET = """# the tutorial's CNN, with a budget for CI
input 1x28x28
train(epochs=10, optimizer=adamw, lr=3e-3, label_smoothing=0.1, augment=true)
assert params < 250k
assert macs <= 1.5M
assert activation_bytes < 1Mi
def Block(c, s=1) = [Conv(c*4 + 1, 3, p='same') -> BatchNorm -> ReLU] | [Conv(c//2, 1)]
def Gate = [Identity * [AdaptiveAvgPool(1) -> Sigmoid]]
Block(8)*2 as features -> Upsample(2, mode="nearest") -> Concat(features, crop=true)
  -> Gate -> Dropout(0.1*k/4)*2 for k
  -> Flatten -> Dropout(-0.0 + 0.5) -> Linear(10)
"""
GRAMMAR = ROOT / "editors/archdsl.tmLanguage.json"


def tokens(text):
    return [(kind, value) for kind, value in ArchDSLLexer().get_tokens(text) if value.strip()]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_no_error_tokens_in_shipped_specs(spec):
    found = tokens(spec.read_text())
    assert found and not [t for t in found if t[0] in Error]
    assert {value for kind, value in found if kind in Name.Builtin} <= set(layer_names())


def test_token_kinds():
    found = tokens(BUDGET)
    assert not [t for t in found if t[0] in Error]
    kinds = dict((value, kind) for kind, value in found)
    assert kinds["# the tutorial's CNN, with a budget for CI"] in Comment
    for word in ("input", "train", "def", "assert", "as", "for"):
        assert kinds[word] in Keyword, word
    assert kinds["1x28x28"] in Number and kinds["250k"] in Number and kinds["1.5M"] in Number
    assert kinds["1Mi"] in Number and kinds["3e-3"] in Number.Float and kinds["8"] in Number
    for layer in ("Conv", "BatchNorm", "ReLU", "Upsample", "Concat", "Linear"):
        assert kinds[layer] in Name.Builtin, layer
    assert kinds["'same'"] in String and kinds['"nearest"'] in String
    for op in ("->", "+", "|", "*", "=", "//", "/", "<", "<="):
        assert kinds[op] in Operator, op
    assert (Name.Function, "Block") in found and (Name, "Block") in found  # defined, called
    assert (Name.Label, "features") in found and kinds["features"] in Name
    assert kinds["true"] in Keyword.Constant and kinds["lr"] in Name.Attribute


def test_text_round_trips():
    for spec in SPECS:
        text = spec.read_text()
        assert "".join(v for _, v in ArchDSLLexer().get_tokens(text)).rstrip() == text.rstrip()


def test_pygments_finds_the_plugin():
    """The pygments.lexers entry point (pip install -e . registers it)."""
    assert isinstance(get_lexer_by_name("archdsl"), ArchDSLLexer)
    simple = ROOT / "specs/simple_cnn.spec"
    assert find_lexer_class_for_filename(str(simple), simple.read_text()) is ArchDSLLexer
    rpm = "Name: hello\nVersion: 1.0\n%description\nA package.\n"
    assert find_lexer_class_for_filename("hello.spec", rpm) is not ArchDSLLexer


def grammar():
    return json.loads(GRAMMAR.read_text())


def test_textmate_grammar_is_valid():
    data = grammar()
    assert data["scopeName"] == "source.archdsl" and data["fileTypes"] == ["spec"]
    for pattern in data["patterns"]:
        re.compile(pattern["match"])  # these regexes mean the same in Oniguruma and Python
        names = [pattern["name"]] if "name" in pattern else \
            [capture["name"] for capture in pattern["captures"].values()]
        assert names and all(name.endswith(".archdsl") for name in names)


def test_textmate_grammar_is_made_from_the_registry():
    """Regenerate with `python -m archdsl.textmate editors/archdsl.tmLanguage.json`."""
    from archdsl.textmate import render
    assert GRAMMAR.read_text() == render()


def test_textmate_grammar_knows_every_layer():
    (layers,) = [p for p in grammar()["patterns"] if p.get("name", "").startswith("support.")]
    listed = re.search(r"\(([A-Za-z0-9|]+)\)", layers["match"]).group(1).split("|")
    assert sorted(listed) == layer_names()


def scopes(text):
    """TextMate's rule on one line: at each position the pattern matching earliest wins, ties
    going to the first listed. Returns (scope, text) pairs and the unmatched characters."""
    patterns = [(re.compile(p["match"]), p) for p in grammar()["patterns"]]
    found, unmatched = [], ""
    for line in text.splitlines():
        position = 0
        while position < len(line):
            best = None
            for regex, pattern in patterns:
                match = regex.search(line, position)
                if match and match.end() > match.start() and (
                        best is None or match.start() < best[0].start()):
                    best = (match, pattern)
            if best is None:
                unmatched += line[position:]
                break
            match, pattern = best
            unmatched += line[position:match.start()]
            if "name" in pattern:
                found.append((pattern["name"], match.group()))
            for group, capture in pattern.get("captures", {}).items():
                found.append((capture["name"], match.group(int(group))))
            position = match.end()
    return found, unmatched


@pytest.mark.parametrize("spec", [*SPECS, None], ids=lambda p: p.stem if p else "budget")
def test_textmate_grammar_covers_every_character(spec):
    found, unmatched = scopes(spec.read_text() if spec else BUDGET)
    assert unmatched.strip() == ""
    by_text = dict((text, scope) for scope, text in found)
    if spec is None:
        assert by_text["1x28x28"].startswith("constant.numeric.shape")
        assert by_text["1.5M"].startswith("constant.numeric.bound")
        assert by_text["Conv"].startswith("support.function.layer")
        assert by_text["->"].startswith("keyword.operator.arrow")
        assert ("entity.name.function.archdsl", "Block") in found
        assert ("keyword.control.for.archdsl", "for") in found and by_text["/"].startswith("keyword.operator")
        assert by_text["'same'"].startswith("string.quoted.single")
