"""`archdsl lsp` as the command line starts it: listed, and without pygls a message, not a
traceback. (tests/test_lsp.py speaks the protocol to it.)"""
import subprocess
import sys

from typer.testing import CliRunner

from archdsl.cli import app
from conftest import ROOT


def test_lsp_is_a_command():
    result = CliRunner().invoke(app, ["lsp", "--help"])
    assert result.exit_code == 0 and "language server" in result.output


def test_without_pygls_it_says_what_to_install():
    probe = ("import sys\n"
             "sys.modules['pygls'] = None  # as if the lsp extra were not installed\n"
             "from typer.testing import CliRunner\n"
             "from archdsl.cli import app\n"
             "result = CliRunner().invoke(app, ['lsp'])\n"
             "print(result.exit_code)\n"
             "print(result.output)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True)
    code, *output = result.stdout.splitlines()
    assert code == "2", result.stdout + result.stderr
    assert output[0].startswith("error: archdsl lsp needs pygls and lsprotocol")
    assert output[1] == "hint: pip install 'archdsl[lsp]'"
    assert "Traceback" not in result.stdout + result.stderr
