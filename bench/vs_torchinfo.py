"""Benchmark 1: `archdsl check SPEC` against torchinfo.summary on the same network, whole process.

A is `archdsl check SPEC --format json` (pure Python, no torch); B is bench/torchinfo_summary.py,
which imports torch, builds the model (torchvision's, or the tutorial's / the test's plain
PyTorch one) and runs torchinfo.summary on one example of the spec's input shape. Both are timed
as subprocesses, wall clock, start to exit. They run alternately, A B A B …, after one untimed
warm-up of each (file caches), and the result is the median of the pairwise ratios B/A, so that
a slow stretch of the machine affects both sides of a pair alike. Each pair also checks that the
two report the same parameter count.

archdsl's modules are byte-compiled first, as `pip install` does and as Python does on a first
import: where PYTHONDONTWRITEBYTECODE is set (as on the machines these numbers come from), every
run would otherwise compile archdsl's sources again (an eighth of `check`'s time on ResNet-50),
while torch's and torchinfo's came byte-compiled with their wheels.

    python bench/vs_torchinfo.py [--pairs 5] [resnet50 vgg16 …]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# spec -> the model torchinfo_summary.py builds for it
SPECS = {"simple_cnn": ROOT / "specs/simple_cnn.spec",
         **{p.stem: p for p in sorted((ROOT / "specs/zoo").glob("*.spec"))}}
GOAL_MODEL, GOAL_RATIO = "resnet50", 20.0


def _archdsl() -> list[str]:
    """The installed console script next to this interpreter, else `python -m archdsl`."""
    script = Path(sys.executable).with_name("archdsl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "archdsl"]


def _timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def byte_compile() -> None:
    """Write the bytecode of the archdsl that `archdsl check` imports (see the docstring)."""
    subprocess.run([sys.executable, "-c", "import archdsl, compileall, os; "
                    "compileall.compile_dir(os.path.dirname(archdsl.__file__), quiet=1)"],
                   check=True, cwd=ROOT)


def check(spec: Path) -> tuple[float, int]:
    seconds, out = _timed([*_archdsl(), "check", str(spec), "--format", "json"])
    return seconds, json.loads(out)["totals"]["params"]


def torchinfo(model: str) -> tuple[float, int]:
    seconds, out = _timed([sys.executable, str(HERE / "torchinfo_summary.py"), model])
    return seconds, json.loads(out.strip().splitlines()[-1])["params"]


def measure(name: str, pairs: int = 5, echo=print) -> dict:
    spec = SPECS[name]
    check(spec), torchinfo(name)  # warm-up, untimed
    runs = []
    for _ in range(pairs):
        a, params_a = check(spec)
        b, params_b = torchinfo(name)
        runs.append({"archdsl_s": round(a, 4), "torchinfo_s": round(b, 4),
                     "ratio": round(b / a, 3), "archdsl_params": params_a,
                     "torchinfo_params": params_b})
    row = {"model": name, "spec": str(spec.relative_to(ROOT)), "pairs": pairs,
           "archdsl_median_s": statistics.median(r["archdsl_s"] for r in runs),
           "torchinfo_median_s": statistics.median(r["torchinfo_s"] for r in runs),
           "median_ratio": statistics.median(r["ratio"] for r in runs),
           "params": runs[0]["archdsl_params"],
           "params_match": all(r["archdsl_params"] == r["torchinfo_params"] for r in runs),
           "runs": runs}
    if name == GOAL_MODEL:
        row["goal"] = f"≥ {GOAL_RATIO:g}×"
        row["met"] = row["median_ratio"] >= GOAL_RATIO
    echo(f"  {name:11s} archdsl {row['archdsl_median_s']:.3f} s  torchinfo "
         f"{row['torchinfo_median_s']:.3f} s  ratio {row['median_ratio']:.1f}×  params "
         f"{row['params']:,} {'match' if row['params_match'] else 'DIFFER'}")
    return row


def run(names: list[str] | None = None, pairs: int = 5, echo=print) -> list[dict]:
    names = names or [GOAL_MODEL, "simple_cnn", "vgg16"] + \
        [n for n in SPECS if n not in (GOAL_MODEL, "simple_cnn", "vgg16")]
    byte_compile()
    return [measure(name, pairs, echo) for name in names]


def markdown(rows: list[dict]) -> str:
    lines = ["| spec | params (both) | `archdsl check` | torchinfo script | median ratio | "
             "goal | met / missed |",
             "|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        params = f"{r['params']:,}" if r["params_match"] else f"{r['params']:,} (**differ**)"
        verdict = ("met" if r["met"] else "**missed**") if "met" in r else "—"
        lines.append(f"| {r['spec']} | {params} | {r['archdsl_median_s']:.3f} s | "
                     f"{r['torchinfo_median_s']:.3f} s | {r['median_ratio']:.1f}× | "
                     f"{r.get('goal', '—')} | {verdict} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help=", ".join(SPECS))
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    unknown = [m for m in args.models if m not in SPECS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}: not one of {', '.join(SPECS)}")
    rows = run(args.models or None, args.pairs)
    print(markdown(rows))


if __name__ == "__main__":
    main()
