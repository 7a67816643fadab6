"""Tests of course_utils.lessons.cnn: the from-scratch layers against torch, the models, augmentation, shapes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.lessons.cnn import (Augmented, LeNet5, SmallCNN, augment, conv2d_loops, conv2d_unfold, conv_output_size,
                              flatten_size, maxpool2d, nchw_to_nhwc, random_hflip, random_shift, receptive_field,
                              torch_to_keras_conv_weights, torch_to_keras_dense_weights)

SETTINGS = [dict(), dict(stride=2), dict(padding=1), dict(padding=2, stride=3), dict(dilation=2),
            dict(stride=(2, 1), padding=(1, 0)), dict(padding=1, dilation=(1, 2))]


@pytest.mark.parametrize("kw", SETTINGS)
@pytest.mark.parametrize("conv", [conv2d_loops, conv2d_unfold])
def test_conv2d_matches_torch(conv, kw):
    """Do the loop and im2col convolutions equal F.conv2d for every padding/stride/dilation setting?"""
    g = torch.Generator().manual_seed(0)
    X, weight, bias = torch.randn(2, 3, 9, 8, generator=g), torch.randn(4, 3, 3, 2, generator=g), torch.randn(4, generator=g)
    torch.testing.assert_close(conv(X, weight, bias, **kw), F.conv2d(X, weight, bias, **kw), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv(X, weight, None, **kw), F.conv2d(X, weight, None, **kw), rtol=1e-5, atol=1e-5)


def test_conv2d_rejects_channel_mismatch():
    """Does the loop convolution say so when input and kernel channels differ?"""
    with pytest.raises(ValueError, match="channels"):
        conv2d_loops(torch.zeros(1, 2, 5, 5), torch.zeros(1, 3, 3, 3))


def test_conv2d_gradients_match_torch():
    """Does autograd through conv2d_unfold give F.conv2d's gradients?"""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(2, 2, 6, 6, generator=g, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3, generator=g, requires_grad=True)
    grads = torch.autograd.grad(conv2d_unfold(X, weight, padding=1).square().sum(), (X, weight))
    expected = torch.autograd.grad(F.conv2d(X, weight, padding=1).square().sum(), (X, weight))
    for got, exp in zip(grads, expected):
        torch.testing.assert_close(got, exp, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n, k, p, s, d", [(28, 5, 0, 1, 1), (28, 3, 1, 1, 1), (7, 2, 0, 2, 1), (8, 3, 0, 2, 1),
                                           (28, 3, 0, 1, 2), (32, 5, 2, 3, 2), (5, 5, 0, 1, 1)])
def test_conv_output_size_matches_conv2d(n, k, p, s, d):
    """Does the output-size formula give nn.Conv2d's actual output size?"""
    out = nn.Conv2d(1, 1, k, padding=p, stride=s, dilation=d)(torch.zeros(1, 1, n, n))
    assert conv_output_size(n, k, p, s, d) == out.shape[-1]
    assert isinstance(conv_output_size(n, k, p, s, d), int)


def test_conv_output_size_rejects_too_big_kernel():
    """Does a kernel larger than the padded input raise instead of returning a size <= 0?"""
    with pytest.raises(ValueError):
        conv_output_size(4, 3, dilation=2)


@pytest.mark.parametrize("k, s", [(2, None), (2, 2), (3, 2), (3, 1), ((2, 3), (2, 1))])
def test_maxpool_matches_torch(k, s):
    """Does maxpool2d equal F.max_pool2d, including floored odd sizes and overlapping windows?"""
    X = torch.randn(2, 3, 9, 7, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(maxpool2d(X, k, s), F.max_pool2d(X, k, s), rtol=0, atol=0)


def test_receptive_field():
    """Does the receptive field grow by (k-1) x jump per layer (two 3x3 -> 5, LeNet's C1..S4 -> 16)?"""
    assert receptive_field([(3, 1), (3, 1)]) == 5
    assert receptive_field([(3, 1), (3, 1), (3, 1)]) == 7
    assert receptive_field([(5, 1), (2, 2), (5, 1), (2, 2)]) == 16
    assert receptive_field([(3, 1, 2)]) == 5


def test_receptive_field_by_gradient():
    """Does the formula agree with the pixels whose gradient reaches one output unit of a real stack?"""
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    with torch.no_grad():
        for m in stack:
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0)
    X = torch.rand(1, 1, 40, 40, requires_grad=True)
    out = stack(X)
    out[0, 0, 1, 1].backward()
    rows = X.grad[0, 0].abs().sum(1).nonzero()
    # max pooling routes the gradient to one pixel per window, so the gradient footprint can only be smaller
    assert rows.max() - rows.min() + 1 <= receptive_field([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]) == 18


def test_models_shapes_and_params():
    """Do LeNet-5 and SmallCNN give (B, 10) logits with the parameter counts the lesson quotes?"""
    X = torch.zeros(3, 1, 28, 28)
    assert LeNet5()(X).shape == (3, 10)
    assert SmallCNN()(X).shape == (3, 10)
    assert sum(p.numel() for p in LeNet5().parameters()) == 61_706
    assert sum(p.numel() for p in SmallCNN().parameters()) == 104_426
    assert SmallCNN(in_channels=3, image_size=32)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_flatten_size():
    """Does the dummy forward find 128 x 3 x 3 features after SmallCNN's blocks on 28x28, and keep the mode?"""
    model = SmallCNN()
    model.train()
    assert flatten_size(model.features, (1, 28, 28)) == 128 * 3 * 3
    assert model.features.training


def test_random_shift_is_a_shift():
    """Is each shifted image its input moved by at most max_shift pixels, with zeros filled in?"""
    torch.manual_seed(0)
    X = torch.zeros(16, 1, 12, 12)
    X[:, :, 5, 6] = 1.0
    out = random_shift(X, 2)
    assert out.shape == X.shape and out.sum() == 16  # the pixel never leaves the image
    pos = out[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 12, pos % 12
    assert (rows - 5).abs().max() <= 2 and (cols - 6).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1  # not the same shift for all
    assert X[:, :, 5, 6].eq(1).all()  # input untouched


def test_random_hflip_and_augment():
    """Does hflip mirror some images and keep the others, and augment keep shapes?"""
    torch.manual_seed(0)
    X = torch.arange(32.0).view(2, 1, 4, 4).repeat(8, 1, 1, 1)
    out = random_hflip(X)
    flipped = (out == X.flip(-1)).flatten(1).all(1)
    kept = (out == X).flatten(1).all(1)
    assert (flipped | kept).all() and flipped.any() and kept.any()
    assert augment(X, 1, True).shape == X.shape


def test_augmented_dataset():
    """Does Augmented keep labels and shapes, and change images between reads?"""
    torch.manual_seed(0)
    ds = torch.utils.data.TensorDataset(torch.rand(4, 1, 8, 8), torch.arange(4))
    aug = Augmented(ds, max_shift=2)
    x, y = aug[1]
    assert x.shape == (1, 8, 8) and y == 1 and len(aug) == 4
    assert any(not torch.equal(aug[1][0], aug[1][0]) for _ in range(10))


def test_weight_layouts():
    """Do the converters give HWIO conv kernels and (in, out) dense kernels in Keras' flatten order?"""
    w = torch.randn(4, 3, 5, 2)
    k = torch_to_keras_conv_weights(w)
    assert k.shape == (5, 2, 3, 4) and k[1, 0, 2, 3] == w[3, 2, 1, 0].item()
    lin = torch.randn(6, 2 * 3 * 4)  # follows a (C=2, H=3, W=4) feature map
    d = torch_to_keras_dense_weights(lin, chw=(2, 3, 4))
    fmap = torch.randn(2, 3, 4)
    torch.testing.assert_close(torch.from_numpy(fmap.permute(1, 2, 0).reshape(-1).numpy() @ d),
                               lin @ fmap.reshape(-1), rtol=1e-5, atol=1e-5)
    assert torch_to_keras_dense_weights(lin).shape == (24, 6)
    assert nchw_to_nhwc(torch.zeros(2, 3, 4, 5)).shape == (2, 4, 5, 3)
