"""Bad input through `archdsl check`: exit 2, `file:line:col: message`, the line, a caret.

Each file in tests/data/bad/ is one bad spec that states its own expectation in its first
line, and optionally a hint in its second; both lines count in the position:

    # expect: 4:21 unexpected end of spec: expected ']'
    # hint: the '[' at line 4, column 1 is never closed

The cases a file cannot hold (an empty file, bytes that are not UTF-8, a missing file,
standard input, a bad --input) are the tests below the corpus.
"""
import inspect
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from archdsl.cli import app
from conftest import ROOT

CORPUS = sorted((ROOT / "tests" / "data" / "bad").glob("*.spec"))
EXPECT = re.compile(r"# expect: (\d+):(\d+) (.+)")
HINT = re.compile(r"# hint: (.+)")


def _runner() -> CliRunner:
    # Click before 8.2 mixes stderr into stdout unless told not to; later ones keep them apart.
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


def check(*args: str, input: str | bytes | None = None):
    return _runner().invoke(app, ["check", *args], input=input)


def assert_error(result, name: str, line: int, column: int, message: str,
                 text: str | None = None, hint: str | None = None) -> None:
    """Exit 2 and nothing on stdout; stderr starts `name:line:col: ` and carries `message`;
    with the spec's `text`, the offending line follows and a caret sits under `column`."""
    assert isinstance(result.exception, (SystemExit, type(None))), result.exc_info
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.split("\n")
    assert lines[0].startswith(f"{name}:{line}:{column}: "), result.stderr
    assert message in lines[0], result.stderr
    if text is not None:
        source = text.removeprefix("\ufeff").split("\n")[line - 1].rstrip("\r")
        assert lines[1] == f"  {source}", result.stderr
        indent = "".join(c if c == "\t" else " " for c in source[:column - 1])
        assert re.fullmatch(re.escape(f"  {indent}") + r"\^+", lines[2]), result.stderr
    if hint is not None:
        assert any(hint in line for line in lines if line.startswith("hint: ")), result.stderr


def test_the_corpus_is_there():
    # tests/data/bad holds one file per case; an empty glob would pass every test below.
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.stem)
def test_bad_spec(path):
    text = path.read_text(encoding="utf-8")
    header = text.split("\n")
    expect = EXPECT.fullmatch(header[0])
    assert expect, f"{path.name}: the first line must be '# expect: LINE:COL message'"
    hint = HINT.fullmatch(header[1])
    line, column, message = int(expect[1]), int(expect[2]), expect[3]
    assert_error(check(str(path)), str(path), line, column, message, text,
                 hint[1] if hint else None)


@pytest.mark.parametrize("text", ["", "\n\n   \n", "\ufeff# only a byte-order mark\n"],
                         ids=["empty", "blank", "bom"])
def test_empty_file(tmp_path, text):
    path = tmp_path / "empty.spec"
    path.write_text(text, encoding="utf-8")
    assert_error(check(str(path)), str(path), 1, 1, "spec is empty", text)


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.spec"
    path.write_bytes(b"input 1x28x28\n# caf\xe9 au lait\nConv(8, 3)\n")
    # The source line is shown with U+FFFD where the bad byte was.
    assert_error(check(str(path)), str(path), 2, 6, "spec is not UTF-8 text: byte 0xe9",
                 "input 1x28x28\n# caf\ufffd au lait\n")


def test_file_that_does_not_exist(tmp_path):
    path = tmp_path / "nowhere.spec"
    assert_error(check(str(path)), str(path), 1, 1, "spec file does not exist")


def test_a_directory(tmp_path):
    assert_error(check(str(tmp_path)), str(tmp_path), 1, 1, "is a directory")


@pytest.mark.parametrize("text, line, column, message", [
    ("input 1x28x28\nConv(16, 3\n", 2, 11, "unexpected end of spec: expected ')'"),
    ("input 1x28x28\nConv2(16, 3)\n", 2, 1, "unknown layer 'Conv2' (did you mean 'Conv'?)"),
    ("Flatten -> Linear(10)\n", 1, 1, "the spec declares no input shape"),
    ("", 1, 1, "spec is empty"),
], ids=["syntax", "layer", "no-input", "empty"])
def test_stdin(text, line, column, message):
    assert_error(check("-", input=text), "<stdin>", line, column, message, text)


def test_stdin_that_is_not_utf8():
    result = check("-", input=b"input 1x28x28\n# caf\xe9\nConv(8, 3)\n")
    assert_error(result, "<stdin>", 2, 6, "not UTF-8")


@pytest.mark.parametrize("shape, message", [
    ("1xfoo", "input shape must look like 1x28x28 or 784, got '1xfoo'"),
    ("1x0x28", "input sizes must be positive, got 1x0x28"),
    ("28x28x", "input shape must look like 1x28x28 or 784"),
    ("", "input shape must look like 1x28x28 or 784"),
    ("1x\u00b2", "input shape must look like 1x28x28 or 784"),  # '²'.isdigit(), yet int() refuses
    ("1x" + "9" * 40, "input shape is too large"),
])
def test_malformed_input_option(shape, message):
    result = check(str(ROOT / "specs" / "mlp.spec"), "--input", shape)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    # typer may draw the error in a box and wrap it: compare the words only.
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())
    assert "Invalid value for '--input'" in words and message in words, result.stderr


def test_tab_indented_line_keeps_the_caret_under_its_column(tmp_path):
    text = "input 1x28x28\n\tConv(16, 3.5)\n"
    path = tmp_path / "tab.spec"
    path.write_text(text, encoding="utf-8")
    assert_error(check(str(path)), str(path), 2, 11, "'kernel' must be", text)
    assert check(str(path)).stderr.split("\n")[2] == "  \t" + " " * 9 + "^^^"


@pytest.mark.parametrize("separator", ["\u2028", "\x0c", "\x1c"])
def test_lines_are_counted_at_newlines_only(tmp_path, separator):
    # lark counts lines at "\n" only; the caret must show the line lark means, not the one
    # str.splitlines() would find. (A CR alone ends a line: old Mac files.)
    text = f"input 1x28x28\n# one{separator}comment\nConv(16, 0)\n"
    path = tmp_path / "separator.spec"
    path.write_bytes(text.encode("utf-8"))
    assert_error(check(str(path)), str(path), 3, 10, "'kernel' must be", text)


def test_windows_line_endings(tmp_path):
    text = "input 1x28x28\r\nConv(16, 0)\r\n"
    path = tmp_path / "crlf.spec"
    path.write_bytes(text.encode("utf-8"))
    assert_error(check(str(path)), str(path), 2, 10, "'kernel' must be", text)


def test_byte_order_mark_is_not_an_error(tmp_path):
    path = tmp_path / "bom.spec"
    path.write_bytes("\ufeffinput 1x28x28\nFlatten -> Linear(10)\n".encode("utf-8"))
    result = check(str(path))
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bom_bad.spec"
    bad.write_bytes("\ufeffinput 1x28x28\nConv(16, 0)\n".encode("utf-8"))
    assert_error(check(str(bad)), str(bad), 2, 10, "'kernel' must be")


def test_byte_order_mark_takes_no_column_and_is_not_shown(tmp_path):
    # Line 1's columns count from after the mark, as an editor shows them; the echoed line
    # leaves it out, so the caret sits under the argument.
    text = "\ufeffinput 1x28x28  Conv(16, 0)\n"
    path = tmp_path / "bom_line1.spec"
    path.write_bytes(text.encode("utf-8"))
    result = check(str(path))
    assert_error(result, str(path), 1, 25, "'kernel' must be", text)
    assert result.stderr.split("\n")[1:3] == ["  input 1x28x28  Conv(16, 0)",
                                               "  " + " " * 24 + "^"]


def test_the_word_none_names_a_choice(tmp_path):
    # `none` is None where an argument may be None (MaxPool's stride), and the choice 'none'
    # where there is one: it was refused with "must be one of 'none', ..., got none".
    path = tmp_path / "none.spec"
    path.write_text("input 1x28x28\ntrain(scheduler=none)\n"
                    "MaxPool(2, stride=none) -> GELU(approximate=none) -> Flatten -> Linear(10)\n",
                    encoding="utf-8")
    result = check(str(path))
    assert result.exit_code == 0, result.output


def test_notes_follow_the_caret_and_come_before_the_hint():
    text = "input 1x28x28\n[Conv(16, 3) -> MaxPool(2)]*4 -> Flatten -> Linear(10)\n"
    result = check("-", input=text)
    assert_error(result, "<stdin>", 2, 2, "Conv: output would be 0×0", text)
    assert result.stderr.split("\n")[3:5] == [
        "note: in layer block4.conv",
        "hint: use padding, a smaller kernel or dilation, or a larger input"]


# Warnings: a spec that works but almost surely means something else. They print like errors,
# with `warning: ` after the position, on stderr, and leave the exit code as it was.

def assert_warning(result, name: str, line: int, column: int, message: str, text: str,
                   exit_code: int = 0) -> list[str]:
    """The warning's three lines, `name:line:col: warning: message`, the line and the caret; the
    lines after them are returned."""
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.split("\n")
    head = f"{name}:{line}:{column}: warning: {message}"
    assert head in lines, result.stderr
    at = lines.index(head)
    source = text.split("\n")[line - 1]
    assert lines[at + 1] == f"  {source}", result.stderr
    assert re.fullmatch(" " * (column + 1) + r"\^+", lines[at + 2]), result.stderr
    return lines[at + 3:]


def test_pytorch_argument_order_warns_with_what_to_write():
    text = "input 1x28x28\nConv(1, 16, 3, p=1) -> ReLU -> Flatten -> Linear(10)\n"
    result = check("-", input=text)
    rest = assert_warning(result, "<stdin>", 2, 1, "archdsl infers the input channels (1 here) "
                          "from the input; write Conv(16, 3, p=1)", text)
    assert rest[0] == ("hint: as written, archdsl reads out=1, kernel=16, stride=3; to mean "
                       "that, give stride by keyword")
    assert "conv" in result.stdout  # the table as always: a warning changes nothing else


@pytest.mark.parametrize("text", [
    "input 1x28x28\nConv(16, 3, 1) -> Flatten -> Linear(10)\n",  # 16 is not the 1 channel
    "input 16x28x28\nConv(16, 3) -> Flatten -> Linear(10)\n",  # Conv(3) would miss its kernel
    "input 1x28x28\nConv(1, 16, stride=3) -> Flatten -> Linear(10)\n",  # the stride by keyword
    "input 64x8x8\nConv(64, 3, 1, 1) -> Flatten -> Linear(10)\n",  # archdsl's out, k, s, p
])
def test_archdsl_argument_order_does_not_warn(text):
    result = check("-", input=text)
    assert result.exit_code == 0 and "warning" not in result.stderr, result.stderr


def test_warnings_are_data_of_the_analysis():
    from archdsl.analysis import analyze
    from archdsl.errors import ArchDSLWarning

    analysis = analyze("input 3x32x32\n[Conv(3, 16, 3) -> ReLU] -> Flatten -> Linear(10)\n")
    (warning,) = analysis.warnings
    assert type(warning) is ArchDSLWarning and type(warning.message) is str
    assert (warning.span.line, warning.span.column) == (2, 2)
    assert warning.message.endswith("write Conv(16, 3)")
    assert analyze("input 3x32x32\nConv(16, 3) -> Flatten -> Linear(10)\n").warnings == ()
    # A repeat's copies share the call: one warning for it.
    repeated = analyze("input 3x32x32\n[Conv(3, 3, 3, p=1) -> ReLU]*3 -> Flatten -> Linear(10)\n")
    assert [w.message for w in repeated.warnings] == [
        "archdsl infers the input channels (3 here) from the input; write Conv(3, 3, p=1)"]


@pytest.mark.parametrize("shape, message", [
    ("28x28", "input 28x28 reads as 28 channels of length 28 (a 1-D input): the input is C×H×W "
              "without the batch axis; for one channel of 28×28, write input 1x28x28"),
    ("1x1x28x28", "input 1x1x28x28 reads as 1 channel of 1×28×28 (a 3-D input): the input is "
                  "C×H×W without the batch axis; drop the batch axis: input 1x28x28"),
    ("28x28x1", "input 28x28x1 reads as 28 channels of 28×1: the input is C×H×W without the "
                "batch axis; channels first: input 1x28x28"),
])
def test_input_shapes_that_mean_an_image_otherwise(shape, message):
    text = f"input {shape}\nFlatten -> Linear(10)\n"
    assert_warning(check("-", input=text), "<stdin>", 1, 1, message, text)


def test_an_input_warning_comes_before_the_error_it_explains():
    text = "input 1x1x28x28\nConv(16, 3) -> Flatten -> Linear(10)\n"
    result = check("-", input=text)
    rest = assert_warning(result, "<stdin>", 1, 1, "input 1x1x28x28 reads as 1 channel of "
                          "1×28×28 (a 3-D input): the input is C×H×W without the batch axis; "
                          "drop the batch axis: input 1x28x28", text, exit_code=2)
    assert rest[0].startswith("<stdin>:2:1: Conv: output would be 0×26×26"), result.stderr


def test_an_input_option_warns_without_a_position():
    result = check(str(ROOT / "specs" / "mlp.spec"), "--input", "1x1x28x28")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: input 1x1x28x28 reads as 1 channel"), result.stderr


@pytest.mark.parametrize("shape", ["1x28x28", "3x32x32", "784", "12x1000", "1x64x64x64"])
def test_input_shapes_that_read_as_meant_do_not_warn(shape):
    result = check("-", input=f"input {shape}\nFlatten -> Linear(10)\n")
    assert result.exit_code == 0 and result.stderr == "", result.stderr


def test_cr_only_line_endings_parse_like_crlf(tmp_path):
    # A CR alone once ended lines (classic Mac OS); the comment must end at it, not run on.
    path = tmp_path / "mac.spec"
    path.write_bytes(b"input 1x28x28\r# a comment\rConv(16, 3) -> Flatten -> Linear(10)\r")
    result = check(str(path))
    assert result.exit_code == 0, result.stderr
    assert "conv     Conv2d(1\u219216, k=3" in result.stdout
    path.write_bytes(b"input 1x28x28\r# a comment\rConv(16, 0)\r")
    assert_error(check(str(path)), str(path), 3, 10, "'kernel' must be",
                 "input 1x28x28\n# a comment\nConv(16, 0)\n")


def test_control_characters_from_the_spec_are_escaped(tmp_path):
    # An escape sequence or a bidirectional override in a spec must not reach the terminal raw.
    path = tmp_path / "ctl.spec"
    path.write_text("input 1x8x8\nFlatten -> Linear(\x1b[31mred, '\u202e')\n", encoding="utf-8")
    result = check(str(path))
    assert result.exit_code == 2 and "\x1b" not in result.stderr
    lines = result.stderr.split("\n")
    assert lines[0] == f"{path}:2:19: unexpected '\\x1b': expected '(', ')', '-', a name, " \
                       f"a number or a string"
    assert lines[1] == "  Flatten -> Linear(\\x1b[31mred, '\\u202e')"
    assert lines[2] == "  " + " " * 18 + "^^^^"  # under all of \x1b
    path.write_text("input 1x8x8\nFlatten -> Linear(10, bias='\u202e\x07')\n", encoding="utf-8")
    result = check(str(path))
    assert result.exit_code == 2 and "\u202e" not in result.stderr and "\x07" not in result.stderr
    assert "'bias' must be true or false, got '\\u202e\\x07'" in result.stderr


def test_a_long_line_is_shown_around_the_caret(tmp_path):
    path = tmp_path / "long.spec"
    path.write_text("input 8\nLinear(8)" + " " * 5000 + "-> Linear(0) -> ReLU" + " " * 5000,
                    encoding="utf-8")
    result = check(str(path))
    lines = result.stderr.split("\n")
    assert lines[0].startswith(f"{path}:2:5020: Linear: 'out' must be a positive integer, got 0")
    assert lines[1] == "  …" + " " * 90 + "-> Linear(0) -> ReLU" + " " * 90 + "…"
    assert lines[2] == "  " + " " * 101 + "^"


def _chained_definitions(count: int) -> str:
    lines = ["def D0(c) = [Linear(c)]"] + [f"def D{i}(c) = [D{i - 1}(c)]" for i in
                                          range(1, count)]
    return "\n".join(lines) + f"\ninput 8\nD{count - 1}(4)\n"


def _squaring_definitions(count: int) -> str:
    lines = ["def A0(c) = [Linear(c)]"] + [f"def A{i}(c) = [A{i - 1}(c*c)]" for i in
                                          range(1, count)]
    return "\n".join(lines) + f"\ninput 8\nA{count - 1}(3)\n"


# Small files that would hang, eat memory or overflow the recursion: each is refused at once,
# with the limit named. (line, column, message)
HOSTILE = {
    "a sum of 2,000 terms": ("input 8\nLinear(" + "+".join(["1"] * 2000) + ")", 2, 8,
                             "expression is nested too deeply: more than 100 operators"),
    "400 unary minus signs": ("input 8\nLinear(" + "-" * 400 + "1)", 2, 108,
                              "expression is nested too deeply: more than 100 operators"),
    "300 chained definitions": (_chained_definitions(300), 200, 16,
                                "the network nests more than 100 scopes deep"),
    "a parameter squared at every level": (_squaring_definitions(12), 7, 17,
                                           "the result is too large: 31 digits, at most 18"),
    "a definition of 30,000 parameters": (
        "def A(" + ",".join(f"p{i}" for i in range(30000)) + ") = [ReLU]\ninput 8\nA(1)", 1, 5,
        "too many parameters: 30,000, at most 100"),
    "a call of 5,000 arguments": ("input 8\nLinear(" + ",".join(["1"] * 5000) + ")", 2, 1,
                                  "too many arguments: 5,000, at most 100"),
    "a tuple of 5,000 values": ("input 8\nMaxPool((" + ",".join(["1"] * 5000) + "))", 2, 9,
                                "too many values in a tuple: 5,000, at most 100"),
    "an integer of 5,000 digits": ("input 8\nLinear(" + "9" * 5000 + ")", 2, 8,
                                   "number is too large: 5000 digits, at most 18"),
    "a float beyond range": ("input 8\nLeakyReLU(1e309)", 2, 11,
                             "number is too large: 1e309 is beyond a float's range"),
    "a BatchNorm eps beyond range": ("input 1x8x8\nBatchNorm(eps=1e309)", 2, 15,
                                     "number is too large: 1e309"),
    "a learning rate beyond range": ("input 8\ntrain(lr=1e309)\nLinear(3)", 2, 10,
                                     "number is too large: 1e309"),
    "a float product beyond range": ("input 8\nLeakyReLU(1e300*1e300)", 2, 11,
                                     "the result is beyond a float's range"),
    "an output beyond 10^18 elements": ("input 1x8x8\nUpsample(999999999)*300", 2, 1,
                                        "the output is too large: more than "
                                        "1,000,000,000,000,000,000 elements"),
    "channels past the literal limit": ("input 1x8x8\nConv(999999999*999999999*999999, 3)", 2,
                                        6, "the result is too large: 24 digits, at most 18"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_specs_are_refused_with_the_limit_named(tmp_path, name):
    text, line, column, message = HOSTILE[name]
    path = tmp_path / "hostile.spec"
    path.write_text(text, encoding="utf-8")
    result = check(str(path))
    assert_error(result, str(path), line, column, message)
    assert len(result.stderr) < 3000  # an excerpt and at most a few notes, never the whole file
    if name == "300 chained definitions":  # the innermost calls, then the user's own
        assert result.stderr.split("\n")[-3:] == [
            "note: … 92 more", "note: expanded from D299(4) at 302:1", ""]


def test_a_spec_over_a_megabyte_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.spec"
    path.write_text("input 8\nLinear(3)" + " " * 1_000_000, encoding="utf-8")
    assert_error(check(str(path)), str(path), 1, 1,
                 "spec is too large: more than 1,000,000 bytes")
    assert_error(check("/dev/zero"), "/dev/zero", 1, 1,
                 "spec is too large: more than 1,000,000 bytes")
    assert_error(check("-", input=b"\0" * 1_500_000), "<stdin>", 1, 1,
                 "spec is too large: more than 1,000,000 bytes")


def test_check_of_stdin_when_it_is_closed():
    done = subprocess.run([sys.executable, "-m", "archdsl", "check", "-"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "<stdin>:1:1: spec is empty" in done.stderr
    done = subprocess.run([sys.executable, "-c", "import os, sys; os.close(0); sys.stdin = None;"
                           "from archdsl.cli import app; app(['check', '-'])"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "<stdin>:1:1: cannot read the spec from standard input: it is closed\n"
