"""Benchmark 4: test accuracy of specs/fashion_mnist_best.spec, and time to a target accuracy.

`archdsl train specs/fashion_mnist_best.spec --data-dir DIR` alone reproduces the run: the spec's
train(...) block holds the epochs, optimizer, schedule and regularization. This module runs it
once per seed as a subprocess and reports the test accuracy on the official 10,000-image test
split, the whole-process wall time and the training time, with the spec's parameters and MACs.

time_to_accuracy() answers "how long until 90% test accuracy": it trains fresh runs of 1, 2, 3 …
epochs (the test split is evaluated once, at the end of a run) and stops at the first that gets
there. Without a schedule (simple_cnn at the tutorial's settings: constant Adam lr) a run of E
epochs is the first E epochs of a longer one; with a schedule it is the shortest schedule that
reaches the target.

    python bench/accuracy.py --data-dir ../shared/data [--seeds 0,1] [--device cpu]
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from train_throughput import archdsl_run  # noqa: E402

BEST = ROOT / "specs/fashion_mnist_best.spec"
GOAL_ACCURACY, GOAL_EPOCHS = 0.93, 10
_TEST = re.compile(r"test accuracy ([0-9.]+)%")


def spec_numbers(spec: Path) -> dict:
    """Parameters, MACs and the train(...) settings, from the analysis (no torch)."""
    import archdsl
    analysis = archdsl.analyze(archdsl.read_spec(str(spec)))
    training = analysis.spec.training
    settings = {}
    if training is not None:
        try:
            from archdsl.train.config import TrainConfig
            settings = {k: v for k, v in TrainConfig.from_spec(analysis.spec).to_dict().items()}
        except Exception:  # the settings are a courtesy of the report, never its failure
            settings = {}
    return {"params": analysis.totals.params, "macs": analysis.totals.macs,
            "epochs": settings.get("epochs"), "settings": settings}


def train_once(spec: Path, data_dir: str, seed: int = 0, device: str = "cpu",
               extra: list[str] = ()) -> dict:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        records, stdout = archdsl_run(spec, data_dir, out,
                                      ["--seed", str(seed), "--device", device, *extra])
        wall = time.perf_counter() - start
    found = _TEST.findall(stdout)
    if not found:
        raise RuntimeError(f"archdsl train printed no test accuracy:\n{stdout[-2000:]}")
    return {"seed": seed, "device": device, "extra": list(extra), "epochs": len(records),
            "test_accuracy": float(found[-1]) / 100, "wall_s": round(wall, 2),
            "train_s": round(sum(r["seconds"] for r in records), 2),
            "images_per_s": round(sum(r["images_per_s"] for r in records) / len(records), 1),
            "history": records}


def run(data_dir: str, seeds=(0,), device: str = "cpu", extra: list[str] = (),
        spec: Path = BEST, echo=print) -> dict:
    numbers = spec_numbers(spec)
    runs = []
    for seed in seeds:
        runs.append(train_once(spec, data_dir, seed, device, extra))
        r = runs[-1]
        echo(f"  seed {seed}: test accuracy {r['test_accuracy']:.2%} after {r['epochs']} epochs, "
             f"{r['wall_s']:.0f} s wall ({r['train_s']:.0f} s training, "
             f"{r['images_per_s']:,.0f} img/s)")
    worst = min(r["test_accuracy"] for r in runs)
    return {"spec": str(spec.relative_to(ROOT)), **numbers, "device": device, "runs": runs,
            "worst_accuracy": worst,
            "met": worst >= GOAL_ACCURACY and all(r["epochs"] <= GOAL_EPOCHS for r in runs)}


def markdown(result: dict) -> str:
    lines = [f"`{result['spec']}`: {result['params']:,} parameters, {result['macs']:,} MACs per "
             f"image; `archdsl train {result['spec']}` on `{result['device']}`.", "",
             "| seed | epochs | test accuracy | wall time | training time | images/s | "
             f"goal ≥ {GOAL_ACCURACY:.0%} in ≤ {GOAL_EPOCHS} epochs |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["runs"]:
        met = r["test_accuracy"] >= GOAL_ACCURACY and r["epochs"] <= GOAL_EPOCHS
        lines.append(f"| {r['seed']} | {r['epochs']} | {r['test_accuracy']:.2%} | "
                     f"{r['wall_s']:.0f} s | {r['train_s']:.0f} s | {r['images_per_s']:,.0f} | "
                     f"{'met' if met else '**missed**'} |")
    return "\n".join(lines)


def time_to_accuracy(spec: Path, data_dir: str, target: float = 0.90, max_epochs: int = 5,
                     device: str = "cpu", extra: list[str] = (), echo=print) -> dict:
    tries = []
    for epochs in range(1, max_epochs + 1):
        r = train_once(spec, data_dir, 0, device, ["--epochs", str(epochs), *extra])
        tries.append({k: r[k] for k in ("epochs", "test_accuracy", "train_s", "wall_s")})
        echo(f"  {spec.stem}, {epochs} epoch(s): test accuracy {r['test_accuracy']:.2%}, "
             f"{r['train_s']:.1f} s training")
        if r["test_accuracy"] >= target:
            return {"spec": str(spec.relative_to(ROOT)), "target": target, "reached": True,
                    **tries[-1], "tries": tries}
    return {"spec": str(spec.relative_to(ROOT)), "target": target, "reached": False,
            **tries[-1], "tries": tries}


def tutorial_time_to_accuracy(data_dir: str, target: float = 0.90, max_epochs: int = 5,
                              device: str = "cpu", echo=print, subset: int = 0) -> dict:
    """The tutorial loop's training seconds, summed over epochs, until its test accuracy ≥ target."""
    from train_throughput import tutorial_epochs
    records = tutorial_epochs(data_dir, max_epochs, subset, device)
    total = 0.0
    for r in records:
        total += r["seconds"]
        echo(f"  tutorial loop, epoch {r['epoch']}: test accuracy {r['test_accuracy']:.2%}, "
             f"{total:.1f} s training")
        if r["test_accuracy"] >= target:
            return {"spec": "bench/tutorial_loop.py", "target": target, "reached": True,
                    "epochs": r["epoch"], "test_accuracy": r["test_accuracy"],
                    "train_s": round(total, 2), "tries": records}
    return {"spec": "bench/tutorial_loop.py", "target": target, "reached": False,
            "epochs": records[-1]["epoch"], "test_accuracy": records[-1]["test_accuracy"],
            "train_s": round(total, 2), "tries": records}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared/data"))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--spec", default=str(BEST))
    args, extra = parser.parse_known_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(markdown(run(args.data_dir, seeds, args.device, extra, Path(args.spec).resolve())))


if __name__ == "__main__":
    main()
