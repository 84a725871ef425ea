"""Where the time goes, for the goals a benchmark run misses.

- check_startup(): `archdsl check`'s time split into the interpreter's start, the imports (with
  the time spent creating dataclasses; python -X importtime by top-level package), typer's
  pydantic coercion layer (its import and each TypeAdapter, by parameter) and archdsl's work
  (the parser's tables, reading, parsing, analysis, the JSON report); given torchinfo's time,
  what the goal leaves for archdsl.
- analysis_profile(): cProfile of in-process parse + analysis of a generated spec, self time
  grouped by source file (lark's parser, typing, archdsl's modules), and the top functions.
- training_bound(): the tutorial's epoch split into its DataLoader (per-image PIL transforms)
  and its training steps, each timed alone, and torch.profiler's top operators of a step. Data
  on the device removes the first part only, so (data + step) / step bounds what any trainer
  gains over the tutorial's loop with the same model on the same device.

    python bench/where_time_goes.py [check [TORCHINFO_SECONDS]|analysis|training]
"""
from __future__ import annotations

import cProfile
import collections
import json
import pstats
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _wall(command: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, cwd=ROOT, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


# In one process, after the imports: the grammar's construction (lark builds the LALR tables
# from archdsl.lark in every process), then reading, parsing and analysing the spec, then the
# JSON report; milliseconds of each.
_STEPS = """
import json, sys, time
t0 = time.perf_counter()
import archdsl, archdsl.cli
t1 = time.perf_counter()
archdsl.parse("input 1x2x2\\nReLU")
t2 = time.perf_counter()
analysis = archdsl.analyze(archdsl.read_spec(sys.argv[1]))
t3 = time.perf_counter()
from archdsl import report
try:
    text = report.render_analysis(analysis, "json")
except Exception:  # the report's API is the project's to change; the breakdown does without
    text = None
t4 = time.perf_counter()
print(json.dumps({"imports": (t1 - t0) * 1e3, "grammar": (t2 - t1) * 1e3,
                  "parse_and_analysis": (t3 - t2) * 1e3,
                  "json_report": (t4 - t3) * 1e3 if text is not None else None}))
"""


# In one process, as the console script runs `check`: typer's import, archdsl.cli's (with the
# time the dataclasses module spends creating archdsl's classes), then the command itself, with
# what typer's coercion layer costs in it. typer 0.2x coerces each parameter's value through a
# pydantic TypeAdapter that it builds, importing pydantic, on the parameter's first value
# (`_TyperParameter.get_runtime_param`); the wrapper records which parameters those are.
_COMMAND = """
import contextlib, dataclasses, io, json, sys, time
start = time.perf_counter()
import typer
typer_done = time.perf_counter()
import lark, lark.lark
lark_done = time.perf_counter()
created = [0.0, 0]
process_class = dataclasses._process_class
def timed_process_class(*args, **kwargs):
    began = time.perf_counter()
    try:
        return process_class(*args, **kwargs)
    finally:
        created[0] += time.perf_counter() - began
        created[1] += 1
dataclasses._process_class = timed_process_class
import archdsl.cli
imports_done = time.perf_counter()
dataclasses._process_class = process_class
coercion = {"import_ms": 0.0, "build_ms": 0.0, "parameters": []}
try:
    from typer.core import _TyperParameter
    runtime_param = _TyperParameter.get_runtime_param
except (ImportError, AttributeError):  # a typer that coerces without pydantic
    coercion = None
if coercion is not None:
    def timed_runtime_param(self):
        if self._runtime_param is None:
            began = time.perf_counter()
            if "typer._adapters" not in sys.modules:
                import typer._adapters
                coercion["import_ms"] = (time.perf_counter() - began) * 1e3
                began = time.perf_counter()
            annotation = self.type_descriptor.annotation
            coercion["parameters"].append(
                (self.name, getattr(annotation, "__name__", str(annotation))))
            result = runtime_param(self)
            coercion["build_ms"] += (time.perf_counter() - began) * 1e3
            return result
        return runtime_param(self)
    _TyperParameter.get_runtime_param = timed_runtime_param
command_start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    archdsl.cli.app(["check", sys.argv[1], "--format", "json"], prog_name="archdsl",
                    standalone_mode=False)
command_done = time.perf_counter()
print(json.dumps({"typer_ms": (typer_done - start) * 1e3, "lark_ms": (lark_done - typer_done) * 1e3,
                  "archdsl_ms": (imports_done - lark_done) * 1e3,
                  "dataclasses_ms": created[0] * 1e3, "dataclasses": created[1],
                  "command_ms": (command_done - command_start) * 1e3, "coercion": coercion}))
"""


def _median_runs(script: str, spec: str, repeats: int) -> dict:
    """Each number the median over `repeats` fresh processes running `script`."""
    python = sys.executable
    runs = [json.loads(subprocess.run([python, "-c", script, spec], capture_output=True,
                                      text=True, cwd=ROOT, check=True).stdout.strip()
                       .splitlines()[-1]) for _ in range(repeats)]
    result = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) or value is None:
            values = [r[key] for r in runs if r[key] is not None]
            result[key] = statistics.median(values) if values else None
        elif isinstance(value, dict):
            result[key] = {k: statistics.median(r[key][k] for r in runs)
                           if isinstance(v, (int, float)) else v for k, v in value.items()}
        else:
            result[key] = value
    return result


def check_startup(spec: str = "specs/zoo/resnet50.spec", repeats: int = 5) -> dict:
    from vs_torchinfo import byte_compile
    byte_compile()  # as the benchmark runs it, and as an installed archdsl runs
    python = sys.executable
    bare = _wall([python, "-c", "pass"], repeats)
    imports = _wall([python, "-c", "import archdsl.cli"], repeats)
    whole = _wall([python, "-m", "archdsl", "check", spec, "--format", "json"], repeats)
    torch = _wall([python, "-c", "import torch"], repeats)
    steps = _median_runs(_STEPS, spec, repeats)
    command = _median_runs(_COMMAND, spec, repeats)
    done = subprocess.run([python, "-X", "importtime", "-m", "archdsl", "check", spec,
                           "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    by_package = collections.Counter()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:  # self time, summed per top-level package
            by_package[match.group(4).split(".")[0]] += int(match.group(1))
    total = sum(by_package.values())
    return {"spec": spec, "interpreter_s": bare, "import_archdsl_cli_s": imports,
            "in_process_ms": steps, "command_ms": command,
            "whole_s": whole, "import_torch_s": torch,
            "imports_by_package_ms": {k: round(v / 1000, 1)
                                      for k, v in by_package.most_common(8)},
            "imports_total_ms": round(total / 1000, 1)}


def analysis_stages(text: str, repeats: int = 5) -> dict:
    """µs per layer of each stage of archdsl.analyze(archdsl.parse(text)), best of `repeats`:
    lark's parse into a tree (and, for comparison, the same grammar parsed without the source
    positions that every error message needs), the tree -> IR transform, lowering + analysis."""
    import lark
    import archdsl
    from archdsl import parser as spec_parser
    with_positions = spec_parser._parser()
    without = lark.Lark.open_from_package("archdsl.grammars", "archdsl.lark", ("",),
                                          parser="lalr", maybe_placeholders=False)
    layers = len(archdsl.analyze(archdsl.parse(text)).rows)

    def best(work) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return min(times) / layers * 1e6

    tree = with_positions.parse(text)
    spec = spec_parser._ToSpec(text, "<spec>").transform(tree)
    return {"layers": layers,
            "lark_parse_us": best(lambda: with_positions.parse(text)),
            "lark_parse_without_positions_us": best(lambda: without.parse(text)),
            "transform_us": best(lambda: spec_parser._ToSpec(text, "<spec>").transform(tree)),
            "analysis_us": best(lambda: archdsl.analyze(spec))}


def markdown_stages(p: dict, label: str) -> str:
    total = p["lark_parse_us"] + p["transform_us"] + p["analysis_us"]
    return (f"Per layer of {label}, best of 5: lark's parse into a tree "
            f"{p['lark_parse_us']:.0f} µs (without the source positions that error messages "
            f"need: {p['lark_parse_without_positions_us']:.0f} µs), the tree → IR transform "
            f"{p['transform_us']:.0f} µs, lowering + analysis {p['analysis_us']:.0f} µs; "
            f"{total:.0f} µs in all.")


def analysis_profile(text: str) -> dict:
    import archdsl
    archdsl.analyze(archdsl.parse(text))  # warm-up: the grammar is built once per process
    profile = cProfile.Profile()
    profile.enable()
    archdsl.analyze(archdsl.parse(text))
    profile.disable()
    stats = pstats.Stats(profile)
    by_file, functions = collections.Counter(), []
    total = 0.0
    for (filename, line, name), (_, _, tottime, cumtime, _) in stats.stats.items():
        total += tottime
        path = Path(filename)
        if "site-packages" in path.parts:
            key = path.parts[path.parts.index("site-packages") + 1]
        elif "archdsl" in path.parts:
            key = "/".join(path.parts[path.parts.index("archdsl"):])
        elif filename.startswith("~") or filename.startswith("<"):
            key = "builtins"
        else:
            key = "stdlib " + path.name
        by_file[key] += tottime
        functions.append((cumtime, f"{path.name}:{line}({name})"))
    functions.sort(reverse=True)
    top = []  # the outermost of each chain of wrappers that share one cumulative time
    for cumtime, name in functions[1:]:
        if cumtime > total * 1.01:  # the profiled statement itself
            continue
        if not top or top[-1][0] - cumtime > 0.003 * total:
            top.append((cumtime, name))
    return {"total_s": total,
            "self_time_by_source": [(k, round(v / total, 3)) for k, v in by_file.most_common(8)],
            "top_cumulative": [(name, round(c / total, 3)) for c, name in top[:10]]}


def training_bound(data_root: str, batches: int = 150) -> dict:
    """Runs in a subprocess (this module stays torch-free): µs per image of each part."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "training", data_root,
                           str(batches)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    import json
    return json.loads(done.stdout.strip().splitlines()[-1])


def _training_bound(data_root: str, batches: int) -> dict:
    import json
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms
    from tutorial_loop import tutorial_cnn

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    data = datasets.FashionMNIST(data_root, train=True, download=False, transform=transform)
    loader = iter(DataLoader(data, batch_size=64, shuffle=True))
    next(loader)
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    data_us = (time.perf_counter() - start) / (batches * 64) * 1e6

    model = tutorial_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    images, labels = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def step():
        optimizer.zero_grad()
        loss_fn(model(images), labels).backward()
        optimizer.step()

    for _ in range(10):
        step()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    step_us = (time.perf_counter() - start) / (batches * 64) * 1e6
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(20):
            step()
    events = [e for e in profiler.key_averages() if not e.key.startswith("ProfilerStep")]
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:6]
    print(json.dumps({"threads": torch.get_num_threads(), "data_us_per_image": data_us,
                      "step_us_per_image": step_us, "bound": (data_us + step_us) / step_us,
                      "top_ops": [(e.key, round(e.self_cpu_time_total / total, 3))
                                  for e in top]}))


def markdown_training(p: dict) -> str:
    ops = ", ".join(f"`{name}` {share:.0%}" for name, share in p["top_ops"])
    return (f"The tutorial's epoch, per image: its DataLoader (PIL image, ToTensor, Normalize, "
            f"collate) {p['data_us_per_image']:.0f} µs, its training step (forward, backward, "
            f"Adam, batch 64, {p['threads']} threads) {p['step_us_per_image']:.0f} µs. Keeping "
            f"the data on the device removes only the first, so no trainer of this model on "
            f"this CPU beats the tutorial's loop by more than (data + step) / step = "
            f"**{p['bound']:.2f}×**; the rest is the model's arithmetic. torch.profiler's "
            f"largest self-time operators of a step: {ops}.")


def markdown_startup(p: dict, torchinfo_s: float | None = None, goal: float = 20.0) -> str:
    command = p["command_ms"]
    steps = p["in_process_ms"]
    interpreter = p["interpreter_s"] * 1e3
    coercion = command.get("coercion")
    work = ", ".join(f"{label} {steps[key]:.0f} ms" for key, label in (
        ("grammar", "the parser's tables from their cache"),
        ("parse_and_analysis", "reading, parsing and analysing the spec"),
        ("json_report", "the JSON report")) if steps.get(key) is not None)
    text = (f"`archdsl check {p['spec']} --format json`, byte-compiled, median of 5: the whole "
            f"process {p['whole_s'] * 1e3:.0f} ms. In one process, medians of 5: the "
            f"interpreter's start {interpreter:.0f} ms (a separate `python -c pass`), importing "
            f"typer {command['typer_ms']:.0f} ms, lark {command['lark_ms']:.0f} ms and "
            f"archdsl {command['archdsl_ms']:.0f} ms (of which {command['dataclasses_ms']:.0f} ms "
            f"is the dataclasses module creating {command['dataclasses']:.0f} classes: every "
            f"layer class, which the registry needs at start, the IR's nodes and the analysis's "
            f"rows), then the command {command['command_ms']:.0f} ms")
    if coercion:
        names = ", ".join(f"`{name}` ({kind})" for name, kind in coercion["parameters"])
        pydantic = coercion["import_ms"] + coercion["build_ms"]
        text += (f", of which typer's coercion layer takes {pydantic:.0f} ms: importing "
                 f"pydantic {coercion['import_ms']:.0f} ms and building "
                 f"{len(coercion['parameters'])} TypeAdapters {coercion['build_ms']:.0f} ms, one "
                 f"for each parameter it sees a value of: {names}. typer 0.2x builds these only "
                 f"for the command invoked, but for every parameter of it whatever its type, "
                 f"and for its own `--help` options, whose value when absent is None and so "
                 f"misses typer's shortcut for flags that are already bools. So every "
                 f"command imports pydantic (only `archdsl --help` and `archdsl --version` do "
                 f"not), and no declaration of archdsl's avoids it short of replacing typer's "
                 f"coercion by reaching into its private classes. The rest of the command: "
                 f"{work}, and typer's dispatch.")
        floor = interpreter + command["typer_ms"] + pydantic
    else:
        text += f": {work}, and typer's dispatch."
        floor = interpreter + command["typer_ms"]
    parts = interpreter + sum(command[key] for key in ("typer_ms", "lark_ms", "archdsl_ms",
                                                       "command_ms"))
    text += (f" The whole process less these parts, {p['whole_s'] * 1e3 - parts:.0f} ms, is the "
             f"interpreter's exit (after archdsl.cli.main has frozen the garbage collector, "
             f"which would otherwise walk every object left only for the process to end) and "
             f"the spread between separate runs.")
    if torchinfo_s:
        budget = torchinfo_s * 1e3 / goal
        text += (f" {goal:g}× against torchinfo's {torchinfo_s:.2f} s leaves {budget:.0f} ms for "
                 f"the whole process. The interpreter's start, typer and typer's pydantic layer "
                 f"take {floor:.0f} ms of them, which leaves {budget - floor:.0f} ms for "
                 f"archdsl's imports, its work and the exit; those take "
                 f"{p['whole_s'] * 1e3 - floor:.0f} ms.")
    packages = ", ".join(f"{k} {v:.0f} ms" for k, v in p["imports_by_package_ms"].items())
    return (text + f" Import self time by package (python -X importtime, "
            f"{p['imports_total_ms']:.0f} ms in all, slower than plain imports): {packages}. "
            f"For scale, `import torch` alone takes {p['import_torch_s'] * 1e3:.0f} ms here.")


def markdown_analysis(p: dict, label: str) -> str:
    sources = ", ".join(f"{k} {v:.0%}" for k, v in p["self_time_by_source"])
    top = ", ".join(f"`{name}` {share:.0%}" for name, share in p["top_cumulative"][:8])
    return (f"cProfile of parse + analysis of {label}: self time by source: {sources}. "
            f"Largest cumulative shares: {top}.")


def main():
    from scaling import conv_spec
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what == "training" and len(sys.argv) > 2:  # the subprocess of training_bound()
        _training_bound(sys.argv[2], int(sys.argv[3]))
        return
    if what in ("all", "check"):
        print(markdown_startup(check_startup(), torchinfo_s=float(sys.argv[2])
                               if what == "check" and len(sys.argv) > 2 else None) + "\n")
    if what in ("all", "analysis"):
        print(markdown_stages(analysis_stages(conv_spec(1000)), "the 1,000-layer conv spec")
              + " " + markdown_analysis(analysis_profile(conv_spec(1000)),
                                        "the 1,000-layer conv spec") + "\n")
    if what in ("all", "training"):
        from datafiles import torchvision_root
        print(markdown_training(training_bound(torchvision_root(None))))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
