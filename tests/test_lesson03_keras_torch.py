"""Do PyTorch and Keras compute the same thing from the same weights? (lesson 03's layout section)

Layer by layer (conv, pooling, BatchNorm in eval mode, dense after a flatten) and for the whole
SmallCNN, as a Keras Sequential and as a functional model.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from course_utils.lessons.cnn import (SmallCNN, copy_torch_weights_to_keras, keras_small_cnn, nchw_to_nhwc,  # noqa: E402
                              torch_to_keras_conv_weights, torch_to_keras_dense_weights)

ATOL = 1e-4


def to_nchw(y):
    return torch.from_numpy(np.array(y)).permute(0, 3, 1, 2)


@pytest.fixture
def X():
    return torch.rand(4, 3, 11, 10, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("padding, keras_padding, stride", [(0, "valid", 1), (1, "same", 1), (0, "valid", 2)])
def test_conv_agrees(X, padding, keras_padding, stride):
    """Does Conv2D with the HWIO kernel equal nn.Conv2d with the OIHW kernel, on NHWC vs NCHW images?"""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=padding, stride=stride)
    layer = keras.layers.Conv2D(5, 3, padding=keras_padding, strides=stride)
    layer.build((None, 11, 10, 3))
    assert tuple(layer.kernel.shape) == (3, 3, 3, 5)  # HWIO
    layer.set_weights([torch_to_keras_conv_weights(conv.weight), conv.bias.detach().numpy()])
    with torch.no_grad():
        expected = conv(X)
    got = to_nchw(layer(nchw_to_nhwc(X)))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=ATOL)


def test_unconverted_kernel_differs(X):
    """Does reshaping (instead of permuting) the OIHW kernel give a different answer? (the test can fail)"""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3)
    layer = keras.layers.Conv2D(5, 3)
    layer.build((None, 11, 10, 3))
    layer.set_weights([conv.weight.detach().numpy().reshape(3, 3, 3, 5), conv.bias.detach().numpy()])
    got = to_nchw(layer(nchw_to_nhwc(X)))
    assert not torch.allclose(got, conv(X).detach(), atol=1e-2)


@pytest.mark.parametrize("k, s", [(2, 2), (3, 2)])
def test_maxpool_agrees(X, k, s):
    """Does MaxPooling2D (valid padding) floor odd sizes as nn.MaxPool2d does?"""
    got = to_nchw(keras.layers.MaxPooling2D(k, s)(nchw_to_nhwc(X)))
    torch.testing.assert_close(got, F.max_pool2d(X, k, s), rtol=0, atol=0)


def test_batchnorm_eval_agrees(X):
    """Does BatchNormalization(epsilon=1e-5) at inference equal nn.BatchNorm2d in eval mode?"""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3).eval()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    layer.build((None, 11, 10, 3))
    layer.set_weights([t.detach().numpy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)])
    got = to_nchw(layer(nchw_to_nhwc(X), training=False))
    torch.testing.assert_close(got, bn(X).detach(), rtol=1e-4, atol=ATOL)


def test_batchnorm_momentum_convention(X):
    """Does Keras' momentum=0.9 update the running statistics as PyTorch's momentum=0.1 does (and 0.1 not)?"""
    X = 2 * X + 1  # batch statistics far from the initial mean 0 and variance 1
    bn = nn.BatchNorm2d(3, momentum=0.1).train()
    bn(X)
    moving = {}
    for momentum in (0.9, 0.1):
        layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-5)
        layer.build((None, 11, 10, 3))
        layer(nchw_to_nhwc(X), training=True)
        moving[momentum] = (layer.moving_mean.numpy(), layer.moving_variance.numpy())
    mean, var = moving[0.9]
    np.testing.assert_allclose(mean, bn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(moving[0.1][0], bn.running_mean.numpy(), atol=1e-3)
    # PyTorch's running variance takes the unbiased batch variance, Keras' the biased one: n/(n-1) apart.
    n = X.shape[0] * X.shape[2] * X.shape[3]
    batch_var = X.var(dim=(0, 2, 3), unbiased=False).numpy()
    np.testing.assert_allclose(var, 0.9 + 0.1 * batch_var, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * batch_var * n / (n - 1), rtol=1e-5)


def test_dense_after_flatten_agrees(X):
    """Does a Dense after Flatten agree only when the weight's inputs are reordered from (C,H,W) to (H,W,C)?"""
    torch.manual_seed(0)
    linear = nn.Linear(3 * 11 * 10, 6)
    with torch.no_grad():
        expected = linear(X.flatten(1))
    dense = keras.layers.Dense(6)
    dense.build((None, 3 * 11 * 10))
    dense.set_weights([torch_to_keras_dense_weights(linear.weight, chw=(3, 11, 10)), linear.bias.detach().numpy()])
    got = np.asarray(dense(keras.layers.Flatten()(nchw_to_nhwc(X))))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=ATOL)
    dense.set_weights([torch_to_keras_dense_weights(linear.weight), linear.bias.detach().numpy()])  # plain transpose
    wrong = np.asarray(dense(keras.layers.Flatten()(nchw_to_nhwc(X))))
    assert not np.allclose(wrong, expected.numpy(), atol=1e-2)


@pytest.mark.parametrize("functional", [False, True])
def test_whole_model_agrees(functional):
    """Does the Keras SmallCNN, given the PyTorch SmallCNN's weights, give the same logits (eval mode)?"""
    torch.manual_seed(0)
    model = SmallCNN()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, as after training
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    model.eval()
    keras_model = keras_small_cnn(functional=functional)
    assert keras_model.count_params() - 2 * (32 + 64 + 128) == sum(p.numel() for p in model.parameters())
    copy_torch_weights_to_keras(model, keras_model, (1, 28, 28))
    X = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(X).numpy()
    got = np.asarray(keras_model(nchw_to_nhwc(X), training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=ATOL)
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_copy_rejects_a_different_architecture():
    """Does copying into a Keras model of another shape fail loudly instead of half-copying?"""
    keras_model = keras_small_cnn(widths=(32, 64))
    with pytest.raises(ValueError):
        copy_torch_weights_to_keras(SmallCNN(), keras_model, (1, 28, 28))
