"""Checks of 04.lstm_tbptt_step: A truncated-BPTT training step for an LSTM."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ...asserts import CheckFailure, _short, as_number, call, expect_close
from ...registry import question
from ._common import _gen, _not_judged


q = question("04.lstm_tbptt_step", "A truncated-BPTT training step for an LSTM",
             answers=["lstm_tbptt_step"], timeout=15)

# The first optimizer a process builds imports torch._dynamo (and sympy): half a second
# here, more than a case's time limit on a busy machine, and an import interrupted by
# the limit leaves half-imported modules behind. Build one now, outside any limit.
torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)


class CharLSTM(nn.Module):
    """Embedding, one LSTM layer, a linear head: ``model(x, state)`` returns the logits
    (B, T, V) and the LSTM's final state (h, c), each (1, B, H). The exercise notebook
    defines the same class."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)  # (B, T, H); h, c: (1, B, H)
        return self.head(out), state  # (B, T, V)


OPTIMIZERS = {
    "SGD(lr=0.5)": lambda ps: torch.optim.SGD(ps, lr=0.5),
    "Adam(lr=0.01)": lambda ps: torch.optim.Adam(ps, lr=0.01),
    "SGD(lr=0.3, momentum=0.9)": lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=0.9),
}


def _setup(seed: int, V: int = 11, E: int = 6, H: int = 8, B: int = 3, T: int = 6,
           K: int = 3):
    """A seeded model and K consecutive windows (x, y) of B streams, y = x shifted by
    one position along each stream."""
    torch.manual_seed(seed)
    model = CharLSTM(V, E, H)
    stream = torch.randint(0, V, (B, K * T + 1), generator=_gen(seed + 1))  # (B, K*T+1)
    windows = [(stream[:, k * T:(k + 1) * T], stream[:, k * T + 1:(k + 1) * T + 1])
               for k in range(K)]  # each ((B, T), (B, T))
    return model, windows


def reference_step(model, x, y, state, optimizer, max_norm, reset=False, clip=True,
                   zero_grad=True, loss_sum=False):
    """One truncated-BPTT step; the keywords switch on the typical mistakes."""
    model.train()
    if reset:
        state = None
    elif state is not None:
        state = tuple(s.detach() for s in state)  # cut the graph of the last window
    if zero_grad:
        optimizer.zero_grad()
    logits, state = model(x, state)  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                           reduction="sum" if loss_sum else "mean")
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), tuple(s.detach() for s in state)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


GRAPH = ("the state (h, c) you carry from window {k} into window {n} is still attached "
         "to window {k}'s graph, which backward() already freed (or whose parameters "
         "the optimizer has since changed): detach both h and c between windows, "
         "that is what makes the backpropagation through time truncated.")


def _learner_step(fn, model, x, y, state, optimizer, max_norm, k: int, basic=True):
    """One call of the answer on window ``k`` (from 1), its typical crashes told in the
    learner's terms."""
    try:
        got = call(fn, model, x, y, state, optimizer, max_norm, check_mutation=False,
                   name="lstm_tbptt_step")
    except RuntimeError as exc:
        text = str(exc)
        if k > 1 and ("backward through the graph a second time" in text
                      or "modified by an inplace operation" in text):
            raise CheckFailure(f"On window {k}, loss.backward() raised RuntimeError: "
                               + GRAPH.format(k=k - 1, n=k), basic=basic,
                               problem="graph") from None
        raise
    except AttributeError as exc:
        if "'tuple' object has no attribute 'detach'" in str(exc):
            raise CheckFailure("the LSTM's state is a TUPLE (h, c): detach each of the "
                               "two tensors, not the tuple.", basic=True,
                               problem="tuple") from None
        raise
    except TypeError as exc:
        if k == 1 and "NoneType" in str(exc):
            raise CheckFailure(f"On window 1 it raised TypeError: {exc}. The first "
                               "window has no state yet: state is None there (nn.LSTM "
                               "then starts from zeros).", basic=True,
                               problem="none state") from None
        raise
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(f"lstm_tbptt_step returned {_short(got)}; expected the "
                           "tuple (loss, state).", basic=True, problem="type")
    loss, new_state = got
    loss = as_number(loss, f"the loss returned for window {k}")
    if not (isinstance(new_state, (tuple, list)) and len(new_state) == 2
            and all(isinstance(s, torch.Tensor) for s in new_state)):
        raise CheckFailure(f"the state returned for window {k} is {_short(new_state)}; "
                           "expected the LSTM's new state, the tuple (h, c) of two "
                           "tensors.", basic=True, problem="state")
    return loss, tuple(new_state)


def _pair(optimizer_name: str, seed: int, **sizes):
    """(learner's model and optimizer, reference model and optimizer, windows)."""
    model, windows = _setup(seed, **sizes)
    ref = copy.deepcopy(model)
    make = OPTIMIZERS[optimizer_name]
    return (model, make(model.parameters())), (ref, make(ref.parameters())), windows


def _trajectory(step, model, optimizer, windows, max_norm):
    """(losses, parameters after each window, final state) of ``step`` over windows."""
    state, losses, params = None, [], []
    for k, (x, y) in enumerate(windows, start=1):
        loss, state = step(model, x, y, state, optimizer, max_norm, k)
        losses.append(loss)
        params.append(_params(model))
    return losses, params, state


def _reference(model, optimizer, windows, max_norm, **mistake):
    return _trajectory(lambda m, x, y, s, o, c, k: reference_step(m, x, y, s, o, c,
                                                                  **mistake),
                       model, optimizer, windows, max_norm)


def _learner(fn, model, optimizer, windows, max_norm, basic=True):
    return _trajectory(lambda m, x, y, s, o, c, k: _learner_step(fn, m, x, y, s, o, c,
                                                                 k, basic),
                       model, optimizer, windows, max_norm)


def _same(a, b) -> bool:
    """Do two trajectories agree (losses and parameters)?"""
    return all(abs(x - y) <= 1e-5 * max(1.0, abs(y)) for x, y in zip(a[0], b[0])) and \
        all(torch.allclose(p, r, rtol=1e-4, atol=1e-6) for p, r in zip(a[1], b[1]))


def _expect(fn, optimizer_name, seed, max_norm, **sizes):
    (model, opt), (ref, ref_opt), windows = _pair(optimizer_name, seed, **sizes)
    losses, params, state = _learner(fn, model, opt, windows, max_norm)
    ref_losses, ref_params, ref_state = _reference(ref, ref_opt, windows, max_norm)
    for k in range(len(windows)):
        what = f"window {k + 1} of {len(windows)} with {optimizer_name}, max_norm " \
               f"{max_norm:g}"
        expect_close(losses[k], ref_losses[k], rtol=1e-5, atol=1e-6,
                     what=f"the loss returned for {what}")
        expect_close(params[k], ref_params[k], rtol=1e-4, atol=1e-6,
                     what=f"the parameters after {what}")
    for name, s, r in zip(("h", "c"), state, ref_state):
        expect_close(s, r, rtol=1e-4, atol=1e-6,
                     what=f"the state {name} returned after the last window")


_HINT = ("Per window: detach the state you are given (None on the first window), "
         "clear the gradients, run the model from that state, take the mean "
         "cross-entropy over all B x T positions, backward, clip the global norm to "
         "max_norm, step the given optimizer; return the loss and the new state.")


@q.case("3 windows, SGD(lr=0.5), max_norm 0.1", kind="core", hint=_HINT)
def _(lstm_tbptt_step):
    _expect(lstm_tbptt_step, "SGD(lr=0.5)", 0, 0.1)


@q.case("4 windows, Adam(lr=0.01), max_norm 0.15", kind="core", hint=_HINT)
def _(lstm_tbptt_step):
    _expect(lstm_tbptt_step, "Adam(lr=0.01)", 1, 0.15, B=2, T=5, K=4)


@q.case("3 windows, SGD(lr=0.3, momentum=0.9), max_norm 0.08", kind="core",
        hint=_HINT)
def _(lstm_tbptt_step):
    _expect(lstm_tbptt_step, "SGD(lr=0.3, momentum=0.9)", 2, 0.08, V=7, E=4, H=10,
            B=4, T=4)


def _mistake(fn, message, seed, max_norm=0.1, optimizer_name="SGD(lr=0.5)",
             losses_only=False, **mistake):
    """Right, or the trajectory of the mistake (message shown), or not judged."""
    (model, opt), (ref, ref_opt), windows = _pair(optimizer_name, seed)
    got = _learner(fn, model, opt, windows, max_norm)
    expected = _reference(ref, ref_opt, windows, max_norm)
    if _same(got, expected):
        return
    (_, _), (wrong_model, wrong_opt), _ = _pair(optimizer_name, seed)
    wrong = _reference(wrong_model, wrong_opt, windows, max_norm, **mistake)
    if losses_only:
        agrees = all(abs(x - y) <= 1e-5 * max(1.0, abs(y))
                     for x, y in zip(got[0], wrong[0]))
    else:
        agrees = _same(got, wrong)
    if agrees:
        raise CheckFailure(message)
    raise _not_judged()


@q.case("detaches (h, c) between windows",
        hint="The state carried into a window must not hold the graph of the windows "
             "before: detach h and c (both) at the start of the step, or detach what "
             "you return.")
def _(lstm_tbptt_step):
    (model, opt), _, windows = _pair("SGD(lr=0.5)", 3)
    _learner(lstm_tbptt_step, model, opt, windows[:2], 0.1, basic=False)


@q.case("carries the state from one window to the next",
        hint="Truncated BPTT cuts the GRADIENT between windows, not the state: start "
             "each window from the state the previous one ended in (only the first "
             "window starts from None, zeros).")
def _(lstm_tbptt_step):
    _mistake(lstm_tbptt_step, "every window started from a zero state (None): the "
             "state of the previous window was thrown away.", 4, reset=True)


@q.case("clips the global gradient norm between backward and step",
        hint="Clip after backward() (the gradients exist) and before step() (which "
             "uses them), over all the model's parameters together.")
def _(lstm_tbptt_step):
    _mistake(lstm_tbptt_step, "the steps are those of UNCLIPPED gradients: the "
             "gradient norm was not clipped (or clipped outside backward ... step).", 5,
             clip=False)


@q.case("clears the gradients every window",
        hint="PyTorch adds new gradients to .grad: zero them once per window (before "
             "backward, or after step), or window k steps with the sum of k "
             "gradients.")
def _(lstm_tbptt_step):
    _mistake(lstm_tbptt_step, "the gradients of the earlier windows piled up in .grad "
             "(no zero_grad).", 6, zero_grad=False)


@q.case("the loss is the mean over the B x T positions",
        hint="Average the cross-entropy over every position of the window (flatten "
             "logits to (B*T, V) and y to (B*T,)), as the lesson's losses in nats per "
             "character are.")
def _(lstm_tbptt_step):
    _mistake(lstm_tbptt_step, "the loss returned is the SUM over the B x T "
             "positions.", 7, losses_only=True, loss_sum=True)


@q.case("returns the loss as a Python float and the state (h, c) of shape (1, B, H)",
        kind="property",
        hint="Return loss.item() (a tensor keeps the graph alive) and the tuple "
             "(h, c) the LSTM returned, each of shape (1, B, H).")
def _(lstm_tbptt_step):
    (model, opt), _, windows = _pair("SGD(lr=0.5)", 8)
    x, y = windows[0]
    got = call(lstm_tbptt_step, model, x, y, None, opt, 0.1, check_mutation=False,
               name="lstm_tbptt_step")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(f"lstm_tbptt_step returned {_short(got)}; expected the "
                           "tuple (loss, state).", basic=True, problem="type")
    loss, state = got
    if not isinstance(loss, float):
        raise CheckFailure(f"the loss returned is {_short(loss)}; expected a Python "
                           "float (loss.item()).")
    shapes = [tuple(s.shape) for s in state if isinstance(s, torch.Tensor)]
    if shapes != [(1, 3, 8), (1, 3, 8)]:
        raise CheckFailure(f"the state returned is {_short(state)}; expected (h, c), "
                           "two tensors of shape (1, 3, 8) for B = 3, H = 8.")
