"""Tests of course_utils.plotting."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from course_utils import plotting  # noqa: E402


def test_show_images_accepts_nchw_tensors_and_labels():
    """Does show_images lay out a torch (N, 1, H, W) batch with labels as titles?"""
    fig = plotting.show_images(torch.rand(10, 1, 28, 28), labels=list(range(10)), ncols=5)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 10 and titled == [str(i) for i in range(10)]


def test_confusion_matrix_counts():
    """Does confusion_matrix put true classes on rows and predictions on columns?"""
    cm = plotting.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0])
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_plot_confusion_matrix_and_curves():
    """Do the plotting helpers return axes with the right labels?"""
    ax = plotting.plot_confusion_matrix([0, 1, 1], [0, 1, 0], class_names=["a", "b"], normalize=True)
    assert ax.get_xlabel() == "predicted"
    ax = plotting.plot_curves({"train": [3, 2, 1], "val": [3, 2.5, 2]}, ylabel="loss")
    assert [line.get_label() for line in ax.get_lines()] == ["train", "val"]
