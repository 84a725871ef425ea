"""A Pygments lexer for specs, so that documentation renders them highlighted.

Registered as a Pygments plugin (the `pygments.lexers` entry point), so Pygments, Sphinx and
MkDocs find it by the alias `archdsl` or a file's `.spec` suffix once archdsl is installed:
`pygmentize -l archdsl specs/simple_cnn.spec`. Only Pygments imports this module.
"""
from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (Comment, Keyword, Name, Number, Operator, Punctuation, String,
                            Whitespace)

from .layers import layer_names

__all__ = ["ArchDSLLexer"]

_WORD_END = r"(?![A-Za-z0-9_])"
_SPEC_LIKE = re.compile(r"^\s*input\s+\d+(x\d+)*\s*(#.*)?$|->\s*(%s)\b"
                        % "|".join(layer_names()), re.MULTILINE)


class ArchDSLLexer(RegexLexer):
    """archdsl specs: `input 1x28x28`, `Conv(16, 3, p=1) -> ReLU -> MaxPool(2)`, …"""

    name = "archdsl"
    aliases = ["archdsl"]
    filenames = ["*.spec"]  # also RPM's suffix: analyse_text tells the two apart
    mimetypes = ["text/x-archdsl"]
    url = "https://pypi.org/project/archdsl/"

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r"(def)(\s+)([A-Za-z_]\w*)", bygroups(Keyword.Declaration, Whitespace,
                                                   Name.Function)),
            (r"(assert)(\s+)([A-Za-z_]\w*)", bygroups(Keyword, Whitespace, Name.Variable)),
            (r"(as)(\s+)([A-Za-z_]\w*)", bygroups(Keyword, Whitespace, Name.Label)),
            (r"(for)(\s+)([A-Za-z_]\w*)", bygroups(Keyword, Whitespace, Name.Variable)),
            (words(("input", "train"), suffix=_WORD_END), Keyword.Declaration),
            (words(("true", "false", "True", "False", "none", "None"), suffix=_WORD_END),
             Keyword.Constant),
            (words(layer_names(), suffix=_WORD_END), Name.Builtin),
            (r"([A-Za-z_]\w*)(\s*)(=)(?!=)", bygroups(Name.Attribute, Whitespace, Operator)),
            (r"[A-Za-z_]\w*", Name),
            (r"\d+(x\d+)+" + _WORD_END, Number.Integer),  # a shape: 1x28x28
            (r"\d+(\.\d*)?([kKmMgG][iI]?[bB]?|[bB])" + _WORD_END, Number),  # a bound: 250k, 1Mi, 8GiB
            (r"(\d+\.\d*|\.\d+)([eE][-+]?\d+)?|\d+[eE][-+]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            (r'"[^"\n]*"|' + r"'[^'\n]*'", String),
            (r"->|//|<=|>=|[-+*/|=<>]", Operator),
            (r"[()\[\],]", Punctuation),
        ],
    }

    def analyse_text(text):
        """1 for text that reads like a spec (an input line, an arrow into a layer), else 0."""
        return 1.0 if _SPEC_LIKE.search(text) else 0.0
