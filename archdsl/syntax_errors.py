"""lark's parse errors as archdsl errors: the position, what was found, what the grammar would
have accepted there in words, and a hint for the usual slips."""
from __future__ import annotations

import re
import unicodedata

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .errors import Span, SpecSyntaxError
from .layers import layer_names
from .layers.arguments import KEYWORDS, keyword_slip

# What to call each terminal when saying what was expected.
_TERMINAL_WORDS = {
    "NAME": "a layer name", "MINUS": "'-'", "SHAPE": "a shape like 1x28x28", "INT": "a number",
    "FLOAT": "a number", "STRING": "a string",
    "_AS": "'as'", "_TIMES": "'*'", "COMPARATOR": "a comparison ('<', '<=', '>' or '>=')",
    "BOUND": "a number such as 100k or 1.5M",
    "$END": "the end of the spec",
}

MAX_NESTING = 50  # brackets deeper than this would exhaust the tree transformer's recursion

# Characters an input method or a habit puts where ASCII belongs (beyond unicodedata's words).
_ASCII_FOR = {"（": "(", "）": ")", "，": ",", "［": "[", "］": "]", "＝": "=", "＊": "*",
              "＋": "+", "｜": "|", "→": "->", "⟶": "->", "－": "-", "：": ":", "．": "."}
_LINE_START_WORD = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)", re.M)
_DEFINED = re.compile(r"\bdef\s+([A-Za-z_][A-Za-z0-9_]*)")

# Brackets outside strings and comments: to find a '[' or '(' left open, or nested too deep.
_BRACKET = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|#[^\n]*|[\[\]()]")


def syntax_error(error: UnexpectedInput, text: str, parser: Lark) -> SpecSyntaxError:
    """lark's error as a SpecSyntaxError: where, what was found, what would have fitted."""
    line, column, start = error.line, error.column, error.pos_in_stream or 0
    at_end = isinstance(error, UnexpectedToken) and error.token.type == "$END"
    if at_end and isinstance(error.token.end_line, int):
        # lark gives the end of input the last token's position; point just past that token.
        line, column, start = error.token.end_line, error.token.end_column, error.token.end_pos
    if not isinstance(line, int) or line < 1:  # older lark reports the end of input as -1
        lines = text.split("\n")
        line, column, start = len(lines), len(lines[-1]) + 1, len(text)
    if isinstance(error, UnexpectedCharacters):
        found = repr(text[error.pos_in_stream]) if error.pos_in_stream < len(text) else "end"
        width = 1
        if text.startswith("->", error.pos_in_stream):
            found, width = "'->'", 2
    else:
        token = error.token
        found = "end of spec" if at_end else repr(str(token))
        width = 1 if at_end else max(1, len(str(token)))
    # What the parser would accept here. lark's `expected` (UnexpectedToken) and `allowed`
    # (UnexpectedCharacters) are the lexer's terminals: they lack the end of input and, with
    # LALR's merged states, offer ']' outside any group.
    interactive = getattr(error, "interactive_parser", None)
    names = interactive.accepts() if interactive is not None else \
        getattr(error, "expected", None) or getattr(error, "allowed", None) or ()
    # Where a value may come, a name is a keyword or a word such as 'same', not a layer.
    arguments = "FLOAT" in names
    expected = sorted({"a name" if name == "NAME" and arguments else _describe_terminal(name, parser)
                       for name in names})
    if re.search(r"(?<![A-Za-z0-9_])for$", text[:start].rstrip()):
        expected = ["the name of the repeat's index, as in *3 for k"]
    message = f"unexpected {found}"
    if expected:
        message += ": expected " + _or_list(expected)
    if found == "'='" and text.startswith("=>", start):
        found, width = "'=>'", 2
        message = "unexpected '=>'" + message.removeprefix("unexpected '='")
    span = Span(line, column, line, column + width, start, start + width)
    slip = _keyword_slip(text, start)
    if slip is not None:
        return slip
    before = text[:start].rstrip()[-1:]
    token = str(getattr(error, "token", ""))
    hint = None
    if before in ("]", ")") and (found == "'×'" or re.fullmatch(r"[xX][0-9]*", token)):
        count = re.match(r"[0-9]*", text[start + 1:].lstrip()).group() if found == "'×'" or \
            token in "xX" else token[1:]
        hint = f"a repeat is written with '*': write *{count or 'N'} after the step"
    elif found == "'.'" and re.search(r"\bnn$", text[:start]):
        hint = _torch_module_hint(text, start)
    elif found.strip("'") in _ASCII_FOR:
        character = found.strip("'")
        name = unicodedata.name(character, "a non-ASCII character").lower()
        hint = f"{found} is U+{ord(character):04X} {name}; write the ASCII '{_ASCII_FOR[character]}'"
    elif found in ("'=>'", "','") and "'->'" in expected:
        hint = f"steps are joined by '->', not {found}"
    elif isinstance(error, UnexpectedToken) and "'->'" in expected and \
            error.token.type in ("NAME", "LSQB"):
        hint = "steps are joined by '->'; is one missing before this?"
    elif isinstance(error, UnexpectedToken) and error.token.type in ("INPUT", "TRAIN"):
        hint = "the input line and the train(...) block come before the network"
    elif isinstance(error, UnexpectedToken) and error.token.type == "ASSERT":
        hint = "assertions come before the network, with the input line"
    elif isinstance(error, UnexpectedCharacters) and found == "'×'":
        hint = "write shapes with the letter x, as in 1x28x28"
    elif at_end and ("']'" in expected or "')'" in expected):
        unclosed, _ = open_brackets(text)
        if unclosed:
            opened = Span.at(text, unclosed[-1])
            hint = (f"the {text[unclosed[-1]]!r} at line {opened.line}, column {opened.column} "
                    f"is never closed")
    return SpecSyntaxError(message, span, hint)


def _keyword_slip(text: str, offset: int) -> SpecSyntaxError | None:
    """A line before the error that starts with a misspelled keyword (`trian(epochs=3)`, `Input
    1x28x28`): the parser reads it as a layer, and fails at the next line."""
    defined = set(_DEFINED.findall(text)) | set(layer_names())
    for match in _LINE_START_WORD.finditer(text, 0, offset + 1):
        word = match.group(1)
        keyword = None if word in defined else keyword_slip(word)
        if keyword is not None:
            return SpecSyntaxError(f"{word!r} is not a keyword (did you mean {keyword!r}?)",
                                   Span.at(text, match.start(1), len(word)),
                                   hint=f"write it as in: {KEYWORDS[keyword]}")
    return None


def _torch_module_hint(text: str, offset: int) -> str:
    """For `nn.Conv2d(…)`: archdsl's name for PyTorch's module."""
    module = re.match(r"\.([A-Za-z_][A-Za-z0-9_]*)", text[offset:])
    torch_name = module.group(1) if module else ""
    name = re.sub(r"[123]d$", "", torch_name)
    if name in layer_names():
        return (f"archdsl's layers have no module prefix, and the input's rank picks 1d, 2d or "
                f"3d: write {name}(…) for nn.{torch_name}(…)")
    return "archdsl's layers have no module prefix: layers: " + ", ".join(layer_names())


def open_brackets(text: str) -> tuple[list[int], int | None]:
    """Offsets of the '[' and '(' still open at the end, and of the first one nested too deep."""
    stack: list[int] = []
    too_deep = None
    for match in _BRACKET.finditer(text):
        if match.group() in "[(":
            stack.append(match.start())
            if len(stack) > MAX_NESTING and too_deep is None:
                too_deep = match.start()
        elif match.group() in "])" and stack:
            stack.pop()
    return stack, too_deep


def check_nesting(text: str) -> None:
    _, too_deep = open_brackets(text)
    if too_deep is not None:
        raise SpecSyntaxError(f"brackets are nested more than {MAX_NESTING} deep",
                              Span.at(text, too_deep))


def _describe_terminal(name: str, parser: Lark) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    pattern = parser.get_terminal(name).pattern
    return repr(pattern.value) if pattern.type == "str" else name


def _or_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
