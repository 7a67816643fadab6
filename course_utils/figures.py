"""What each recorded figure is: its title, unit, target and published anchor, for the results.

A lesson's last cell ``record``s its headline figures under stable snake_case names
(``course_utils.results.record``); ``course bench`` stores them in ``benchmarks/results.json``.
This table says, for each lesson and name, what a reader of the results page and of the README
needs beside the number: a title in the lesson's words, the unit the lesson records it in, the
lesson's target in full mode (from the lesson's own "Results" section) and, where the lesson sets
the figure against one, the figure a well-known source publishes. ``tests/test_figures.py`` fails
when a lesson records a name that is not here.

Targets and anchors are written in the unit *shown*: a ``fraction`` is shown in per cent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One recorded figure, for a reader.

    Attributes:
        title: what it measures, in the lesson's words.
        unit: the unit the lesson records it in (``record(..., unit=...)``), "" for a pure number.
        target: the lesson's full-mode target, in the unit shown ("≥ 99.5"), or "".
        anchor: a published figure to set it against, in the unit shown, with what it is.
        source: who published the anchor, as the README names it ("LeCun et al. 1998").
        cite: the anchor's key in ``book/references.bib``, for the book's citation.
    """

    title: str
    unit: str = ""
    target: str = ""
    anchor: str = ""
    source: str = ""
    cite: str = ""

    @property
    def shown_unit(self) -> str:
        """The unit the figure is shown in: per cent for a fraction, × for a ratio."""
        return {"fraction": "%", "x": "×"}.get(self.unit, self.unit)


def _f(title, unit="", target="", anchor="", source="", cite="") -> Figure:
    return Figure(title, unit, target, anchor, source, cite)


MAX_DIFF = "largest absolute difference"
SPEEDUP_B32 = "speed-up over float32 eager at batch 32"

FIGURES: dict[str, dict[str, Figure]] = {
    "01": {
        "diabetes_max_abs_diff_vs_closed_form": _f(
            f"Linear regression (diabetes), gradient descent vs the closed form: {MAX_DIFF}"),
        "diabetes_max_abs_diff_vs_sklearn": _f(
            f"Linear regression (diabetes), gradient descent vs scikit-learn: {MAX_DIFF}"),
        "breast_cancer_max_abs_diff_vs_sklearn": _f(
            f"Logistic regression (breast cancer), gradient descent vs scikit-learn: {MAX_DIFF}"),
        "breast_cancer_test_accuracy": _f("Logistic regression, breast-cancer test accuracy",
                                          "fraction"),
        "framework_max_abs_diff_vs_numpy": _f(
            f"PyTorch and Keras optimizer steps vs NumPy's: {MAX_DIFF}"),
    },
    "02": {
        "autograd_max_abs_diff_vs_torch": _f(
            f"Scalar autograd engine vs torch.autograd: {MAX_DIFF}", target="about 1e-15"),
        "mnist_test_accuracy": _f("NumPy MLP, MNIST test accuracy", "fraction",
                                  target="about 98"),
    },
    "03": {
        "lenet_mnist_test_accuracy": _f(
            "LeNet-5, MNIST test accuracy", "fraction",
            anchor="99.05 (LeNet-5 without distortions: 0.95 % test error)",
            source="LeCun et al. 1998", cite="lecun1998"),
        "mnist_test_accuracy": _f("SmallCNN, MNIST test accuracy", "fraction", "≥ 99.2"),
        "fashion_mnist_test_accuracy": _f("SmallCNN, Fashion-MNIST test accuracy", "fraction",
                                          "≥ 91.5"),
        "resnet_mnist_test_accuracy": _f("SmallResNet, MNIST test accuracy", "fraction",
                                         "≥ 99.5"),
        "resnet_fashion_mnist_test_accuracy": _f("SmallResNet, Fashion-MNIST test accuracy",
                                                 "fraction", "≥ 93.0"),
        "keras_fashion_mnist_test_accuracy": _f("Keras SmallCNN, Fashion-MNIST test accuracy",
                                                "fraction"),
        "keras_minus_torch_fashion_points": _f(
            "Keras SmallCNN minus PyTorch SmallCNN, Fashion-MNIST test accuracy", "points",
            "within ±0.5"),
        "train_time_s": _f("Training time of the networks", "s"),
    },
    "04": {
        "bigram_val_loss": _f("Bigram counts, validation loss", "nats/char"),
        "trigram_val_loss": _f("Trigram counts, validation loss", "nats/char"),
        "rnn_val_loss": _f("tanh RNN, validation loss", "nats/char"),
        "gru_val_loss": _f("GRU, validation loss", "nats/char"),
        "lstm_val_loss": _f("LSTM, validation loss", "nats/char"),
        "best_gated_val_loss": _f(
            "Best gated model (GRU or LSTM), validation loss", "nats/char",
            "≤ 1.55 (2-core CPU); ≤ 1.45 (GPU)",
            anchor="1.395 (char-rnn's example LSTM checkpoint)", source="Karpathy 2015",
            cite="karpathy2015"),
        "best_gated_val_perplexity": _f("Best gated model, validation perplexity per character"),
        "bptt_max_abs_diff_vs_autograd": _f(f"NumPy BPTT vs autograd's gradients: {MAX_DIFF}"),
        "fused_over_scratch_gru_speed": _f("Fused nn.GRU over the GRU from scratch, speed", "x"),
        "keras_copy_max_abs_diff": _f(
            "Keras GRU with the PyTorch weights: largest absolute logit difference"),
        "keras_minus_torch_val_loss": _f("Keras GRU minus PyTorch GRU, validation loss",
                                         "nats/char"),
        "rnn_trained_decay_per_step": _f(
            "Trained tanh RNN: gradient norm's ratio per step back in time"),
        "gru_trained_decay_per_step": _f("Trained GRU: gradient norm's ratio per step back in time"),
        "lstm_trained_decay_per_step": _f(
            "Trained LSTM: gradient norm's ratio per step back in time"),
        "train_time_s": _f("Training time of the recurrent models", "s"),
    },
    "05": {
        "bigram_val_loss": _f("Bigram counts, validation loss", "nats/char"),
        "trigram_val_loss": _f("Trigram counts, validation loss", "nats/char"),
        "gpt_val_loss": _f(
            "Tiny GPT, validation loss", "nats/char",
            "≤ 1.65 (2-core CPU); ≤ 1.50 (GPU, nanoGPT's configuration)",
            anchor="about 1.47 (nanoGPT's Shakespeare configuration, 3 minutes on an A100)",
            source="Karpathy 2022", cite="karpathy2022nanogpt"),
        "gpt_best_eval_loss": _f("Tiny GPT, best validation loss during training", "nats/char"),
        "gru_equal_time_val_loss": _f("Lesson 04's GRU trained as long as the GPT, validation loss",
                                      "nats/char"),
        "gpt_minus_gru_val_loss": _f("GPT minus GRU at equal training time, validation loss",
                                     "nats/char"),
        "gpt_train_time_s": _f("Tiny GPT, training time", "s"),
        "gru_train_time_s": _f("GRU, training time", "s"),
        "gpt_chars_per_s": _f("Tiny GPT, training speed", "chars/s"),
        "gru_chars_per_s": _f("GRU, training speed", "chars/s"),
        "gpt_parameters": _f("Tiny GPT, parameters"),
        "sdpa_max_abs_diff_float32": _f(
            f"Attention from scratch vs PyTorch's fused SDPA (float32): {MAX_DIFF}"),
        "mha_max_abs_diff_vs_torch": _f(
            f"Multi-head attention from scratch vs nn.MultiheadAttention: {MAX_DIFF}"),
        "kv_cache_max_logit_diff": _f(
            "Generation with vs without the KV cache: largest absolute logit difference"),
        "kv_cache_speedup": _f("KV cache, generation speed-up", "x"),
        "sdpa_over_naive_speed_at_max_T": _f(
            "Fused SDPA over attention written out, speed at the longest context", "x"),
        "keras_block_max_abs_diff": _f(
            f"Keras Transformer block with the PyTorch weights: {MAX_DIFF}"),
    },
    "06": {
        "sst2_dev_accuracy_frozen_logreg": _f(
            "Frozen MiniLM + logistic regression, SST-2 dev accuracy", "fraction", "≥ 80"),
        "sst2_dev_accuracy_frozen_mlp": _f("Frozen MiniLM + MLP head, SST-2 dev accuracy",
                                           "fraction"),
        "sst2_dev_accuracy_full_finetune": _f(
            "Full fine-tuning, SST-2 dev accuracy", "fraction",
            "≥ 87 (2-core CPU); ≥ 90 (GPU, all of SST-2)",
            anchor="93.0 (the 12-layer MiniLM-L12-H384 fine-tuned, its model card; ours has 6)",
            source="Wang et al. 2020", cite="wang2020"),
        "sst2_dev_accuracy_lora": _f("LoRA, SST-2 dev accuracy", "fraction", "≥ 86"),
        "sst2_dev_accuracy_too_high_lr": _f(
            "Full fine-tuning at a too-high learning rate, SST-2 dev accuracy", "fraction"),
        "lora_trainable_percent": _f("LoRA, share of the parameters trained", "%", "about 0.3"),
        "full_finetune_seconds_per_step": _f("Full fine-tuning, time per step", "s"),
        "lora_seconds_per_step": _f("LoRA, time per step", "s"),
        "padding_bug_cost_points": _f(
            "Mean pooling over the padding too: dev accuracy lost", "points"),
        "padding_bug_probe_served_unpadded": _f(
            "That probe served one sentence at a time (no padding), dev accuracy", "fraction"),
        "lora_vs_peft_max_abs_diff": _f(f"LoRA from scratch vs peft: {MAX_DIFF}"),
        "lora_merge_max_abs_diff": _f(f"LoRA merged into the weights vs unmerged: {MAX_DIFF}"),
        "lesson05_attention_max_abs_diff": _f(
            f"Lesson 05's attention vs MiniLM's own, inside the encoder: {MAX_DIFF}"),
        "drift_median_cosine_full": _f(
            "Full fine-tuning: median cosine of the UCI sentence embeddings to the pretrained"),
        "drift_median_cosine_too_high_lr": _f(
            "Full fine-tuning, too-high learning rate: the same median cosine"),
        "drift_median_cosine_lora_merged": _f("LoRA (merged): the same median cosine"),
        "lora_adapters_off_max_abs_diff": _f(
            f"LoRA with its adapters off vs the pretrained encoder: {MAX_DIFF}"),
        "uci_site_accuracy_pretrained": _f(
            "Pretrained embeddings: which UCI site a sentence comes from, probe accuracy",
            "fraction"),
        "uci_site_accuracy_full": _f(
            "After full fine-tuning: which UCI site a sentence comes from, probe accuracy",
            "fraction"),
        "uci_ood_accuracy_full": _f(
            "Full fine-tuning on SST-2, UCI sentiment accuracy (out of domain)", "fraction"),
        "keras_minus_torch_head_dev_accuracy": _f(
            "Keras head minus PyTorch head, SST-2 dev accuracy", "fraction"),
        "keras_head_max_abs_logit_diff": _f(
            "Keras head with the PyTorch weights: largest absolute logit difference"),
        "train_time_s": _f("Embedding and fine-tuning time, all runs", "s"),
    },
    "07": {
        "rounding_error_variance_over_s2_12": _f("Rounding error's variance over s²/12",
                                                 target="1 (theory)"),
        "int_matmul_vs_dequantized_max_abs_diff": _f(
            f"int8 product with int32 accumulation vs the dequantized float product: {MAX_DIFF}"),
        "int8_mm_speedup_over_float32": _f("int8 matrix product over float32, speed", "x"),
        "sst2_dev_accuracy_float32": _f("Lesson 06's classifier in float32, SST-2 dev accuracy",
                                        "fraction"),
        "sst2_dev_accuracy_int8_dynamic": _f("The lab's dynamic int8 model, SST-2 dev accuracy",
                                             "fraction"),
        "int8_dynamic_minus_float32_dev_points": _f(
            "Dynamic int8 minus float32, SST-2 dev accuracy", "points", "≥ -0.5"),
        "linear_weights_size_ratio": _f("Dynamic int8: Linear weights, times smaller", "x",
                                        "≥ 3.5"),
        "saved_model_size_ratio": _f(
            "Dynamic int8: saved model, times smaller", "x", "≥ 2",
            anchor="2.4 (BERT-base with int8 Linear layers: 438 MB to 181 MB)",
            source="Huang 2020, PyTorch tutorial", cite="huang2020bertquant"),
        "int8_dynamic_speedup_b32": _f(f"Dynamic int8: {SPEEDUP_B32}", "x", "≥ 1.5"),
        "mixed_int8_minus_float32_dev_points": _f(
            "Mixed int8 (FFN outputs in float) minus float32, SST-2 dev accuracy", "points"),
        "mixed_int8_saved_model_size_ratio": _f("Mixed int8: saved model, times smaller", "x"),
        "mixed_int8_linear_weights_size_ratio": _f("Mixed int8: Linear weights, times smaller",
                                                   "x"),
        "mixed_int8_speedup_b32": _f(f"Mixed int8: {SPEEDUP_B32}", "x"),
        "torchao_int8_dynamic_speedup_b32": _f(
            f"torchao dynamic int8, int8 embeddings, eager: {SPEEDUP_B32}", "x"),
        "torchao_int8_dynamic_compiled_speedup_b32": _f(
            f"torchao dynamic int8, int8 embeddings, compiled (Inductor freezing): {SPEEDUP_B32}",
            "x"),
        "torchao_int8_weight_only_speedup_b32": _f(f"torchao int8 weight-only: {SPEEDUP_B32}",
                                                   "x"),
        "bf16_autocast_speedup_b32": _f(f"bfloat16 autocast: {SPEEDUP_B32}", "x"),
        "cnn_test_accuracy_float32": _f("Lesson 03's CNN in float32, Fashion-MNIST test accuracy",
                                        "fraction"),
        "cnn_static_int8_minus_float32_points": _f(
            "Static int8 CNN (PT2E) minus float32, test accuracy", "points", "≥ -0.3"),
        "cnn_static_int8_speedup": _f("Static int8 CNN: speed-up over float32 eager", "x"),
        "cnn_static_int8_speedup_vs_compiled_float32": _f(
            "Static int8 CNN: speed-up over compiled float32", "x"),
        "qat_int4_recovered_fraction": _f(
            "Quantization-aware int4: share of post-training int4's accuracy loss recovered",
            "fraction", "≥ 50"),
        **{f"cnn_ptq_int{bits}_accuracy": _f(
            f"CNN, post-training int{bits} (weights and activations), test accuracy", "fraction")
           for bits in (8, 4, 3, 2)},
        **{f"cnn_qat_int{bits}_accuracy": _f(
            f"CNN, quantization-aware int{bits}, test accuracy", "fraction")
           for bits in (8, 4, 3, 2)},
        "keras_float_minus_torch_points": _f("Keras CNN minus PyTorch CNN (float), test accuracy",
                                             "points"),
        "litert_int8_accuracy": _f("LiteRT int8 model, test accuracy", "fraction"),
        "litert_int8_size_kb": _f("LiteRT int8 model, size", "KB"),
    },
    "08": {
        "num_seeds": _f("Seeds per arm", target="≥ 5"),
        "chosen_tau": _f("Temperature τ, chosen on validation"),
        "teacher_test_errors": _f(
            "Teacher, MNIST test errors", "errors",
            anchor="67 (an MLP teacher of 2 × 1,200 units, dropout and jitter)",
            source="Hinton et al. 2015", cite="hinton2015"),
        "student_alone_test_errors": _f(
            "Student alone, test errors (mean over seeds)", "errors",
            anchor="146 (an MLP student of 2 × 800 units)", source="Hinton et al. 2015",
            cite="hinton2015"),
        "student_distilled_test_errors": _f(
            "Distilled student, test errors (mean over seeds)", "errors",
            anchor="74 (that student distilled at τ = 20)", source="Hinton et al. 2015",
            cite="hinton2015"),
        "distillation_gain_errors": _f("Distillation's gain, test errors (mean paired difference)",
                                       "errors"),
        "distillation_gain_t": _f("Distillation's gain, paired t statistic",
                                  target="≥ 2 where distillation pays"),
        "tiny_student_gain_errors": _f("A smaller student: distillation's gain, test errors",
                                       "errors"),
        "scarce_alone_test_errors": _f("2,000 labels: student alone, test errors", "errors"),
        "scarce_hard_labels_test_errors": _f(
            "2,000 labels: student on the teacher's top-class labels, test errors", "errors"),
        "scarce_distilled_test_errors": _f("2,000 labels: distilled student, test errors",
                                           "errors"),
        "scarce_distillation_gain_t": _f("2,000 labels: distillation's gain, paired t statistic",
                                         target="≥ 2 where distillation pays"),
        "scarce_soft_over_hard_labels_t": _f(
            "2,000 labels: soft over top-class teacher labels, paired t statistic"),
        "never3_distilled_threes_right_fraction": _f(
            "Distilled student that never saw a 3: test 3s right, after its bias is raised",
            "fraction", anchor="98.6 (after the same correction)", source="Hinton et al. 2015",
            cite="hinton2015"),
        "int8_teacher_minus_float_teacher_errors": _f(
            "Lesson 07's int8 teacher minus the float32 teacher, test errors", "errors"),
        "int8_teacher_size_kb": _f("int8 teacher, size", "KB"),
        "student_speedup_over_int8_teacher": _f("Distilled student over the int8 teacher, speed",
                                                "x"),
        "student_speedup_over_compiled_teacher": _f(
            "Distilled student over the compiled float32 teacher, speed", "x"),
        "keras_minus_torch_distilled_errors": _f(
            "Keras Distiller minus PyTorch, distilled student's test errors", "errors"),
        "keras_gap_standard_errors": _f("That difference, in standard errors"),
    },
    "09": {
        "gpt05_step_memory_mb": _f("Lesson 05's GPT: memory of one training step, measured",
                                   "MB"),
        "gpt7b_model_states_gb": _f("A 7 B model: memory of its model states (computed)", "GB"),
        "data_parallel_lenet_gradient_rel_diff": _f(
            "Data parallelism (LeNet, float64) vs one batch: relative gradient difference"),
        "batchnorm_gradient_rel_diff": _f(
            "The same with BatchNorm, which breaks it: relative gradient difference"),
        "ring_equals_all_reduce": _f("Ring all-reduce equal to all_reduce (1 = yes)", target="1"),
        "ring_latency_us": _f("Ring all-reduce: fitted latency", "us"),
        "ring_bandwidth_gb_s": _f("Ring all-reduce: fitted bandwidth", "GB/s"),
        "ring_largest_message_ms": _f("Ring all-reduce of the largest message: time", "ms"),
        "gloo_largest_message_ms": _f("gloo's all_reduce of the largest message: time", "ms"),
        "ddp_vs_single_process_max_abs_diff": _f(
            f"DDP vs one process after 20 steps: {MAX_DIFF}", target="≤ 1e-6"),
        "no_sync_vs_single_process_max_abs_diff": _f(
            f"DDP with no_sync vs one process after 20 steps: {MAX_DIFF}", target="≤ 1e-6"),
        "fsdp_vs_single_process_max_abs_diff": _f(
            f"FSDP vs one process after 20 steps: {MAX_DIFF}", target="≤ 1e-6"),
        "restarted_vs_single_process_max_abs_diff": _f(
            f"Crashed and restarted run vs one process after 20 steps: {MAX_DIFF}",
            target="≤ 1e-6"),
        "ddp_step_ms": _f("DDP, 2 processes × 1 thread: time per step at batch 128", "ms"),
        "two_process_speedup_over_one_thread": _f(
            "2 processes over 1 process with 1 thread, speed at batch 128", "x"),
        "two_process_speedup_over_two_threads": _f(
            "2 processes over 1 process with 2 threads, speed at batch 128", "x"),
        "two_process_speedup_over_two_threads_b128": _f(
            "2 processes over 1 process with 2 threads, speed at the largest batch (128)", "x"),
        "two_process_speedup_over_two_threads_b1024": _f(
            "2 processes over 1 process with 2 threads, speed at batch 1,024", "x"),
        "launch_seconds": _f("torchrun launch of the 2-process script, wall time", "s"),
    },
}


def describe(lesson: str, name: str) -> Figure | None:
    """The figure ``name`` that lesson ``lesson`` records, or None if the table lacks it."""
    return FIGURES.get(str(lesson).zfill(2), {}).get(name)


def ordered(lesson: str, names) -> list[str]:
    """``names`` in the order of the table (the lesson's order), unknown names last, sorted."""
    known = list(FIGURES.get(str(lesson).zfill(2), {}))
    return sorted(names, key=lambda n: (known.index(n), "") if n in known else (len(known), n))


def number(value) -> str:
    """A figure with 4 significant digits (thousands separated), as a reader wants to see it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3e}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def shown(value, unit: str) -> tuple[str, str]:
    """(value, unit) as shown: a fraction in per cent with two decimals, a ratio with ×."""
    if unit == "fraction" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{100 * value:.2f}", "%"
    return number(value), {"x": "×"}.get(unit, unit)


def table_cell(text) -> str:
    """Text safe inside a Markdown table cell ("–" when empty)."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or "–"


def published(figure: Figure | None, for_book: bool) -> str:
    """The anchor of a figure: with a citation on the book's page, with its source elsewhere."""
    if figure is None or not figure.anchor:
        return ""
    if for_book and figure.cite:
        return f"{figure.anchor} {{cite:p}}`{figure.cite}`"
    return f"{figure.anchor}, {figure.source}" if figure.source else figure.anchor


def table_lines(run: dict, for_book: bool = True) -> list[str]:
    """The Markdown table of one run's figures, in the lesson's order: title, value and unit, and
    for a full-mode run the target and the published anchor beside them."""
    lesson, figures = str(run.get("lesson", "")), run.get("figures") or {}
    full = run.get("mode") == "full"
    head = ["Figure", "Value", "Unit"] + (["Target", "Published"] if full else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in ordered(lesson, figures):
        fig = figures[name] if isinstance(figures[name], dict) else {"value": figures[name]}
        about = describe(lesson, name)
        value, unit = shown(fig.get("value"), fig.get("unit", ""))
        cells = [about.title if about else f"`{name}`", value, unit]
        if full:
            cells += [about.target if about else "", published(about, for_book)]
        lines.append("| " + " | ".join(table_cell(c) for c in cells) + " |")
    return lines
