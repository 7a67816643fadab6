"""Checks of 04.lstm_cell: One LSTM step from scratch."""
from __future__ import annotations

import itertools

import torch
from torch import nn

from ...asserts import CheckFailure, _short, expect_close
from ...registry import question
from ._common import (_basic, _copies, _gen, _matches, _not_judged, _parts,
                      call_from_scratch)


q = question("04.lstm_cell", "One LSTM step from scratch", answers=["lstm_cell"],
             timeout=10)

# nn.LSTMCell and nn.LSTM reach these torch functions; the question asks for the
# gates themselves.
LIBRARY = {"lstm_cell": "nn.LSTMCell (torch.lstm_cell)", "lstm": "nn.LSTM"}
ORDER = "ifgo"  # PyTorch's blocks of H rows: input, forget, cell candidate, output


def _inputs(seed: int, B: int, D: int, H: int, state_scale: float = 1.0):
    """Seeded x (B, D), h (B, H), c (B, H) and the weights of an nn.LSTMCell (its
    default initialisation, biases made larger so that every bias matters)."""
    torch.manual_seed(seed)
    cell = nn.LSTMCell(D, H)
    with torch.no_grad():
        cell.bias_ih.mul_(4.0)
        cell.bias_hh.mul_(4.0)
    g = _gen(seed + 1)
    x = torch.randn(B, D, generator=g)  # (B, D)
    h = torch.randn(B, H, generator=g) * state_scale  # (B, H)
    c = torch.randn(B, H, generator=g) * 2 * state_scale  # (B, H)
    weights = tuple(p.detach().clone() for p in (cell.weight_ih, cell.weight_hh,
                                                  cell.bias_ih, cell.bias_hh))
    return cell, x, h, c, weights


def reference_lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """(h', c') of nn.LSTMCell with these weights: the oracle."""
    H = h.shape[1]
    cell = nn.LSTMCell(x.shape[1], H)
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),
                        (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        h_new, c_new = cell(x, (h, c))
    return h_new, c_new


def mistaken_lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh, order=ORDER, g_act="tanh",
                       old_c=False, no_tanh=False, no_b_hh=False):
    """One LSTM step written with a typical mistake (the keywords switch them on)."""
    z = x @ W_ih.T + h @ W_hh.T + b_ih + (0 if no_b_hh else b_hh)  # (B, 4H)
    blocks = dict(zip(order, z.chunk(4, dim=1)))  # each (B, H)
    i, f, o = (torch.sigmoid(blocks[k]) for k in "ifo")
    g = torch.tanh(blocks["g"]) if g_act == "tanh" else torch.sigmoid(blocks["g"])
    c_new = f * c + i * g  # (B, H)
    h_new = o * (c_new if no_tanh else torch.tanh(c if old_c else c_new))  # (B, H)
    return h_new, c_new


def _what(x, h) -> str:
    return (f"lstm_cell(x {tuple(x.shape)}, h {tuple(h.shape)}, c {tuple(h.shape)}, "
            "W_ih, W_hh, b_ih, b_hh)")


def _answer(fn, x, h, c, weights):
    got = call_from_scratch(fn, *_copies(x, h, c, *weights), forbid=LIBRARY,
                            name="lstm_cell")
    return _parts(got, ("h_new", "c_new"), "lstm_cell")


def _expect(fn, seed, B, D, H, state_scale=1.0):
    _, x, h, c, weights = _inputs(seed, B, D, H, state_scale)
    h_new, c_new = _answer(fn, x, h, c, weights)
    ref_h, ref_c = reference_lstm_cell(x, h, c, *weights)
    what = _what(x, h)
    expect_close(c_new, ref_c, rtol=1e-5, atol=1e-6, what=f"c_new of {what}")
    expect_close(h_new, ref_h, rtol=1e-5, atol=1e-6, what=f"h_new of {what}")


_HINT = ("One matrix product per input gives all four gates' pre-activations, (B, 4H),"
         " in PyTorch's row order i, f, g, o; sigmoids for the gates, tanh for the "
         "candidate; the new cell state mixes the old one and the candidate, and the "
         "output gate reads the NEW cell state through a tanh.")


@q.case("B = 3, D = 4, H = 5, against nn.LSTMCell", kind="core", hint=_HINT)
def _(lstm_cell):
    _expect(lstm_cell, 0, 3, 4, 5)


@q.case("one example, B = 1, D = 7, H = 3", kind="core", hint=_HINT)
def _(lstm_cell):
    _expect(lstm_cell, 1, 1, 7, 3)


@q.case("8 steps fed back, against nn.LSTM over the sequence", kind="core",
        hint="Feed each step's (h, c) into the next: after 8 steps your h and c must "
             "be nn.LSTM's last hidden and cell states.")
def _(lstm_cell):
    torch.manual_seed(2)
    lstm = nn.LSTM(5, 6, batch_first=True)
    with torch.no_grad():
        lstm.bias_ih_l0.mul_(4.0)
    X = torch.randn(4, 8, 5, generator=_gen(3))  # (B, T, D)
    weights = tuple(p.detach().clone() for p in (lstm.weight_ih_l0, lstm.weight_hh_l0,
                                                  lstm.bias_ih_l0, lstm.bias_hh_l0))
    with torch.no_grad():
        _, (h_T, c_T) = lstm(X)  # each (1, B, H)
    h, c = torch.zeros(4, 6), torch.zeros(4, 6)
    for t in range(8):
        h, c = _answer(lstm_cell, X[:, t], h, c, weights)
        if not isinstance(h, torch.Tensor) or not isinstance(c, torch.Tensor):
            raise _basic(f"lstm_cell returned {_short(h)} and {_short(c)}; expected "
                         "two tensors (B, H).", problem="type")
    for name, got, expected in (("c", c, c_T[0]), ("h", h, h_T[0])):
        expect_close(got, expected, rtol=1e-4, atol=1e-5,
                     what=f"{name} after 8 steps (B=4, D=5, H=6)")


def _mistake(fn, seed, message, variants, B=3, D=4, H=5):
    """Right, or one of ``variants`` ({description: keywords of mistaken_lstm_cell}),
    named in the message (hint shown), or a plain mismatch (no hint)."""
    _, x, h, c, weights = _inputs(seed, B, D, H)
    h_new, c_new = _answer(fn, x, h, c, weights)
    ref_h, ref_c = reference_lstm_cell(x, h, c, *weights)
    if _matches(h_new, ref_h) and _matches(c_new, ref_c):
        return
    for told, keywords in variants.items():
        wrong_h, wrong_c = mistaken_lstm_cell(x, h, c, *weights, **keywords)
        if _matches(h_new, wrong_h) and _matches(c_new, wrong_c):
            raise CheckFailure(f"{_what(x, h)}: {message.format(told)}")
    what = _what(x, h)
    for got, ref, name in ((c_new, ref_c, "c_new"), (h_new, ref_h, "h_new")):
        if not _matches(got, ref):
            try:
                expect_close(got, ref, rtol=1e-5, atol=1e-6, what=f"{name} of {what}")
            except CheckFailure as failure:
                raise CheckFailure(str(failure), basic=True, call=failure.call,
                                   problem=failure.problem) from None


@q.case("the gates in PyTorch's order i, f, g, o",
        hint="nn.LSTMCell's weight_ih stacks the rows of the input gate, the forget "
             "gate, the cell candidate and the output gate, in that order (its "
             "documentation: W_ii|W_if|W_ig|W_io); other libraries use other orders.")
def _(lstm_cell):
    orders = {", ".join(p): dict(order="".join(p))
              for p in itertools.permutations(ORDER) if "".join(p) != ORDER}
    _mistake(lstm_cell, 4, "the blocks of rows were read as the gates in the order "
             "{} (PyTorch's is i, f, g, o).", orders)


@q.case("the cell candidate g goes through tanh",
        hint="i, f and o are gates in (0, 1), hence sigmoids; the candidate g is a "
             "value to write, in (-1, 1): a tanh.")
def _(lstm_cell):
    _mistake(lstm_cell, 5, "{}.", {"the candidate g went through a sigmoid, like the "
                                   "gates": dict(g_act="sigmoid")})


@q.case("h reads the NEW cell state through a tanh",
        hint="First update the cell state, c' = f * c + i * g; then the output is the "
             "output gate times the tanh of that new c'.")
def _(lstm_cell):
    _mistake(lstm_cell, 6, "{}.", {
        "h_new uses tanh of the OLD cell state c": dict(old_c=True),
        "h_new uses the new cell state without its tanh": dict(no_tanh=True)})


@q.case("both biases are added",
        hint="PyTorch keeps two bias vectors, b_ih and b_hh; the gates' "
             "pre-activations add both.")
def _(lstm_cell):
    _mistake(lstm_cell, 7, "{}.", {"b_hh was left out": dict(no_b_hh=True)})


@q.case("returns (h_new, c_new) in that order",
        hint="Return the new hidden state first, then the new cell state, as "
             "nn.LSTMCell does.")
def _(lstm_cell):
    _, x, h, c, weights = _inputs(8, 3, 4, 5)
    first, second = _answer(lstm_cell, x, h, c, weights)
    ref_h, ref_c = reference_lstm_cell(x, h, c, *weights)
    if _matches(first, ref_c) and _matches(second, ref_h):
        raise CheckFailure(f"{_what(x, h)} returned (c_new, h_new), swapped.")
    if not (_matches(first, ref_h) and _matches(second, ref_c)):
        raise _not_judged()


@q.case("float32 tensors of shape (B, H) that autograd can train", kind="property",
        hint="Compute with torch operations on the given tensors (no NumPy, no "
             ".detach()), so that a loss on h_new back-propagates to the weights.")
def _(lstm_cell):
    _, x, h, c, weights = _inputs(9, 2, 3, 4)
    weights = tuple(w.clone().requires_grad_() for w in weights)
    got = call_from_scratch(lstm_cell, x, h, c, *weights, forbid=LIBRARY,
                            name="lstm_cell", check_mutation=True)
    h_new, c_new = _parts(got, ("h_new", "c_new"), "lstm_cell")
    for name, t in (("h_new", h_new), ("c_new", c_new)):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (2, 4):
            raise CheckFailure(f"{name} is {_short(t)}; expected a (2, 4) tensor for "
                               "B = 2, H = 4.", basic=True, problem="shape")
        if t.dtype != torch.float32:
            raise CheckFailure(f"{name} is a {t.dtype} tensor; expected float32.")
    if not h_new.requires_grad:
        raise CheckFailure("h_new does not require grad although the weights do: the "
                           "computation left autograd's graph (NumPy, .detach() or "
                           ".data).")
    h_new.sum().backward()
    if any(w.grad is None for w in weights):
        raise CheckFailure("a loss on h_new gives no gradient to some of W_ih, W_hh, "
                           "b_ih, b_hh.")
