"""Training throughput: the tutorial's loop against `archdsl train`, same model, data and settings.

Runs the two alternately (tutorial, archdsl, tutorial, archdsl, …), one epoch each, and reports
images/s per run and the median of the pairwise ratios. Both read Fashion-MNIST from --data-dir.

    python bench/train_throughput.py --data-dir ../shared/data --pairs 2 [--subset N]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def tutorial(data_dir: str, subset: int) -> float:
    command = [sys.executable, str(HERE / "tutorial_loop.py"), "--data-dir", data_dir,
               "--epochs", "1"] + (["--limit", str(subset)] if subset else [])
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["images_per_s"]


def archdsl(data_dir: str, subset: int, extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "archdsl", "train", str(HERE.parent / "specs/simple_cnn.spec"),
                   "--data-dir", data_dir, "--epochs", "1", "--out", out, "--device", "cpu",
                   *(["--subset", str(subset)] if subset else []), *extra]
        subprocess.run(command, check=True, capture_output=True, text=True)
        record = json.loads((Path(out) / "metrics.jsonl").read_text().splitlines()[-1])
        return record["images_per_s"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(HERE.parent.parent / "shared/data"))
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=0)
    args, extra = parser.parse_known_args()
    rows = []
    for pair in range(args.pairs):
        baseline = tutorial(args.data_dir, args.subset)
        ours = archdsl(args.data_dir, args.subset, extra)
        rows.append({"pair": pair + 1, "tutorial_images_per_s": baseline,
                     "archdsl_images_per_s": ours, "ratio": round(ours / baseline, 3)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"median_ratio": statistics.median(r["ratio"] for r in rows)}))


if __name__ == "__main__":
    main()
