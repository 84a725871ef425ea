"""archdsl.editor in-process: what the language server answers, where the protocol is not the
point (byte-order marks, half-typed text), and that neither it nor the server imports torch."""
import os
import subprocess
import sys

from archdsl import analyze, parse
from archdsl.editor import SpecDocument
from archdsl.errors import ArchDSLError
from archdsl.layers import format_shape
from conftest import ROOT


def test_offsets_count_in_the_text_as_given_with_its_byte_order_mark():
    text = "\ufeffinput 1x28x28\nConv(16, 3) -> Foo\n"
    (found,) = SpecDocument(text).diagnostics
    assert text[found.start:found.end] == "Foo"
    hints = SpecDocument("\ufeffinput 1x28x28\nConv(16, 3) -> ReLU\n").inlay_hints()
    assert [h.offset for h in hints] == [len("\ufeffinput 1x28x28\nConv(16, 3) -> ReLU")]


def test_an_error_without_a_position_is_at_the_start():
    text = "# nothing but a comment\n"
    try:
        parse(text)
    except ArchDSLError as error:
        assert error.span is None
        message = error.message
    (found,) = SpecDocument(text).diagnostics
    assert (found.start, found.end) == (0, 1) and found.message == message


def test_a_line_of_crlf_text_gets_its_shape_before_the_line_end():
    text = "input 1x28x28\r\nConv(16, 3)\r\n  -> Flatten\r\n"
    analysis = analyze(parse(text))
    hints = SpecDocument(text).inlay_hints()
    assert [text[h.offset:h.offset + 2] for h in hints] == ["\r\n", "\r\n"]
    assert [h.label for h in hints] == [format_shape(r.output) for r in analysis.rows]


def test_completion_while_typing():
    document = SpecDocument("input 1x28x28\nConv(16, 3) -> ")
    labels = {c.label for c in document.completions(len(document.text))}
    assert {"Conv", "ReLU", "Linear"} <= labels and "input" not in labels
    typing = "input 1x28x28\nConv(16, 3, s=2, pa"
    labels = [c.label for c in SpecDocument(typing).completions(len(typing))]
    assert "padding" in labels and "stride" not in labels and "s" not in labels
    after_equals = "input 1x28x28\nConv(16, k="
    assert SpecDocument(after_equals).completions(len(after_equals)) == []
    in_string = "input 1x28x28\nUpsample(2, mode='ne"
    assert SpecDocument(in_string).completions(len(in_string)) == []
    metrics = "assert "
    assert "params" in {c.label for c in SpecDocument(metrics).completions(len(metrics))}


def test_the_server_never_imports_torch_and_check_never_imports_pygls():
    probe = (
        "import sys\n"
        "import archdsl.cli\n"
        "assert 'pygls' not in sys.modules, 'the CLI imports pygls at start'\n"
        "from archdsl.lsp import make_server, publishable\n"
        "from archdsl.editor import SpecDocument\n"
        "make_server()\n"
        "document = SpecDocument(open('specs/zoo/resnet50.spec').read())\n"
        "publishable(document, 'file:///x.spec', 1)\n"
        "document.hover(document.text.index('Bottleneck')), document.inlay_hints()\n"
        "document.completions(10), document.formatted()\n"
        "assert 'torch' not in sys.modules, 'the language server imports torch'\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
