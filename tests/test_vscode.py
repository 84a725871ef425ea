"""editors/vscode: `vsce package` builds the extension, and the package holds what VS Code
reads: the manifest, the client that starts `archdsl lsp`, the language configuration, the
client library, and the TextMate grammar that archdsl/textmate.py generates, not a copy."""
import json
import shutil
import subprocess
import zipfile

import pytest

from archdsl.textmate import render
from conftest import ROOT

NPM, NODE = shutil.which("npm"), shutil.which("node")
# What npm says when its registry cannot be reached: an offline machine, not a broken package.
OFFLINE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH")


def test_the_extension_starts_the_server_the_tests_start():
    manifest = json.loads((ROOT / "editors/vscode/package.json").read_text())
    setting = manifest["contributes"]["configuration"]["properties"]["archdsl.server.command"]
    assert setting["default"] == ["archdsl", "lsp"]
    (language,) = manifest["contributes"]["languages"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert language["extensions"] == [".spec"] and grammar["language"] == language["id"]
    assert grammar["scopeName"] == json.loads(render())["scopeName"]


def node_major() -> int:
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout
    return int(version.strip().lstrip("v").split(".")[0] or 0)


@pytest.mark.skipif(not (NPM and NODE), reason="node and npm are not installed: vsce, which "
                                               "packages VS Code extensions, runs on node")
def test_vsce_packages_the_extension(tmp_path):
    if node_major() < 20:  # vsce 3's own requirement (engines: node >= 20)
        pytest.skip(f"vsce 3 needs node 20 or later; this node is {node_major()}")
    editors = tmp_path / "editors"
    shutil.copytree(ROOT / "editors/vscode", editors / "vscode",
                    ignore=shutil.ignore_patterns("node_modules", "syntaxes", "*.vsix"))
    shutil.copy(ROOT / "editors/archdsl.tmLanguage.json", editors)
    folder = editors / "vscode"
    install = subprocess.run([NPM, "ci", "--no-audit", "--no-fund"], cwd=folder,
                             capture_output=True, text=True, timeout=600)
    if install.returncode and any(code in install.stderr for code in OFFLINE):
        pytest.skip(f"npm cannot reach its registry: {install.stderr.strip().splitlines()[-1]}")
    assert install.returncode == 0, install.stderr
    package = subprocess.run([str(folder / "node_modules/.bin/vsce"), "package", "--out",
                              "archdsl.vsix"], cwd=folder, capture_output=True, text=True,
                             timeout=600)
    assert package.returncode == 0, package.stdout + package.stderr
    syntax = subprocess.run([NODE, "--check", "extension.js"], cwd=folder, capture_output=True,
                            text=True)
    assert syntax.returncode == 0, syntax.stderr
    with zipfile.ZipFile(folder / "archdsl.vsix") as vsix:
        names = set(vsix.namelist())
        manifest = json.loads(vsix.read("extension/package.json"))
        assert manifest["main"] == "./extension.js" and "extension/extension.js" in names
        (grammar,) = manifest["contributes"]["grammars"]
        packaged = vsix.read("extension/" + grammar["path"].removeprefix("./")).decode()
        assert packaged == render() == (ROOT / "editors/archdsl.tmLanguage.json").read_text()
        (language,) = manifest["contributes"]["languages"]
        configuration = json.loads(vsix.read("extension/" +
                                             language["configuration"].removeprefix("./")))
        assert configuration["comments"]["lineComment"] == "#"
        assert "extension/node_modules/vscode-languageclient/package.json" in names
        assert not [n for n in names if n.startswith(("extension/scripts/",
                                                      "extension/node_modules/@vscode/vsce"))]
