"""TrainState (archdsl/train/state.py): what a run carries between epochs, saved as last.pt with
the keys every earlier run's checkpoint has, and restored from one; and the per-process
decisions the loop asks distributed.World for."""
import math

import pytest
import torch

from archdsl.analysis import analyze
from archdsl.compiler import build
from archdsl.train import checkpoint
from archdsl.train.config import TrainConfig
from archdsl.train.distributed import World
from archdsl.train.state import TrainState

SPEC = "input 1x8x8\nConv(4, 3, p=1) -> ReLU -> Flatten -> Linear(3)\n"
KEYS = ["model", "optimizer", "scheduler", "epoch", "history", "best", "stale", "rng", "config"]
CPU = torch.device("cpu")


def fresh(config: TrainConfig, seed: int = 0) -> TrainState:
    torch.manual_seed(seed)
    return TrainState.fresh(build(analyze(SPEC)), config, 5, CPU)


def one_step(state: TrainState) -> None:
    images, labels = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    state.optimizer.zero_grad()
    torch.nn.functional.cross_entropy(state.model(images), labels).backward()
    state.optimizer.step()
    state.scheduler.step()


def test_end_epoch_keeps_the_best_and_counts_the_epochs_since():
    state = fresh(TrainConfig())
    assert (state.epoch, state.best, state.stale, state.history) == (0, math.inf, 0, [])
    assert state.end_epoch({"epoch": 1}, 0.9) and state.best == 0.9 and state.stale == 0
    assert not state.end_epoch({"epoch": 2}, 0.95) and state.stale == 1
    assert not state.end_epoch({"epoch": 3}, 0.9) and state.stale == 2  # equal is no better
    assert state.end_epoch({"epoch": 4}, 0.5) and (state.best, state.stale) == (0.5, 0)
    assert state.epoch == 4 and [r["epoch"] for r in state.history] == [1, 2, 3, 4]


def test_the_checkpoint_has_todays_keys_and_restores_the_whole_state(tmp_path):
    config = TrainConfig(optimizer="sgd", scheduler="cosine", epochs=2, lr=0.1)
    state = fresh(config)
    one_step(state)
    state.end_epoch({"epoch": 1, "train_loss": 1.0}, 1.0)
    saved = state.to_checkpoint(World().random_states())
    assert list(saved) == KEYS  # a single process's: no rng_per_rank
    assert saved["config"] == config.to_dict() and saved["scheduler"]["T_max"] == 10
    checkpoint.save_atomically(saved, tmp_path / "last.pt")
    expected = torch.rand(3)  # what the saved random state draws next

    other = fresh(config, seed=1)  # other weights, no momentum, another random state
    other.restore(checkpoint.load(tmp_path / "last.pt", resumable=True), tmp_path / "last.pt",
                  World())
    for name, tensor in state.model.state_dict().items():
        assert torch.equal(other.model.state_dict()[name], tensor), name
    assert other.optimizer.state_dict()["state"].keys() == {0, 1, 2, 3}
    assert other.scheduler.state_dict() == state.scheduler.state_dict()
    assert (other.epoch, other.best, other.stale, other.history) == \
        (1, 1.0, 0, [{"epoch": 1, "train_loss": 1.0}])
    assert torch.equal(torch.rand(3), expected)


def test_several_processes_save_every_ranks_random_state():
    state = fresh(TrainConfig())
    states = [checkpoint.rng_state(), checkpoint.rng_state()]
    saved = state.to_checkpoint(states)
    assert list(saved) == [*KEYS, "rng_per_rank"]
    assert saved["rng"] is states[0] and saved["rng_per_rank"] == states


def test_restore_refuses_a_schedule_planned_for_another_length(tmp_path):
    from archdsl.errors import RunError

    state = fresh(TrainConfig(scheduler="onecycle", epochs=1))
    checkpoint.save_atomically(state.to_checkpoint(World().random_states()), tmp_path / "last.pt")
    longer = fresh(TrainConfig(scheduler="onecycle", epochs=3))
    with pytest.raises(RunError, match=f"cannot resume {tmp_path} with these options: its "
                                       "onecycle schedule was planned for 5 steps"):
        longer.restore(checkpoint.load(tmp_path / "last.pt", resumable=True),
                       tmp_path / "last.pt", World())


# --- per-process decisions -----------------------------------------------------------------------

def test_rank_0_alone_writes_and_speaks():
    lines = []
    assert World().writes_files and World(0, 2).writes_files and not World(1, 2).writes_files
    World(0, 2).echo(lines.append)("rank 0")
    World(1, 2).echo(lines.append)("rank 1")
    assert lines == ["rank 0"]


def test_ranks_other_than_0_get_random_states_of_their_own():
    draws = []
    for rank in (0, 1, 2):
        torch.manual_seed(5)
        World(rank, 3).reseed_other_ranks(5)
        draws.append(torch.rand(4))
    torch.manual_seed(5)
    assert torch.equal(draws[0], torch.rand(4))  # rank 0 keeps the seed's own state
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    torch.manual_seed(5 + 7919 * 2 + 3)  # what a resumed rank 2 of another world size draws
    expected = torch.rand(4)
    World(2, 3).restore_random_states({"rng": checkpoint.rng_state(), "epoch": 3}, 5)
    assert torch.equal(torch.rand(4), expected)
