"""README.md as a test, through Sybil: every fenced block is run, checked, or skipped with a reason.

The markup is HTML comments, invisible on GitHub, on the line before a block (README.md's
first comment names them and points here):

- `<!-- run: COMMAND -->`: the block is COMMAND's output, standard output and error together in
  the order written, exit status 0. Options in brackets at the end: `[exit 1, stderr, tail]`
  (`exit N`; `stdout` or `stderr` alone; `head` or `tail` when the block is only the output's
  beginning or end).
- `<!-- file: PATH -->`: the block is written to PATH, for the commands after it; as
  `<!-- file: PATH` + lines + `-->` the file's text is the comment's own lines (not shown).
- `<!-- spec -->`: the block is a spec that `archdsl check -` accepts.
- `<!-- excerpt: PATH -->`: the block's lines are, in order and together, lines of the repo's PATH.
- `<!-- skip: next "reason" -->`: Sybil's own skip; `if(condition, reason="…")` skips on a
  condition.
- A block whose first line starts with `$ ` is a session: each command runs and must exit 0,
  and the lines under it are its output; a line `…` stands for any lines.
- `<!-- approx: 2% -->` before a session: its decimal numbers may differ by that much, relative
  (a training run's losses and accuracies, which float rounding changes from CPU to CPU).
- A ```python block runs; a bare expression followed by `# text` states its value: its repr
  must equal text, where `...` stands for anything.

Commands run under bash in a scratch copy of a clone, `clone/` with the repo's `specs/` copied,
beside `shared/`, a link to the repo's `../shared` (the data), so the README's relative paths
hold and nothing it writes lands in the repo. Outputs are compared after normalizing only what
varies from run to run: durations (`7.0 s`), throughput (`8,590 img/s`), an export check's
rounding noise (`max |difference| 1.7e-08 (tolerance 1.6e-05)`), the scratch path, and trailing
spaces.
"""
from __future__ import annotations

import ast
import difflib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path

from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ELLIPSIS_LINE = "…"

MARKER = re.compile(r"<!--\s*(?P<kind>run|file|spec|excerpt|approx|skip)\b:?(?P<arguments>.*?)"
                    r"-->\s*\Z",
                    re.DOTALL)
HIDDEN_FILE = re.compile(r"^<!--\s*file:\s*(?P<path>\S+)[ \t]*\n(?P<text>.*?)^-->",
                         re.DOTALL | re.MULTILINE)
RUN_OPTIONS = re.compile(r"^(?P<command>.*?)\s*(?:\[(?P<options>[^\[\]]*)\])?\s*$", re.DOTALL)
VARYING = [
    (re.compile(r"\b\d+(?:\.\d+)? s\b"), "<seconds> s"),
    (re.compile(r"\b\d[\d,]*(?:\.\d+)? img/s\b"), "<rate> img/s"),
    # Rounding noise of an export's check, on random inputs and weights trained on this CPU;
    # the command itself fails (exit 1) when the difference passes the tolerance.
    (re.compile(r"max \|difference\| \S+ \(tolerance \S+\)"),
     "max |difference| <noise> (tolerance <tolerance>)"),
]


@dataclass(frozen=True)
class Expected:
    """What a `run:` marker asks of a command: its exit status, which stream, which part."""
    command: str
    exit: int = 0
    stream: str = "both"  # both | stdout | stderr
    part: str = "all"  # all | head | tail


def parse_run_marker(arguments: str) -> Expected:
    match = RUN_OPTIONS.match(arguments.strip())
    command, options = match["command"], match["options"]
    fields: dict = {}
    for option in filter(None, (o.strip() for o in (options or "").split(","))):
        if option.startswith("exit "):
            fields["exit"] = int(option.split()[1])
        elif option in ("stdout", "stderr"):
            fields["stream"] = option
        elif option in ("head", "tail"):
            fields["part"] = option
        else:
            raise ValueError(f"unknown run option {option!r} in <!-- run: {arguments.strip()} -->")
    if not command:
        raise ValueError("<!-- run: --> needs a command")
    return Expected(command, **fields)


# --- comparing outputs -------------------------------------------------------------------------

def normalize(text: str, scratch: Path | None = None) -> str:
    if scratch is not None:
        text = text.replace(str(scratch / "clone"), "<clone>").replace(str(scratch), "<scratch>")
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    lines = [line.rstrip() for line in text.splitlines()]
    return "".join(line + "\n" for line in lines)


DECIMAL = re.compile(r"\d+\.\d+")


def literal(line: str, decimals: bool) -> str:
    if not decimals:
        return re.escape(line)
    return r"(\d+\.\d+)".join(re.escape(piece) for piece in DECIMAL.split(line))


def output_pattern(expected: str, part: str = "all", decimals: bool = False) -> re.Pattern:
    """A regex for an expected output: each line literally, a `…` line any run of lines; with
    `decimals`, each decimal number is a group, to be compared within a tolerance."""
    any_lines = r"(?:[^\n]*\n)*?"
    pieces = [any_lines if line == ELLIPSIS_LINE else literal(line, decimals) + r"\n"
              for line in expected.splitlines()]
    if part == "tail":
        pieces.insert(0, any_lines)
    if part == "head":
        pieces.append(r"(?:[^\n]*\n)*")
    return re.compile("".join(pieces))


def mismatch(expected: str, actual: str, part: str = "all",
             tolerance: float | None = None) -> str | None:
    """None when `actual` shows `expected` (both normalized), else a diff to read. With a
    relative `tolerance`, decimal numbers may differ by that much."""
    match = output_pattern(expected, part, decimals=tolerance is not None).fullmatch(actual)
    if match and tolerance is not None:
        wanted = [float(n) for line in expected.splitlines() if line != ELLIPSIS_LINE
                  for n in DECIMAL.findall(line)]
        far = [(w, float(g)) for w, g in zip(wanted, match.groups())
               if abs(float(g) - w) > tolerance * abs(w)]
        if not far:
            return None
        return ", ".join(f"{g:g} is not within {tolerance:.0%} of {w:g}" for w, g in far)
    if match:
        return None
    diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                "README", "actual", lineterm="")
    return "\n".join(diff) or f"expected {expected!r}, got {actual!r}"


def value_mismatch(expected: str, value: object) -> str | None:
    """A value comment (`expr  # 206922`): repr(value) must read so, `...` standing for anything."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    shown = repr(value)
    return None if re.fullmatch(pattern, shown, re.DOTALL) else f"expected {expected}, got {shown}"


# --- the scratch clone ---------------------------------------------------------------------------

def make_scratch(namespace: dict) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="archdsl-readme-"))
    clone = scratch / "clone"
    shutil.copytree(ROOT / "specs", clone / "specs")
    (scratch / "shared").symlink_to((ROOT.parent / "shared").resolve(), target_is_directory=True)
    bin_dir = scratch / "bin"
    bin_dir.mkdir()
    # A venv that borrows another's site-packages (as this project's worktrees do) lacks the
    # console scripts of what it borrows; pygmentize is the one the README runs.
    if not (Path(sys.executable).parent / "pygmentize").exists():
        shim = bin_dir / "pygmentize"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pygments "$@"\n')
        shim.chmod(0o755)
    namespace.update(scratch=scratch, clone=clone, shutil=shutil)


def remove_scratch(namespace: dict) -> None:
    shutil.rmtree(namespace["scratch"], ignore_errors=True)


def command_environment(scratch: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "ARCHDSL_DATA")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(scratch / "bin"),
                                   env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as they were written
    return env


def run_command(command: str, namespace: dict, stream: str = "both", stdin: str | None = None):
    """Runs `command` under bash in the scratch clone: (exit status, that stream normalized)."""
    separate = stream != "both"
    result = subprocess.run(
        ["bash", "-c", command], cwd=namespace["clone"],
        env=command_environment(namespace["scratch"]),
        input=stdin, text=True, timeout=600, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if separate else subprocess.STDOUT,
    )
    output = result.stderr if stream == "stderr" else result.stdout
    return result.returncode, normalize(output, namespace["scratch"])


# --- evaluators -----------------------------------------------------------------------------------

def evaluate_run(example: Example) -> str | None:
    expected: Expected = example.parsed["expected"]
    status, output = run_command(expected.command, example.namespace, expected.stream)
    problems = []
    if status != expected.exit:
        problems.append(f"`{expected.command}` exited {status}, the README says {expected.exit}")
    difference = mismatch(normalize(example.parsed["block"]), output, expected.part)
    if difference:
        problems.append(f"`{expected.command}` printed otherwise:\n{difference}")
    return "\n".join(problems) or None


def evaluate_file(example: Example) -> None:
    path = example.namespace["clone"] / example.parsed["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example.parsed["block"])


def evaluate_spec(example: Example) -> str | None:
    status, output = run_command("archdsl check -", example.namespace,
                                 stdin=example.parsed["block"])
    return None if status == 0 else f"the spec does not check (exit {status}):\n{output}"


def evaluate_excerpt(example: Example) -> str | None:
    path = example.parsed["path"]
    lines = (ROOT / path).read_text().splitlines()
    block = example.parsed["block"].splitlines()
    found = any(lines[i:i + len(block)] == block for i in range(len(lines) - len(block) + 1))
    return None if found else f"these lines are not, in this order, in {path}"


def session_steps(block: str) -> list[tuple[str, str]]:
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "".join(l + "\n" for l in lines)) for command, lines in steps]


def evaluate_session(example: Example) -> str | None:
    tolerance = example.parsed.get("tolerance")
    for command, expected in session_steps(example.parsed["block"]):
        status, output = run_command(command, example.namespace)
        if status != 0:
            return f"`{command}` exited {status}:\n{output}"
        difference = mismatch(normalize(expected), output, tolerance=tolerance)
        if difference:
            return f"`{command}` printed otherwise:\n{difference}"
    return None


def value_comments(source: str) -> dict[int, str]:
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string[1:].strip()
    return comments


def evaluate_python(example: Example) -> str | None:
    source = example.parsed["block"]
    comments = value_comments(source)
    tree = ast.parse(source)
    ast.increment_lineno(tree, example.line)  # tracebacks name README.md's lines
    cwd = os.getcwd()
    os.chdir(example.namespace["clone"])
    try:
        for statement in tree.body:
            comment = comments.get(statement.end_lineno - example.line)
            if isinstance(statement, ast.Expr) and comment:
                code = compile(ast.Expression(statement.value), example.path, "eval")
                problem = value_mismatch(comment, eval(code, example.namespace))
                if problem:
                    return f"line {statement.lineno}: {problem}"
            else:
                module = ast.Module([statement], type_ignores=[])
                exec(compile(module, example.path, "exec"), example.namespace)
    finally:
        os.chdir(cwd)
    return None


def unmarked(example: Example) -> str:
    return ("this block is neither run nor checked: mark it (the markers are listed in "
            "tests/readme_examples.py), or skip it with <!-- skip: next \"reason\" -->")


# --- the parser ------------------------------------------------------------------------------

FENCES = RawFencedCodeBlockLexer(info_pattern=re.compile(r"(?P<language>[^\n]*)\n"))


def block_kind(document: Document, region: Region) -> tuple[str, str]:
    """The block's marker (kind, arguments) from the comment just above it, else its own form."""
    before = document.text[:region.start]
    marker = MARKER.search(before[before.rfind("<!--"):]) if "<!--" in before else None
    hidden_file = marker and marker["kind"] == "file" and "\n" in marker["arguments"].strip()
    # A skipped block keeps its own kind: a skip on a condition that is false runs it.
    if marker and marker["kind"] != "skip" and not hidden_file:
        return marker["kind"], marker["arguments"].strip()
    language = region.lexemes["language"].strip()
    source = str(region.lexemes["source"])
    if language == "python":
        return "python", ""
    if source.startswith("$ "):
        return "session", ""
    return "unmarked", ""


EVALUATORS = {"run": evaluate_run, "file": evaluate_file, "spec": evaluate_spec,
              "excerpt": evaluate_excerpt, "session": evaluate_session,
              "approx": evaluate_session, "python": evaluate_python, "unmarked": unmarked}


def parse_blocks(document: Document):
    for region in FENCES(document):
        kind, arguments = block_kind(document, region)
        parsed = {"kind": kind, "block": str(region.lexemes["source"])}
        if kind == "run":
            parsed["expected"] = parse_run_marker(arguments)
        elif kind == "approx":
            parsed["tolerance"] = float(arguments.rstrip("%")) / 100
        elif kind in ("file", "excerpt"):
            parsed["path"] = arguments
        elif kind == "spec" and arguments:
            raise ValueError(f"<!-- spec --> takes no arguments, got {arguments!r}")
        yield Region(region.start, region.end, parsed, EVALUATORS[kind])
    for match in HIDDEN_FILE.finditer(document.text):
        yield Region(match.start(), match.end(), {"kind": "file", "path": match["path"],
                                                  "block": match["text"]}, evaluate_file)


def readme_sybil() -> Sybil:
    return Sybil(parsers=[SkipParser(), parse_blocks], path=str(ROOT), patterns=["README.md"],
                 setup=make_scratch, teardown=remove_scratch)
