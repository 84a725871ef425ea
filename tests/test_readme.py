"""The README's examples are collected by the root conftest.py; these tests check the machinery
(tests/readme_examples.py): that no fenced block escapes it, and that a wrong example fails."""
import re

import pytest
from sybil.evaluators.skip import Skipper

import readme_examples as rx

FENCE_OPENING = re.compile(r"^```", re.MULTILINE)


def readme_regions():
    document = rx.readme_sybil().parse(rx.README)
    return document, list(document)


def test_every_fenced_block_is_run_checked_or_skipped_with_a_reason():
    document, examples = readme_regions()
    fenced = [e for e in examples if document.text.startswith("```", e.start)]
    # Sybil's regions must cover every fence in the file: none may be dropped by the lexer.
    assert len(fenced) == len(FENCE_OPENING.findall(document.text)) // 2 > 20
    for index, example in enumerate(examples):
        if isinstance(example.region.evaluator, Skipper):
            action, reason = example.parsed
            assert action == "next" and reason and reason.strip().strip('"'), (
                f"README.md line {example.line}: a skip needs a reason")
        if example.region.evaluator is rx.unmarked:
            assert index and isinstance(examples[index - 1].region.evaluator, Skipper), (
                f"README.md line {example.line}: unmarked block")


def test_the_readme_runs_commands_and_python():
    _, examples = readme_regions()
    kinds = {e.parsed["kind"] for e in examples if isinstance(e.parsed, dict)}
    assert {"run", "file", "spec", "session", "python"} <= kinds


def test_run_marker_options():
    assert rx.parse_run_marker(" archdsl check budget.spec [exit 1, stdout, tail] ") == rx.Expected(
        "archdsl check budget.spec", exit=1, stream="stdout", part="tail")
    assert rx.parse_run_marker("archdsl check x.spec") == rx.Expected("archdsl check x.spec")
    with pytest.raises(ValueError, match="unknown run option 'exits 1'"):
        rx.parse_run_marker("archdsl check x.spec [exits 1]")


def test_normalize_only_what_varies():
    line = "epoch 1/3  train loss 0.4227 acc 84.69%  7.0 s (8,590 img/s)\n"
    other = "epoch 1/3  train loss 0.4227 acc 84.69%  12.25 s (912 img/s)\n"
    assert rx.normalize(line) == rx.normalize(other)
    assert rx.normalize(line) != rx.normalize(line.replace("84.69", "84.70"))
    assert rx.normalize("Conv2d(1→16, k=3, s=1, p=1)  \n") == "Conv2d(1→16, k=3, s=1, p=1)\n"
    check = "onnxruntime matches PyTorch on 3 random inputs: max |difference| {} (tolerance {})\n"
    assert rx.normalize(check.format("1.7e-08", "1.6e-05")) == rx.normalize(check.format("0", "2e-05"))
    assert rx.normalize(check.format("0", "2e-05")) != rx.normalize(check.format("0", "2e-05")
                                                                    .replace("3 random", "2 random"))


def test_mismatch_with_ellipsis_head_and_tail():
    actual = "one\ntwo\nthree\nfour\n"
    assert rx.mismatch("one\n…\nfour\n", actual) is None
    assert rx.mismatch("one\ntwo\n", actual, "head") is None
    assert rx.mismatch("three\nfour\n", actual, "tail") is None
    assert rx.mismatch("one\ntwo\n", actual) is not None
    assert rx.mismatch("one\n…\nthree\n", actual) is not None
    assert "-tow" in rx.mismatch("one\ntow\n…\n", actual)


def test_value_comments():
    assert rx.value_mismatch("206922", 206922) is None
    assert rx.value_mismatch("[(16, 28, 28), ...]", [(16, 28, 28), (16, 14, 14)]) is None
    assert rx.value_mismatch("206922", "206922") == "expected 206922, got '206922'"
    assert rx.value_mismatch("[(16, 28, 28), ...]", [[16, 28, 28]]) is not None


def evaluate(tmp_path, markdown):
    """Runs every example of a small markdown text as the README's are; the failures, in order."""
    path = tmp_path / "README.md"
    path.write_text(markdown)
    document = rx.readme_sybil().parse(path)
    rx.make_scratch(document.namespace)
    failures = []
    for example in document:
        try:
            example.evaluate()
        except Exception as error:  # SybilFailure, or the skip's SkipTest
            failures.append(f"{type(error).__name__}: {error}")
    rx.remove_scratch(document.namespace)
    return failures


def test_a_wrong_output_or_exit_status_fails(tmp_path):
    failures = evaluate(tmp_path, """
<!-- file: wrong.spec -->
```
input 1x28x28
Conv2(8, 3)
```

<!-- run: archdsl check wrong.spec [exit 1] -->
```
wrong.spec:2:1: unknown layer 'Conv2' (did you mean 'Conv'?)
```

```
$ archdsl fmt wrong.spec
input 1x28x28
```

<!-- spec -->
```
input 1x28x28
Flatten -> Linear(10)
```

```
not marked
```
""")
    assert len(failures) == 3, failures
    assert "exited 2, the README says 1" in failures[0]
    assert "+  Conv2(8, 3)" in failures[0]  # the lines the README left out show in the diff
    assert "`archdsl fmt wrong.spec` printed otherwise" in failures[1]
    assert "\n+Conv2(8, 3)" in failures[1]
    assert "neither run nor checked" in failures[2]


def test_python_blocks_check_their_value_comments(tmp_path):
    failures = evaluate(tmp_path, """
```python
import archdsl
spec = archdsl.parse(open("specs/mlp.spec").read())
archdsl.analyze(spec).totals.params  # 101770
archdsl.analyze(spec).totals.params  # 101771
```
""")
    assert len(failures) == 1 and "expected 101771, got 101770" in failures[0]


def test_skips_say_why(tmp_path):
    failures = evaluate(tmp_path, """
<!-- skip: next "needs 2 machines" -->
```
torchrun --nnodes 2 -m archdsl train specs/simple_cnn.spec
```
""")
    assert failures == ["SkipTest: needs 2 machines"]


def test_approx_compares_decimals_within_a_tolerance():
    readme = "epoch 1/3  train loss 0.4227 acc 84.69%\n"
    assert rx.mismatch(readme, "epoch 1/3  train loss 0.4233 acc 84.65%\n", tolerance=0.02) is None
    assert rx.mismatch(readme, "epoch 1/3  train loss 0.4233 acc 84.65%\n") is not None
    far = rx.mismatch(readme, "epoch 1/3  train loss 0.6 acc 84.65%\n", tolerance=0.02)
    assert far == "0.6 is not within 2% of 0.4227"
    assert rx.mismatch(readme, "epoch 1/3  train loss 0.5227 acc 84.69%\n", tolerance=0.02) == (
        "0.5227 is not within 2% of 0.4227")
    other_epoch = "epoch 2/3  train loss 0.4227 acc 84.69%\n"
    assert rx.mismatch(readme, other_epoch, tolerance=0.02) is not None


def test_a_skip_on_a_false_condition_runs_the_block(tmp_path):
    failures = evaluate(tmp_path, """
<!-- skip: next if(shutil.which("sh") is None, reason="needs sh") -->
```
$ archdsl check specs/mlp.spec --format json | head -1
{
$ archdsl fmt specs/nothing.spec
```
""")
    assert len(failures) == 1 and "`archdsl fmt specs/nothing.spec` exited 2" in failures[0]
