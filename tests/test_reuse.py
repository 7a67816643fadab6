"""Tests of course_utils.lessons.reuse: an earlier lesson's model from the cache, or
trained briefly here."""
from pathlib import Path

import pytest
import torch

from course_utils.lessons import reuse
from course_utils.lessons.cnn import SmallCNN

@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture()
def tiny_fashion(shared_data):
    train, _, test = reuse.fashion_splits(num_val=100, num_train=256, num_test=64)
    return train, test


@pytest.mark.data
def test_fashion_cnn_trains_when_the_cache_is_empty(cache, tiny_fashion):
    """With nothing cached, is the CNN trained here, and does the message say so?"""
    train, _ = tiny_fashion
    model, how = reuse.fashion_cnn(train, torch.device("cpu"), smoke=True, epochs=1)
    assert isinstance(model, SmallCNN) and not model.training
    assert "trained here for 1 epoch" in how and "no cached" in how


@pytest.mark.data
def test_fashion_cnn_comes_from_the_cache_in_the_same_mode_only(cache, tiny_fashion):
    """Is lesson 03's saved model used (same weights) in its mode, and refused in
    another?"""
    train, _ = tiny_fashion
    torch.manual_seed(1)
    saved = SmallCNN(widths=reuse.FASHION_WIDTHS)
    reuse.save_fashion_cnn(saved, smoke=False, epochs=10, test_accuracy=0.9176)
    model, how = reuse.fashion_cnn(train, torch.device("cpu"), smoke=False, epochs=1)
    assert "from the course cache" in how and "0.9176" in how
    for a, b in zip(saved.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    _, how = reuse.fashion_cnn(train, torch.device("cpu"), smoke=True, epochs=1)
    assert "trained here" in how and "mode='full' (wanted 'smoke')" in how


@pytest.mark.data
def test_other_widths_are_refused(cache, tiny_fashion):
    """Is a lesson-03 model of other widths (a GPU run) refused, not loaded wrongly?"""
    train, _ = tiny_fashion
    reuse.save_fashion_cnn(SmallCNN(widths=(8, 16, 32)), smoke=True, epochs=1,
                           test_accuracy=0.5, widths=(8, 16, 32))
    _, how = reuse.fashion_cnn(train, torch.device("cpu"), smoke=True, epochs=1)
    assert "trained here" in how and "widths" in how


def _tiny_encoder():
    from transformers import BertConfig, BertModel
    config = BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=16,
                        max_position_embeddings=64)
    torch.manual_seed(0)
    encoder = BertModel(config)
    encoder.pooler = None
    return encoder


def test_sst2_classifier_trains_then_comes_from_the_cache(cache):
    """Is lesson 06's classifier fine-tuned here when nothing is cached, and taken from
    the cache (same weights) once lesson 06 saved one?"""
    from course_utils.pretrained import load_minilm
    tokenizer = load_minilm(verbose=False).tokenizer
    encoder = _tiny_encoder()
    texts, labels = ["a fine film", "dull and long", "great fun", "a mess"] * 4, \
        [1, 0, 1, 0] * 4
    model, how = reuse.sst2_classifier(encoder, tokenizer, texts, labels,
                                       torch.device("cpu"), smoke=True, steps=2,
                                       batch_size=4)
    assert "fine-tuned here for 2 steps" in how and not model.training
    reuse.save_sst2_classifier(model, smoke=True, steps=2, lr=1e-4, max_length=64,
                               dev_accuracy=0.5)
    again, how = reuse.sst2_classifier(encoder, tokenizer, texts, labels,
                                       torch.device("cpu"), smoke=True, steps=2)
    assert "from the course cache" in how
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("notebook, saver", [
    ("03_convolutional_networks", "save_fashion_cnn"),      # quantized by lesson 07
    ("06_fine_tuning", "save_sst2_classifier"),             # quantized by lesson 07
])
def test_the_lesson_that_trains_a_reused_model_saves_it(notebook, saver):
    """Does the lesson that trains a model a later lesson reuses put it in the cache?"""
    import nbformat

    path = Path(__file__).resolve().parents[1] / "notebooks" / f"{notebook}.ipynb"
    code = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells
                     if cell.cell_type == "code")
    assert f"reuse.{saver}(" in code, f"{path.name} no longer calls reuse.{saver}"
