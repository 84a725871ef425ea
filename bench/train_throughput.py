"""Benchmark 3: training throughput, the tutorial's loop against `archdsl train`, same model, data
and settings (specs/simple_cnn.spec is the tutorial's CNN; batch 64, Adam lr 1e-3, no schedule,
one epoch).

Runs the two alternately (tutorial, archdsl, tutorial, archdsl, …), one epoch each in a fresh
process, and reports images/s per run and the median of the pairwise ratios. Images/s counts the
training steps of the epoch only, for both: not the process start, not the data loading before
the first step, not the test pass. Both read Fashion-MNIST from --data-dir.

    python bench/train_throughput.py --data-dir ../shared/data --pairs 2 [--subset N] [--device cuda]

Options it does not know go to `archdsl train` (for instance --amp bf16).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = ROOT / "specs/simple_cnn.spec"
GOALS = {"cpu": 1.5, "cuda": 10.0}  # archdsl / tutorial, images/s
# The tutorial's settings, given explicitly: specs/simple_cnn.spec carries its own recipe
# (lr 2e-3 on a cosine), and this benchmark compares the two loops at the same settings.
TUTORIAL_SETTINGS = ["--batch-size", "64", "--optimizer", "adam", "--lr", "1e-3",
                     "--scheduler", "none"]


def _run(command: list[str], cwd: Path | str = ROOT) -> str:
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def tutorial_epochs(data_dir: str, epochs: int = 1, subset: int = 0,
                    device: str = "cpu") -> list[dict]:
    """The tutorial loop's per-epoch records: images, seconds, images_per_s, test_accuracy."""
    command = [sys.executable, str(HERE / "tutorial_loop.py"), "--data-dir", data_dir,
               "--epochs", str(epochs), "--device", device] + \
        (["--limit", str(subset)] if subset else [])
    return [json.loads(line) for line in _run(command).splitlines() if line.startswith("{")]


def tutorial(data_dir: str, subset: int = 0, device: str = "cpu") -> float:
    return tutorial_epochs(data_dir, 1, subset, device)[-1]["images_per_s"]


def archdsl_run(spec: Path, data_dir: str, out: str, args: list[str]) -> tuple[list[dict], str]:
    """Train `spec` into `out`; the metrics records and what the run printed.

    The process starts in `out`, not in the checkout: `python -m` puts its working directory
    first on the path, and the installed archdsl (or bench/gpu.sh's link farm, which adds the
    grammar package) must win over the bare source folder."""
    stdout = _run([sys.executable, "-m", "archdsl", "train", str(Path(spec).resolve()),
                   "--data-dir", str(Path(data_dir).resolve()), "--out", str(out), *args],
                  cwd=out)
    records = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return records, stdout


def archdsl(data_dir: str, subset: int = 0, device: str = "cpu", extra: list[str] = ()) -> float:
    with tempfile.TemporaryDirectory() as out:
        records, _ = archdsl_run(SPEC, data_dir, out,
                                 [*TUTORIAL_SETTINGS, "--epochs", "1", "--device", device,
                                  *(["--subset", str(subset)] if subset else []), *extra])
        return records[-1]["images_per_s"]


def measure(data_dir: str, pairs: int = 2, subset: int = 0, device: str = "cpu",
            extra: list[str] = (), echo=print) -> dict:
    rows = []
    for pair in range(pairs):
        baseline = tutorial(data_dir, subset, device)
        ours = archdsl(data_dir, subset, device, list(extra))
        rows.append({"pair": pair + 1, "tutorial_images_per_s": baseline,
                     "archdsl_images_per_s": ours, "ratio": round(ours / baseline, 3)})
        echo(f"  pair {pair + 1}: tutorial {baseline:,.0f} img/s, archdsl {ours:,.0f} img/s, "
             f"{ours / baseline:.2f}×")
    kind = device.split(":")[0]
    ratio = statistics.median(r["ratio"] for r in rows)
    goal = GOALS.get(kind)
    return {"device": device, "pairs": pairs, "images_per_epoch": subset or 60_000,
            "rows": rows, "median_ratio": ratio,
            "tutorial_median": statistics.median(r["tutorial_images_per_s"] for r in rows),
            "archdsl_median": statistics.median(r["archdsl_images_per_s"] for r in rows),
            "goal": goal, "met": ratio >= goal if goal else None}


def markdown(result: dict) -> str:
    lines = ["| run | tutorial loop | `archdsl train` | ratio |", "|---|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| pair {r['pair']} | {r['tutorial_images_per_s']:,.0f} img/s | "
                     f"{r['archdsl_images_per_s']:,.0f} img/s | {r['ratio']:.2f}× |")
    verdict = "" if result["goal"] is None else \
        f" Goal ≥ {result['goal']:g}×: {'met' if result['met'] else '**missed**'}."
    lines.append(f"| **median** | {result['tutorial_median']:,.0f} img/s | "
                 f"{result['archdsl_median']:,.0f} img/s | **{result['median_ratio']:.2f}×** |")
    lines.append("")
    lines.append(f"One epoch of {result['images_per_epoch']:,} Fashion-MNIST images on "
                 f"`{result['device']}`, batch 64, Adam lr 1e-3, each run a fresh process.{verdict}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared/data"))
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args, extra = parser.parse_known_args()
    result = measure(args.data_dir, args.pairs, args.subset, args.device, extra)
    print(json.dumps({"median_ratio": result["median_ratio"]}))
    print(markdown(result))


if __name__ == "__main__":
    main()
