"""Tests of course_utils.lessons.quant (lesson 07) against PyTorch's own quantization
(torch.quantize_per_tensor / per_channel, its observers and fake-quantize ops, the
int8 kernel torch._int_mm) and against autograd."""
import pytest
import torch
from torch import nn

from course_utils.lessons import quant


def _x(*shape, seed=0, scale=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def test_qrange():
    """Are the grids those of int8, uint8 and int4?"""
    assert quant.qrange(8) == (-128, 127)
    assert quant.qrange(8, signed=False) == (0, 255)
    assert quant.qrange(4) == (-8, 7)


@pytest.mark.parametrize("dtype,signed", [(torch.quint8, False), (torch.qint8, True)])
def test_quantize_matches_quantize_per_tensor(dtype, signed):
    """Do quantize and dequantize give PyTorch's integers and values, ties included?"""
    qmin, qmax = quant.qrange(8, signed)
    scale, zero_point = 0.05, (3 if signed else 120)
    x = torch.cat([_x(1000), torch.tensor([0.025, 0.075, -0.125, 100.0, -100.0])])
    zero_point += zero_point % 2          # even: see the next test for odd ones
    ours = quant.quantize(x, scale, zero_point, qmin, qmax)
    theirs = torch.quantize_per_tensor(x, scale, zero_point, dtype)
    assert torch.equal(ours, theirs.int_repr().int())
    assert torch.equal(quant.dequantize(ours, scale, zero_point), theirs.dequantize())


def test_ties_with_an_odd_zero_point():
    """At exact ties, torch.fake_quantize rounds x / s and then adds z, as we do, while
    torch.quantize_per_tensor rounds x / s + z: with an odd z they differ by one."""
    x = torch.tensor([0.025, 0.075, -0.125])             # x / s = 0.5, 1.5, -2.5
    ours = quant.quantize(x, 0.05, 3, -128, 127)
    assert ours.tolist() == [3, 5, 1]
    fq = torch.fake_quantize_per_tensor_affine(x, 0.05, 3, -128, 127)
    assert torch.equal(quant.dequantize(ours, 0.05, 3), fq)
    q = torch.quantize_per_tensor(x, 0.05, 3, torch.qint8).int_repr()
    assert q.tolist() == [4, 4, 0]


def test_affine_qparams_match_minmax_observer():
    """Are scale and zero point those of PyTorch's MinMaxObserver (range with 0 in it)?"""
    from torch.ao.quantization.observer import MinMaxObserver
    for seed, shift in [(0, 0.0), (1, 5.0), (2, -5.0)]:
        x = _x(500, seed=seed) + shift
        observer = MinMaxObserver(dtype=torch.quint8)
        observer(x)
        scale, zero_point = observer.calculate_qparams()
        ours = quant.affine_qparams(x.min(), x.max(), 8, signed=False)
        torch.testing.assert_close(ours[0], scale[0])
        assert ours[1].item() == zero_point.item()


def test_per_channel_symmetric_matches_quantize_per_channel():
    """Is per-channel symmetric quantization PyTorch's with the same scales?"""
    w = _x(6, 5, 3, 3) * torch.arange(1, 7).view(6, 1, 1, 1)   # channels of unequal size
    q, scale = quant.quantize_symmetric(w, 8, per_channel=True)
    assert scale.shape == (6, 1, 1, 1)
    theirs = torch.quantize_per_channel(w, scale.flatten().double(),
                                        torch.zeros(6, dtype=torch.long), 0, torch.qint8)
    assert torch.equal(q, theirs.int_repr())
    assert q.abs().max() == 127 and q.min() >= -127          # restricted grid
    err = (q.float() * scale - w).abs()
    assert (err <= scale / 2 + 1e-6).all()                    # no value was clipped


def test_groups_round_trip_within_half_a_step():
    """Does per-group quantization keep every weight within half of its group's step?"""
    w = _x(8, 64)
    q, scale = quant.quantize_groups(w, bits=4, group_size=16)
    assert q.shape == w.shape and scale.shape == (8, 4, 1)
    assert q.min() >= -7 and q.max() <= 7
    err = (quant.dequantize_groups(q, scale) - w).reshape(8, 4, 16).abs()
    assert (err <= scale / 2 + 1e-6).all()
    with pytest.raises(ValueError, match="multiple of the group size"):
        quant.quantize_groups(_x(2, 10), group_size=4)


def test_rounding_error_variance_is_s2_over_12():
    """Is the error of unclipped rounding uniform, with variance s^2 / 12?"""
    x = _x(400_000, scale=1.0)
    scale = 0.1
    err = quant.fake_quantize(x, scale, 0, -10_000, 10_000) - x
    assert abs(err.var().item() / (scale ** 2 / 12) - 1) < 0.02
    assert err.abs().max() <= scale / 2 + 1e-6


def test_mse_range_beats_minmax_on_heavy_tails():
    """On heavy-tailed values at 4 bits, does the MSE search clip the tail and cut the
    error, and does the percentile clip too?"""
    x = torch.distributions.StudentT(3.0).sample((100_000,)).abs()
    (lo, hi), fractions, errors = quant.mse_range(x, bits=4, signed=False)
    assert hi < 0.5 * x.max()
    mse_best = quant.quantization_mse(x, lo, hi, 4)
    mse_minmax = quant.quantization_mse(x, *quant.minmax_range(x), 4)
    assert mse_best < 0.5 * mse_minmax
    assert mse_best <= errors.min().item() * (1 + 1e-6)   # the bottom's search helps
    assert quant.percentile_range(x, 99.9)[1] < 0.5 * x.max()


def test_int8_matmul_matches_int_mm_and_the_bound():
    """Is the int32 product exact (== torch._int_mm), and the float error within the
    bound derived in the lesson?"""
    a, b = _x(32, 256, seed=1), _x(256, 48, seed=2)
    qa, sa = quant.quantize_symmetric(a, 8, per_channel=False)
    qb, sb = quant.quantize_symmetric(b, 8, per_channel=False)
    acc = quant.int8_matmul(qa, qb)
    assert acc.dtype == torch.int32
    assert torch.equal(acc, torch._int_mm(qa, qb))
    dequantized = (qa.double() * sa.double()) @ (qb.double() * sb.double())
    torch.testing.assert_close(acc.double() * sa.double() * sb.double(), dequantized)
    bound = quant.matmul_error_bound(a.double(), b.double(), sa.item(), sb.item())
    assert ((a.double() @ b.double() - dequantized).abs() <= bound).all()
    wrapped = quant.int8_matmul(qa, qb, accumulator=torch.int16)   # overflows
    assert not torch.equal(wrapped.int(), acc)


def test_requantize_rounds_and_clamps():
    """Does requantization round to the nearest output integer and saturate?"""
    acc = torch.tensor([0, 10, 15, -25, 10_000, -10_000], dtype=torch.int32)
    q = quant.requantize(acc, scale_in=0.1, scale_out=1.0)
    assert q.tolist() == [0, 1, 2, -2, 127, -128]      # 1.5 -> 2, -2.5 -> -2 (to even)


def test_fake_quantize_ste_matches_pytorch_forward_and_backward():
    """Are value and gradient those of torch.fake_quantize_per_tensor_affine?"""
    x = _x(2000, seed=3).requires_grad_()
    y = quant.fake_quantize_ste(x, 0.02, 10, 0, 255)
    y.backward(torch.ones_like(y))
    x2 = x.detach().clone().requires_grad_()
    y2 = torch.fake_quantize_per_tensor_affine(x2, 0.02, 10, 0, 255)
    y2.backward(torch.ones_like(y2))
    torch.testing.assert_close(y, y2)
    assert torch.equal(x.grad, x2.grad)
    assert 0 < x.grad.sum() < x.numel()                # clipped values get no gradient


def test_round_ste_gradient_is_identity():
    """Does the straight-through round pass the gradient unchanged?"""
    x = _x(10).requires_grad_()
    (quant.round_ste(x) * torch.arange(10.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(10.0))


def test_activation_quantizer_tracks_extremes_and_moving_average():
    """Does calibration keep the extremes, and training move the range slowly?"""
    aq = quant.ActivationQuantizer(8)
    aq(torch.tensor([0.0, 1.0]))
    aq(torch.tensor([-2.0, 0.5]))
    assert (aq.min_val.item(), aq.max_val.item()) == (-2.0, 1.0)
    aq.momentum = 0.5
    aq(torch.tensor([0.0, 3.0]))
    assert (aq.min_val.item(), aq.max_val.item()) == (-1.0, 2.0)
    aq.observing = False
    aq(torch.tensor([100.0]))
    assert aq.max_val.item() == 2.0


def _cnn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    model.train()
    for _ in range(3):                                   # non-trivial running stats
        model(torch.randn(8, 1, 6, 6) * 2 + 1)
    return model.eval()


def test_fold_batchnorms_keeps_outputs():
    """Does folding BatchNorm into the conv leave the eval-mode outputs unchanged?"""
    model, x = _cnn(), torch.randn(5, 1, 6, 6)
    folded = quant.fold_batchnorms(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_prepare_fake_quant_is_close_at_8_bits_and_exact_when_off():
    """Is 8-bit fake quantization close to float, and bits=None exactly float? Does
    the gradient reach every weight (the straight-through estimator)?"""
    model, x = quant.fold_batchnorms(_cnn()), torch.randn(16, 1, 6, 6)
    off = quant.prepare_fake_quant(model, None, None)
    assert torch.equal(off(x), model(x))
    fq = quant.prepare_fake_quant(model, 8, 8)
    fq(x)                                                # calibrate
    quant.set_observing(fq, False)
    y, y_float = fq(x), model(x)
    assert (y - y_float).abs().max() < 0.05 * y_float.abs().max()
    fq2 = quant.prepare_fake_quant(model, 2, 2)
    fq2(x)
    assert (fq2(x) - y_float).abs().max() > (y - y_float).abs().max()
    y.sum().backward()
    for p in fq.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_state_dict_bytes():
    """Does the size count every tensor at its element size?"""
    sd = {"w": torch.zeros(10, 4), "q": torch.zeros(10, 4, dtype=torch.int8),
          "h": torch.zeros(3, dtype=torch.float16), "n": 5}
    assert quant.state_dict_bytes(sd) == 160 + 40 + 6


def test_mse_range_searches_the_bottom_of_one_sided_data():
    """For GELU-like data (a short negative tail, a long positive one), does the search
    cut the top and choose the bottom by its own error?"""
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.gelu(torch.randn(50_000, generator=g) * 2)
    x = torch.cat([x, torch.tensor([30.0])])                  # one outlier on top
    (lo, hi), _, _ = quant.mse_range(x, bits=4)
    assert hi < 10
    top_only = quant.quantization_mse(x, x.min().item(), hi, 4)
    assert quant.quantization_mse(x, lo, hi, 4) <= top_only


def test_smooth_quant_keeps_the_function_and_shrinks_outliers():
    """Does SmoothQuant leave the float outputs unchanged while the scaled input's
    largest feature shrinks relative to the typical one?"""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 3))
    x = torch.randn(64, 6)
    x[:, 2] *= 30                                        # an outlier input feature
    absmax = quant.input_absmax(model, ["2"], lambda: model(x))
    assert absmax["2"].shape == (8,)
    smoothed = quant.smooth_quant(model, absmax, alpha=0.5)
    torch.testing.assert_close(smoothed(x), model(x), rtol=1e-5, atol=1e-5)
    seen = quant.input_absmax(smoothed, ["2.1"], lambda: smoothed(x))["2.1"]
    ratio = lambda v: (v.max() / v.median()).item()      # noqa: E731
    assert ratio(seen) < ratio(absmax["2"])
