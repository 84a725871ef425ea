"""`archdsl fmt`: canonical layout. Properties: the formatted spec analyzes exactly as the
original (same rows, same totals, or the same error), formatting is idempotent, and every
comment survives; over the shipped specs and over generated ones."""
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from archdsl import ArchDSLError, analyze, parse
from archdsl.cli import app
from archdsl.fmt import format_spec
from conftest import ROOT, SPECS
from test_fuzz import EXTRA

runner = CliRunner()
COMMENT = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|#[^\n]*")


def outcome(text: str, input="3x16x16"):
    """What the analysis makes of a spec: its rows and totals, or its error's message."""
    try:
        spec = parse(text)
        analysis = analyze(spec, None if spec.input else input)
    except ArchDSLError as error:
        return type(error).__name__, error.message
    budget = [(a.metric, a.comparator, a.bound) for a in spec.assertions]
    return analysis.input, analysis.rows, analysis.totals, budget


def comments(text: str) -> list[str]:
    return sorted(m.rstrip() for m in COMMENT.findall(text) if m.startswith("#"))


def assert_formats_well(text: str) -> str:
    formatted = format_spec(text)
    assert format_spec(formatted) == formatted, formatted  # idempotent
    assert outcome(formatted) == outcome(text), formatted
    assert comments(formatted) == comments(text), formatted
    assert formatted.endswith("\n") and not formatted.endswith("\n\n")
    return formatted


def test_the_writers_line_breaks_are_kept():
    """simple_cnn.spec is canonical as written: three steps to a line, as the tutorial reads."""
    text = (ROOT / "specs/simple_cnn.spec").read_text()
    assert format_spec(text) == text
    messy = "input 1x28x28\nConv(16,3,p=1)->ReLU\n->MaxPool(2)   ->  Flatten\n  ->Linear(10)"
    assert assert_formats_well(messy) == ("input 1x28x28\nConv(16, 3, p=1) -> ReLU\n"
                                          "  -> MaxPool(2) -> Flatten\n  -> Linear(10)\n")


def test_a_line_too_long_goes_one_step_per_line():
    steps = " -> ".join(f"Conv({c}, 3, p=1) -> BatchNorm -> ReLU" for c in (8, 16, 32))
    formatted = assert_formats_well(f"input 1x8x8\n{steps} -> Flatten\n  -> Linear(10)\n")
    assert formatted == ("input 1x8x8\nConv(8, 3, p=1)\n  -> BatchNorm\n  -> ReLU\n"
                         "  -> Conv(16, 3, p=1)\n  -> BatchNorm\n  -> ReLU\n"
                         "  -> Conv(32, 3, p=1)\n  -> BatchNorm\n  -> ReLU\n  -> Flatten\n"
                         "  -> Linear(10)\n")


def test_a_long_train_block_fills_lines_aligned_after_its_parenthesis():
    settings = ("epochs=10, batch_size=128, optimizer=adamw, lr=4e-3, weight_decay=0.05, "
                "scheduler=onecycle, label_smoothing=0.1")
    formatted = assert_formats_well(f"input 1x8x8\ntrain({settings})\nFlatten\n")
    assert formatted == ("input 1x8x8\ntrain(epochs=10, batch_size=128, optimizer=adamw, "
                         "lr=4e-3, weight_decay=0.05, scheduler=onecycle,\n"
                         "      label_smoothing=0.1)\nFlatten\n")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_are_canonical(path):
    text = path.read_text(encoding="utf-8")
    assert format_spec(text) == text


def test_declarations_come_first_in_a_fixed_order():
    text = ("def B(c) = [A(c)]  # uses A\n"
            "assert macs < 1M\n"
            "# the definitions\n"
            "def A(c, k=3)=[Conv( c,k ,p=k//2,)->ReLU()]\n"
            "train( epochs=2 )\n"
            "assert params<=10k\n"
            "input 3x16x16\n"
            "B(4)*2 as body->[ReLU]+Identity   # residual\n"
            "->[Conv(2,1)]|Identity  # two branches\n"
            "# the end\n")
    assert assert_formats_well(text) == (
        "input 3x16x16\n"
        "train(epochs=2)\n"
        "assert macs < 1M\n"
        "assert params <= 10k\n"
        "def B(c) = [A(c)]  # uses A\n"
        "# the definitions\n"
        "def A(c, k=3) = [Conv(c, k, p=k//2) -> ReLU]\n"
        "B(4)*2 as body -> [ReLU] + Identity  # residual\n"
        "  -> [Conv(2, 1)] | Identity  # two branches\n"
        "# the end\n")


def test_arithmetic_keeps_its_meaning_with_fewest_parentheses():
    text = ("input 1x8x8\ndef X(a, b=2) = [Conv(a*(b+1), ((3)), p=a - (b - 1), s=-(-1), "
            "d=(a//b)*1)]\nX(4)")
    formatted = assert_formats_well(text)
    assert "Conv(a*(b + 1), 3, p=a - (b - 1), s=--1, d=a//b*1)" in formatted


def test_values_are_kept_as_written():
    text = ("input 1x8x8\ntrain(lr=3e-3, optimizer=adamw)\n"
            "Conv(4, k=(1, 3), padding=\"same\") -> BatchNorm(eps=1e-5) -> GELU(approximate='tanh')"
            " -> Linear(3, bias=False)")
    formatted = format_spec(text)
    assert "train(lr=3e-3, optimizer=adamw)" in formatted
    assert "Conv(4, k=(1, 3), padding=\"same\")" in formatted
    assert "GELU(approximate='tanh')" in formatted and "bias=False" in formatted


def test_long_definitions_break_one_step_per_line():
    """A definition written on one line too long for it: one step per line after its '['."""
    text = (ROOT / "specs/zoo/resnet18.spec").read_text()
    formatted = assert_formats_well(re.sub(r"\n\s+->", " ->", text))  # every step on one line
    assert ("def Body(c, s) = [Conv(c, 3, s=s, p=1, bias=false)\n"
            "                  -> BatchNorm\n") in formatted
    assert "def Basic(c) = [Body(c, 1) + Identity -> ReLU]\n" in formatted
    assert all(len(line) <= 100 for line in formatted.splitlines() if "#" not in line)


def test_comments_inside_a_multiline_step_move_above_it():
    text = "input 1x8x8\n[Conv(4, 3, p=1)  # first\n -> ReLU]*2  # twice\n-> Flatten\n"
    assert assert_formats_well(text) == (
        "input 1x8x8\n# first\n[Conv(4, 3, p=1)\n -> ReLU]*2  # twice\n  -> Flatten\n")


def test_comment_characters_in_strings_and_quotes_in_comments():
    text = ("input 1x8x8  # it's a \"shape\"\nConv(4, 3, padding='same')  # '#'\n"
            "-> Upsample(mode='nearest')\n")
    formatted = assert_formats_well(text)
    assert formatted == ("input 1x8x8  # it's a \"shape\"\nConv(4, 3, padding='same')  # '#'\n"
                         "  -> Upsample(mode='nearest')\n")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs(path):
    assert_formats_well(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", EXTRA, ids=range(len(EXTRA)))
def test_fuzzer_seeds(text):
    assert_formats_well(text)


# --- generated specs ---------------------------------------------------------------------

def call(name, *positional, **keywords):
    arguments = [str(p) for p in positional] + [f"{k}={v}" for k, v in keywords.items()]
    return [name, "(", *" , ".join(arguments).split(" "), ")"] if arguments else [name]


sizes = st.integers(1, 5)
layer_calls = st.one_of(
    st.builds(lambda c, k, s, p: call("Conv", c, k, s=s, p=p),
              st.integers(1, 8), sizes, st.integers(1, 2), st.integers(0, 2)),
    st.builds(lambda c, k: call("Conv", c, k=k, padding="'same'"), st.integers(1, 8), sizes),
    st.builds(lambda c: call("Conv", c, "(1, 3)", p="(0, 1)"), st.integers(1, 8)),
    st.builds(lambda k, ceil: call("MaxPool", k, ceil_mode=ceil), st.integers(1, 3),
              st.sampled_from(["true", "false"])),
    st.builds(lambda k: call("AvgPool", k, s=1), st.integers(1, 3)),
    st.sampled_from([["ReLU"], ["ReLU", "(", ")"], ["BatchNorm"], ["Identity"], ["Tanh"],
                     call("Dropout", 0.25), call("LeakyReLU", "slope=0.1"),
                     call("GELU", approximate="'tanh'"), call("Upsample", 2), ["Head"],
                     ["Dropout", "(", "1", "/", "4", ")"]]),
    st.builds(lambda c, k: call("Block", c) if k is None else call("Block", c, k=k),
              st.integers(1, 6), st.sampled_from([None, 1, 3])),
    st.builds(lambda c: ["Block", "(", "c", "=", str(c), "*", "2", ")"], st.integers(1, 3)),
)


def _terms(atoms):
    """A term: a call or group, repeated or not, named or not."""
    repeats = st.builds(lambda a, n, index: [*a, "*", str(n), *index], atoms, st.integers(1, 2),
                        st.sampled_from([[], ["for", "k"]]))
    return st.one_of(atoms, repeats, st.builds(lambda t, n: [*t, "as", n],
                                               st.one_of(atoms, repeats),
                                               st.sampled_from(["x", "skip"])))


def _steps(atoms):
    """A step: a term, or terms joined by + (sum), | (concat) or * (product)."""
    terms = _terms(atoms)
    return st.one_of(terms, st.builds(lambda ts, op: sum(([op, *t] if i else t for i, t
                                                          in enumerate(ts)), []),
                                      st.lists(terms, min_size=2, max_size=3),
                                      st.sampled_from(["+", "|"])),
                      st.builds(lambda t, gates: t + sum((["*", *g] for g in gates), []),
                                terms, st.lists(_groups_of(atoms), min_size=1, max_size=2)))


def _groups(atoms):
    return st.lists(_steps(atoms), min_size=1, max_size=3).map(
        lambda steps: ["[", *sum(_join(steps), []), "]"])


def _groups_of(atoms):
    """The factor of a product: a group of terms (a `*` that multiplies comes before '[')."""
    return st.lists(_terms(atoms), min_size=1, max_size=2).map(
        lambda steps: ["[", *sum(_join(steps), []), "]"])


atoms = st.recursive(layer_calls, _groups, max_leaves=8)  # calls and (nested) groups
steps = _steps(atoms)


def _join(steps):
    out = []
    for index, step in enumerate(steps):
        out.append((["->"] if index else []) + step)
    return out


@st.composite
def generated_specs(draw) -> str:
    tokens = []
    declarations = [["input", draw(st.sampled_from(["3x16x16", "1x9x9", "2x8x8x8"]))],
                    ["def", "Block", "(", "c", ",", "k", "=", "3", ")", "=", "[", "Conv", "(",
                     "c", ",", "k", ",", "p", "=", "k", "//", "2", ")", "->", "ReLU", "]"],
                    ["def", "Head", "=", "[", "Identity", "]"]]
    if draw(st.booleans()):
        declarations.append(["assert", draw(st.sampled_from(["params", "macs", "depth"])),
                             draw(st.sampled_from(["<", "<=", ">", ">="])),
                             draw(st.sampled_from(["10", "1.5k", "2M", "1Gi"]))])
    if draw(st.booleans()):
        declarations.append(["train", "(", "epochs", "=", "2", ",", "lr", "=", "3e-3", ")"])
    for declaration in draw(st.permutations(declarations)):
        tokens += declaration
    chain = draw(st.lists(steps, min_size=1, max_size=5))
    tokens += sum(_join(chain), [])
    # Random layout: every gap gets spaces, line breaks or comments; words stay apart.
    gaps = st.sampled_from(["", "", " ", "  ", "\n", "\n    ", "\t", " # a note\n",
                            "  # it's [ not ( code\n", "\n# own line\n"])
    text = tokens[0]
    for before, token in zip(tokens, tokens[1:]):
        gap = draw(gaps)
        if not gap and (before[-1:].isalnum() or before[-1:] in "_'") and \
                (token[:1].isalnum() or token[:1] in "_'."):
            gap = " "
        text += gap + token
    return text + draw(st.sampled_from(["", "\n", "  # last\n", "\n\n"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_specs())
def test_generated_specs(text):
    assert_formats_well(text)


# --- the command -------------------------------------------------------------------------

def test_fmt_prints_the_canonical_form():
    result = runner.invoke(app, ["fmt", str(ROOT / "specs/simple_cnn.spec")])
    assert result.exit_code == 0
    assert result.stdout == format_spec((ROOT / "specs/simple_cnn.spec").read_text())


def test_fmt_check(tmp_path):
    path = tmp_path / "a.spec"
    path.write_text("input 1x28x28\nConv(16,3,p=1) -> ReLU\n")
    result = runner.invoke(app, ["fmt", str(path), "--check"])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"--- {path}\n+++ {path} (formatted)\n")
    assert "-Conv(16,3,p=1) -> ReLU\n+Conv(16, 3, p=1) -> ReLU\n" in result.stdout
    path.write_text(format_spec(path.read_text()))
    result = runner.invoke(app, ["fmt", str(path), "--check"])
    assert result.exit_code == 0 and result.stdout == ""
    assert path.read_text() == "input 1x28x28\nConv(16, 3, p=1) -> ReLU\n"


def test_fmt_write_rewrites_only_what_is_not_canonical(tmp_path):
    messy, tidy = tmp_path / "messy.spec", tmp_path / "tidy.spec"
    messy.write_text("input 1x28x28\nConv(16,3,p=1) -> ReLU  # two\n")
    tidy.write_text("input 1x28x28\nReLU\n")
    messy.chmod(0o640)
    link = tmp_path / "link.spec"
    link.symlink_to(messy)
    before = tidy.stat().st_mtime_ns
    result = runner.invoke(app, ["fmt", "--write", str(link), str(tidy)])
    assert result.exit_code == 0 and result.stdout == f"reformatted {link}\n"
    assert messy.read_text() == "input 1x28x28\nConv(16, 3, p=1) -> ReLU  # two\n"
    assert link.is_symlink() and (messy.stat().st_mode & 0o777) == 0o640
    assert tidy.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.spec", "messy.spec", "tidy.spec"]


@pytest.mark.parametrize("style", [("", "\r\n"), ("\ufeff", "\n"), ("\ufeff", "\r\n")],
                         ids=["crlf", "bom", "bom-crlf"])
def test_fmt_keeps_the_files_line_endings_and_byte_order_mark(tmp_path, style):
    mark, newline = style
    canonical = "input 1x28x28  # mnist\nConv(16, 3, p=1) -> ReLU\n"
    tidy, messy = tmp_path / "tidy.spec", tmp_path / "messy.spec"
    tidy.write_bytes((mark + canonical.replace("\n", newline)).encode("utf-8"))
    messy.write_bytes((mark + "input 1x28x28  # mnist\nConv(16,3,p=1) -> ReLU\n"
                       .replace("\n", newline)).encode("utf-8"))
    result = runner.invoke(app, ["fmt", "--check", str(tidy)])
    assert result.exit_code == 0 and result.stdout == "", result.stdout
    result = runner.invoke(app, ["fmt", "--write", str(tidy), str(messy)])
    assert result.exit_code == 0 and result.stdout == f"reformatted {messy}\n"
    assert messy.read_bytes() == tidy.read_bytes() == \
        (mark + canonical.replace("\n", newline)).encode("utf-8")


def test_fmt_write_changes_nothing_when_one_spec_is_bad(tmp_path):
    messy, bad = tmp_path / "messy.spec", tmp_path / "bad.spec"
    messy.write_text("input 1x28x28\nConv(16,3,p=1)\n")
    bad.write_text("input 1x28x28\nConv(16, 3\n")
    result = runner.invoke(app, ["fmt", "-w", str(messy), str(bad)])
    assert result.exit_code == 2 and f"{bad}:2:11: unexpected end of spec" in result.output
    assert messy.read_text() == "input 1x28x28\nConv(16,3,p=1)\n"


def test_fmt_check_over_several_files(tmp_path):
    messy, tidy = tmp_path / "messy.spec", tmp_path / "tidy.spec"
    messy.write_text("input 1x28x28\nReLU ->  ReLU\n")
    tidy.write_text("input 1x28x28\nReLU\n")
    result = runner.invoke(app, ["fmt", "--check", str(tidy), str(messy)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"--- {messy}\n") and str(tidy) not in result.stdout


@pytest.mark.parametrize("arguments", [["--check", "--write", "a.spec"], ["--write", "-"]])
def test_fmt_write_refuses_what_it_cannot_do(arguments):
    result = runner.invoke(app, ["fmt", *arguments], input="ReLU")
    assert result.exit_code == 2


def test_fmt_reads_stdin_and_reports_errors_with_position():
    result = runner.invoke(app, ["fmt", "-"], input="ReLU->Linear(3)")
    assert result.exit_code == 0 and result.stdout == "ReLU -> Linear(3)\n"
    result = runner.invoke(app, ["fmt", "-", "--check"], input="ReLU -> Lin ear")
    assert result.exit_code == 2
    assert "<stdin>:1:13: unexpected 'ear'" in result.output



def test_reserved_parameter_names_are_spec_errors():
    # found by the fuzzer: a parameter named like a Python keyword ('as', 'if') used to end in
    # a traceback from lowering, which binds parameters as dataclass fields
    result = runner.invoke(app, ["fmt", "-"], input="def Body(c, as) = [ReLU]\nBody(1, 2)")
    assert result.exit_code == 2
    assert "<stdin>:1:13: parameter name 'as' is reserved" in result.output


def test_fmt_write_never_writes_through_a_link_planted_beside_the_spec(tmp_path):
    spec, victim = tmp_path / "messy.spec", tmp_path / "victim"
    spec.write_text("input 1x28x28\nConv(16,3,p=1) -> ReLU\n")
    victim.write_text("precious\n")
    (tmp_path / ".messy.spec.fmt.tmp").symlink_to(victim)
    (tmp_path / ".messy.spec.tmp").symlink_to(victim)
    result = runner.invoke(app, ["fmt", "--write", str(spec)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert spec.read_text() == "input 1x28x28\nConv(16, 3, p=1) -> ReLU\n"


def test_cr_only_line_endings_are_formatted_as_lines():
    assert format_spec("input 1x8x8\r# c\rFlatten -> Linear(10)\r") == \
        "input 1x8x8\n# c\nFlatten -> Linear(10)\n"


def test_a_long_branch_step_breaks_inside_its_groups():
    """A definition whose one step is a product too long for a line: the gate's chain goes one
    step per line, aligned after its '[', and no line passes WIDTH."""
    text = ("input 8x8x8\ndef SE(c, squeeze) = [Identity * [AdaptiveAvgPool(1) -> Conv(squeeze, 1) "
            "-> ReLU -> Conv(c, 1) -> Sigmoid]]\nSE(8, 2)")
    formatted = assert_formats_well(text)
    assert ("def SE(c, squeeze) = [Identity * [AdaptiveAvgPool(1)\n"
            "                                  -> Conv(squeeze, 1)\n") in formatted
    assert all(len(line) <= 100 for line in formatted.splitlines())


def test_branches_after_one_that_broke_start_their_own_lines():
    """Inception's concatenation of four long branches: each operand after the first that
    breaks starts a line under the first, after the `|`, instead of where the last one ended."""
    long = "[Conv(64, 1) as reduce -> Conv(96, (1, 7), p=(0, 3)) as wide -> Conv(96, (7, 1), " \
           "p=(3, 0)) as tall]"
    text = f"input 8x8x8\ndef Mixed(c) = [Conv(c, 1) as single | {long} | {long} | " \
           f"[AvgPool(3, s=1, p=1) -> Conv(c, 1) as pool]]\nMixed(32)"
    formatted = assert_formats_well(text)
    assert ("def Mixed(c) = [Conv(c, 1) as single | [Conv(64, 1) as reduce\n"
            "                                        -> Conv(96, (1, 7), p=(0, 3)) as wide\n"
            "                                        -> Conv(96, (7, 1), p=(3, 0)) as tall]\n"
            "                | [Conv(64, 1) as reduce\n") in formatted
    assert "                | [AvgPool(3, s=1, p=1) -> Conv(c, 1) as pool]]\n" in formatted
    assert all(len(line) <= 100 for line in formatted.splitlines())


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_no_formatted_line_passes_the_width(path):
    """Except a comment's: fmt breaks a long train(...) block too."""
    formatted = format_spec(path.read_text(encoding="utf-8"))
    assert [line for line in formatted.splitlines() if len(line) > 100 and "#" not in line] == []
