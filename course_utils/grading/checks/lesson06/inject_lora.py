"""Checks of 06.inject_lora: Put LoRA adapters into a BERT, by hand."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _basic, _not_judged, describe_model, tiny_bert, token_batch


q = question("06.inject_lora", "Put LoRA adapters into a BERT, by hand",
             answers=["inject_lora"], timeout=15)


def target_names(model, target_modules) -> list[str]:
    """The nn.Linear modules LoRA adapts: a name equal to a target or ending in
    '.' + target (peft's rule)."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)
            and any(name == t or name.endswith("." + t) for t in target_modules)]


def lora_parameter_count(model, target_modules, r: int) -> int:
    """r (in + out) for every targeted Linear: the entries of its A and B."""
    return sum(r * (m.in_features + m.out_features) for name, m in model.named_modules()
               if name in target_names(model, target_modules))


@dataclass
class Inspection:
    """What the checks saw of an answer on one model."""

    what: str
    model: object = None  # the adapted model
    pairs: dict = field(default_factory=dict)  # target name -> (A, B) parameters
    missing: list = field(default_factory=list)  # targets without an (A, B) pair
    base_trainable: list = field(default_factory=list)  # trainable, inside a target
    other_trainable: list = field(default_factory=list)  # trainable, elsewhere
    init_error: float = 0.0  # max |output - pretrained output| at initialisation
    A_zero: bool = False  # some A is all zeros
    B_zero: bool = True  # every B is all zeros
    forward: dict = field(default_factory=dict)  # target -> errors at alpha / r, alpha

    def problems(self) -> list[str]:
        out = [f"{name}: no trainable pair A (r, in), B (out, r) found in it"
               for name in self.missing]
        out += [f"{name} still trains" for name in self.base_trainable[:3]]
        out += [f"{name} trains, but it is not an adapter" for name in
                self.other_trainable[:3]]
        if self.init_error > 1e-5:
            out.append(f"at initialisation the model's output differs from the "
                       f"pretrained model's by up to {self.init_error:.3g}")
        if not self.B_zero:
            out.append("B is not zero at initialisation")
        if self.A_zero:
            out.append("A is all zeros at initialisation")
        out += [f"{name}: with A and B set to other values, its output is off by up to "
                f"{err:.3g} from base(x) + (alpha / r) B A x"
                for name, (err, _) in self.forward.items() if err > 1e-4]
        return out


def _pair(module, r: int, m_in: int, m_out: int):
    """The (A, B) parameters of ``module``: its trainable ones of shapes (r, in) and
    (out, r); None when there is not exactly one of each."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    A = [p for p in trainable if tuple(p.shape) == (r, m_in)]
    B = [p for p in trainable if tuple(p.shape) == (m_out, r)]
    return (A[0], B[0]) if len(A) == 1 and len(B) == 1 else None


def inspect(fn, model, target_modules, r: int, alpha: float, seed: int) -> Inspection:
    """Run the answer on ``model`` and look at what it built (see ``Inspection``)."""
    pretrained = copy.deepcopy(model)
    targets = target_names(model, target_modules)
    what = (f"inject_lora(model, {list(target_modules)!r}, r={r}, alpha={alpha:g}) on "
            f"a {describe_model(model)}")
    got = call(fn, model, list(target_modules), r, alpha, check_mutation=False,
               name="inject_lora")
    adapted = model if got is None else got
    if not isinstance(adapted, nn.Module):
        raise _basic(f"{what} returned {_short(got)}; return the model (changed in "
                     "place).", problem="type")
    seen = Inspection(what, adapted)
    shapes = {name: (m.in_features, m.out_features)
              for name, m in pretrained.named_modules() if name in targets}
    inside = set()
    for name in targets:
        try:
            module = adapted.get_submodule(name)
        except AttributeError:
            seen.missing.append(name)
            continue
        pair = _pair(module, r, *shapes[name])
        if pair is None:
            seen.missing.append(name)
        else:
            seen.pairs[name] = pair
        ids = {id(p) for p in pair or ()}
        for pname, p in module.named_parameters():
            inside.add(id(p))
            if p.requires_grad and id(p) not in ids:
                seen.base_trainable.append(f"{name}.{pname}")
    for pname, p in adapted.named_parameters():
        if p.requires_grad and id(p) not in inside:
            seen.other_trainable.append(pname)
    seen.A_zero = any(bool((A == 0).all()) for A, _ in seen.pairs.values())
    seen.B_zero = all(bool((B == 0).all()) for _, B in seen.pairs.values())
    ids, mask = token_batch(seed, [6, 3, 5])
    with torch.no_grad():
        want = pretrained.eval()(input_ids=ids, attention_mask=mask).last_hidden_state
        have = adapted.eval()(input_ids=ids, attention_mask=mask).last_hidden_state
    seen.init_error = float((have - want).abs().max())
    g = torch.Generator().manual_seed(seed + 50)
    for name, (A, B) in seen.pairs.items():
        with torch.no_grad():
            A.copy_(torch.randn(A.shape, generator=g) * 0.3)
            B.copy_(torch.randn(B.shape, generator=g) * 0.3)
            x = torch.randn(2, 4, A.shape[1], generator=g)  # (2, 4, in)
            base = pretrained.get_submodule(name)
            update = (x @ A.T) @ B.T  # (2, 4, out)
            y = adapted.get_submodule(name)(x)
            seen.forward[name] = (float((y - base(x) - alpha / r * update).abs().max()),
                                  float((y - base(x) - alpha * update).abs().max()))
    return seen


def _expect(fn, seed, target_modules, r, alpha, **sizes) -> None:
    seen = inspect(fn, tiny_bert(seed, **sizes), target_modules, r, alpha, seed)
    problems = seen.problems()
    if problems:
        raise CheckFailure(f"after {seen.what}:\n- " + "\n- ".join(problems[:6])
                           + (f"\n(and {len(problems) - 6} more)" if len(problems) > 6
                              else ""))


_HINT = ("Replace each targeted Linear by a module that keeps the Linear (frozen) and "
         "adds (alpha / r) times B applied to A applied to x, with A (r, in) drawn at "
         "random and B (out, r) starting at zero, so the model starts as the "
         "pretrained one; freeze every other parameter, so that only the A's and B's "
         "train.")


@q.case("query and value of a 2-layer BERT, r = 2, alpha = 4", kind="core", hint=_HINT)
def _(inject_lora):
    _expect(inject_lora, 0, ["query", "value"], 2, 4.0, layers=2)


@q.case("key and intermediate.dense of a 3-layer BERT, r = 3, alpha = 9", kind="core",
        hint=_HINT)
def _(inject_lora):
    _expect(inject_lora, 1, ["key", "intermediate.dense"], 3, 9.0, layers=3, hidden=12,
            heads=3, ffn=24)


@q.case("query, key and value of a wider BERT, r = 4, alpha = 8", kind="core",
        hint=_HINT)
def _(inject_lora):
    _expect(inject_lora, 2, ["query", "key", "value"], 4, 8.0, layers=2, hidden=16,
            heads=4, ffn=32)


@q.case("B starts at zero: the model starts as the pretrained one",
        hint="With B = 0 the update B A x is 0, so training starts from the pretrained "
             "function and the first steps cannot wreck it; a random B adds noise to "
             "every adapted layer before any training.")
def _(inject_lora):
    seen = inspect(inject_lora, tiny_bert(4, layers=2), ["query", "value"], 2, 4.0, 4)
    if seen.pairs and not seen.B_zero:
        raise CheckFailure(f"after {seen.what}, B is not zero: the adapted model's "
                           f"output differs from the pretrained one's by up to "
                           f"{seen.init_error:.3g} before any training.")


@q.case("A starts at random, not at zero too",
        hint="The gradient of B is made of A x, and that of A goes through B: with "
             "both at zero neither ever receives a gradient, and the adapter never "
             "learns. Draw A at random (B alone starts at zero).")
def _(inject_lora):
    seen = inspect(inject_lora, tiny_bert(5, layers=2), ["query", "value"], 2, 4.0, 5)
    if seen.pairs and seen.A_zero and seen.B_zero:
        raise CheckFailure(f"after {seen.what}, A and B are both zero: no gradient "
                           "would ever reach either.")


@q.case("the update is scaled by alpha / r",
        hint="LoRA multiplies its update by alpha / r, not by alpha: with the rank in "
             "the denominator, changing r does not change the update's size at the "
             "start of training.")
def _(inject_lora):
    seen = inspect(inject_lora, tiny_bert(6, layers=2), ["query"], 2, 6.0, 6)
    if not seen.forward:
        raise _not_judged()
    if all(err > 1e-4 and at_alpha < 1e-4 for err, at_alpha in seen.forward.values()):
        raise CheckFailure(f"after {seen.what}, the adapted layers compute base(x) + "
                           "alpha B A x: the division by r is missing.")


@q.case("the base Linear is frozen",
        hint="The pretrained weight and bias of an adapted Linear do not train (that "
             "is the point of LoRA): set their requires_grad to False, so that only A "
             "and B do.")
def _(inject_lora):
    seen = inspect(inject_lora, tiny_bert(7, layers=2), ["query", "value"], 2, 6.0, 7)
    if seen.base_trainable:
        raise CheckFailure(f"after {seen.what}, the base layers still train: "
                           + ", ".join(seen.base_trainable[:3]) + ".")


@q.case("every other parameter of the model is frozen",
        hint="LoRA trains the adapters only: the embeddings, the LayerNorms, the "
             "Linears that are not targeted and the pooler are frozen too.")
def _(inject_lora):
    seen = inspect(inject_lora, tiny_bert(8, layers=2), ["value"], 2, 4.0, 8)
    if seen.other_trainable:
        raise CheckFailure(f"after {seen.what}, {len(seen.other_trainable)} "
                           "parameters outside the adapters still train (first: "
                           f"{seen.other_trainable[0]}).")


@q.case("only the targeted layers are adapted", kind="property",
        hint="Adapt the Linears whose name is a target or ends with '.' and the "
             "target, as peft does; leave the others (key, the attention output, the "
             "feed-forward, the pooler) as they were.")
def _(inject_lora):
    model = tiny_bert(9, layers=2)
    others = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)
              and name not in target_names(model, ["value"])]
    seen = inspect(inject_lora, model, ["value"], 2, 4.0, 9)
    for name in others:
        adapted = seen.model.get_submodule(name)
        if not isinstance(adapted, nn.Linear) or any(
                p.requires_grad for p in adapted.parameters()):
            raise CheckFailure(f"after {seen.what}, {name}, which is not a target, was "
                               "replaced (or still trains).")
