"""What the checks of lesson 06's questions share: tiny seeded BERTs built from a
``transformers`` config (random weights, nothing downloaded), seeded inputs, and the
helpers that compare an answer with a reference and with a typical mistake."""
from __future__ import annotations

import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel

from .._shared import (NOT_JUDGED, _agrees, _basic, _copies,  # noqa: F401 - for the checks
                       _not_judged, _num, _parts, comparisons, seeded)

_matches, _plain_mismatch = comparisons(rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------ tiny BERTs
def bert_config(hidden=8, layers=2, heads=2, ffn=16, vocab=40, positions=16,
                type_vocab=2, dropout=0.0) -> BertConfig:
    """A BertConfig of tiny sizes (all-MiniLM-L6-v2 is 384, 6, 12, 1536, 30522, 512)."""
    return BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=ffn,
                      max_position_embeddings=positions, type_vocab_size=type_vocab,
                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)


def tiny_bert(seed: int, **sizes) -> BertModel:
    """A seeded BertModel (with its pooler), in training mode, as a fresh encoder is."""
    config = bert_config(**sizes)
    return seeded(seed, lambda: BertModel(config)).train()


def tiny_classifier(seed: int, num_labels: int = 2, **sizes):
    """A seeded BertForSequenceClassification (``.bert`` and ``.classifier``)."""
    config = bert_config(**sizes)
    config.num_labels = num_labels
    return seeded(seed, lambda: BertForSequenceClassification(config)).train()


def token_batch(seed: int, lengths, vocab: int = 40, left: bool = False):
    """Seeded ``input_ids`` and ``attention_mask`` (B, T) int64 for sentences of these
    lengths, padded with id 0 to the longest (on the left when ``left``)."""
    g = torch.Generator().manual_seed(seed)
    T, B = max(lengths), len(lengths)
    ids = torch.randint(1, vocab, (B, T), generator=g)  # (B, T)
    positions = torch.arange(T)[None, :]  # (1, T)
    n = torch.tensor(lengths)[:, None]  # (B, 1)
    real = positions >= T - n if left else positions < n  # (B, T)
    return ids.masked_fill(~real, 0), real.long()


def describe_model(model) -> str:
    """How a message names a tiny BERT: its class and sizes."""
    c = model.config
    return (f"{type(model).__name__}(hidden {c.hidden_size}, {c.num_hidden_layers} "
            f"layers, ffn {c.intermediate_size})")


# ------------------------------------------------------------ comparing answers