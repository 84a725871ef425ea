"""Data-parallel training on torch.distributed, as torchrun starts it.

torchrun (or `archdsl train --nproc N`, which calls torchrun's own entry point) starts one process
per GPU and describes the job in each one's environment: RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT. `World.from_env()` reads it; `joined()` sets up the process group
(nccl on CUDA, gloo on the CPU) with a timeout on setup and on every collective, and tears it down.
Without those variables the world is one process and every collective here is a no-op, so the
training loop reads the same either way.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import re
import shlex
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import RunError
from . import setup

TIMEOUT_VARIABLE = "ARCHDSL_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 300  # seconds for process-group setup and for any one collective
# The exit codes of a training stopped between steps by SIGINT or SIGTERM (128 + the signal).
STOPPED_BY_SIGNAL = (128 + signal.SIGINT, 128 + signal.SIGTERM)


class LostProcess(RunError):
    """Another process of the job failed or did not answer within the timeout."""

    exit_code = 1


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ=os.environ) -> "World":
        if "WORLD_SIZE" not in environ:
            return cls()
        try:
            world = cls(int(environ["RANK"]), int(environ["WORLD_SIZE"]),
                        int(environ.get("LOCAL_RANK", "0")))
        except (KeyError, ValueError):
            world = None
        if world is None or not 0 <= world.rank < world.size:
            raise RunError("WORLD_SIZE is set, but RANK or LOCAL_RANK is missing or invalid",
                           hint="start several processes with `archdsl train --nproc N` or "
                                "torchrun, which set all of them")
        return world

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that prints and writes the run directory."""
        return self.rank == 0

    # --- what each process does: every decision that differs by rank is made here ---------------

    @property
    def writes_files(self) -> bool:
        """Rank 0 alone writes the run directory; its checkpoints are those of a single process."""
        return self.main

    def echo(self, echo):
        """`echo` on rank 0, a function that prints nothing on the others."""
        return echo if self.main else _silent

    def reseed_other_ranks(self, seed: int, salt: int = 0) -> None:
        """A random state of its own for each process but rank 0: the model is built the same
        everywhere (from `seed`), but dropout masks should differ between processes."""
        if self.rank:
            torch.manual_seed(seed + 7919 * self.rank + salt)

    def random_states(self) -> list[dict]:
        """Every process's random state, in rank order (a collective: every process calls it)."""
        from .checkpoint import rng_state
        return self.gather(rng_state())

    def restore_random_states(self, saved: dict, seed: int) -> None:
        """Each process's random state as a checkpoint saved it; a checkpoint of another world
        size gives rank 0's to rank 0 and fresh seeds to the others."""
        from .checkpoint import restore_rng
        per_rank = saved.get("rng_per_rank")
        if per_rank is not None and len(per_rank) == self.size:
            restore_rng(per_rank[self.rank])
            return
        restore_rng(saved["rng"])
        self.reseed_other_ranks(seed, salt=saved["epoch"])

    # --- the collectives the loop needs; each is a no-op in a world of one ----------------------

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` summed over all processes, in place; returned for convenience."""
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def agree(self, first_bad: torch.Tensor, signum: int) -> tuple[int, int]:
        """(the earliest step any process saw a non-finite loss at, or 0; the number of a stop
        signal any process received, or 0), the same on every process, so that all of them stop
        together (with SIGTERM where some got SIGINT and others SIGTERM)."""
        if not self.distributed:
            return int(first_bad), signum
        never = 2 ** 62  # max over (never - step) is the earliest step; 0 means none
        flags = torch.stack([torch.where(first_bad > 0, never - first_bad, 0),
                             torch.tensor(int(signum), device=first_bad.device)])
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        bad, signum = flags.tolist()
        return (never - bad if bad else 0), int(signum)

    def gather(self, value) -> list:
        """Every process's `value` (any picklable object), in rank order."""
        if not self.distributed:
            return [value]
        values = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm statistics) on every process: DDP broadcasts them before
        each training step, so after the last step of an epoch they differ by that step."""
        if self.distributed:
            for buffer in module.buffers():
                dist.broadcast(buffer, 0)

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The module in DistributedDataParallel (gradients averaged over the processes in
        backward, parameters broadcast from rank 0 now), or the module itself in a world of one."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel
        return DistributedDataParallel(module, device_ids=[device.index]
                                       if device.type == "cuda" else None)

    @contextlib.contextmanager
    def local_main_first(self):
        """Local rank 0 runs the block first (a download, say), then the other processes."""
        if self.distributed and self.local_rank != 0:
            dist.barrier()
        yield
        if self.distributed and self.local_rank == 0:
            dist.barrier()


def _silent(*args, **kwargs) -> None:
    pass


def pick_device(name: str, world: World) -> torch.device:
    """setup.pick_device; with several processes, CPU or the GPU of the local rank."""
    device = setup.pick_device(name)
    if not world.distributed:
        return device
    if device.type == "mps":
        raise RunError("several processes train on CUDA GPUs (nccl) or on the CPU (gloo), "
                       "not on MPS", hint="use --device cpu")
    if device.type == "cuda":
        if device.index is not None:
            raise RunError(f"--device {name}: with several processes each one takes the GPU of "
                           "its local rank", hint="use --device cuda; choose the GPUs with "
                                                  "CUDA_VISIBLE_DEVICES")
        count = torch.cuda.device_count()
        if world.local_rank >= count:
            raise RunError(f"process {world.local_rank} of this machine has no GPU: the machine "
                           f"has {count}", hint="start at most one process per GPU "
                                                "(--nproc / --nproc-per-node)")
        return torch.device("cuda", world.local_rank)
    return device


def backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def timeout() -> datetime.timedelta:
    value = os.environ.get(TIMEOUT_VARIABLE, str(DEFAULT_TIMEOUT))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if seconds <= 0:
        raise RunError(f"{TIMEOUT_VARIABLE}={value!r} is not a positive number of seconds")
    return datetime.timedelta(seconds=seconds)


_joined_before = False  # torchrun's store cannot serve a second process group in one process


@contextlib.contextmanager
def joined(world: World, device: torch.device):
    """The process group for the block's duration; a failed or silent peer becomes a LostProcess
    error within the timeout rather than a hang. A process group the caller has already set up
    is used as it is, and left for the caller to end."""
    global _joined_before
    if not world.distributed:
        yield
        return
    limit = timeout()
    hint = (f"another process of the job failed (its message is above or in its log) or did not "
            f"answer within {limit.total_seconds():g} s (set {TIMEOUT_VARIABLE} to change that)")
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        if _joined_before and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
            raise RunError("this process already trained once; under torchrun it cannot set up "
                           "a second process group", hint="to train several times in one "
                           "process, call torch.distributed.init_process_group first")
        try:
            dist.init_process_group(backend(device), timeout=limit,
                                    device_id=device if cuda else None)
        except (RuntimeError, ValueError) as err:  # DistError is a RuntimeError
            raise LostProcess(f"could not join the other {world.size - 1} process(es): "
                              f"{_first_line(err)}", hint=hint) from None
        _joined_before = True
    try:
        yield
    except dist.DistError as err:
        raise LostProcess(f"lost contact with the other processes: {_first_line(err)}",
                          hint=hint) from None
    except RuntimeError as err:  # DDP's reducer reports a failed all-reduce as a RuntimeError
        if "gloo" not in str(err).lower() and "nccl" not in str(err).lower():
            raise
        raise LostProcess(f"lost contact with the other processes: {_first_line(err)}",
                          hint=hint) from None
    finally:
        if owned:
            dist.destroy_process_group()


def _first_line(err: BaseException) -> str:
    """The gist of a backend's error: its first sentence, without the C++ source location."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    line = re.sub(r"^\[[^\]]*:\d+\]\s*", "", lines[0]) if lines else type(err).__name__
    return re.split(r"(?<=\S)\. (?=[A-Z])", line, maxsplit=1)[0]


# --- `archdsl train --nproc N`: torchrun on this machine -----------------------------------------

def torchrun_arguments(nproc: int, train_arguments: list[str]) -> list[str]:
    """What `torchrun` is given: one machine, a free port, `python -m archdsl train ...`."""
    return ["--standalone", "--nproc-per-node", str(nproc), "-m", "archdsl", "train",
            *train_arguments]


def launch(nproc: int, train_arguments: list[str], echo) -> int:
    """Run `torchrun --standalone --nproc-per-node N -m archdsl train ARGS` in this process
    (torch.distributed.run's own entry point) and return the exit code for the command: 0, the
    failed process's own exit code, or 1 for a process ended by a signal."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    # Each process gets its share of the cores (torchrun would give each one thread).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    arguments = torchrun_arguments(nproc, train_arguments)
    echo("starting " + shlex.join(["torchrun", *arguments]))
    try:
        torchrun(arguments)
    except ChildFailedError as failed:
        rank, failure = failed.get_first_failure()
        if failure.exitcode in STOPPED_BY_SIGNAL:  # Ctrl-C or SIGTERM: rank 0 said how to resume
            return failure.exitcode
        if failure.exitcode < 0:
            how = f"was killed by {failure.signal_name()}; the other processes were stopped"
        else:
            how = f"exited with code {failure.exitcode} (its message is above)"
        echo(f"error: distributed training failed: rank {rank} (pid {failure.pid}) {how}",
             err=True)
        return failure.exitcode if failure.exitcode > 0 else 1
    except SignalException as stop:  # torchrun passed the signal on to the processes
        if stop.sigval not in (signal.SIGINT, signal.SIGTERM):  # those, rank 0 has answered
            echo(f"stopped by {stop.sigval.name}", err=True)
        return 128 + int(stop.sigval)
    return 0
