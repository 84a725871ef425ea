"""Text -> Spec: lark's LALR parser (tables cached across processes), then a transformer that
builds the IR with every node's source span. lark's errors become archdsl's (syntax_errors)."""
from __future__ import annotations

import functools
import keyword
import math
import re
import sys

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedInput, VisitError

from . import parser_cache
from .errors import ArchDSLError, Span, SpecFileError, SpecSyntaxError
from .budget import BYTE_METRICS, METRICS, parse_bound
from .ir import (Argument, AssertDecl, Call, Chain, Definition, Group, InputDecl, Name, Named,
                 Operation, Parallel, Parameter, Repeat, Spec, TrainDecl, parse_shape)
from .layers.arguments import suggest
from .syntax_errors import check_nesting, syntax_error

MAX_DIGITS = 18  # integers beyond this are no real size, and would trip Python's int/str limits
MAX_SPEC_BYTES = 1_000_000  # a spec is text a person writes; more is a mistake or an attack
MAX_EXPRESSION_DEPTH = 100  # operators within one argument; deeper exhausts the recursion
MAX_ITEMS = 100  # arguments of a call, parameters of a definition, values of a tuple


@functools.cache
def _parser() -> Lark:
    # Building the LALR tables costs more than parsing a ResNet-50 spec, in every process.
    return parser_cache.cached(lambda: Lark.open_from_package(
        "archdsl.grammars", "archdsl.lark", ("",), parser="lalr", propagate_positions=True,
        maybe_placeholders=False))


def lone_cr_as_lf(text: str) -> str:
    """Old Mac line endings (a CR alone) end lines as CRLF and LF do; offsets stay the same."""
    return re.sub(r"\r(?!\n)", "\n", text)


def parse(text: str, filename: str = "<spec>") -> Spec:
    """Parse spec text. Raises an ArchDSLError subclass, with a span, on any bad input."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecFileError(f"spec is too large: more than {MAX_SPEC_BYTES:,} bytes")
    text = lone_cr_as_lf(text)
    # A byte-order mark is no part of the text: columns on line 1 count from after it, and
    # ArchDSLError.render drops it from the line it shows.
    text = text.removeprefix("\ufeff")
    if not re.sub(r"#[^\n]*", "", text).strip():
        raise SpecFileError("spec is empty: expected a network such as "
                            "'input 1x28x28  Conv(16, 3) -> ReLU -> Flatten -> Linear(10)'")
    check_nesting(text)
    try:
        tree = _parser().parse(text)
        _check_depth(tree)
        return _ToSpec(text, filename).transform(tree)
    except UnexpectedInput as error:
        raise syntax_error(error, text, _parser()) from None
    except VisitError as error:
        if isinstance(error.orig_exc, ArchDSLError):
            raise error.orig_exc from None
        raise


_ARITHMETIC = {"add", "subtract", "multiply", "floordiv", "divide", "negate"}


def _check_depth(tree) -> None:
    """Refuse arithmetic nested deeper than MAX_EXPRESSION_DEPTH (`1+1+…+1`, `- - -1`), before
    the recursive transformer meets it. Brackets are bounded already (check_nesting)."""
    pending = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in _ARITHMETIC:
            depth += 1
            if depth > MAX_EXPRESSION_DEPTH:
                raise SpecSyntaxError(f"expression is nested too deeply: more than "
                                      f"{MAX_EXPRESSION_DEPTH} operators", Span.of(node.meta),
                                      hint="compute the value and write it as one number")
        pending += [(child, depth) for child in node.children]


def _at_most(items, what: str, span: Span) -> None:
    if len(items) > MAX_ITEMS:
        raise SpecSyntaxError(f"too many {what}: {len(items):,}, at most {MAX_ITEMS}", span)


def read_spec(path: str) -> Spec:
    """Read and parse a spec file."""
    return parse(read_text(path), path)


def read_text(path: str) -> str:
    """A spec file's text; missing, unreadable, too large and non-UTF-8 files raise
    SpecFileError. `-` reads standard input."""
    try:
        if path == "-":
            if sys.stdin is None:
                raise SpecFileError("cannot read the spec from standard input: it is closed")
            return decode(read_bounded(sys.stdin.buffer))
        with open(path, "rb") as handle:
            return decode(read_bounded(handle))
    except FileNotFoundError:
        raise SpecFileError("spec file does not exist") from None
    except IsADirectoryError:
        raise SpecFileError("spec path is a directory, not a file") from None
    except OSError as error:
        raise SpecFileError(f"cannot read spec file: {error.strerror}") from None


def read_bounded(handle) -> bytes:
    """At most MAX_SPEC_BYTES: a larger file (or /dev/zero) is refused, not read to the end."""
    data = handle.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecFileError(f"spec is too large: more than {MAX_SPEC_BYTES:,} bytes")
    return data


def decode(data: bytes) -> str:
    """Spec bytes -> text; bytes that are not UTF-8 raise SpecFileError at their position."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        good = data[:error.start].decode("utf-8")
        line = good.count("\n") + 1
        column = len(good) - (good.rfind("\n") + 1) + 1
        bad = SpecFileError(f"spec is not UTF-8 text: byte 0x{data[error.start]:02x} "
                            f"at offset {error.start}",
                            Span(line, column, line, column + 1, error.start, error.start + 1))
        bad.source = data.decode("utf-8", "replace")
        raise bad from None
    return text


def _shortened(word: str) -> str:
    return word if len(word) <= 24 else word[:20] + "…"


def _integer(token: Token) -> int:
    digits = token.lstrip("-").lstrip("0")
    if len(digits) > MAX_DIGITS:
        raise ArchDSLError(f"number is too large: {len(digits)} digits, at most {MAX_DIGITS}",
                           Span.of(token))
    return int(token)


@v_args(meta=True)
class _ToSpec(Transformer):
    """Parse tree -> typed nodes, one method per grammar rule."""

    def __init__(self, text: str, filename: str):
        super().__init__()
        self.text, self.filename = text, filename

    def start(self, meta, children):
        declared, definitions, assertions = {}, [], []
        for child in children[:-1]:
            if isinstance(child, Definition):
                definitions.append(child)
                continue
            if isinstance(child, AssertDecl):
                assertions.append(child)
                continue
            if type(child) in declared:
                what = "input shape" if isinstance(child, InputDecl) else "train block"
                raise SpecSyntaxError(f"the {what} is declared twice", child.span)
            declared[type(child)] = child
        return Spec(children[-1], declared.get(InputDecl), self.text, self.filename,
                    declared.get(TrainDecl), tuple(definitions), tuple(assertions))

    def definition(self, meta, children):
        name, *parameters, body = children
        _at_most(parameters, "parameters", Span.of(name))
        defaulted = False
        for parameter in parameters:
            if defaulted and not parameter.has_default:
                raise SpecSyntaxError(f"parameter {parameter.name!r} without a default follows "
                                      f"one with a default", parameter.span)
            defaulted = parameter.has_default
        names = [p.name for p in parameters]
        for index, parameter in enumerate(parameters):
            if keyword.iskeyword(parameter.name):  # lowering binds parameters as dataclass fields
                raise SpecSyntaxError(f"parameter name {parameter.name!r} is reserved; choose "
                                      f"another", parameter.span)
            if parameter.name in names[:index]:
                raise SpecSyntaxError(f"parameter {parameter.name!r} is declared twice",
                                      parameter.span)
        return Definition(str(name), tuple(parameters), body, Span.of(meta), Span.of(name))

    def parameter(self, meta, children):
        name, *default = children
        return Parameter(str(name), default[0] if default else None, bool(default),
                         Span.of(meta))

    def sum(self, meta, branches):
        return Parallel(tuple(branches), "Add", Span.of(meta))

    def concat(self, meta, branches):
        return Parallel(tuple(branches), "Concat", Span.of(meta))

    def product(self, meta, branches):
        return Parallel(tuple(branches), "Multiply", Span.of(meta))

    def named(self, meta, children):
        body, name = children
        return Named(body, str(name), Span.of(meta), Span.of(name))

    def input_decl(self, meta, children):
        (token,) = children
        return InputDecl(parse_shape(str(token), Span.of(token)), Span.of(meta))

    def assert_decl(self, meta, children):
        metric, comparator, bound = children
        if str(metric) not in METRICS:
            raise ArchDSLError(f"unknown metric {str(metric)!r}{suggest(str(metric), METRICS)}",
                               Span.of(metric), hint="metrics: " + ", ".join(METRICS))
        if str(bound)[-1] in "bB" and str(metric) not in BYTE_METRICS:
            raise ArchDSLError(f"{str(bound)!r} ends in B, for bytes, but {metric} counts no "
                               f"bytes: write {str(bound)[:-1]}", Span.of(bound),
                               hint="byte metrics: " + ", ".join(BYTE_METRICS))
        return AssertDecl(str(metric), str(comparator), parse_bound(str(bound)), str(bound),
                          Span.of(meta), Span.of(metric))

    def train_decl(self, meta, arguments):
        return TrainDecl(tuple(arguments), Span.of(meta))

    def chain(self, meta, steps):
        return Chain(tuple(steps), Span.of(meta))

    def group(self, meta, children):
        return Group(children[0], Span.of(meta))

    def repeat(self, meta, children):
        body, (count, count_span), *index = children
        if not index:
            return Repeat(body, count, Span.of(meta), count_span)
        (name,) = index
        if keyword.iskeyword(str(name)):  # bound beside a definition's parameters
            raise SpecSyntaxError(f"index name {str(name)!r} is reserved; choose another",
                                  Span.of(name))
        return Repeat(body, count, Span.of(meta), count_span, str(name), Span.of(name))

    def count(self, meta, children):
        (token,) = children
        value = _integer(token) if token.type == "INT" else Name(str(token))
        return value, Span.of(token)

    def call(self, meta, children):
        name, *arguments = children
        _at_most(arguments, "arguments", Span.of(name))
        return Call(str(name), tuple(arguments), Span.of(meta), Span.of(name))

    def positional(self, meta, children):
        return Argument(None, children[0], Span.of(meta))

    def keyword(self, meta, children):
        name, value = children
        return Argument(str(name), value, Span.of(meta))

    def integer(self, meta, children):
        return _integer(children[0])

    def real(self, meta, children):
        value = float(children[0])
        if not math.isfinite(value):
            raise ArchDSLError(f"number is too large: {_shortened(children[0])} is beyond a "
                               f"float's range (about 1.8e308)", Span.of(children[0]))
        return value

    def symbol(self, meta, children):
        word = str(children[0])
        return {"true": True, "false": False, "none": None}.get(word.lower(), Name(word))

    def string(self, meta, children):
        return str(children[0])[1:-1]

    def tuple(self, meta, children):
        _at_most(children, "values in a tuple", Span.of(meta))
        return tuple(children)

    def add(self, meta, children):
        return _operation("+", children, meta)

    def subtract(self, meta, children):
        left, _, right = children
        return _operation("-", (left, right), meta)

    def multiply(self, meta, children):
        return _operation("*", children, meta)

    def floordiv(self, meta, children):
        return _operation("//", children, meta)

    def divide(self, meta, children):
        return _operation("/", children, meta)

    def negate(self, meta, children):
        return _operation("neg", children[1:], meta)


def _operation(operator: str, operands, meta):
    """Arithmetic on numbers is done now; with a parameter in it, when the definition expands."""
    from .binding import resolve
    operation = Operation(operator, tuple(operands), Span.of(meta))
    if any(isinstance(o, (Name, Operation)) for o in operands):
        return operation
    return resolve(operation)
