"""The TextMate grammar for editors (VS Code, Sublime Text, JetBrains' TextMate bundles), made
from the layer registry and the spec's keywords, so that no editor keeps a copy of the layer
names by hand. `python -m archdsl.textmate editors/archdsl.tmLanguage.json` rewrites the shipped
file; a test checks that the shipped file is what this module makes."""
from __future__ import annotations

import json
import sys

from .layers import layer_names

_WORD_END = "(?![A-Za-z0-9_])"
_NAME = "[A-Za-z_][A-Za-z0-9_]*"


def _keyword_then_name(keyword: str, keyword_scope: str, name_scope: str) -> dict:
    return {"match": f"\\b({keyword})\\s+({_NAME})",
            "captures": {"1": {"name": f"{keyword_scope}.archdsl"},
                         "2": {"name": f"{name_scope}.archdsl"}}}


def grammar() -> dict:
    """The grammar as JSON data. Every regex means the same in Oniguruma and Python."""
    patterns = [
        {"name": "comment.line.number-sign.archdsl", "match": "#.*$"},
        _keyword_then_name("def", "storage.type.function", "entity.name.function"),
        _keyword_then_name("assert", "keyword.control.assert", "variable.other.metric"),
        _keyword_then_name("as", "keyword.other.as", "entity.name.label"),
        _keyword_then_name("for", "keyword.control.for", "variable.other.index"),
        {"name": "keyword.other.declaration.archdsl", "match": f"\\b(input|train){_WORD_END}"},
        {"name": "constant.language.archdsl",
         "match": f"\\b(true|false|True|False|none|None){_WORD_END}"},
        {"name": "support.function.layer.archdsl",
         "match": f"\\b({'|'.join(layer_names())}){_WORD_END}"},
        {"match": f"\\b({_NAME})\\s*(=)(?!=)",
         "captures": {"1": {"name": "variable.parameter.archdsl"},
                      "2": {"name": "keyword.operator.assignment.archdsl"}}},
        {"name": "variable.other.archdsl", "match": f"\\b{_NAME}"},
        {"name": "constant.numeric.shape.archdsl", "match": f"\\b[0-9]+(x[0-9]+)+{_WORD_END}"},
        {"name": "constant.numeric.bound.archdsl",
         "match": f"\\b[0-9]+(\\.[0-9]*)?[kKmMgG][iI]?[bB]?{_WORD_END}"},
        {"name": "constant.numeric.float.archdsl",
         "match": "([0-9]+\\.[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?|\\b[0-9]+[eE][-+]?[0-9]+"},
        {"name": "constant.numeric.integer.archdsl", "match": "\\b[0-9]+"},
        {"name": "string.quoted.double.archdsl", "match": "\"[^\"\\n]*\""},
        {"name": "string.quoted.single.archdsl", "match": "'[^'\\n]*'"},
        {"name": "keyword.operator.arrow.archdsl", "match": "->"},
        {"name": "keyword.operator.archdsl", "match": "//|<=|>=|[-+*/|=<>]"},
        {"name": "punctuation.section.brackets.archdsl", "match": "[\\[\\]]"},
        {"name": "punctuation.section.parens.archdsl", "match": "[()]"},
        {"name": "punctuation.separator.comma.archdsl", "match": ","},
    ]
    return {"$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/"
                       "tmlanguage.json",
            "name": "archdsl", "scopeName": "source.archdsl", "fileTypes": ["spec"],
            "patterns": patterns}


def render() -> str:
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m archdsl.textmate PATH")
    with open(sys.argv[1], "w", encoding="utf-8") as handle:
        handle.write(render())
