"""Convolutional networks: the from-scratch layers, the models and the PyTorch <-> Keras bridge.

Taught in lesson 03 (``notebooks/03_convolutional_networks.ipynb``), which writes each function
here first in the open and then says it is this code; its checks use these as reference oracles.

Layouts: PyTorch images are NCHW ``(B, C, H, W)`` and conv kernels OIHW ``(C_out, C_in, kH, kW)``;
Keras (TensorFlow backend, ``data_format="channels_last"``) images are NHWC ``(B, H, W, C)`` and
conv kernels HWIO ``(kH, kW, C_in, C_out)``; a PyTorch ``Linear`` weight is ``(out, in)`` and a
Keras ``Dense`` kernel ``(in, out)``.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------- shapes
def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def conv_output_size(n: int, k: int, padding: int = 0, stride: int = 1, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis: floor((n + 2p - d(k-1) - 1) / s) + 1.

    The formula of the ``torch.nn.Conv2d`` and ``MaxPool2d`` docs: a kernel of size ``k`` dilated
    by ``d`` spans ``d(k-1)+1`` inputs; it fits ``n + 2p - d(k-1) - 1`` steps past its first
    position, and a stride ``s`` takes every ``s``-th of them.

    Example:
        >>> conv_output_size(28, 5)            # LeNet's C1 without padding
        24
        >>> conv_output_size(7, 2, stride=2)  # pooling floors: 7 -> 3
        3
    """
    span = dilation * (k - 1) + 1
    if n + 2 * padding < span:
        raise ValueError(f"kernel span {span} is larger than the padded input {n + 2 * padding}")
    return (n + 2 * padding - span) // stride + 1


def receptive_field(layers) -> int:
    """Receptive field (in input pixels) of one output unit after a stack of ``(k, s)`` or ``(k, s, d)`` layers.

    Layer ``l`` adds ``d_l (k_l - 1)`` times the product of the strides before it (the "jump"
    between neighbouring units of its input): ``r = 1 + sum_l d_l (k_l - 1) prod_{i<l} s_i``.

    Example:
        >>> receptive_field([(3, 1), (3, 1)])   # two 3x3 convs see 5x5
        5
    """
    r, jump = 1, 1
    for layer in layers:
        k, s, d = (tuple(layer) + (1,))[:3]
        r += d * (k - 1) * jump
        jump *= s
    return r


def flatten_size(features: nn.Module, input_shape) -> int:
    """Number of features after ``features`` for one input of ``input_shape`` (C, H, W): a dummy forward."""
    was_training = features.training
    features.eval()
    with torch.no_grad():
        out = features(torch.zeros(1, *input_shape))
    features.train(was_training)
    return out[0].numel()


# --------------------------------------------------------------------------- from scratch
def conv2d_loops(X, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D convolution (cross-correlation, as in ``F.conv2d``) with an explicit loop over output positions.

    Args:
        X: input (B, C_in, H, W).
        weight: kernels (C_out, C_in, kH, kW).
        bias: (C_out,) or None.
    Returns:
        (B, C_out, H_out, W_out), with H_out = ``conv_output_size(H, kH, padding, stride, dilation)``.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    B, C_in, H, W = X.shape
    C_out, C_in_w, kH, kW = weight.shape
    if C_in != C_in_w:
        raise ValueError(f"input has {C_in} channels but the kernels expect {C_in_w}")
    H_out = conv_output_size(H, kH, ph, sh, dh)
    W_out = conv_output_size(W, kW, pw, sw, dw)
    Xp = F.pad(X, (pw, pw, ph, ph))  # zeros: (left, right, top, bottom)
    out = X.new_zeros(B, C_out, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            top, left = i * sh, j * sw
            patch = Xp[:, :, top: top + dh * (kH - 1) + 1: dh, left: left + dw * (kW - 1) + 1: dw]  # (B, C_in, kH, kW)
            # Sum over input channels and kernel positions: no kernel flip (cross-correlation).
            out[:, :, i, j] = torch.einsum("bckl,ockl->bo", patch, weight)
    if bias is not None:
        out = out + bias.view(1, C_out, 1, 1)
    return out


def conv2d_unfold(X, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D convolution as one matrix product (im2col): ``F.unfold`` the patches, multiply by the kernels.

    Same arguments and result as ``conv2d_loops``.
    """
    B, C_in, H, W = X.shape
    C_out, _, kH, kW = weight.shape
    H_out = conv_output_size(H, kH, _pair(padding)[0], _pair(stride)[0], _pair(dilation)[0])
    W_out = conv_output_size(W, kW, _pair(padding)[1], _pair(stride)[1], _pair(dilation)[1])
    cols = F.unfold(X, (kH, kW), dilation=dilation, padding=padding, stride=stride)  # (B, C_in*kH*kW, L)
    out = weight.reshape(C_out, -1) @ cols  # (C_out, C_in*kH*kW) @ (B, C_in*kH*kW, L) -> (B, C_out, L)
    if bias is not None:
        out = out + bias.view(1, C_out, 1)
    return out.view(B, C_out, H_out, W_out)  # L = H_out * W_out, row-major


def maxpool2d(X, kernel_size=2, stride=None):
    """Max pooling over ``kernel_size`` windows, ``stride`` defaulting to ``kernel_size`` (as ``F.max_pool2d``).

    Args:
        X: (B, C, H, W).
    Returns:
        (B, C, H_out, W_out): the maximum of each window, channel by channel; sizes are floored.
    """
    kH, kW = _pair(kernel_size)
    sH, sW = _pair(stride if stride is not None else kernel_size)
    windows = X.unfold(2, kH, sH).unfold(3, kW, sW)  # (B, C, H_out, W_out, kH, kW), a view
    return windows.amax(dim=(-2, -1))


# --------------------------------------------------------------------------- augmentation
def random_shift(X, max_shift: int = 2, generator=None):
    """Shift each image by up to ``max_shift`` pixels in x and y, filling with zeros (pad, then random crop).

    Args:
        X: (B, C, H, W). Returns a new tensor; ``X`` is not modified.
    """
    B, C, H, W = X.shape
    s = max_shift
    Xp = F.pad(X, (s, s, s, s))  # (B, C, H + 2s, W + 2s)
    dy = torch.randint(0, 2 * s + 1, (B,), generator=generator, device=X.device)
    dx = torch.randint(0, 2 * s + 1, (B,), generator=generator, device=X.device)
    rows = (torch.arange(H, device=X.device)[None, :] + dy[:, None])  # (B, H)
    cols = (torch.arange(W, device=X.device)[None, :] + dx[:, None])  # (B, W)
    b = torch.arange(B, device=X.device)[:, None, None, None]
    c = torch.arange(C, device=X.device)[None, :, None, None]
    return Xp[b, c, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


def random_hflip(X, p: float = 0.5, generator=None):
    """Mirror each image left-right with probability ``p``."""
    flip = torch.rand(X.shape[0], generator=generator, device=X.device) < p
    return torch.where(flip[:, None, None, None], X.flip(-1), X)


class Augmented(torch.utils.data.Dataset):
    """Wrap an (image, label) dataset so each image is augmented afresh every time it is read."""

    def __init__(self, dataset, max_shift: int = 2, hflip: bool = False):
        self.dataset, self.max_shift, self.hflip = dataset, max_shift, hflip

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        x, y = self.dataset[index]
        return augment(x[None], self.max_shift, self.hflip)[0], y

    def __repr__(self):
        return f"Augmented(n={len(self)}, max_shift={self.max_shift}, hflip={self.hflip})"


def augment(X, max_shift: int = 2, hflip: bool = False, generator=None):
    """The lesson's augmentation: a random shift of up to ``max_shift`` pixels, then an optional mirror."""
    if max_shift:
        X = random_shift(X, max_shift, generator)
    if hflip:
        X = random_hflip(X, generator=generator)
    return X


# --------------------------------------------------------------------------- models
class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) as it is usually rebuilt: tanh, average pooling, full C3 connections.

    For 28x28 MNIST the first convolution pads by 2, which gives the 32x32 input of the paper.
    Differences from the paper: C3 connects every S2 map (the paper used a sparse table), S2/S4 are
    plain averages (the paper had a trainable coefficient and bias), and the output is a linear layer
    (the paper used Euclidean RBF units).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, padding: int = 2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding), nn.Tanh(),  # C1: (B, 6, 28, 28)
            nn.AvgPool2d(2),                                            # S2: (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5), nn.Tanh(),                             # C3: (B, 16, 10, 10)
            nn.AvgPool2d(2),                                            # S4: (B, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),                                               # (B, 400)
            nn.Linear(16 * 5 * 5, 120), nn.Tanh(),                      # C5
            nn.Linear(120, 84), nn.Tanh(),                              # F6
            nn.Linear(84, num_classes),                                 # output logits
        )

    def forward(self, X):
        return self.classifier(self.features(X))


class SmallCNN(nn.Module):
    """A small modern CNN: blocks of conv 3x3 -> BatchNorm -> ReLU -> max-pool 2, then dropout and a linear layer.

    Args:
        in_channels, num_classes: input channels and classes.
        widths: channels of each block; each block halves the image (floored).
        dropout: dropout probability before the classifier (Srivastava et al., 2014).
        image_size: input height = width, used to size the classifier (no dummy forward needed).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths=(32, 64, 128), dropout: float = 0.3,
                 image_size: int = 28):
        super().__init__()
        layers, c, size = [], in_channels, image_size
        for width in widths:
            # bias=False: BatchNorm subtracts the mean right after, so a conv bias would be cancelled.
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c, size = width, conv_output_size(size, 2, stride=2)  # 28 -> 14 -> 7 -> 3
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c * size * size, num_classes))

    def forward(self, X):  # (B, C, H, W) -> (B, num_classes)
        return self.classifier(self.features(X))


class BasicBlock(nn.Module):
    """He et al.'s (2016) basic block: y = ReLU(F(x) + shortcut(x)), two 3x3 convolutions in F.

    F(x) = BN(conv(ReLU(BN(conv_stride(x))))). When the block changes the width or the stride, the
    shortcut is a 1x1 convolution with the same stride followed by BatchNorm (the paper's
    "projection shortcut"); otherwise it is the identity, and the block's Jacobian is I + F'.

    Args:
        in_channels, out_channels: channels in and out.
        stride: 2 halves the image (ceil: 7 -> 4, as padding 1 with kernel 3 gives).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):  # (B, C_in, H, W) -> (B, C_out, H_out, W_out)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """A small ResNet with a global-average-pooling head: the lab's best network.

    A stem (conv 3x3 -> BatchNorm -> ReLU -> max-pool 2), then one ``BasicBlock`` per width, the
    first at the stem's resolution and each later one halving it (28 -> 14 -> 14 -> 7 -> 4), then
    global average pooling (one mean per channel), dropout and one linear layer: the head has
    ``widths[-1] * num_classes`` weights whatever the image size.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths=(32, 64, 128),
                 dropout: float = 0.3):
        super().__init__()
        c = widths[0]
        layers = [nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                  nn.MaxPool2d(2)]
        for i, width in enumerate(widths):
            layers.append(BasicBlock(c, width, stride=1 if i == 0 else 2))
            c = width
        self.features = nn.Sequential(*layers)           # (B, widths[-1], h, w)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, widths[-1])
                                        nn.Dropout(dropout), nn.Linear(c, num_classes))

    def forward(self, X):  # (B, C, H, W) -> (B, num_classes)
        return self.classifier(self.features(X))


def keras_small_cnn(input_shape=(28, 28, 1), num_classes: int = 10, widths=(32, 64, 128), dropout: float = 0.3,
                    functional: bool = False):
    """The Keras 3 twin of ``SmallCNN`` (channels-last input), as a ``Sequential`` or a functional ``Model``.

    BatchNormalization uses PyTorch's defaults (``momentum=0.9`` is PyTorch's 0.1, ``epsilon=1e-5``;
    Keras' own defaults are 0.99 and 1e-3), so the two compute the same thing from the same weights.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    from keras import layers

    def block(width):
        return [layers.Conv2D(width, 3, padding="same", use_bias=False),
                layers.BatchNormalization(momentum=0.9, epsilon=1e-5), layers.ReLU(), layers.MaxPooling2D(2)]

    stack = [layer for width in widths for layer in block(width)]
    stack += [layers.Flatten(), layers.Dropout(dropout), layers.Dense(num_classes)]
    if not functional:
        return keras.Sequential([keras.Input(shape=input_shape)] + stack, name="small_cnn")
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for layer in stack:
        x = layer(x)
    return keras.Model(inputs, x, name="small_cnn_functional")


# --------------------------------------------------------------------------- PyTorch -> Keras weights
def torch_to_keras_conv_weights(weight):
    """A conv kernel from PyTorch's OIHW (C_out, C_in, kH, kW) to Keras' HWIO (kH, kW, C_in, C_out), as NumPy."""
    return weight.detach().cpu().permute(2, 3, 1, 0).numpy()


def torch_to_keras_dense_weights(weight, chw=None):
    """A ``Linear`` weight (out, in) as a Keras ``Dense`` kernel (in, out), as NumPy.

    Args:
        chw: ``(C, H, W)`` when the layer follows a Flatten of conv feature maps. PyTorch flattens
            NCHW in (C, H, W) order, Keras flattens NHWC in (H, W, C) order, so the input axis is
            reordered; a plain transpose would silently scramble the features.
    """
    w = weight.detach().cpu()
    if chw is not None:
        C, H, W = chw
        w = w.reshape(-1, C, H, W).permute(0, 2, 3, 1).reshape(w.shape[0], -1)  # inputs in (H, W, C) order
    return w.T.contiguous().numpy()


def copy_torch_weights_to_keras(torch_model: nn.Module, keras_model, input_chw) -> None:
    """Copy every Conv2d/BatchNorm2d/Linear of ``torch_model`` into the Keras layers with weights, in order.

    Modules must be registered in the order they run (as in ``nn.Sequential`` models).

    Args:
        input_chw: the input shape ``(C, H, W)``; a dummy forward finds the feature-map shape at each Flatten.
    """
    flatten_inputs = {}

    def remember_input(module, inputs, output):  # a forward hook; returning None keeps the output
        flatten_inputs[module] = tuple(inputs[0].shape[1:])

    hooks = [m.register_forward_hook(remember_input) for m in torch_model.modules() if isinstance(m, nn.Flatten)]
    was_training = torch_model.training
    torch_model.eval()
    with torch.no_grad():
        torch_model(torch.zeros(1, *input_chw))
    torch_model.train(was_training)
    for h in hooks:
        h.remove()

    keras_layers = [layer for layer in keras_model.layers if layer.weights]
    pairs, chw = [], None
    for module in torch_model.modules():
        if isinstance(module, nn.Flatten):
            shape = flatten_inputs.get(module, ())
            chw = shape if len(shape) == 3 else None  # only (C, H, W) maps need reordering
        elif isinstance(module, nn.Conv2d):
            values = [torch_to_keras_conv_weights(module.weight)]
            if module.bias is not None:
                values.append(module.bias.detach().cpu().numpy())
            pairs.append((module, values))
        elif isinstance(module, nn.BatchNorm2d):
            pairs.append((module, [t.detach().cpu().numpy() for t in
                                   (module.weight, module.bias, module.running_mean, module.running_var)]))
        elif isinstance(module, nn.Linear):
            values = [torch_to_keras_dense_weights(module.weight, chw)]
            if module.bias is not None:
                values.append(module.bias.detach().cpu().numpy())
            pairs.append((module, values))
            chw = None
    if len(pairs) != len(keras_layers):
        raise ValueError(f"{len(pairs)} PyTorch layers with weights but {len(keras_layers)} Keras layers with weights")
    for (module, values), layer in zip(pairs, keras_layers):
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(f"{type(module).__name__} -> Keras {layer.name}: shapes {got} do not fit {expected}")
        layer.set_weights(values)


def nchw_to_nhwc(X):
    """Images from PyTorch's (B, C, H, W) to Keras' (B, H, W, C), as NumPy."""
    return X.detach().cpu().permute(0, 2, 3, 1).numpy()
