"""What machine a benchmark ran on: CPU, cores, memory, load, Python and package versions, GPU.

Torch-free (versions come from the installed metadata), so that importing it costs nothing that
the in-process benchmarks would see. The GPU line asks nvidia-smi, when there is one.
"""
from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    """The checked-out commit, with `+changes` when the work tree differs from it (read only)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               text=True, capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def _gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], text=True, capture_output=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def busy(seconds: float = 2.0) -> float | None:
    """Cores' worth of CPU time used by everything on the machine over the next `seconds`, from
    /proc/stat (0.0 on an idle machine; about 2.0 when two cores are fully taken). Sampled while
    the benchmark itself sleeps, it measures the other processes."""
    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1
    elapsed = total1 - total0
    return round(cores * (1 - (idle1 - idle0) / elapsed), 2) if elapsed > 0 else None


def load() -> tuple[float, float, float] | None:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return None


def describe() -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = _memory_gib()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": round(memory, 1) if memory else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": _version("torch"),
        "torchvision": _version("torchvision"),
        "torchinfo": _version("torchinfo"),
        "lark": _version("lark"),
        "archdsl_commit": _git_commit(),
        "gpus": _gpus(),
        "load_at_start": load(),
        "busy_cores_at_start": busy(),
    }


def markdown(info: dict) -> str:
    """The machine as a two-column markdown table."""
    rows = [("date", info["date"]),
            ("CPU", f"{info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable)"),
            ("memory", f"{info['memory_gib']} GiB"),
            ("OS", info["os"]),
            ("Python", info["python"]),
            ("packages", f"torch {info['torch']}, torchvision {info['torchvision']}, "
                         f"torchinfo {info['torchinfo']}, lark {info['lark']}"),
            ("archdsl", f"commit {info['archdsl_commit']}")]
    if info.get("gpus"):
        rows.append(("GPU", "; ".join(info["gpus"])))
    samples = info.get("busy_samples") or \
        ([("start", info["busy_cores_at_start"])] if info.get("busy_cores_at_start") is not None
         else [])
    if samples:
        rows.append(("other processes' CPU use, in cores (2 s samples while the benchmark idles)",
                     ", ".join(f"{value} {label}" for label, value in samples)))
    if info.get("load_at_start") is not None:
        end = info.get("load_at_end")
        rows.append(("load average (1, 5, 15 min)",
                     f"{', '.join(map(str, info['load_at_start']))} at start"
                     + (f"; {', '.join(map(str, end))} at end" if end else "")))
    return "| machine | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
