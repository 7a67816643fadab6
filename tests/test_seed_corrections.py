"""Do the lessons still correct every seed error in their scope (issue 10, section 2)?

A correction is a "What tutorials get wrong" box in the lesson that teaches the idea: a
MyST admonition in a markdown cell,

    :::{admonition} What tutorials get wrong: <topic>
    :class: warning
    <the quotation (Chinese and English), why it is wrong, the correct statement>
    :::

followed by the code cell that shows it (a run). CORRECTIONS lists the boxes: phrases
of the seeds' wrong claims, quoted verbatim, and of the correct statement; one box must
hold them all. The seeds live outside the repository (../shared/seeds, or
$COURSE_SEEDS_DIR); where they are present, the quotations are checked against them too.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

# An admonition titled with the box name; the closing fence repeats the opening one.
BOX = re.compile(
    r"^(?P<fence>:{3,}|`{3,})\{admonition\}[ \t]*What tutorials get wrong\b"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Correction:
    """One box: its lesson, the seeds' wrong claims it quotes, the correct statement."""

    lesson: str  # notebook file name under notebooks/
    topic: str
    quote: tuple[tuple[str, str], ...]  # (seed "000".."004", a verbatim piece of it)
    correct: tuple[str, ...]  # pieces of the correct statement

    @property
    def seeds(self) -> set[str]:
        return {seed for seed, _ in self.quote}

    @property
    def phrases(self) -> tuple[str, ...]:
        return tuple(phrase for _, phrase in self.quote) + self.correct


L01 = "01_gradient_descent.ipynb"
L02 = "02_backpropagation.ipynb"
L03 = "03_convolutional_networks.ipynb"
L04 = "04_recurrent_networks.ipynb"
L05 = "05_self_attention.ipynb"
L07 = "07_quantization.ipynb"
L08 = "08_distillation.ipynb"
L09 = "09_distributed_training.ipynb"

CORRECTIONS = [
    Correction(
        L01, "mini-batch GD updates after each batch, not after all of them",
        (("004", "小批量梯度下降是一种随机梯度下降的变体"),
         ("004", "updates the parameters after processing all batches"),
         ("001", "批量梯度下降（Batch Gradient Descent）"),
         ("001", "它通过将数据分成多个批次来更新模型参数")),
        ("updates the parameters after each mini-batch", "one update per epoch",
         "mini-batch gradient descent under the name of batch gradient descent")),
    Correction(
        L01, "momentum is faster on valleys and escapes nothing",
        (("004", "动量梯度下降是一种随机梯度下降的变体"),
         ("004", "which helps the model escape local minima")),
        (r"\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}",
         "no guarantee about which minimum is reached")),
    Correction(
        L01, "an exponential decay that is polynomial, a step decay that is a warmup",
        (("001", "指数衰减学习率"), ("001", r"\alpha_t = \alpha_0 \times (1 - \frac{t}{T})^p"),
         ("001", "步长衰减学习率"), ("001", r"\alpha_t = \alpha_0 \times \frac{t}{T}")),
        ("is polynomial decay", "PolynomialLR", "is a linear warmup",
         r"\alpha_0\, \gamma^{\lfloor t/s \rfloor}")),
    Correction(
        L01, "PyTorch calls on a Keras optimizer",
        (("003", "以下是使用TensorFlow构建循环神经网络的代码实例"),
         ("003", "optimizer.zero_grad()"), ("003", "loss.backward()")),
        ("tf.GradientTape()",
         "optimizer.apply_gradients(zip(grads, net.trainable_variables))")),
    Correction(
        L01, "TensorFlow 1 sessions",
        (("004", "会话 (Session)"),
         ("004", "Sessions are used to execute TensorFlow computations")),
        ("executes eagerly", "tf.function")),
    Correction(
        L02, "deeper nets and L1/L2 as cures for vanishing gradients",
        (("000", "如何解决梯度消失问题？"), ("000", "使用正则化技术，例如L1、L2正则化等"),
         ("000", "使用更深的网络结构，例如ResNet、VGG等")),
        ("Deeper plain networks make vanishing gradients worse",
         "L1/L2 regularization does not address them", "identity Jacobian $I + f'$",
         "gradient clipping")),
    Correction(
        L03, "a convolution formula without the output position",
        (("002", r"y(x,y) = \sum_{i=0}^{k-1}\sum_{j=0}^{k-1} x(i,j) \cdot kernel(i,j)"),
         ("002", "是输入图像的像素值")),
        (r"n_\text{out} = \lfloor (n + 2p - k)/s \rfloor + 1",)),
    Correction(
        L03, "greyscale with a (224, 224, 3) input fed CIFAR-10",
        (("002", "将颜色信息转换为灰度图像"), ("002", "input_shape=(224, 224, 3)")),
        ('color_mode="grayscale"', "keras.Input(shape=(32, 32, 3))")),
    Correction(
        L03, "validating on the test set",
        (("002", "validation_data=(x_test, y_test)"),),
        ("evaluate the test set once, at the end",)),
    Correction(
        L03, "what heatmaps show",
        (("004", "可以 highlight 模型在输入数据上的重要区域"),),
        ("it must change when the weights are randomized", "adebayo2018")),
    Correction(
        L04, "RNNs capture long-range dependencies",
        (("000", "RNN可以捕捉序列中的长距离依赖关系"),
         ("003", "利用循环层来捕捉序列中的长距离依赖关系")),
        ("decay per step", "truncated BPTT", "learns short dependencies")),
    Correction(
        L04, "the GRU and the LSTM described with one sentence",
        (("004", "GRU 是一种 gates 的 RNN 模型。它可以 selectively forget or remember past "
                 "information"),
         ("004", "LSTM 是一种 gates 的 RNN 模型。它可以 selectively forget or remember past "
                 "information")),
        ("**two gates**", "**three gates**", "**cell state**", "updated by an addition")),
    Correction(
        L04, "regularization, depth and gates as cures for vanishing gradients through time",
        (("000", "如何解决梯度消失问题？"), ("000", "使用正则化技术，例如L1、L2正则化等"),
         ("000", "使用更深的网络结构，例如ResNet、VGG等"),
         ("000", "门控单元可以有效地减少梯度消失问题")),
        ("L2 regularization shrinks", "makes vanishing *worse*",
         "the product over time unchanged", "gradient clipping")),
    Correction(
        L04, "seed 003's TensorFlow RNN, which does not run",
        (("003", "以下是使用TensorFlow构建循环神经网络的代码实例"),
         ("003", "outputs, states = self.lstm(inputs, states)"),
         ("003", "return tf.zeros((batch_size, self.hidden_dim))"),
         ("003", "Dense(output_dim, activation='softmax')"),
         ("003", "tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=outputs)"),
         ("003", "optimizer.zero_grad()")),
        ("return_state=True", "`[h, c]`", "**double softmax**", "from_logits=True",
         "tf.GradientTape()")),
    Correction(
        L05, "the attention formula without its shapes, its rows or its mask",
        (("002", r"Attention(Q,K,V) = softmax(\frac{QK^T}{\sqrt{d_k}})V"),
         ("002", "$d_k$ 是键矩阵的维度"), ("002", "$softmax$ 是归一化函数"),
         ("002", "变压器（Transformer）")),
        ("the width of **one key**", "**each row separately**", "its **mask**",
         "the architecture is called Transformer")),
    Correction(
        L05, "self-attention does not preserve the order",
        (("004", "Positional encoding is a technique used in Transformers to inject "
                 "position information into the input sequence."),
         ("004", "Since self-attention does not inherently preserve the order of the input "
                 "sequence, positional encoding is necessary")),
        ("permutation-equivariant", "haviv2022", "RoPE rotates the queries and keys")),
    Correction(
        L05, "multi-head attention attends to several parts at once",
        (("004", "Multi-head attention is a technique used in Transformers to allow the "
                 "model to attend to multiple parts of the input sequence simultaneously."),),
        ("**different distributions**", r"$4 d_\text{model}^2 + 4 d_\text{model}$",
         "for the parameters and the cost of one")),
    Correction(
        L05, "parallel computation and long-range dependencies",
        (("000", "它通过自注意力机制实现了并行计算和长距离依赖关系"),
         ("000", "它可以计算输入序列中每个位置的关注度，从而实现并行计算和长距离依赖关系"),
         ("004", "This can help the model capture long-range dependencies")),
        ("holds for **training**", "**generation**", "**inside the window**",
         "sees nothing beyond that window")),
    Correction(
        L05, "attention weights as an explanation",
        (("004", "Attention weights 是一种可视化工具，可以 highlight 模型在输入数据上的注意力权重"),),
        ("jain2019", "a hypothesis about the model")),
    Correction(
        L07, "quantization reduces memory, not the computational complexity",
        (("004", "用于将浮点数参数转换为整数参数，以减少内存使用和计算复杂度"),),
        ("The computational complexity does not change",
         "Quantization stores weights, and optionally activations, on a grid of")),
    Correction(
        L08, "distillation trains a small model; it reduces no model's complexity",
        (("004", "知识蒸馏是一种技术，用于将一个大型模型的知识迁移到一个小型模型中。"
                 "这可以降低模型的复杂性，并使它适用于边缘设备和移动设备"),),
        ("Distillation reduces no model's complexity",
         "Knowledge distillation is a way to train a model, the student, of an")),
    Correction(
        L09, "distributed training shortens the time, not the work",
        (("004", "分布式训练是一种技术，用于在多台计算节点上同时训练大规模模型。"
                 "它可以提高训练速度和效率，并减少训练所需的时间和资源。"),
         ("004", "分布式训练是指在多台计算节点上同时执行模型训练，以提高训练速度和效率")),
        ("it does not reduce the work, and as a rule not the resources either",
         "Distributed training spreads one training run over $P$ devices",
         "it costs the same arithmetic as one device plus the communication")),
]
LESSONS = sorted({c.lesson for c in CORRECTIONS})


def normalize(text: str) -> str:
    """The text without blockquote markers, each run of whitespace made one space."""
    lines = (re.sub(r"^\s*(>\s?)+", "", line) for line in text.splitlines())
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def find_boxes(nb) -> list[tuple[int, str]]:
    """(cell index, normalized body) of every "What tutorials get wrong" box of nb."""
    return [(i, normalize(m.group("body")))
            for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
            for m in BOX.finditer(cell.source)]


def box_for(correction: Correction, boxes) -> tuple[int, str] | None:
    """The first of boxes that holds every phrase of the correction, or None."""
    phrases = [normalize(p) for p in correction.phrases]
    holding = ((i, body) for i, body in boxes if all(p in body for p in phrases))
    return next(holding, None)


def read_lesson(name: str):
    return nbformat.read(ROOT / "notebooks" / name, as_version=4)


def seeds_dir() -> Path | None:
    """The seed texts' folder, if here: $COURSE_SEEDS_DIR, else ../shared/seeds."""
    env = os.environ.get("COURSE_SEEDS_DIR")
    for candidate in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "seeds"]:
        if candidate.is_dir() and any(candidate.glob("000_*.txt")):
            return candidate
    return None


def test_the_table_covers_all_five_seeds():
    """Does the table list corrections of all five seeds, each quoted and corrected?"""
    assert len(CORRECTIONS) >= 10
    seeds = set().union(*(c.seeds for c in CORRECTIONS))
    assert seeds == {"000", "001", "002", "003", "004"}
    assert all(c.quote and c.correct for c in CORRECTIONS)
    in_chinese = [c for c in CORRECTIONS if any(CJK.search(p) for _, p in c.quote)]
    assert len(in_chinese) >= 8, "the quotations keep the seeds' Chinese originals"


def test_the_box_pattern_finds_boxes_and_only_boxes():
    """Does the parser find a box with either fence, and nothing else?"""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            ":::{admonition} What tutorials get wrong: a\n:class: warning\n\n"
            "> quoted\n> claim\n\nfixed\n:::"),
        nbformat.v4.new_markdown_cell(
            "```{admonition} What tutorials get wrong: b\nsecond\n```"),
        nbformat.v4.new_markdown_cell(
            ":::{admonition} A note\nquoted claim fixed\n:::"),
        nbformat.v4.new_markdown_cell("What tutorials get wrong: quoted claim fixed"),
        nbformat.v4.new_code_cell("# What tutorials get wrong: quoted claim fixed"),
    ]
    boxes = find_boxes(nb)
    assert [i for i, _ in boxes] == [0, 1]
    assert "quoted claim fixed" in boxes[0][1] and "second" in boxes[1][1]
    claim = (("000", "quoted claim"),)
    assert box_for(Correction("x", "t", claim, ("absent",)), boxes) is None
    assert box_for(Correction("x", "t", claim, ("fixed",)), boxes)[0] == 0


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_has_a_box_for_each_of_its_corrections(lesson):
    """Does the lesson hold at least as many boxes as the table lists for it?"""
    expected = sum(c.lesson == lesson for c in CORRECTIONS)
    found = find_boxes(read_lesson(lesson))
    assert len(found) >= expected > 0, f"{lesson}: {len(found)} of {expected} boxes"


@pytest.mark.parametrize("correction", CORRECTIONS,
                         ids=lambda c: f"{c.lesson[:2]}-{c.topic}")
def test_correction_is_in_a_box_followed_by_its_run(correction):
    """Does a box of the lesson quote the seeds and correct them, followed by a run?"""
    nb = read_lesson(correction.lesson)
    boxes = find_boxes(nb)
    found = box_for(correction, boxes)
    if found is None:
        phrases = correction.phrases
        closest = max(boxes, key=lambda b: sum(normalize(p) in b[1] for p in phrases),
                      default=(None, ""))
        missing = [p for p in phrases if normalize(p) not in closest[1]]
        pytest.fail(f"{correction.lesson}: no box corrects '{correction.topic}'; "
                    f"the closest one (cell {closest[0]}) lacks {missing}")
    index = found[0]
    run = nb.cells[index + 1] if index + 1 < len(nb.cells) else None
    assert run is not None and run.cell_type == "code" and run.source.strip(), (
        f"{correction.lesson}: the box of cell {index} is not followed by a code cell")


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_box_is_in_the_table(lesson):
    """Is every box of the lesson listed in CORRECTIONS, so that none goes unchecked?"""
    listed = [c for c in CORRECTIONS if c.lesson == lesson]
    for index, body in find_boxes(read_lesson(lesson)):
        assert any(box_for(c, [(index, body)]) for c in listed), (
            f"{lesson}: the box of cell {index} is not in CORRECTIONS: {body[:80]!r}")


def test_quotations_are_verbatim():
    """Is every quoted phrase in the seed it is attributed to, as written there?"""
    folder = seeds_dir()
    if folder is None:
        pytest.skip("the seed texts are not on this machine (set COURSE_SEEDS_DIR)")
    texts = {p.name[:3]: normalize(p.read_text(encoding="utf-8"))
             for p in folder.glob("00*_*.txt")}
    for c in CORRECTIONS:
        for seed, phrase in c.quote:
            assert normalize(phrase) in texts[seed], f"seed {seed} lacks {phrase!r}"
