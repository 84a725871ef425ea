"""Benchmark 8: training memory, predicted by `archdsl check --batch` before anything runs,
against PyTorch's own accounting; torchinfo's "estimated total size" beside it, for contrast.

CPU (`make bench`): what autograd keeps for backward, predicted (archdsl.memory) against
torch.autograd.graph.saved_tensors_hooks (distinct storages, parameters excluded) on the
compiled network in train mode, float32 and bf16 autocast. The goal: equal, byte for byte.

GPU (bench/gpu.sh): the predicted total of a training step (parameters, buffers, gradients,
Adam's state, what backward keeps) against torch.cuda.max_memory_allocated() over a real step
(forward, backward, optimizer step) at several batch sizes; and `check --fit`'s batch for a
budget against the largest batch that actually runs under that budget
(torch.cuda.set_per_process_memory_fraction). The goal: within 10%.

    python bench/training_memory.py [--device cuda] [--quick]
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests")]  # the tests' references: saved_tensors.py

GOAL_GPU = 0.10  # |predicted / measured − 1|
# (spec, input or None for the spec's, batch sizes on the CPU)
CPU_CASES = [("specs/simple_cnn.spec", None, (64,)),
             ("specs/fashion_mnist_best.spec", None, (128,)),
             ("specs/zoo/resnet18.spec", None, (8,)),
             ("specs/zoo/resnet50.spec", None, (32,)),
             ("specs/zoo/mobilenet_v3_large.spec", None, (16,)),
             ("specs/zoo/convnext_tiny.spec", "3x112x112", (8,))]
QUICK_CASES = [("specs/simple_cnn.spec", None, (64,)), ("specs/zoo/resnet18.spec", "3x64x64", (4,))]
GPU_CASES = [("specs/simple_cnn.spec", (256, 4096)), ("specs/zoo/resnet18.spec", (32, 128)),
             ("specs/zoo/resnet50.spec", (32, 64)), ("specs/zoo/mobilenet_v3_large.spec", (64,)),
             ("specs/zoo/vgg16.spec", (16,)), ("specs/zoo/convnext_tiny.spec", (32,))]
FIT_SPEC, FIT_BUDGET = "specs/zoo/resnet50.spec", 16 * 2 ** 30


def _analysis(spec: str, input: str | None):
    import archdsl
    path = ROOT / spec
    return archdsl.analyze(archdsl.parse(path.read_text(), str(path)), input)


def _network(analysis, device: str):
    import torch
    from archdsl.compiler import build
    torch.manual_seed(0)
    return build(analysis).to(device)


def torchinfo_estimate(network, analysis, batch: int, device: str) -> int | None:
    """torchinfo.summary's "Estimated Total Size" in bytes: the input, each layer's output
    counted for the forward and backward pass, and the parameters."""
    try:
        import torchinfo
    except ImportError:
        return None
    stats = torchinfo.summary(network, input_size=(batch, *analysis.input), verbose=0,
                              device=device)
    return stats.total_input + stats.total_output_bytes + stats.total_param_bytes


def cpu(cases=None, echo=print) -> list[dict]:
    import torch
    from archdsl.memory import saved_bytes, training_memory
    from saved_tensors import measured_bytes

    rows = []
    for spec, input, batches in cases or CPU_CASES:
        analysis = _analysis(spec, input)
        network = _network(analysis, "cpu")
        for batch in batches:
            x = torch.randn(batch, *analysis.input)
            row = {"spec": Path(spec).stem, "input": list(analysis.input), "batch": batch}
            for precision in ("float32", "bf16"):
                started = time.perf_counter()
                measured = measured_bytes(network, x, precision=precision)
                row[precision] = {"predicted": saved_bytes(analysis, batch,
                                                           precision=precision)[1],
                                  "measured": measured,
                                  "seconds": round(time.perf_counter() - started, 2)}
                gc.collect()
            memory = training_memory(analysis, batch)
            row["predicted_total"] = memory.total
            row["breakdown"] = memory.to_dict()
            row["torchinfo_estimate"] = torchinfo_estimate(network, analysis, batch, "cpu")
            row["exact"] = all(row[p]["predicted"] == row[p]["measured"]
                               for p in ("float32", "bf16"))
            echo(f"  {row['spec']} batch {batch}: saved {row['float32']['measured']:,} B "
                 f"(predicted {row['float32']['predicted']:,}), bf16 "
                 f"{row['bf16']['measured']:,} B (predicted {row['bf16']['predicted']:,}), "
                 f"torchinfo {row['torchinfo_estimate']}")
            rows.append(row)
    return rows


def gpu(device: str = "cuda", cases=None, echo=print) -> dict:
    """Predicted total against max_memory_allocated over one Adam step, per spec and batch;
    then --fit's batch for FIT_BUDGET against the largest that runs within it."""
    import torch
    from archdsl.memory import training_memory

    def step(network, batch, shape):
        optimizer = torch.optim.Adam(network.parameters())
        x = torch.randn(batch, *shape, device=device)
        network.train()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        loss = network(x).float().square().mean()
        loss.backward()
        optimizer.step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - start
        del loss, x, optimizer
        return peak

    rows = []
    for spec, batches in cases or GPU_CASES:
        analysis = _analysis(spec, None)
        for batch in batches:
            network = _network(analysis, device)
            before = torch.cuda.memory_allocated()  # the parameters and buffers
            try:
                peak = step(network, batch, analysis.input) + before
            except torch.cuda.OutOfMemoryError:
                peak = None
            predicted = training_memory(analysis, batch).total
            row = {"spec": Path(spec).stem, "batch": batch, "predicted": predicted,
                   "measured": peak,
                   "ratio": None if peak is None else predicted / peak,
                   "torchinfo_estimate": torchinfo_estimate(network, analysis, batch, device)}
            row["met"] = peak is not None and abs(row["ratio"] - 1) <= GOAL_GPU
            echo(f"  {row['spec']} batch {batch}: predicted {predicted:,} B, max allocated "
                 f"{peak if peak is None else f'{peak:,}'} B, torchinfo "
                 f"{row['torchinfo_estimate']}")
            rows.append(row)
            del network
            gc.collect()
            torch.cuda.empty_cache()
    fit = _fit(device, step, echo)
    return {"rows": rows, "fit": fit,
            "met": all(r["met"] for r in rows) and fit["met"]}


def _fit(device, step, echo) -> dict:
    """The largest batch that runs with the process held to FIT_BUDGET, by bisection around
    the prediction, against `check --fit`'s answer."""
    import torch
    from archdsl.memory import largest_batch

    analysis = _analysis(FIT_SPEC, None)
    predicted = largest_batch(analysis, FIT_BUDGET).batch
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, FIT_BUDGET / total), device)

    def runs(batch):
        network = _network(analysis, device)
        try:
            step(network, batch, analysis.input)
            return True
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            del network
            gc.collect()
            torch.cuda.empty_cache()

    try:
        low, high = max(1, predicted // 2), predicted * 2
        while not runs(low) and low > 1:
            low //= 2
        while runs(high):
            high *= 2
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if runs(middle) else (low, middle)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    ratio = predicted / low
    echo(f"  --fit {FIT_BUDGET / 2 ** 30:g}GiB for {Path(FIT_SPEC).stem}: predicted batch "
         f"{predicted}, largest that runs {low}")
    return {"spec": Path(FIT_SPEC).stem, "budget": FIT_BUDGET, "predicted_batch": predicted,
            "largest_batch_that_runs": low, "ratio": ratio, "met": abs(ratio - 1) <= GOAL_GPU}


def markdown_cpu(rows: list[dict]) -> str:
    lines = ["| spec | input | batch | saved, predicted | saved, measured | bf16 predicted | "
             "bf16 measured | training step, predicted | torchinfo's estimate |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        info = "—" if r["torchinfo_estimate"] is None else f"{r['torchinfo_estimate']:,}"
        lines.append(f"| {r['spec']} | {'×'.join(map(str, r['input']))} | {r['batch']} | "
                     f"{r['float32']['predicted']:,} | {r['float32']['measured']:,} | "
                     f"{r['bf16']['predicted']:,} | {r['bf16']['measured']:,} | "
                     f"{r['predicted_total']:,} | {info} |")
    return "\n".join(lines)


def markdown_gpu(result: dict) -> str:
    lines = ["| spec | batch | predicted | max_memory_allocated | predicted / measured | "
             "torchinfo's estimate |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        measured = "out of memory" if r["measured"] is None else f"{r['measured']:,}"
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.3f}"
        info = "—" if r["torchinfo_estimate"] is None else f"{r['torchinfo_estimate']:,}"
        lines.append(f"| {r['spec']} | {r['batch']} | {r['predicted']:,} | {measured} | "
                     f"{ratio} | {info} |")
    fit = result["fit"]
    lines.append(f"\n`--fit {fit['budget'] / 2 ** 30:g}GiB` for {fit['spec']}: predicted batch "
                 f"{fit['predicted_batch']}, the largest that runs {fit['largest_batch_that_runs']}"
                 f" ({fit['ratio']:.3f}).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.device == "cpu":
        rows = cpu(QUICK_CASES if args.quick else None)
        print(markdown_cpu(rows))
        print(json.dumps(rows))
    else:
        result = gpu(args.device, [(s, b[:1]) for s, b in GPU_CASES[:2]] if args.quick else None)
        print(markdown_gpu(result))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
