"""Checks of 06.freeze_except: Freeze all but some modules, and count what trains."""
from __future__ import annotations

from ...asserts import CheckFailure, as_number, call
from ...registry import question
from ._common import _agrees, _not_judged, describe_model, tiny_classifier


q = question("06.freeze_except", "Freeze all but some modules, and count what trains",
             answers=["freeze_except"], timeout=10)


def reference_flags(model, trainable) -> dict[str, bool]:
    """{parameter name: trains?}: a parameter trains when it belongs to one of the
    modules named in ``trainable`` (its name is the module's name, then a dot)."""
    return {name: any(name.startswith(m + ".") for m in trainable)
            for name, _ in model.named_parameters()}


def reference_count(model, trainable) -> int:
    """The number of entries of the parameters that train."""
    flags = reference_flags(model, trainable)
    return sum(p.numel() for name, p in model.named_parameters() if flags[name])


def _run(fn, model, trainable):
    """Call the answer; returns (its count, flags after, training mode before)."""
    was_training = model.training
    got = call(fn, model, list(trainable), check_mutation=False, name="freeze_except")
    count = as_number(got, _what(model, trainable))
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    return count, flags, was_training


def _what(model, trainable) -> str:
    return f"freeze_except(model, {list(trainable)!r}) on a {describe_model(model)}"


def _flag_problems(flags, expected) -> list[str]:
    wrong = [name for name in expected if flags[name] != expected[name]]
    return [f"{name} {'trains' if flags[name] else 'is frozen'}, expected "
            f"{'frozen' if flags[name] else 'trainable'}" for name in wrong]


def _expect(fn, model, trainable) -> None:
    expected = reference_flags(model, trainable)
    count, flags, _ = _run(fn, model, trainable)
    what = _what(model, trainable)
    problems = _flag_problems(flags, expected)
    if problems:
        raise CheckFailure(f"after {what}, {len(problems)} of {len(flags)} parameters "
                           "are not as asked:\n- " + "\n- ".join(problems[:5])
                           + (f"\n(and {len(problems) - 5} more)" if len(problems) > 5
                              else ""))
    ref = reference_count(model, trainable)
    if count != ref:
        raise CheckFailure(f"{what} returned {count:g}; the parameters that train "
                           f"hold {ref:,} numbers.")


_HINT = ("A parameter trains when its requires_grad is True: set it False on every "
         "parameter, then True on the parameters of each named module "
         "(model.get_submodule gives a module by its name), and count the entries "
         "(numel) of those that train.")


@q.case("train the classifier only", kind="core", hint=_HINT)
def _(freeze_except):
    _expect(freeze_except, tiny_classifier(0, layers=2), ["classifier"])


@q.case("train the top layer, the pooler and the classifier", kind="core", hint=_HINT)
def _(freeze_except):
    _expect(freeze_except, tiny_classifier(1, layers=3, hidden=12, heads=3, ffn=20),
            ["bert.encoder.layer.2", "bert.pooler", "classifier"])


@q.case("modules frozen before: the named ones train again", kind="core", hint=_HINT)
def _(freeze_except):
    model = tiny_classifier(2, layers=2)
    for p in model.classifier.parameters():  # frozen by an earlier experiment
        p.requires_grad_(False)
    model.bert.encoder.layer[0].output.dense.weight.requires_grad_(False)
    _expect(freeze_except, model, ["bert.embeddings.LayerNorm",
                                   "bert.encoder.layer.1.attention", "classifier"])


def _expect_flags_only(fn, model, trainable) -> None:
    """Fail unless the answer sets requires_grad as asked (whatever it returns)."""
    _, flags, _ = _run(fn, model, trainable)
    if _flag_problems(flags, reference_flags(model, trainable)):
        raise CheckFailure(f"after {_what(model, trainable)} the flags are not "
                           "as asked.")


def _judged(fn, seed, trainable, **sizes):
    """Right flags on a control (else not judged), then the answer on a feature
    model."""
    control = tiny_classifier(10, layers=2)
    if not _agrees(lambda: _expect_flags_only(fn, control, ["classifier"])):
        raise _not_judged()
    model = tiny_classifier(seed, **sizes)
    return model, _run(fn, model, trainable)


@q.case("freezing is requires_grad, not model.eval()",
        hint="model.eval() only switches dropout (and batch norm) to inference: every "
             "weight still receives a gradient and the optimizer still moves it. "
             "Freezing sets requires_grad to False.")
def _(freeze_except):
    model = tiny_classifier(11, layers=2)
    count, flags, _ = _run(freeze_except, model, ["classifier"])
    if all(flags.values()) and not model.training:
        raise CheckFailure(f"after {_what(model, ['classifier'])} the model is in eval "
                           "mode, but every parameter still requires a gradient: "
                           "nothing is frozen.")


@q.case("the model stays in training mode",
        hint="Freezing decides which weights the optimizer may move; the mode decides "
             "whether dropout is on. Fine-tuning the unfrozen part still wants "
             "dropout: leave model.train() / model.eval() alone.")
def _(freeze_except):
    model = tiny_classifier(12, layers=2)
    _run(freeze_except, model, ["classifier"])
    if not model.training:
        raise CheckFailure(f"after {_what(model, ['classifier'])} the model is in eval "
                           "mode (model.training is False): dropout would be off "
                           "while the classifier trains.")


@q.case("counts the parameters that train, not all of them",
        hint="Return the number of trainable entries: a frozen parameter is still in "
             "model.parameters(), so count only those whose requires_grad is True.")
def _(freeze_except):
    trainable = ["bert.pooler", "classifier"]
    model, (count, flags, _) = _judged(freeze_except, 13, trainable, layers=2)
    total = sum(p.numel() for p in model.parameters())
    if count == total:
        raise CheckFailure(f"{_what(model, trainable)} returned {count:,}, the number "
                           "of entries of ALL the parameters, frozen ones included; "
                           f"{reference_count(model, trainable):,} of them train.")
    tensors = sum(flags.values())
    if count == tensors:
        raise CheckFailure(f"{_what(model, trainable)} returned {count:,}, the number "
                           "of trainable parameter TENSORS; the question counts their "
                           f"entries ({reference_count(model, trainable):,}).")


@q.case("a module's name ends at a dot: layer.1 is not layer.10",
        hint="Compare whole names: a parameter of module 'm' is called 'm.' + "
             "something, so a name that merely starts with the letters of 'm' "
             "(layer.10 after layer.1) belongs to another module. named_modules() or "
             "get_submodule() avoid the question.")
def _(freeze_except):
    trainable = ["bert.encoder.layer.1", "classifier"]
    model, (count, flags, _) = _judged(freeze_except, 14, trainable, layers=12,
                                       hidden=4, ffn=8)
    extra = sorted({name.split(".")[3] for name, on in flags.items()
                    if on and name.startswith(("bert.encoder.layer.10.",
                                               "bert.encoder.layer.11."))})
    if extra:
        raise CheckFailure(f"after {_what(model, trainable)} the parameters of layers "
                           f"{', '.join(extra)} train too: 'bert.encoder.layer.1' was "
                           "matched as the start of a longer name.")
    _expect_flags(model, flags, trainable)


def _expect_flags(model, flags, trainable) -> None:
    if _flag_problems(flags, reference_flags(model, trainable)):
        raise _not_judged()


@q.case("keeps the same Parameter objects", kind="property",
        hint="Change requires_grad on the existing parameters "
             "(p.requires_grad_(False)); replacing or copying them would leave an "
             "optimizer built on the model the old ones.")
def _(freeze_except):
    model = tiny_classifier(15, layers=2)
    before = {name: p for name, p in model.named_parameters()}
    _run(freeze_except, model, ["classifier"])
    for name, p in model.named_parameters():
        if before.get(name) is not p:
            raise CheckFailure(f"after freeze_except, model.{name} is a new Parameter "
                               "object.")
