"""load_target: the three forms of an import target, and what each says when it fails."""
from __future__ import annotations

import textwrap

import pytest
import torchvision
from torch import nn

from archdsl.errors import TargetError
from archdsl.importer.targets import load_target

MODEL_FILE = textwrap.dedent("""\
    import dataclasses

    from torch import nn

    from helpers import WIDTH


    class SimpleCNN(nn.Module):
        def __init__(self, classes=10):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, WIDTH, 3, padding=1), nn.ReLU())
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(WIDTH * 28 * 28, classes))

        def forward(self, x):
            return self.head(self.features(x))


    def small(classes=10):
        return SimpleCNN(classes)


    def not_a_module():
        return 42


    @dataclasses.dataclass
    class Settings:  # a dataclass needs its module in sys.modules
        width: int = 4


    model = SimpleCNN()
    """)


@pytest.fixture
def model_file(tmp_path):
    (tmp_path / "helpers.py").write_text("WIDTH = 4\n")  # imported by its neighbour
    path = tmp_path / "model.py"
    path.write_text(MODEL_FILE)
    return path


def test_torchvision_models_are_built_without_weights():
    module, origin = load_target("torchvision:squeezenet1_1", {"num_classes": 10})
    assert isinstance(module, torchvision.models.SqueezeNet)
    assert module.classifier[1].out_channels == 10
    assert origin == "torchvision.models.squeezenet1_1(num_classes=10)"
    assert load_target("torchvision:alexnet")[1] == "torchvision.models.alexnet()"


def test_a_class_in_a_file_is_called_with_the_arguments(model_file):
    module, origin = load_target(f"{model_file}:SimpleCNN", {"classes": 3})
    assert type(module).__name__ == "SimpleCNN"
    assert module.head[1].out_features == 3 and module.features[0].out_channels == 4
    assert origin == f"{model_file}:SimpleCNN(classes=3)"


def test_a_factory_function_and_a_module_object_in_a_file(model_file):
    module, origin = load_target(f"{model_file}:small", {})
    assert isinstance(module, nn.Module) and origin == f"{model_file}:small()"
    module, origin = load_target(f"{model_file}:model")
    assert type(module).__name__ == "SimpleCNN" and origin == f"{model_file}:model"


def test_a_package_module_target():
    module, origin = load_target("torchvision.models:resnet18", {"num_classes": 7})
    assert module.fc.out_features == 7
    assert origin == "torchvision.models.resnet18(num_classes=7)"
    module, _ = load_target("torch.nn:Conv2d", {"in_channels": 1, "out_channels": 2,
                                                "kernel_size": 3})
    assert isinstance(module, nn.Conv2d)


@pytest.mark.parametrize("target, arguments, message", [
    ("resnet50", {}, "cannot read the target 'resnet50': write torchvision:NAME, "
                     "path/to/file.py:NAME or package.module:NAME"),
    ("torchvision:resnet51", {}, "torchvision has no model 'resnet51'"),
    ("torchvision:resnet18", {"weights": "DEFAULT"}, "imported with weights=None"),
    ("torchvision:resnet18", {"colour": 1}, "torchvision.models.resnet18(colour=1) fails: "),
    ("no_such_package.models:Net", {}, "there is no module 'no_such_package.models' to import"),
    ("torchvision.models:NoSuchNet", {}, "torchvision.models has no 'NoSuchNet'"),
])
def test_bad_targets_say_what_is_wrong(target, arguments, message):
    with pytest.raises(TargetError) as caught:
        load_target(target, arguments)
    assert message in caught.value.message
    assert caught.value.exit_code == 2


def test_close_names_are_suggested():
    with pytest.raises(TargetError) as caught:
        load_target("torchvision:resnet51")
    assert "resnet50" in caught.value.hint


def test_bad_file_targets_say_what_is_wrong(model_file, tmp_path):
    cases = [
        (f"{tmp_path}/missing.py:Net", {}, f"{tmp_path}/missing.py does not exist"),
        (f"{model_file}:SimpleCnn", {}, f"{model_file} has no 'SimpleCnn' (did you mean "
                                        f"'SimpleCNN'?)"),
        (f"{model_file}:SimpleCNN", {"width": 2},
         f"{model_file}:SimpleCNN(width=2) cannot be called: got an unexpected keyword "
         f"argument 'width'"),
        (f"{model_file}:not_a_module", {},
         f"{model_file}:not_a_module() returns int 42, not an nn.Module"),
        (f"{model_file}:model", {"classes": 2}, "is a module already; it takes no arguments"),
    ]
    for target, arguments, message in cases:
        with pytest.raises(TargetError) as caught:
            load_target(target, arguments)
        assert message in caught.value.message, target
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise ValueError('no model today')\n")
    with pytest.raises(TargetError) as caught:
        load_target(f"{broken}:Net")
    assert caught.value.message == f"importing {broken} fails: ValueError: no model today"


def test_a_module_of_the_current_folder_and_a_factory_that_fails(tmp_path, monkeypatch):
    (tmp_path / "zoo_of_mine.py").write_text(textwrap.dedent("""\
        from torch import nn


        def tiny():
            return nn.Sequential(nn.Conv2d(1, 2, 3))


        def broken():
            raise ValueError("no such width")
        """))
    monkeypatch.chdir(tmp_path)
    module, origin = load_target("zoo_of_mine:tiny")
    assert isinstance(module[0], nn.Conv2d) and origin == "zoo_of_mine.tiny()"
    with pytest.raises(TargetError) as caught:
        load_target("zoo_of_mine:broken")
    assert caught.value.message == "zoo_of_mine.broken() fails: ValueError: no such width"
