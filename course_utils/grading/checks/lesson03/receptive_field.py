"""Checks of 03.receptive_field: Where a unit of a deep layer looks."""
from __future__ import annotations

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import _not_judged


q = question("03.receptive_field", "Where a unit of a deep layer looks",
             answers=["receptive_field"], timeout=5)


def reference_receptive_field(layers):
    """(size, jump, start) of output unit 0, layers (kernel, stride, padding, dilation).

    Unit u of layer l reads the units u*s - p, ..., u*s - p + d(k-1) of layer l-1; in
    input pixels, neighbouring units of layer l-1 are J_{l-1} apart, so the field grows
    by d(k-1) J_{l-1} and its start moves left by p J_{l-1}.
    """
    size, jump, start = 1, 1, 0
    for k, s, p, d in layers:
        size += d * (k - 1) * jump
        start -= p * jump
        jump *= s
    return size, jump, start


def _what(layers) -> str:
    return f"receptive_field({list(map(tuple, layers))})"


def _parse(got, what: str):
    """The answer as three ints (a basic failure for anything else)."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise CheckFailure(f"{what} returned {_short(got)}; expected a tuple of three "
                           "ints (size, jump, start).", basic=True)
    values = [as_number(v, what) for v in got]
    if any(float(v) != int(v) for v in values):
        raise CheckFailure(f"{what} returned {_short(got)}: sizes, jumps and "
                           "positions are whole numbers of pixels.", basic=True)
    return tuple(int(v) for v in values)


def _field(fn, layers):
    what = _what(layers)
    return what, _parse(call(fn, [tuple(layer) for layer in layers]), what)


def _expect(fn, layers, parts=(0, 1, 2)) -> None:
    what, got = _field(fn, layers)
    expected = reference_receptive_field(layers)
    names = ("size", "jump", "start")
    wrong = [i for i in parts if got[i] != expected[i]]
    if wrong:
        told = ", ".join(f"{names[i]} {got[i]} (expected {expected[i]})" for i in wrong)
        raise CheckFailure(f"{what} returned {got}: {told}.")


def _detail(fn, control, feature, parts=(0, 1, 2)) -> None:
    """A mistake case: right on ``control`` (else not judged), then on ``feature``."""
    if _field(fn, control)[1] != reference_receptive_field(control):
        raise _not_judged()
    _expect(fn, feature, parts)


# (kernel, stride, padding, dilation), first layer first
LENET = [(5, 1, 0, 1), (2, 2, 0, 1), (5, 1, 0, 1), (2, 2, 0, 1), (5, 1, 0, 1)]
SMALL_CNN = [(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1),
             (2, 2, 0, 1)]
RESNET_STEM = [(7, 2, 3, 1), (3, 2, 1, 1), (3, 1, 1, 1), (3, 1, 1, 1)]
DILATED = [(3, 1, 1, 1), (3, 1, 2, 2), (3, 1, 4, 4), (3, 1, 8, 8)]


@q.case("LeNet-5 up to C5 (no padding)", kind="core",
        hint="Each layer widens the field by (k - 1) times the distance, in input "
             "pixels, between neighbouring units of the layer BEFORE it.")
def _(receptive_field):
    _expect(receptive_field, LENET)


@q.case("the SmallCNN's features (padding and pooling)", kind="core",
        hint="Padding does not change the size of the field, it moves where it "
             "starts: unit 0 of a padded layer starts p units of its input to the "
             "left.")
def _(receptive_field):
    _expect(receptive_field, SMALL_CNN)


@q.case("ResNet's stem and dilated stacks", kind="core",
        hint="A dilated kernel's k taps are d units apart, and a padding of p moves "
             "the start by p units of the layer's input: turn both into input pixels "
             "with the jump of the layers before.")
def _(receptive_field):
    _expect(receptive_field, RESNET_STEM)
    _expect(receptive_field, DILATED)


@q.case("strides multiply the jump",
        hint="Neighbouring units of a layer are (product of the strides so far) input "
             "pixels apart: multiply the jump by each stride (a field that ignores the "
             "strides is too small after every pooling).")
def _(receptive_field):
    _detail(receptive_field, [(3, 1, 0, 1), (3, 1, 0, 1)],
            [(3, 2, 0, 1), (3, 2, 0, 1), (3, 3, 0, 1), (3, 1, 0, 1)], parts=(1,))


@q.case("a layer's stride acts on the layers after it",
        hint="A layer's own stride does not widen its own field: grow the size with "
             "the jump of the layers before it, then multiply the jump by its stride.")
def _(receptive_field):
    _detail(receptive_field, [(3, 1, 0, 1), (3, 1, 0, 1)],
            [(3, 1, 0, 1), (3, 1, 0, 1), (3, 2, 0, 1)], parts=(0,))


@q.case("dilation spreads the taps",
        hint="With dilation d the k taps are d units apart: the field grows by d(k-1) "
             "units of the layer's input, not k-1 and not dk.")
def _(receptive_field):
    _detail(receptive_field, [(3, 1, 0, 1), (2, 2, 0, 1), (3, 1, 0, 1)],
            [(3, 1, 0, 2), (2, 2, 0, 1), (3, 1, 0, 3)], parts=(0,))


@q.case("padding moves the start, in input pixels",
        hint="Unit 0 of a layer with padding p starts p units of ITS input to the "
             "left, that is p times the jump so far in input pixels (and to the left "
             "means a negative start).")
def _(receptive_field):
    _detail(receptive_field, [(3, 2, 0, 1), (3, 1, 0, 1)],
            [(3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1)], parts=(2,))


@q.case("one layer, and no layer at all", kind="property",
        hint="With no layer a unit is one input pixel: (1, 1, 0). One layer (k, s, p,"
             " d) sees d(k-1)+1 pixels, starting at -p.")
def _(receptive_field):
    _expect(receptive_field, [])
    _expect(receptive_field, [(5, 3, 2, 2)])
