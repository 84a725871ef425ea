"""specs/zoo/ against the networks they describe: torchvision's models, a plain LeNet-5 and a
plain U-Net written below. Parameters, buffers, output shape and MACs (counted here with forward
hooks, independently of archdsl) must agree, and the reference's weights must load into the
compiled spec and give the same outputs."""
import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops import StochasticDepth

from archdsl import analyze, parse
from archdsl.compiler import build, load_state_dict_by_order
from conftest import ROOT

ZOO = ROOT / "specs" / "zoo"

# The reference numbers: torchvision 0.29's models (parameters as sum(p.numel()), MACs of conv
# and linear layers) and the papers' LeNet-5 and U-Net. LeNet-5's and U-Net's MACs are checked by
# the hooks below only.
TABLE = {
    "lenet5": (61_706, None),
    "alexnet": (61_100_840, 714_188_480),
    "vgg11": (132_863_336, 7_609_090_048),
    "vgg16": (138_357_544, 15_470_264_320),
    "vgg16_bn": (138_365_992, 15_470_264_320),
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "regnet_y_400mf": (4_344_144, 401_842_848),
    "shufflenet_v2_x1_0": (2_278_604, 144_907_992),
    "convnext_tiny": (28_589_128, 4_455_531_264),
    "unet": (31_030_658, None),
    "efficientnet_b0": (5_288_548, 385_814_752),
    "efficientnet_v2_s": (21_458_488, 2_849_895_872),
    "mobilenet_v3_large": (5_483_032, 216_589_760),
    "mobilenet_v3_small": (2_542_856, 56_510_400),
}

# U-Net at its 572×572 input costs 150 GMACs a forward pass (1.5 s on this project's 2-core
# build machine, far more on older CPUs; test_compiler already runs it once for the shapes). Its
# weights are compared at 188×188 instead, the smallest valid input: every map is even before
# each pooling (184, 88, 40, 16) and the output is 2×4×4. The parameters do not depend on it.
FORWARD_INPUT = {"unet": "1x188x188"}

# RegNet computes its stage widths with tensors and reads them back (.tolist()), which the meta
# device cannot do; it is built on the CPU and moved there.
BUILT_ON_CPU = {"regnet_y_400mf"}


def lenet5() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
        nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


class UNet(nn.Module):
    """Ronneberger et al. 2015: valid convolutions, 2×2 max pooling, 2×2 up-convolutions halving
    the channels, center-cropped skips concatenated after the upsampled map."""

    def __init__(self, widths=(64, 128, 256, 512)):
        super().__init__()

        def double(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3), nn.ReLU(),
                                 nn.Conv2d(c_out, c_out, 3), nn.ReLU())

        self.down = nn.ModuleList(double(c_in, c) for c_in, c in zip((1, *widths), widths))
        self.bottom = double(widths[-1], 2 * widths[-1])
        self.up = nn.ModuleList(
            nn.ModuleList([nn.ConvTranspose2d(2 * c, c, 2, stride=2), double(2 * c, c)])
            for c in reversed(widths))
        self.out = nn.Conv2d(widths[0], 2, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottom(x)
        for (upconv, block), skip in zip(self.up, reversed(skips)):
            x = upconv(x)
            h, w = x.shape[-2:]
            top, left = (skip.shape[-2] - h) // 2, (skip.shape[-1] - w) // 2
            x = block(torch.cat([x, skip[..., top:top + h, left:left + w]], dim=1))
        return self.out(x)


def reference(name: str) -> nn.Module:
    if name == "lenet5":
        return lenet5()
    if name == "unet":
        return UNet()
    return getattr(torchvision.models, name)(weights=None)


def meta_reference(name: str) -> nn.Module:
    if name in BUILT_ON_CPU:
        return reference(name).to("meta")
    with torch.device("meta"):
        return reference(name)


def spec_analysis(name: str, input=None):
    return analyze(parse((ZOO / f"{name}.spec").read_text(), f"{name}.spec"), input=input)


def hooked_macs(model: nn.Module, x: torch.Tensor) -> tuple[int, tuple[int, ...]]:
    """(MACs of conv and linear layers, output shape) for a batch of one, from the modules'
    attributes and their outputs' shapes; ConvTranspose counts input elements × out/groups ×
    kernel, as archdsl and fvcore do. A Linear counts in × out at every position it is applied
    to (ConvNeXt's run on channels-last maps), which is in × output elements."""
    counts = []

    def hook(module, args, out):
        if isinstance(module, nn.Linear):
            counts.append(module.in_features * out[0].numel())
        elif isinstance(module, nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            counts.append(args[0][0].numel() * module.out_channels // module.groups * kh * kw)
        else:
            kh, kw = module.kernel_size
            counts.append(out[0].numel() * module.in_channels // module.groups * kh * kw)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return sum(counts), tuple(out.shape[1:])


@pytest.mark.parametrize("name", TABLE)
def test_spec_matches_the_reference(name):
    """Counts and shapes only: both models live on the meta device, so nothing is computed."""
    analysis = spec_analysis(name)
    params, macs = TABLE[name]
    assert analysis.totals.params == params
    if macs is not None:
        assert analysis.totals.macs == macs
    theirs = meta_reference(name).eval()
    with torch.device("meta"):
        ours = build(analysis).eval()
        x = torch.empty(1, *analysis.input)
    assert sum(p.numel() for p in theirs.parameters()) == analysis.totals.params
    assert sum(b.numel() for b in theirs.buffers()) == analysis.totals.buffers
    assert hooked_macs(theirs, x) == (analysis.totals.macs, analysis.output)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert [b.shape for b in ours.buffers()] == [b.shape for b in theirs.buffers()]
    assert tuple(ours(x).shape[1:]) == analysis.output


@pytest.mark.parametrize("name", TABLE)
def test_reference_weights_load_and_give_the_same_outputs(name):
    torch.manual_seed(0)
    theirs = reference(name).eval()
    for module in theirs.modules():  # running statistics unlike the defaults, to test them too
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.num_batches_tracked.fill_(7)
    analysis = spec_analysis(name, FORWARD_INPUT.get(name))
    ours = build(analysis).eval()
    load_state_dict_by_order(ours, theirs.state_dict())
    x = torch.randn(1, *analysis.input)
    with torch.no_grad():
        expected, actual = theirs(x), ours(x)
    assert tuple(actual.shape[1:]) == analysis.output
    torch.testing.assert_close(actual, expected)


def stochastic_depths(model: nn.Module, x: torch.Tensor) -> list[tuple[float, str]]:
    """(p, mode) of each StochasticDepth a forward pass calls, in call order: torchvision's
    EfficientNet gives every block one but calls it only where the block adds its input."""
    called = []
    handles = [m.register_forward_hook(lambda m, args, out: called.append((m.p, m.mode)))
               for m in model.modules() if isinstance(m, StochasticDepth)]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return called


@pytest.mark.parametrize("name", TABLE)
def test_stochastic_depth_rates_are_the_references(name):
    """Identity at eval, so the outputs cannot tell: each block's drop rate and mode, in order,
    must be torchvision's to the last bit (they grow with the block's index)."""
    analysis = spec_analysis(name)
    theirs = meta_reference(name).eval()
    with torch.device("meta"):
        ours = build(analysis).eval()
        x = torch.empty(1, *analysis.input)
    assert stochastic_depths(ours, x) == stochastic_depths(theirs, x)


def test_load_by_order_names_the_first_mismatch():
    ours = build(spec_analysis("lenet5"))
    state = lenet5().state_dict()
    state["9.weight"] = torch.zeros(84, 121)
    with pytest.raises(ValueError, match=r"linear1\.weight of shape \(84, 120\).*"
                                         r"9\.weight of shape \(84, 121\)"):
        load_state_dict_by_order(ours, state)
    state = lenet5().state_dict()
    del state["11.bias"]
    with pytest.raises(ValueError, match=r"linear2\.bias of shape \(10,\), the state_dict "
                                         r"nothing \(10 parameters and buffers against 9\)"):
        load_state_dict_by_order(ours, state)
