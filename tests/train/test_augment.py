"""Augmentation of training batches (archdsl/train/augment.py): each operation against
torchvision's functional ops on the same example, the draws seeded per (seed, epoch, step) and
sliced per rank, airbench's alternating flip, exact resume, two gloo ranks, image folders, and the
command line.

Run as a script under torchrun, this file is the worker of the two-rank test.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision.transforms.v2 import functional as TF
from typer.testing import CliRunner

from archdsl.analysis import analyze
from archdsl.cli import app
from archdsl.errors import RunError
from archdsl.train.augment import Augmentation, augmented_folder, crop, cut_out, folder_transforms
from archdsl.train.batches import DeviceBatches, normalize
from archdsl.train.config import TrainConfig, resumed_config
from archdsl.train.data import Split
from archdsl.train.loop import train

from training import Killed, kill_after_first, load, quiet_run

ROOT = Path(__file__).resolve().parents[2]
SPEC = "input 3x12x12\nConv(4, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n"
ALL_ON = dict(crop=2, flip="random", cutout=5)


def images(count=6, shape=(3, 9, 8), seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (count, *shape), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def split(count=40, shape=(3, 9, 8)) -> Split:
    return Split(images(count, shape), torch.arange(count) % 10)


def epoch_batches(settings: Augmentation, data: Split, epoch=1, batch=8, rank=0, world=1,
                  seed=5):
    batches = DeviceBatches(data, None, torch.device("cpu"))
    augment = settings.for_epoch(epoch, len(batches), torch.device("cpu"))
    return list(batches(batch, seed, rank, world, augment=augment))


# --- each operation against torchvision ----------------------------------------------------------

@pytest.mark.parametrize("mode, padding_mode", [("reflect", "reflect"), ("zero", "constant")])
def test_crop_equals_torchvision_pad_then_crop_at_the_same_offsets(mode, padding_mode):
    x = images()
    top, left = torch.tensor([0, 1, 2, 3, 4, 2]), torch.tensor([4, 3, 2, 1, 0, 0])
    got = crop(normalize(x), 2, top, left, mode)
    got_bytes = crop(x, 2, top, left, mode)
    for i in range(len(x)):
        want = TF.crop(TF.pad(x[i], [2], fill=0, padding_mode=padding_mode),
                       int(top[i]), int(left[i]), 9, 8)
        assert torch.equal(got[i], normalize(want)), i  # zero padding: black, -1 normalized
        assert torch.equal(got_bytes[i], want), i
    assert torch.equal(crop(x, 2, torch.full((6,), 2), torch.full((6,), 2), mode), x)


def test_flip_equals_torchvision_horizontal_flip():
    x = normalize(images())
    settings = Augmentation(flip="random")
    flip = torch.tensor([True, False, True, True, False, False])
    from archdsl.train.augment import augment_batch
    got = augment_batch(x, settings, flip=flip)
    for i in range(len(x)):
        assert torch.equal(got[i], TF.horizontal_flip(x[i]) if flip[i] else x[i]), i


def test_cutout_equals_torchvision_erase_of_the_clipped_square():
    x = normalize(images())
    rows, columns = torch.tensor([0, 4, 8, 1, 7, 3]), torch.tensor([0, 3, 7, 6, 1, 4])
    got = cut_out(x, 4, rows, columns)
    for i in range(len(x)):
        top, left = max(0, int(rows[i]) - 2), max(0, int(columns[i]) - 2)
        bottom, right = min(9, int(rows[i]) + 2), min(8, int(columns[i]) + 2)
        want = TF.erase(x[i], top, left, bottom - top, right - left, torch.tensor(0.0))
        assert torch.equal(got[i], want), i
    assert int((got == 0).sum()) > 0 and not torch.equal(got, x)


# --- the draws -----------------------------------------------------------------------------------

def test_the_same_seed_gives_the_same_batches_and_another_seed_others():
    data = split()
    first = epoch_batches(Augmentation(**ALL_ON, seed=1), data)
    again = epoch_batches(Augmentation(**ALL_ON, seed=1), data)
    other = epoch_batches(Augmentation(**ALL_ON, seed=2), data)
    later = epoch_batches(Augmentation(**ALL_ON, seed=1), data, epoch=2)
    plain = list(DeviceBatches(data, None, torch.device("cpu"))(8, 5))
    for (a, labels), (b, _), (c, _), (d, _), (e, plain_labels) in zip(first, again, other, later,
                                                                      plain, strict=True):
        assert torch.equal(labels, plain_labels)  # the same examples, in the same order
        assert torch.equal(a, b)
        assert not torch.equal(a, c) and not torch.equal(a, d) and not torch.equal(a, e)
        assert a.is_contiguous() and a.dtype == torch.float32


def test_augmentation_leaves_the_global_random_state_alone():
    before = torch.get_rng_state()
    epoch_batches(Augmentation(**ALL_ON, seed=1), split())
    assert torch.equal(torch.get_rng_state(), before)


def test_each_rank_augments_its_slice_as_one_process_augments_the_global_batch():
    """43 examples, batch 8 per rank: the last global batch of 11 is split 6 + 5."""
    data, settings = split(43), Augmentation(**ALL_ON, seed=3)
    whole = epoch_batches(settings, data, batch=16)
    ranks = [epoch_batches(settings, data, batch=8, rank=rank, world=2) for rank in (0, 1)]
    for (images_, labels), (first, first_labels), (second, second_labels) in \
            zip(whole, *ranks, strict=True):
        assert torch.equal(torch.cat([first, second]), images_)
        assert torch.equal(torch.cat([first_labels, second_labels]), labels)


def test_an_example_is_augmented_by_its_place_in_the_order_whatever_the_batch_size():
    data, settings = split(43), Augmentation(**ALL_ON, seed=3)
    small, large = epoch_batches(settings, data, batch=5), epoch_batches(settings, data, batch=43)
    assert torch.equal(torch.cat([images_ for images_, _ in small]), large[0][0])


def test_alternating_flip_flips_a_random_half_first_then_every_example_each_other_epoch():
    data = split(200, (1, 5, 5))
    settings = Augmentation(flip="alternating", seed=4)

    def flipped(epoch):
        """Per example (by index), whether the epoch showed it flipped."""
        state = torch.zeros(len(data), dtype=torch.bool)
        batches = DeviceBatches(data, None, torch.device("cpu"))
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch))
        augment = settings.for_epoch(epoch, len(data), torch.device("cpu"))
        for step, (batch, _) in enumerate(batches(50, epoch, augment=augment)):
            for example, image in zip(order[50 * step:50 * step + 50], batch):
                plain = normalize(data.images[example])
                assert torch.equal(image, plain) or torch.equal(image, plain.flip(-1))
                state[example] = torch.equal(image, plain.flip(-1)) and \
                    not torch.equal(plain, plain.flip(-1))
        return state

    first, second, third = flipped(1), flipped(2), flipped(3)
    assert 70 < int(first.sum()) < 130  # a random half
    assert torch.equal(second, ~first) and torch.equal(third, first)
    assert not torch.equal(first, Augmentation(flip="alternating", seed=5).for_epoch(
        1, len(data), torch.device("cpu")).flipped)


def test_settings_that_do_not_fit_the_images_are_clear_errors():
    with pytest.raises(RunError, match="--crop 9 with reflect padding must be smaller than"):
        Augmentation(crop=9).check((1, 9, 12))
    Augmentation(crop=9, crop_padding="zero").check((1, 9, 12))
    with pytest.raises(RunError, match="augment images"):
        Augmentation(flip="random").check((20,))
    assert Augmentation.from_config(TrainConfig()) is None  # all off by default
    assert Augmentation.from_config(TrainConfig(cutout=3, seed=7)) == Augmentation(cutout=3,
                                                                                   seed=7)


# --- image folders -------------------------------------------------------------------------------

def png_folder(root: Path, count: int = 2) -> Path:
    from PIL import Image
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (10, 6), (40 * i, 90, 200)).save(root / name / f"{i}.png")
    return root


def test_image_folders_get_torchvision_v2_transforms_from_the_same_settings(tmp_path):
    from torchvision.transforms import v2
    from archdsl.train.data import load_dataset

    folder = load_dataset(str(png_folder(tmp_path)), input_shape=(3, 6, 10))
    settings = Augmentation(crop=3, crop_padding="zero", flip="random", cutout=2)
    steps = folder_transforms(settings, folder.shape)
    assert [type(step) for step in steps] == [v2.RandomCrop, v2.RandomHorizontalFlip,
                                              v2.RandomErasing]
    assert steps[0].padding == [3, 3, 3, 3] and steps[0].padding_mode == "constant"
    augmented = augmented_folder(folder.train, settings, folder.shape)
    plain, _ = folder.train[0]
    torch.manual_seed(0)
    image, label = augmented[0]
    assert image.shape == plain.shape == (3, 6, 10) and label == folder.train[0][1]
    assert not torch.equal(image, plain)
    assert torch.equal(folder.train[0][0], plain)  # the original (a validation split's) is as it was
    with pytest.raises(RunError, match="--flip alternating follows each example"):
        folder_transforms(Augmentation(flip="alternating"), folder.shape)


# --- the loop: exact resume, two ranks -----------------------------------------------------------

RESUMABLE = dict(dataset="synthetic", subset=256, batch_size=32, epochs=3, lr=0.01, seed=3,
                 crop=2, crop_padding="zero", flip="alternating", cutout=4)


def run(out: Path, **settings):
    return quiet_run(SPEC, out, **settings)


def without_timing(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history]


def test_resume_with_augmentation_gives_identical_weights(tmp_path):
    whole = run(tmp_path / "whole", **RESUMABLE)
    plain = run(tmp_path / "plain", **{**RESUMABLE, "crop": 0, "flip": "off", "cutout": 0})
    with pytest.raises(Killed):
        run(tmp_path / "split", echo=kill_after_first, **RESUMABLE)
    resumed = run(tmp_path / "split", resume=True)
    a, b = load(tmp_path / "whole" / "last.pt"), load(tmp_path / "split" / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
        assert not torch.equal(tensor, plain.model.state_dict()[name]), name  # it augmented
    assert without_timing(whole.history) == without_timing(resumed.history)
    saved = json.loads((tmp_path / "split" / "config.json").read_text())
    assert (saved["crop"], saved["crop_padding"], saved["flip"], saved["cutout"]) == \
        (2, "zero", "alternating", 4)


def test_a_run_from_before_augmentation_resumes_without_it(tmp_path):
    out = tmp_path / "old"
    run(out, **{**RESUMABLE, "crop": 0, "flip": "off", "cutout": 0, "epochs": 1})
    saved = json.loads((out / "config.json").read_text())
    for name in ("crop", "crop_padding", "flip", "cutout"):
        del saved[name]
    (out / "config.json").write_text(json.dumps(saved))
    config = resumed_config(out, {"epochs": 2})
    assert (config.crop, config.flip, config.cutout) == (0, "off", 0)
    assert [r["epoch"] for r in run(out, resume=True, epochs=2).history] == [1, 2]


DDP_SETTINGS = dict(dataset="synthetic", subset=200, epochs=2, optimizer="sgd", lr=0.05,
                    momentum=0.9, device="cpu", seed=3, crop=2, flip="random", cutout=4,
                    ema=0.9)
PER_PROCESS_BATCH = 16


def _worker(out: Path) -> None:
    rank = int(os.environ["RANK"])
    config = TrainConfig(batch_size=PER_PROCESS_BATCH, **DDP_SETTINGS)
    result = train(analyze(SPEC), SPEC, config, out / "run", show_progress=False)
    torch.save({"model": result.model.state_dict(), "history": result.history,
                "ema": result.ema_model.state_dict()},
               out / f"rank-{rank}.pt")


def _torchrun(out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", __file__, str(out)], env=env, text=True,
                          capture_output=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr


def test_two_gloo_ranks_augment_as_one_process_with_the_global_batch_every_time(tmp_path):
    """Both ranks end with the same weights; a repeat of the job gives them bitwise; one process
    with the global batch (the same augmentation of every example) gives them within float
    rounding, as without augmentation (test_distributed.py). The same for the moving average."""
    _torchrun(tmp_path / "first")
    _torchrun(tmp_path / "again")
    first = [load(tmp_path / "first" / f"rank-{rank}.pt") for rank in (0, 1)]
    again = load(tmp_path / "again" / "rank-0.pt")
    single = run(tmp_path / "single", batch_size=2 * PER_PROCESS_BATCH, **DDP_SETTINGS)
    for weights, model in (("model", single.model), ("ema", single.ema_model)):
        for name, tensor in first[0][weights].items():
            assert torch.equal(tensor, first[1][weights][name]), name
            assert torch.equal(tensor, again[weights][name]), name
            torch.testing.assert_close(tensor, model.state_dict()[name], rtol=1e-4, atol=1e-6)
    for got, want in zip(first[0]["history"], single.history, strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)


# --- the command line ----------------------------------------------------------------------------

def test_cli_trains_the_shipped_spec_with_every_augmentation(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", str(ROOT / "specs" / "simple_cnn.spec"), "--dataset", "synthetic", "--subset",
        "128", "--epochs", "1", "--crop", "4", "--crop-padding", "reflect", "--flip",
        "alternating", "--cutout", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    saved = json.loads((out / "config.json").read_text())
    assert (saved["crop"], saved["crop_padding"], saved["flip"], saved["cutout"]) == \
        (4, "reflect", "alternating", 8)


def test_cli_trains_an_image_folder_with_augmentation_and_refuses_alternating_flip(tmp_path):
    folder = png_folder(tmp_path / "pictures" / "train", 4)
    png_folder(tmp_path / "pictures" / "test")
    spec = tmp_path / "net.spec"
    spec.write_text("input 3x6x10\nConv(4, 3, p=1) -> ReLU -> Flatten -> Linear(2)\n")
    common = ["train", str(spec), "--dataset", str(folder.parent), "--epochs", "1"]
    result = CliRunner().invoke(app, [*common, "--crop", "2", "--flip", "random", "--cutout",
                                      "3", "--val-split", "0.25", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    result = CliRunner().invoke(app, [*common, "--flip", "alternating", "--out",
                                      str(tmp_path / "other")])
    assert result.exit_code == 2, result.output
    assert "error: --flip alternating follows each example of a dataset held in memory" \
        in result.stderr


def test_nproc_passes_the_augmentation_to_its_processes():
    from archdsl.cli.run_commands import _train_arguments
    arguments = _train_arguments("net.spec", Path("runs/net"), False, None, dict(
        crop=2, crop_padding="zero", flip="alternating", cutout=None, tta="flip-shift", ema=0.9))
    assert arguments == ["net.spec", "--out", "runs/net", "--crop", "2", "--crop-padding", "zero",
                         "--flip", "alternating", "--tta", "flip-shift", "--ema", "0.9"]


def test_cli_refuses_a_crop_wider_than_the_image(tmp_path):
    result = CliRunner().invoke(app, [
        "train", str(ROOT / "specs" / "simple_cnn.spec"), "--dataset", "synthetic", "--crop",
        "28", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "error: --crop 28 with reflect padding must be smaller than the images' 28×28" \
        in result.stderr
    assert "Traceback" not in result.output


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
