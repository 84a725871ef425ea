"""The notebook's progress bar: one display per epoch, updated in place to its final state."""
import pytest

pytest.importorskip("IPython")
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from archdsl.train.progress import EpochProgress, NotebookProgress, epoch_progress  # noqa: E402


@pytest.fixture
def shell():
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_outside_a_kernel_the_terminals_progress_is_used(shell):
    assert isinstance(epoch_progress(True), EpochProgress)  # a terminal IPython: no kernel


def test_the_bar_is_one_display_updated_to_the_end_of_the_epoch(shell):
    bar = NotebookProgress(every=10)
    with capture_output() as captured:
        bar.start("epoch 1/3", 640, 10)
        for step in range(1, 11):
            bar.update(step, 64 * step, 2.0 / step)
        bar.stop()
    first, *updates = captured.outputs
    assert "epoch 1/3  [" in first.data["text/plain"] and "0/640 images" in first.data["text/plain"]
    ids = {output.transient["display_id"] for output in captured.outputs}
    assert len(ids) == 1 and updates and all(o.update for o in updates)
    last = updates[-1].data
    assert "[" + "#" * 30 + "] 100%  640/640 images  loss 0.2000" in last["text/plain"]
    assert '<progress value="640" max="640"' in last["text/html"]
    assert bar.due(10) and not bar.due(5)


def test_an_interrupted_epoch_keeps_its_bar_where_it_stopped(shell):
    bar = NotebookProgress()
    with capture_output() as captured:
        bar.start("epoch 2/3", 1000, 10)
        bar.update(3, 300, 0.5)
        bar.stop()
    assert " 30%  300/1,000 images  loss 0.5000" in captured.outputs[-1].data["text/plain"]
