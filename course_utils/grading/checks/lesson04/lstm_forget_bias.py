"""Checks of 04.lstm_forget_bias: Open the forget gate of an nn.LSTM."""
from __future__ import annotations

import torch
from torch import nn

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _agrees, _basic, _not_judged, _num


q = question("04.lstm_forget_bias", "Open the forget gate of an nn.LSTM",
             answers=["lstm_forget_bias"], timeout=5)

GATES = ("input", "forget", "cell", "output")  # PyTorch's row blocks: i, f, g, o


def _lstm(seed: int, **kwargs) -> nn.LSTM:
    """A seeded nn.LSTM at PyTorch's default initialisation."""
    torch.manual_seed(seed)
    return nn.LSTM(**kwargs)


def _suffixes(lstm: nn.LSTM) -> list[str]:
    """'l0', 'l0_reverse', 'l1', ...: one per layer and direction."""
    directions = ("", "_reverse") if lstm.bidirectional else ("",)
    return [f"l{k}{d}" for k in range(lstm.num_layers) for d in directions]


def _snapshot(lstm: nn.LSTM) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in lstm.named_parameters()}


def _where(suffix: str) -> str:
    k = suffix[1:].split("_")[0]
    return f"layer {k}" + (" (reverse direction)" if suffix.endswith("reverse") else "")


def _run(fn, lstm: nn.LSTM, value: float):
    """Call the answer on ``lstm``; returns the parameters before and the objects."""
    before = _snapshot(lstm)
    objects = {name: p for name, p in lstm.named_parameters()}
    args = (lstm,) if value == 1.0 else (lstm, value)
    shown = "lstm_forget_bias(lstm)" if value == 1.0 else f"lstm_forget_bias(lstm, " \
                                                          f"value={value:g})"
    got = call(fn, *args, check_mutation=False, name="lstm_forget_bias")
    if got is not None and got is not lstm:
        raise _basic(f"{shown} returned {_short(got)}; return nothing (the LSTM is "
                     "changed in place) or the same LSTM.", problem="type")
    return before, objects, shown


def _problems(lstm: nn.LSTM, before, value: float) -> list[str]:
    """What differs from the spec, per layer and direction (empty: all right)."""
    H, out = lstm.hidden_size, []
    params = dict(lstm.named_parameters())
    for suffix in _suffixes(lstm):
        b_ih, b_hh = params[f"bias_ih_{suffix}"], params[f"bias_hh_{suffix}"]
        total = (b_ih + b_hh).detach()[H:2 * H]
        if not torch.allclose(total, torch.full_like(total, value), atol=1e-6):
            out.append(f"{_where(suffix)}: b_ih + b_hh on the forget gate's rows "
                       f"[{H}:{2 * H}] is {_short(total)}, expected {_num(value)} "
                       "everywhere")
        for name in (f"bias_ih_{suffix}", f"bias_hh_{suffix}"):
            now, was = params[name].detach(), before[name]
            for k, gate in enumerate(GATES):
                if gate == "forget":
                    continue
                rows = slice(k * H, (k + 1) * H)
                if not torch.equal(now[rows], was[rows]):
                    out.append(f"{_where(suffix)}: {name}[{k * H}:{(k + 1) * H}], the "
                               f"{gate} gate's bias, changed")
        for name in (f"weight_ih_{suffix}", f"weight_hh_{suffix}"):
            if not torch.equal(params[name].detach(), before[name]):
                out.append(f"{_where(suffix)}: {name} changed")
    return out


def _expect(fn, lstm: nn.LSTM, value: float = 1.0) -> None:
    before, _, shown = _run(fn, lstm, value)
    problems = _problems(lstm, before, value)
    if problems:
        raise CheckFailure(f"after {shown} on {_describe(lstm)}:\n- "
                           + "\n- ".join(problems[:6])
                           + (f"\n(and {len(problems) - 6} more)" if len(problems) > 6
                              else ""))


def _describe(lstm: nn.LSTM) -> str:
    extra = "".join([f", num_layers={lstm.num_layers}" if lstm.num_layers > 1 else "",
                     ", bidirectional=True" if lstm.bidirectional else ""])
    return f"nn.LSTM({lstm.input_size}, {lstm.hidden_size}{extra})"


_HINT = ("PyTorch adds two bias vectors, b_ih and b_hh, each of 4H rows in the order "
         "of the gates i, f, g, o: make their SUM on the forget gate's rows equal to "
         "value, in every layer and direction, and leave everything else as it was.")


@q.case("nn.LSTM(5, 8), value 1", kind="core", hint=_HINT)
def _(lstm_forget_bias):
    _expect(lstm_forget_bias, _lstm(0, input_size=5, hidden_size=8))


@q.case("two layers, bidirectional, value 1", kind="core", hint=_HINT)
def _(lstm_forget_bias):
    _expect(lstm_forget_bias, _lstm(1, input_size=4, hidden_size=6, num_layers=2,
                                    bidirectional=True))


@q.case("three layers, batch_first, value 2", kind="core", hint=_HINT)
def _(lstm_forget_bias):
    _expect(lstm_forget_bias, _lstm(2, input_size=3, hidden_size=5, num_layers=3,
                                    batch_first=True), 2.0)


def _forget_totals(lstm):
    H, params = lstm.hidden_size, dict(lstm.named_parameters())
    return {s: (params[f"bias_ih_{s}"] + params[f"bias_hh_{s}"]).detach()
            for s in _suffixes(lstm)}, H


def _detail(fn, control: dict, feature: dict, value: float = 1.0):
    """Right on ``control`` (else not judged); then run on ``feature`` and return what
    the case inspects: (lstm, parameters before, Parameter objects before, problems)."""
    if not _agrees(lambda: _expect(fn, _lstm(10, **control), value)):
        raise _not_judged()
    lstm = _lstm(11, **feature)
    before, objects, _ = _run(fn, lstm, value)
    return lstm, before, objects, _problems(lstm, before, value)


@q.case("the total of the two biases is value (not each of them)",
        hint="The gate's pre-activation adds b_ih and b_hh: setting both to value "
             "gives a total of 2 x value. Set one and zero the other (or split "
             "value between them).")
def _(lstm_forget_bias):
    lstm = _lstm(12, input_size=4, hidden_size=5)
    before, _, shown = _run(lstm_forget_bias, lstm, 1.0)
    totals, H = _forget_totals(lstm)
    total = totals["l0"][H:2 * H]
    if torch.allclose(total, torch.full_like(total, 2.0), atol=1e-6):
        raise CheckFailure(f"after {shown} the forget gate's b_ih + b_hh is 2: both "
                           "biases were set to 1.")
    params = dict(lstm.named_parameters())
    b_hh = params["bias_hh_l0"].detach()[H:2 * H]
    if torch.equal(b_hh, before["bias_hh_l0"][H:2 * H]) and torch.allclose(
            params["bias_ih_l0"].detach()[H:2 * H], torch.ones(H)):
        raise CheckFailure(f"after {shown} b_ih's forget rows are 1, but b_hh's still "
                           "hold their random initial values, so the total is 1 + "
                           "b_hh.")
    if _problems(lstm, before, 1.0):
        raise _not_judged()


@q.case("the forget gate is the second block of H rows",
        hint="nn.LSTM stacks the gates' rows as i, f, g, o (see its documentation): "
             "the forget gate is rows H to 2H, not the first or the third block.")
def _(lstm_forget_bias):
    lstm = _lstm(13, input_size=3, hidden_size=4)
    before, _, shown = _run(lstm_forget_bias, lstm, 1.0)
    totals, H = _forget_totals(lstm)
    for k, gate in enumerate(GATES):
        block = totals["l0"][k * H:(k + 1) * H]
        if gate != "forget" and torch.allclose(block, torch.ones(H), atol=1e-6):
            raise CheckFailure(f"after {shown} the biases of the {gate} gate (rows "
                               f"{k * H} to {(k + 1) * H}) total 1: that block is "
                               "not the forget gate.")
    if _problems(lstm, before, 1.0):
        raise _not_judged()


@q.case("every layer and direction",
        hint="A stacked or bidirectional LSTM has one pair of biases per layer and per "
             "direction (bias_ih_l1, bias_ih_l0_reverse, ...): set them all, for "
             "example by looping over named_parameters().")
def _(lstm_forget_bias):
    lstm, before, _, problems = _detail(
        lstm_forget_bias, dict(input_size=3, hidden_size=4),
        dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True))
    missed = sorted({p.split(":")[0] for p in problems if "forget gate's rows" in p})
    if missed:
        raise CheckFailure("the forget gate's total bias is not 1 in "
                           + ", ".join(missed) + ".")
    if problems:
        raise _not_judged()


@q.case("changes only the forget gate's biases",
        hint="Leave the weights and the other three gates' biases at their "
             "initialisation: write into the forget rows only, not the whole bias "
             "vector.")
def _(lstm_forget_bias):
    lstm = _lstm(14, input_size=4, hidden_size=6)
    before, _, shown = _run(lstm_forget_bias, lstm, 1.0)
    problems = _problems(lstm, before, 1.0)
    changed = [p for p in problems if "changed" in p]
    if changed:
        raise CheckFailure(f"after {shown}:\n- " + "\n- ".join(changed[:4]))
    if problems:
        raise _not_judged()


@q.case("keeps the same Parameter objects", kind="property",
        hint="Write into the existing parameters (under torch.no_grad()); replacing "
             "them with new nn.Parameter objects leaves an optimizer made before "
             "training the old ones.")
def _(lstm_forget_bias):
    lstm = _lstm(15, input_size=3, hidden_size=4)
    _, objects, shown = _run(lstm_forget_bias, lstm, 1.0)
    for name, p in lstm.named_parameters():
        if objects.get(name) is not p:
            raise CheckFailure(f"after {shown}, lstm.{name} is a new Parameter "
                               "object.")
        if not p.requires_grad:
            raise CheckFailure(f"after {shown}, lstm.{name} no longer requires "
                               "gradients.")
