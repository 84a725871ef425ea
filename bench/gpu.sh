#!/usr/bin/env bash
# The GPU part of archdsl's benchmarks, on a machine with one NVIDIA GPU and PyTorch installed.
#
#   bench/gpu.sh [DATA_DIR]
#   bench/gpu.sh --dry-run [DATA_DIR]   # the same steps on the CPU, on small subsets, to check
#                                       # the script on a machine without a GPU (~5 min on 2 cores)
#
# Runs bench/run.py --suite gpu, parts 3, 4, 6, 7 and 8, all on the GPU: training throughput of the
# tutorial's loop against `archdsl train` (goal 10x) and the time specs/fashion_mnist_best.spec
# takes to 93% test accuracy (part 3); that spec's accuracy, goal 94% within 10 minutes, with
# seed 0 (part 4) and as the mean of seeds 0, 1, 2 (part 7); the time specs/simple_cnn_fast.spec
# takes to the tutorial loop's 3-epoch test accuracy against the tutorial loop's own (part 6, goal
# 3x); a training step's predicted memory against max_memory_allocated and `check --fit`'s batch
# against the largest that runs (part 8). Writes bench/results/gpu-<date>.md and .json and
# prints the table. Meant to take about 5
# minutes on an H100 or H200, and to fit in one call of 8 minutes; it has not yet run on a GPU.
#
# Needs no internet: lark, the one dependency of archdsl that PyTorch images usually lack,
# installs from the wheel in bench/wheels into a scratch folder when it is missing, and archdsl
# is imported from this checkout when it is not installed. Fashion-MNIST's four official files
# must be on the machine: in DATA_DIR (torchvision's layout DATA_DIR/FashionMNIST/raw, or loose,
# gzipped or not), $ARCHDSL_DATA, ../shared/data, ./data or /usr/share/datasets/fashion-mnist.
#
# Environment: PYTHON (default .venv/bin/python, else python3), DEVICE (default cuda),
# SEEDS (part 4's, default 0), PAIRS (training pairs of parts 3 and 6, default 2),
# PARTS (default 3,4,6,7,8).
set -euo pipefail

dry_run=
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi

cd "$(dirname "$0")/.."
repo=$(pwd)

if [ -n "$dry_run" ]; then
    echo "dry run: the GPU suite's steps on the CPU, small subsets, results in a temporary folder"
elif ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "bench/gpu.sh: nvidia-smi not found: this needs a machine with an NVIDIA GPU and its" \
         "driver (the CPU benchmarks are 'make bench')" >&2
    exit 2
else
    nvidia-smi -L
fi

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=$repo/.venv/bin/python; else PYTHON=$(command -v python3); fi
fi
if [ -z "$dry_run" ] && \
        ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench/gpu.sh: $PYTHON has no PyTorch that sees a CUDA GPU" >&2
    exit 2
fi

data_dir=
if [ $# -ge 1 ]; then data_dir=$(cd "$1" && pwd); fi

# Python runs from a scratch folder, never from the checkout: the source folder archdsl/ must not
# shadow the installed package (or the link farm below), which carries the grammar package.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/site" "$scratch/cwd"
export PYTHONPATH="$scratch/site${PYTHONPATH:+:$PYTHONPATH}"
cd "$scratch/cwd"

if ! "$PYTHON" -c 'import lark' 2>/dev/null; then
    echo "lark is missing: installing it from bench/wheels (offline)"
    "$PYTHON" -m pip install --quiet --no-index --no-deps \
        --target "$scratch/site" --find-links "$repo/bench/wheels" lark
fi
for module in typer rich tabulate matplotlib numpy; do
    if ! "$PYTHON" -c "import $module" 2>/dev/null; then
        echo "bench/gpu.sh: $PYTHON lacks $module, which archdsl needs; pip install it" \
             "(or put its wheel in bench/wheels)" >&2
        exit 2
    fi
done

# archdsl from this checkout, unless an installed one already parses from it. The package's
# grammar lives in grammars/ and installs as archdsl.grammars: without an install, a folder of
# links gives the same layout, no build needed.
if [ -n "${ARCHDSL_FROM_CHECKOUT:-}" ] || ! "$PYTHON" - "$repo" <<'EOF' 2>/dev/null
import sys, pathlib, archdsl
here = pathlib.Path(archdsl.__file__).resolve().parent
ours = pathlib.Path(sys.argv[1], "archdsl").resolve()
sys.exit(0 if here == ours and archdsl.parse("input 1x2x2\nReLU") else 1)
EOF
then
    mkdir -p "$scratch/site/archdsl"
    for entry in "$repo"/archdsl/*; do ln -s "$entry" "$scratch/site/archdsl/"; done
    ln -s "$repo/grammars" "$scratch/site/archdsl/grammars"
fi
"$PYTHON" -c 'import archdsl; archdsl.parse("input 1x2x2\nReLU")'

args=(--suite gpu --parts "${PARTS:-3,4,6,7,8}" --seeds "${SEEDS:-0}" --train-pairs "${PAIRS:-2}"
      --target-pairs "${PAIRS:-2}")
if [ -n "$data_dir" ]; then args+=(--data-dir "$data_dir"); fi
if [ -n "$dry_run" ]; then
    args+=(--device cpu --quick)
else
    args+=(--device "${DEVICE:-cuda}")
fi
"$PYTHON" "$repo/bench/run.py" "${args[@]}"
