"""The baseline of benchmark 1: build a model with PyTorch and summarize it with torchinfo.

    python bench/torchinfo_summary.py MODEL

MODEL is `simple_cnn` (the tutorial's nn.Sequential from tutorial_loop.py), `lenet5` and `unet`
(plain PyTorch, as tests/test_zoo.py writes them), or a torchvision model name (resnet50,
vgg16, …) built with weights=None. Calls torchinfo.summary on one example of the spec's input
shape and prints one JSON line: {"model", "params", "macs"}. The whole process is what is timed,
imports included, as for `archdsl check`.
"""
import json
import sys
from pathlib import Path

import torch
import torchinfo
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Input shape of each spec in specs/ and specs/zoo/ (the `input` line).
SHAPES = {"simple_cnn": (1, 28, 28), "lenet5": (1, 32, 32), "unet": (1, 572, 572)}


def lenet5() -> nn.Module:
    """LeNet-5 as in 1998: tanh, average pooling, 1×32×32 (specs/zoo/lenet5.spec)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
        nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


class UNet(nn.Module):
    """The original U-Net: valid 3×3 convolutions, 2×2 up-convolutions, cropped skips."""

    def __init__(self, channels=1, classes=2):
        super().__init__()
        widths = [64, 128, 256, 512, 1024]

        def double(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3), nn.ReLU(), nn.Conv2d(cout, cout, 3),
                                 nn.ReLU())

        self.down = nn.ModuleList()
        cin = channels
        for w in widths:
            self.down.append(double(cin, w))
            cin = w
        self.ups = nn.ModuleList(nn.ConvTranspose2d(w * 2, w, 2, stride=2)
                                 for w in reversed(widths[:-1]))
        self.up = nn.ModuleList(double(w * 2, w) for w in reversed(widths[:-1]))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, block, skip in zip(self.ups, self.up, reversed(skips)):
            x = up(x)
            dh, dw = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
            skip = skip[:, :, dh:dh + x.shape[2], dw:dw + x.shape[3]]
            x = block(torch.cat([skip, x], 1))
        return self.head(x)


def build(name: str) -> tuple[nn.Module, tuple]:
    if name == "simple_cnn":
        from tutorial_loop import tutorial_cnn
        return tutorial_cnn(), SHAPES[name]
    if name == "lenet5":
        return lenet5(), SHAPES[name]
    if name == "unet":
        return UNet(), SHAPES[name]
    import torchvision
    return getattr(torchvision.models, name)(weights=None), (3, 224, 224)


def main():
    name = sys.argv[1]
    model, shape = build(name)
    stats = torchinfo.summary(model, input_size=(1, *shape), verbose=0)
    print(json.dumps({"model": name, "params": stats.total_params,
                      "macs": stats.total_mult_adds}))


if __name__ == "__main__":
    main()
