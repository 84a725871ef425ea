"""Shape arithmetic shared by the layers' shape rules, formulas and descriptions."""
from __future__ import annotations

import dataclasses
import math

from ..errors import ShapeError

Shape = tuple[int, ...]


def per_axis(value, axes: int, what: str) -> tuple[int, ...]:
    """An int or a tuple -> one value per spatial axis."""
    if isinstance(value, tuple):
        if len(value) != axes:
            raise ShapeError(f"{what} {value} has {len(value)} sizes but the input has "
                             f"{axes} spatial ax{'is' if axes == 1 else 'es'}")
        return value
    return (value,) * axes


@dataclasses.dataclass(frozen=True)
class Window:
    """One spatial axis of a sliding window (convolution, pooling), exactly as PyTorch computes
    its output length: ⌊(W + 2P − D(F−1) − 1)/S⌋ + 1, or ⌈…⌉ with ceil_mode, where a last
    window that would start in the right padding is dropped."""

    size: int
    kernel: int
    stride: int
    padding: int
    dilation: int = 1
    ceil_mode: bool = False

    @property
    def extent(self) -> int:
        """The numerator: W + 2P − D(F−1) − 1."""
        return self.size + 2 * self.padding - self.dilation * (self.kernel - 1) - 1

    @property
    def windows(self) -> int:
        """⌊extent/S⌋ + 1, or ⌈extent/S⌉ + 1 with ceil_mode (before PyTorch's drop rule)."""
        if self.ceil_mode:
            return -(-self.extent // self.stride) + 1
        return self.extent // self.stride + 1

    @property
    def drops_last(self) -> bool:
        """PyTorch, with ceil_mode: the last window must start inside the input or its left
        padding, else it is dropped."""
        return self.ceil_mode and (self.windows - 1) * self.stride >= self.size + self.padding

    @property
    def output(self) -> int:
        return self.windows - self.drops_last

    def formula(self, axis: str) -> str:
        """`H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28`: this axis' arithmetic with its numbers."""
        if self.dilation == 1:  # D(F−1) + 1 = F
            numerator = f"{self.size} + 2·{self.padding} − {self.kernel}"
        else:
            numerator = (f"{self.size} + 2·{self.padding} − {self.dilation}·({self.kernel}−1)"
                         f" − 1")
        left, right = ("⌈", "⌉") if self.ceil_mode else ("⌊", "⌋")
        text = f"{axis}_out = {left}({numerator})/{self.stride}{right} + 1"
        if self.drops_last:
            return (f"{text} − 1 = {self.output} (PyTorch drops the last window: it would start "
                    f"in the right padding)")
        return f"{text} = {self.output}"


def window_output(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                  ceil_mode: bool = False) -> int:
    """Output length of a sliding window, exactly as PyTorch computes it for conv and pooling."""
    return Window(size, kernel, stride, padding, dilation, ceil_mode).output


def axis_names(count: int) -> tuple[str, ...]:
    """The spatial axes' letters in formulas: L; H, W; D, H, W."""
    return {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(
        count, tuple(f"X{i + 1}" for i in range(count)))


def product(values) -> str:
    """(16, 3, 3) -> `16·3·3`; a scalar's empty shape -> `1`."""
    return "·".join(str(v) for v in values) or "1"


def count_formula(shapes: dict[str, Shape]) -> str:
    """Element counts of named tensors as a sum of products, equal shapes grouped:
    BatchNorm's weight and bias -> `2 × 16 = 32`; nothing -> `0`."""
    if not shapes:
        return "0"
    groups: dict[Shape, int] = {}
    for shape in shapes.values():
        groups[shape] = groups.get(shape, 0) + 1
    terms = [(f"{n} × " if n > 1 else "") + product(shape) for shape, n in groups.items()]
    total = sum(math.prod(shape) for shape in shapes.values())
    text = " + ".join(terms)
    return text if text == str(total) else f"{text} = {total:,}"


def format_shape(shape: Shape) -> str:
    return "×".join(str(n) for n in shape)


def format_output(sizes: tuple[int, ...]) -> str:
    """An impossible output size as the user should read it: negative sizes show as 0."""
    return format_shape(max(0, n) for n in sizes)


def format_size(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"


def numel(shape: Shape) -> int:
    return math.prod(shape)


def spatial_input(layer, shape: Shape) -> tuple[int, tuple[int, ...]]:
    """(channels, spatial sizes) of an input that must have 1 to 3 spatial axes."""
    if not 2 <= len(shape) <= 4:
        kind = "a flat" if len(shape) == 1 else f"a {len(shape)}-axis"
        raise ShapeError(f"{layer.dsl_name} needs a channels×height×width input, got {kind} "
                         f"input {format_shape(shape)}",
                         hint="Flatten, Linear and GlobalAvgPool leave a flat shape; a spatial "
                              "input is written CxHxW, e.g. 1x28x28" if len(shape) == 1 else
                         "at most 3 spatial axes are supported: C×D×H×W")
    return shape[0], shape[1:]


def groups_of(layer, channels: int, groups: int) -> int:
    """The channels per group, or a ShapeError naming the group counts that divide them."""
    if channels % groups:
        fits = [g for g in range(1, channels + 1) if channels % g == 0]
        below = max(g for g in fits if g < groups)
        above = [g for g in fits if g > groups]
        raise ShapeError(f"{layer.dsl_name}: {channels} channels are not divisible by {groups} "
                         f"groups", hint=f"{channels} channels split evenly into {below}"
                                         + (f" or {above[0]}" if above else "") + " groups")
    return channels // groups
