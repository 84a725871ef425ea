"""The benchmark driver: `make bench` runs the CPU suite, bench/gpu.sh the GPU suite.

CPU suite (parts 1 to 6 and 8, `make bench`: about 20 minutes on a 2-core machine):
  1. `archdsl check` against torchinfo.summary, whole process, every shipped spec (vs_torchinfo.py)
  2. parse + analysis time of 10 to 10,000 generated layers (scaling.py)
  3. training throughput, the tutorial's loop against `archdsl train`, on the CPU (train_throughput.py)
  4. test accuracy of specs/fashion_mnist_best.spec, seed 0 (accuracy.py; about 9 minutes)
  5. the language server's re-analysis after an edit of ResNet-50, in-process (lsp_latency.py)
  6. time to the tutorial's accuracy: specs/simple_cnn_fast.spec against the tutorial's loop
     (time_to_target.py; about 2 minutes)
  7. (not in `make bench`: `--parts 7`, about 26 minutes) the accuracy spec's mean over seeds
     0, 1, 2; with part 4 in the same run, seed 0's run is part 4's (about 17 minutes more)
  8. training memory: what backward keeps, predicted against saved_tensors_hooks, float32 and
     bf16, with torchinfo's estimate (training_memory.py; about a minute)
GPU suite (parts 3, 4, 6, 7, 8, under 8 minutes on one NVIDIA GPU):
  3. training throughput on the GPU, both loops on cuda, and the best spec's time to 93%
  4. the accuracy spec on cuda, seed 0; 7. its mean over seeds 0, 1, 2
  6. time to the tutorial's accuracy on cuda
  8. a training step's predicted memory against torch.cuda.max_memory_allocated(), and
     `check --fit`'s batch against the largest that runs in the budget

Each run prints a markdown table and writes it, with the machine, to bench/results/<suite>-<date>.md,
the raw numbers to <suite>-<date>.json. Goals missed get a profile of where the time goes, or an
ablation that says why.

    python bench/run.py [--suite cpu|gpu] [--data-dir DIR] [--parts 1,2,3,4,5,6,7,8] [--quick]
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402
import datafiles  # noqa: E402
import lsp_latency  # noqa: E402
import machine  # noqa: E402
import scaling  # noqa: E402
import time_to_target  # noqa: E402
import train_throughput  # noqa: E402
import training_memory  # noqa: E402
import vs_torchinfo  # noqa: E402
import where_time_goes  # noqa: E402


BUSY_CORES = 0.3  # other processes' CPU use, in cores, above which the table warns
GPU_PARTS = {3, 4, 6, 7, 8}  # what bench/gpu.sh runs
GPU_TARGET = 0.93  # the GPU suite's "time to 93% test accuracy"


def _sample(info: dict, label: str) -> None:
    """Record how busy the machine is while this benchmark does nothing."""
    value = machine.busy()
    if value is not None:
        info.setdefault("busy_samples", []).append((label, value))


def _echo(text: str) -> None:
    print(text, flush=True)


def _verdict(met) -> str:
    return "—" if met is None else "met" if met else "**missed**"


def cpu_suite(args, data_root: str, info: dict) -> tuple[list[str], list[tuple], dict]:
    """(markdown sections, goal rows, raw numbers)."""
    sections, goals, raw, parts = [], [], {}, args.parts
    if 1 in parts:
        _echo("1. archdsl check vs torchinfo (whole process, alternating)")
        rows = vs_torchinfo.run(["resnet50"] if args.quick else None, args.pairs, _echo)
        raw["vs_torchinfo"] = rows
        goal = next((r for r in rows if r["model"] == vs_torchinfo.GOAL_MODEL), None)
        if goal:
            goals.append(("1", "`archdsl check` vs torchinfo, ResNet-50, whole process",
                          f"≥ {vs_torchinfo.GOAL_RATIO:g}× faster",
                          f"{goal['median_ratio']:.1f}× ({goal['archdsl_median_s']:.2f} s vs "
                          f"{goal['torchinfo_median_s']:.2f} s)", goal["met"]))
        matching = sum(r["params_match"] for r in rows)
        goals.append(("1", "same parameter count as torchinfo", f"all {len(rows)} specs",
                      f"{matching} of {len(rows)}", matching == len(rows)))
        sections.append("## 1. `archdsl check` against torchinfo\n\n"
                        "Whole-process wall time: `archdsl check SPEC --format json` (no torch) "
                        "against `bench/torchinfo_summary.py MODEL` (imports torch, builds the "
                        "torchvision model, or the tutorial's / the tests' plain PyTorch one, "
                        "and runs `torchinfo.summary` on one input of the spec's shape). "
                        f"Alternating A B A B …, {args.pairs} pairs after a warm-up; the median "
                        "of the pairwise ratios torchinfo / archdsl. Parameter counts compared "
                        "in every pair.\n\n" + vs_torchinfo.markdown(rows))
        if goal and not goal["met"]:
            profile = where_time_goes.check_startup()
            raw["profile_check"] = profile
            sections[-1] += "\n\nWhere the time goes: " + where_time_goes.markdown_startup(
                profile, goal["torchinfo_median_s"], vs_torchinfo.GOAL_RATIO)
    if 2 in parts:
        if 1 in parts:
            _sample(info, "after part 1")
        _echo("2. scaling of parse + analysis")
        result = scaling.run(_echo, repeats=3 if args.quick else 5)
        raw["scaling"] = result
        goals.append(("2", "parse + analysis grows linearly (µs/layer at 10,000 vs 100)",
                      f"within {scaling.LINEAR_FACTOR:g}×",
                      ", ".join(f"{k} {v:.2f}×" for k, v in result["growth_10000_vs_100"].items()),
                      result["linear"]))
        goals.append(("2", "parse + analysis time per layer (100 to 10,000 layers)",
                      f"≤ {scaling.GOAL_US:g} µs", f"worst {result['worst_us_per_layer']:.0f} µs",
                      result["met"]))
        sections.append("## 2. Scaling of parse + analysis\n\n"
                        "In-process `archdsl.analyze(archdsl.parse(text))`, median of several "
                        "runs after a warm-up; peak memory from a separate run under "
                        "tracemalloc. `conv`: `input 8x16x16` then `Conv(8, 3, p=1) -> ReLU` "
                        "rows; `linear`: `input 64` then `Linear(64) -> ReLU` rows; nested "
                        "repeat: `[[[[ReLU]*10]*10]*10]*10`.\n\n" + scaling.markdown(result))
        if not result["met"]:
            stages = where_time_goes.analysis_stages(scaling.conv_spec(1000))
            raw["analysis_stages"] = stages
            profile = where_time_goes.analysis_profile(scaling.conv_spec(1000))
            raw["profile_analysis"] = profile
            nested = where_time_goes.analysis_profile(scaling.NESTED)
            raw["profile_nested"] = nested
            sections[-1] += ("\n\nWhere the time goes: "
                             + where_time_goes.markdown_stages(stages,
                                                               "the 1,000-layer conv spec")
                             + " " + where_time_goes.markdown_analysis(profile,
                                                                "the 1,000-layer conv spec")
                             + " " + where_time_goes.markdown_analysis(nested,
                                                                       "the nested repeat"))
    if 3 in parts:
        if parts & {1, 2}:
            _sample(info, "after part 2")
        pairs = 1 if args.quick else args.train_pairs
        subset = 5000 if args.quick else 0
        _echo(f"3. training throughput, {pairs} pair(s), one epoch each")
        result = train_throughput.measure(data_root, pairs, subset, "cpu", echo=_echo)
        raw["throughput"] = result
        goals.append(("3", "training throughput on the CPU, `archdsl train` / tutorial loop",
                      f"≥ {result['goal']:g}×",
                      f"{result['median_ratio']:.2f}× ({result['archdsl_median']:,.0f} vs "
                      f"{result['tutorial_median']:,.0f} img/s)", result["met"]))
        sections.append("## 3. Training throughput on the CPU\n\n"
                        "`bench/tutorial_loop.py` (the tutorial's DataLoader loop) against "
                        "`archdsl train specs/simple_cnn.spec` with the tutorial's settings "
                        "(the same CNN, batch 64, Adam lr 1e-3, no schedule), "
                        "alternating.\n\n" + train_throughput.markdown(result))
        if not result["met"]:
            bound = where_time_goes.training_bound(data_root)
            raw["profile_training"] = bound
            sections[-1] += "\n\nWhere the time goes: " + where_time_goes.markdown_training(bound)
    if 4 in parts:
        if parts & {1, 2, 3}:
            _sample(info, "after part 3")
        _echo(f"4. accuracy of {accuracy.BEST.relative_to(ROOT)}, seed(s) {args.seeds}")
        result = accuracy.run(data_root, args.seeds, "cpu", _accuracy_options(args), echo=_echo)
        raw["accuracy"] = result
        goals.append(("4", "Fashion-MNIST test accuracy of fashion_mnist_best.spec",
                      accuracy.goal_text(), accuracy.result_text(result), result["met"]))
        sections.append("## 4. Accuracy\n\n" + accuracy.markdown(result) + _why(accuracy, result))
    if 5 in parts:
        if parts & {1, 2, 3, 4}:
            _sample(info, "after part 4")
        _echo("5. language server: re-analysis after an edit of ResNet-50")
        result = lsp_latency.run(_echo, runs=30 if args.quick else 100)
        raw["lsp_latency"] = result
        inside = result["in_process"]
        goals.append(("5", "`archdsl lsp` re-analysis after an edit of ResNet-50, in-process",
                      f"≤ {lsp_latency.GOAL_MS:g} ms (95th percentile)",
                      f"{inside['p95_ms']:.1f} ms (median {inside['median_ms']:.1f} ms)",
                      result["met"]))
        sections.append("## 5. The language server's re-analysis\n\n"
                        "What `archdsl lsp` does on each change of specs/zoo/resnet50.spec, "
                        "in-process: pygls applies the incremental edit, archdsl.editor parses "
                        "and analyses the text as `check` does, archdsl.lsp makes the "
                        "diagnostics; edits alternate `Linear(1000)` and `Linear(100)`. Over "
                        "stdio, for scale: from a client's didChange to the server's "
                        "publishDiagnostics.\n\n" + lsp_latency.markdown(result))
    if 6 in parts:
        if parts & {1, 2, 3, 4, 5}:
            _sample(info, "after part 5")
        _part_time_to_target(args, data_root, "cpu", sections, goals, raw)
    if 7 in parts:
        if parts & {1, 2, 3, 4, 5, 6}:
            _sample(info, "after part 6")
        _part_seeds(args, data_root, "cpu", sections, goals, raw)
    if 8 in parts:
        _part_training_memory(args, "cpu", sections, goals, raw)
    return sections, goals, raw


def _part_training_memory(args, device, sections, goals, raw) -> None:
    _echo(f"8. training memory on {device}")
    if device == "cpu":
        rows = training_memory.cpu(training_memory.QUICK_CASES if args.quick else None, _echo)
        raw["training_memory"] = rows
        exact = sum(r["exact"] for r in rows)
        goals.append(("8", "saved-for-backward bytes, predicted / saved_tensors_hooks, float32 "
                           "and bf16", "equal", f"{exact} of {len(rows)} equal",
                      exact == len(rows)))
        sections.append("## 8. Training memory on the CPU\n\n" + training_memory.__doc__
                        .split("\n\n")[1].replace("\n", " ") + "\n\n"
                        + training_memory.markdown_cpu(rows))
        return
    cases = [(s, b[:1]) for s, b in training_memory.GPU_CASES[:2]] if args.quick else None
    result = training_memory.gpu(device, cases, _echo)
    raw["training_memory"] = result
    worst = max((abs(r["ratio"] - 1) for r in result["rows"] if r["ratio"]), default=None)
    goals.append(("8", f"a training step's memory, predicted / max_memory_allocated on {device}",
                  f"within {training_memory.GOAL_GPU:.0%}",
                  "—" if worst is None else f"worst {worst:.1%} off", result["met"]))
    sections.append(f"## 8. Training memory on {device}\n\n" + training_memory.__doc__
                    .split("\n\n")[2].replace("\n", " ") + "\n\n"
                    + training_memory.markdown_gpu(result))


def _accuracy_options(args) -> list[str]:
    return ["--epochs", "1", "--subset", "5000"] if args.quick else []


def _why(module, result) -> str:
    return "" if result["met"] else "\n\n" + module.why_missed(result)


def _part_time_to_target(args, data_root, device, sections, goals, raw) -> None:
    pairs = 1 if args.quick else args.target_pairs
    _echo(f"6. time to the tutorial's accuracy on {device}, {pairs} pair(s)")
    result = time_to_target.measure(data_root, pairs, device, quick=args.quick, echo=_echo)
    raw["time_to_target"] = result
    reached = all(r["reached"] for r in result["rows"])
    goals.append(("6", f"time to the tutorial's 3-epoch test accuracy on {device}, "
                       f"`archdsl train {result['spec']}` / tutorial loop",
                  f"≥ {result['goal']:g}× sooner",
                  f"{result['median_ratio']:.2f}× ({result['archdsl_median_s']:.1f} s vs "
                  f"{result['tutorial_median_s']:.1f} s"
                  + ("" if reached else ", target not reached") + ")", result["met"]))
    sections.append(f"## 6. Time to the tutorial's accuracy on {device}\n\n"
                    "The tutorial's loop (bench/tutorial_loop.py: Adam lr 1e-3, batch 64) trains "
                    "3 epochs; its final test accuracy is the target, and its time is its "
                    "training seconds until an epoch's test accuracy reaches it (start-up, data "
                    "loading and test passes not counted). `archdsl train` on the recipe spec, "
                    "the tutorial's layers with a `train(...)` block, is timed as a whole "
                    "process, from its start to the line that prints its test accuracy: start-up, "
                    "data loading, training and the test pass all counted.\n\n"
                    + time_to_target.markdown(result))


def _part_seeds(args, data_root, device, sections, goals, raw) -> None:
    """The accuracy spec's mean over accuracy.SEEDS (one seed with --quick); seed 0's run is
    part 4's when part 4 ran it in this invocation."""
    seeds = accuracy.SEEDS[:1] if args.quick else accuracy.SEEDS
    earlier = {r["seed"]: r for r in raw.get("accuracy", {}).get("runs", [])}
    _echo(f"7. accuracy of {accuracy.BEST.relative_to(ROOT)} on {device}, mean over seeds {seeds}"
          + (f" (seed(s) {sorted(set(seeds) & set(earlier))} from part 4)" if earlier else ""))
    fresh = [s for s in seeds if s not in earlier]
    new = accuracy.run(data_root, fresh, device, _accuracy_options(args), echo=_echo) \
        if fresh else None
    runs = [earlier[s] if s in earlier else next(r for r in new["runs"] if r["seed"] == s)
            for s in seeds]
    result = accuracy.summary(accuracy.BEST, accuracy.spec_numbers(accuracy.BEST), device, runs)
    raw["accuracy_seeds"] = result
    goals.append(("7", f"test accuracy of fashion_mnist_best.spec on {device}, mean of seeds "
                       f"{', '.join(map(str, seeds))}", accuracy.goal_text(),
                  accuracy.result_text(result), result["met"]))
    sections.append(f"## 7. Accuracy, mean over seeds {', '.join(map(str, seeds))}\n\n"
                    + accuracy.markdown(result) + _why(accuracy, result))


def gpu_suite(args, data_root: str) -> tuple[list[str], list[tuple], dict]:
    sections, goals, raw = [], [], {}
    device = args.device
    subset = 5000 if args.quick else 0
    short = ["--subset", str(subset)] if subset else []
    if 3 in args.parts:
        _echo(f"3. training throughput on {device}, {args.train_pairs} pair(s)")
        result = train_throughput.measure(data_root, args.train_pairs, subset, device, echo=_echo)
        raw["throughput"] = result
        goals.append(("3", f"training throughput on {device}, `archdsl train` / tutorial loop",
                      f"≥ {result['goal']:g}×",
                      f"{result['median_ratio']:.2f}× ({result['archdsl_median']:,.0f} vs "
                      f"{result['tutorial_median']:,.0f} img/s)", result["met"]))
        sections.append(f"## 3. Training throughput on {device}\n\nBoth loops on `{device}`: "
                        "the tutorial's DataLoader loop moves each batch with `.to(device)`; "
                        "`archdsl train` holds the data set on the device.\n\n"
                        + train_throughput.markdown(result))
        target = GPU_TARGET
        _echo(f"time to {target:.0%} test accuracy, {accuracy.BEST.relative_to(ROOT)}")
        ladder = (1,) if args.quick else None
        best = accuracy.time_to_accuracy(accuracy.BEST, data_root, target, device=device,
                                         extra=short, echo=_echo, ladder=ladder)
        raw["time_to_93"] = best
        goals.append(("3", f"time to {target:.0%} test accuracy on {device}, "
                           f"`archdsl train {best['spec']}`", "— (reported)",
                      accuracy.time_text(best), None))
        sections.append(f"## Time to {target:.0%} test accuracy on {device}\n\n"
                        + accuracy.markdown_time(best))
    if 4 in args.parts:
        _echo(f"4. accuracy of {accuracy.BEST.relative_to(ROOT)} on {device}, seed(s) "
              f"{args.seeds}")
        result = accuracy.run(data_root, args.seeds, device, _accuracy_options(args), echo=_echo)
        raw["accuracy"] = result
        goals.append(("4", f"test accuracy of fashion_mnist_best.spec on {device}",
                      accuracy.goal_text(), accuracy.result_text(result), result["met"]))
        sections.append(f"## 4. Accuracy on {device}\n\n" + accuracy.markdown(result)
                        + _why(accuracy, result))
    if 6 in args.parts:
        _part_time_to_target(args, data_root, device, sections, goals, raw)
    if 7 in args.parts:
        _part_seeds(args, data_root, device, sections, goals, raw)
    if 8 in args.parts:
        _part_training_memory(args, device, sections, goals, raw)
    return sections, goals, raw


def render(suite: str, info: dict, goals: list[tuple], sections: list[str], seconds: float,
           command: str) -> str:
    head = [f"# archdsl benchmarks, {suite.upper()}: {info['date'][:10]}", "",
            f"Produced by `{command}` in {seconds / 60:.1f} min.", "",
            machine.markdown(info), ""]
    busy = max((value for _, value in info.get("busy_samples", [])), default=None)
    if busy is not None and busy >= BUSY_CORES:
        head += [f"**The machine was busy**: other processes used up to {busy} of its "
                 f"{info['cores']} cores when sampled. Times here are inflated, training most "
                 f"(PyTorch's threads wait on each other when a core is taken); rerun on an "
                 f"idle machine for numbers to compare.", ""]
    head += ["## Goals", "",
             "| part | benchmark | goal | result | met / missed |", "|---|---|---|---|---|"]
    head += [f"| {p} | {what} | {goal} | {result} | {_verdict(met)} |"
             for p, what, goal, result, met in goals]
    return "\n".join(head) + "\n\n" + "\n\n".join(sections) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--data-dir", default=None,
                        help="Fashion-MNIST root (default: $ARCHDSL_DATA, ../shared/data, ./data, "
                             "the Debian package's folder)")
    parser.add_argument("--parts", default="1,2,3,4,5,6,8",
                        help="which benchmarks, e.g. 1,2; 7 (the accuracy spec's mean over 3 "
                             "seeds, about 30 minutes on the CPU) is not in the default")
    parser.add_argument("--pairs", type=int, default=5, help="pairs for benchmark 1")
    parser.add_argument("--train-pairs", type=int, default=2, help="pairs for benchmark 3")
    parser.add_argument("--target-pairs", type=int, default=2, help="pairs for benchmark 6")
    parser.add_argument("--seeds", default="0", help="seeds for benchmark 4, e.g. 0,1")
    parser.add_argument("--device", default="cuda", help="GPU suite: the device")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of a minute or two (few pairs, subsets); "
                             "writes to a temporary folder unless --out is given")
    parser.add_argument("--out", default=None, help="folder for the results (bench/results)")
    args = parser.parse_args()
    args.parts = {int(p) for p in args.parts.split(",") if p}
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.quick:
        args.pairs, args.train_pairs = min(args.pairs, 2), 1

    started = time.perf_counter()
    info = machine.describe()
    start_busy = info.pop("busy_cores_at_start")
    info["busy_samples"] = [("at the start", start_busy)] if start_busy is not None else []
    _echo(f"{args.suite.upper()} benchmarks on {info['cpu']} ({info['cores']} cores), "
          f"torch {info['torch']}, load {info['load_at_start']}, other processes busy "
          f"{start_busy} cores")
    needs_data = bool(args.parts & {3, 4, 6, 7})
    data_root = datafiles.torchvision_root(args.data_dir) if needs_data else ""
    if args.suite == "gpu":
        sections, goals, raw = gpu_suite(args, data_root)
    else:
        sections, goals, raw = cpu_suite(args, data_root, info)
    seconds = time.perf_counter() - started
    info["load_at_end"] = machine.load()
    _sample(info, "at the end")
    command = "make bench" if args.suite == "cpu" and not args.quick and \
        args.parts == {1, 2, 3, 4, 5, 6, 8} else "python bench/run.py " + " ".join(sys.argv[1:])
    if args.suite == "gpu" and args.parts == GPU_PARTS and not args.quick:
        command = "bench/gpu.sh"
    text = render(args.suite, info, goals, sections, seconds, command)
    out = Path(args.out) if args.out else \
        (Path(tempfile.mkdtemp(prefix="archdsl-bench-")) if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.suite}-{datetime.date.today().isoformat()}"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(
        {"machine": info, "seconds": seconds, "args": {k: sorted(v) if isinstance(v, set) else v
                                                       for k, v in vars(args).items()},
         "goals": [dict(zip(("part", "benchmark", "goal", "result", "met"), g)) for g in goals],
         **raw}, indent=1, default=str) + "\n")
    _echo("\n" + text)
    _echo(f"written: {out / (stem + '.md')} and {stem}.json ({seconds / 60:.1f} min)")


if __name__ == "__main__":
    main()
