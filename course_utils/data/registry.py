"""The data registry: every file the course downloads, with its SHA-256, mirrors, license and citation.

The on-disk layout is ``<root>/<dataset>/<file>``, the same as the course machines' shared data
folder, so ``COURSE_DATA_DIR`` can point straight at it. Hashes agree with its ``SHA256SUMS``
(a test checks that).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: where it lives under the dataset folder, its hash and its mirrors.

    ``urls`` are tried in order. When ``member`` is set, each URL is a zip archive and the file is
    that member of it (the archive itself is not kept); the member's bytes are what is hashed.
    """

    name: str
    sha256: str
    size: int
    urls: tuple[str, ...]
    member: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A named dataset: its files, where it comes from, its license and how to cite it."""

    name: str
    title: str
    files: tuple[DataFile, ...]
    license: str
    citation: str
    homepage: str
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def file(self, name: str) -> DataFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"dataset {self.name!r} has no file {name!r}; it has {[f.name for f in self.files]}")


def _idx_files(bases: tuple[str, ...], hashes: dict[str, tuple[str, int]]) -> tuple[DataFile, ...]:
    return tuple(DataFile(n, h, s, tuple(b + n for b in bases)) for n, (h, s) in hashes.items())


MNIST = Dataset(
    name="mnist",
    title="MNIST handwritten digits",
    files=_idx_files(
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror
            "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
            "http://yann.lecun.com/exdb/mnist/",  # the original release
        ),
        {
            "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        },
    ),
    license="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
    citation=("Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to document "
              "recognition. Proceedings of the IEEE 86(11):2278-2324, 1998."),
    homepage="http://yann.lecun.com/exdb/mnist/",
    notes="60,000 training and 10,000 test images, 28x28 greyscale, labels 0-9.",
    tags=("images",),
)

FASHION_MNIST = Dataset(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando Research)",
    files=_idx_files(
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://ossci-datasets.s3.amazonaws.com/fashion-mnist/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        {
            "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
            "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
            "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
            "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
        },
    ),
    license="MIT (Copyright (c) 2017 Zalando SE)",
    citation=("H. Xiao, K. Rasul, R. Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking "
              "Machine Learning Algorithms. arXiv:1708.07747, 2017."),
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    notes="Same layout as MNIST; classes T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.",
    tags=("images",),
)

TINY_SHAKESPEARE = Dataset(
    name="tinyshakespeare",
    title="Tiny Shakespeare",
    files=(
        DataFile(
            "input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            1115394,
            (
                "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
            ),
        ),
    ),
    license="Public domain text (Shakespeare); compiled in char-rnn, MIT",
    citation=("A. Karpathy. The Unreasonable Effectiveness of Recurrent Neural Networks. Blog post, 2015. "
              "Data from github.com/karpathy/char-rnn."),
    homepage="https://github.com/karpathy/char-rnn",
    notes="1,115,394 characters, 65 distinct.",
    tags=("text",),
)

_GLUE_SST2 = (
    "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
    "https://huggingface.co/datasets/nyu-mll/glue/resolve/main/SST-2.zip",
)
SST2 = Dataset(
    name="sst2",
    title="GLUE SST-2 (Stanford Sentiment Treebank, binary)",
    files=(
        DataFile("train.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1", 3806081, _GLUE_SST2, "SST-2/train.tsv"),
        DataFile("dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0", 94931, _GLUE_SST2, "SST-2/dev.tsv"),
        DataFile("test.tsv", "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13", 197335, _GLUE_SST2, "SST-2/test.tsv"),
    ),
    license="No explicit license from the authors (research use; redistributed by GLUE)",
    citation=("R. Socher, A. Perelygin, J. Wu, J. Chuang, C. D. Manning, A. Ng, C. Potts. Recursive Deep Models "
              "for Semantic Compositionality Over a Sentiment Treebank. EMNLP 2013. GLUE packaging: A. Wang et al., "
              "GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding. ICLR 2019."),
    homepage="https://gluebenchmark.com/tasks",
    notes="67,349 / 872 / 1,821 rows; test has no labels.",
    tags=("text",),
)

_UCI = (
    "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
    "https://archive.ics.uci.edu/ml/machine-learning-databases/00331/sentiment%20labelled%20sentences.zip",
)
SENTIMENT_SENTENCES = Dataset(
    name="sentiment-labelled-sentences",
    title="Sentiment Labelled Sentences (UCI)",
    files=tuple(
        DataFile(n, h, s, _UCI, f"sentiment labelled sentences/{n}")
        for n, h, s in (
            ("amazon_cells_labelled.txt", "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3", 58226),
            ("imdb_labelled.txt", "aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d", 85285),
            ("yelp_labelled.txt", "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea", 61320),
            ("readme.txt", "736c26aa54e3614459e50314ece0698051f0923d108ed53938dcb1aa0483bfd4", 1070),
        )
    ),
    license="CC BY 4.0",
    citation=("D. Kotzias, M. Denil, N. de Freitas, P. Smyth. From Group to Individual Labels using Deep "
              "Features. KDD 2015. UCI Machine Learning Repository, doi:10.24432/C57604."),
    homepage="https://archive.ics.uci.edu/dataset/331/sentiment+labelled+sentences",
    notes="3 x 1,000 sentences (amazon, imdb, yelp), 500 positive and 500 negative each.",
    tags=("text",),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (MNIST, FASHION_MNIST, TINY_SHAKESPEARE, SST2, SENTIMENT_SENTENCES)}


def get_dataset(name: str) -> Dataset:
    """Look a dataset up by name, with a message listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None
