"""Benchmark 2: in-process parse + analysis time of generated specs of 10 to 10,000 layers.

Three families of specs, written out layer by layer so that the parser sees every one:
  conv:   input 8x16x16, then `Conv(8, 3, p=1) -> ReLU` rows (shapes and receptive fields
          flow through every layer);
  linear: input 64, then `Linear(64) -> ReLU` rows (flat input);
and a deeply nested repeat, `[[[[ReLU]*10]*10]*10]*10` (10,000 layers from 24 characters, the
lowering's cap), which exercises the repeat expansion and the scoped names rather than the parser.

Each size is timed with time.perf_counter around archdsl.analyze(archdsl.parse(text)), the
median of several runs after a warm-up; a separate run under tracemalloc gives the peak memory
(tracemalloc slows Python down, so it never overlaps a timed run). The growth is linear when the
time per layer stays flat: the table gives µs/layer per size and the ratio between 10,000 and 100
layers.

    python bench/scaling.py
"""
from __future__ import annotations

import gc
import statistics
import time
import tracemalloc

import archdsl

SIZES = (10, 100, 1_000, 10_000)
GOAL_US = 50.0  # µs per layer, at every size from 100 layers up
LINEAR_FACTOR = 2.0  # µs/layer at 10,000 layers within this factor of µs/layer at 100


def conv_spec(layers: int) -> str:
    return "input 8x16x16\n" + "\n  -> ".join(["Conv(8, 3, p=1) -> ReLU"] * (layers // 2))


def linear_spec(layers: int) -> str:
    return "input 64\n" + "\n  -> ".join(["Linear(64) -> ReLU"] * (layers // 2))


NESTED = "input 8\n[[[[ReLU]*10]*10]*10]*10"


def _once(text: str) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    analysis = archdsl.analyze(archdsl.parse(text))
    seconds = time.perf_counter() - start
    return seconds, len(analysis.rows)


def _peak_bytes(text: str) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        archdsl.analyze(archdsl.parse(text))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(family: str, text: str, repeats: int) -> dict:
    _once(text)  # warm-up: the grammar is built once per process, caches fill
    times, layers = [], 0
    for _ in range(repeats):
        seconds, layers = _once(text)
        times.append(seconds)
    median = statistics.median(times)
    return {"family": family, "layers": layers, "chars": len(text), "repeats": repeats,
            "median_s": median, "best_s": min(times), "us_per_layer": median * 1e6 / layers,
            "peak_mib": _peak_bytes(text) / 2 ** 20}


def run(echo=print, repeats: int = 5) -> dict:
    rows = []
    for family, make in (("conv", conv_spec), ("linear", linear_spec)):
        for size in SIZES:
            rows.append(measure(family, make(size), repeats if size < 10_000 else max(3, repeats // 2)))
            echo(f"  {family:6s} {size:6,d} layers  {rows[-1]['us_per_layer']:7.1f} µs/layer  "
                 f"peak {rows[-1]['peak_mib']:.1f} MiB")
    rows.append(measure("nested repeat", NESTED, max(3, repeats // 2)))
    echo(f"  nested {rows[-1]['layers']:6,d} layers  {rows[-1]['us_per_layer']:7.1f} µs/layer  "
         f"peak {rows[-1]['peak_mib']:.1f} MiB")
    for row in rows:
        row["met"] = row["us_per_layer"] <= GOAL_US if row["layers"] >= 100 else None
    growth = {}
    for family in ("conv", "linear"):
        per = {r["layers"]: r["us_per_layer"] for r in rows if r["family"] == family}
        growth[family] = per[10_000] / per[100]
    return {"rows": rows, "growth_10000_vs_100": growth,
            "linear": all(g <= LINEAR_FACTOR for g in growth.values()),
            "worst_us_per_layer": max(r["us_per_layer"] for r in rows if r["layers"] >= 100),
            "met": all(r["met"] for r in rows if r["met"] is not None)}


def markdown(result: dict) -> str:
    lines = ["| spec | layers | characters | median time | µs / layer | peak memory | "
             f"goal ≤ {GOAL_US:g} µs/layer |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        verdict = "— (fixed cost)" if r["met"] is None else "met" if r["met"] else "**missed**"
        lines.append(f"| {r['family']} | {r['layers']:,} | {r['chars']:,} | "
                     f"{r['median_s'] * 1e3:,.1f} ms | {r['us_per_layer']:.1f} | "
                     f"{r['peak_mib']:.1f} MiB | {verdict} |")
    growth = ", ".join(f"{family} {g:.2f}×" for family, g in result["growth_10000_vs_100"].items())
    lines.append("")
    lines.append(f"Growth: µs/layer at 10,000 layers over µs/layer at 100 layers: {growth} "
                 f"(linear when ≤ {LINEAR_FACTOR:g}×: "
                 f"{'met' if result['linear'] else '**missed**'}).")
    return "\n".join(lines)


def main():
    print(markdown(run()))


if __name__ == "__main__":
    main()
