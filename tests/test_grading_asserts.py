"""Unit tests of course_utils.grading.asserts: the messages a learner reads when a case fails."""
import numpy as np
import pytest
import torch

from course_utils.grading.asserts import (CheckFailure, call, count_parameters, describe_call, expect_close,
                                          expect_equal, expect_finite, expect_gradient, expect_layers,
                                          expect_loss_decreases, expect_parameter_count, expect_shape,
                                          expect_type, layer_types, numerical_gradient, to_numpy)


def failure(fn, *args, **kwargs) -> str:
    with pytest.raises(CheckFailure) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_close_values_pass_for_numpy_torch_and_numbers():
    """Do equal-within-tolerance values pass whatever mix of numpy, torch and Python numbers?"""
    expect_close(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))
    expect_close(np.float32(0.5), 0.5)
    expect_close(torch.tensor(3.0), 3.0)


def test_first_mismatch_index_and_errors_are_reported():
    """Does a mismatch name the first differing index, the count, and max absolute and relative errors?"""
    got = np.zeros((2, 3))
    expected = np.zeros((2, 3))
    expected[1, 2] = 2.0
    expected[0, 1] = 0.5
    msg = failure(expect_close, got, expected, what="logits")
    assert "logits differs from the expected values at 2 of 6 positions" in msg
    assert "First mismatch at index (0, 1): got 0, expected 0.5" in msg
    assert "Max absolute error 2, max relative error 1" in msg


def test_shape_dtype_device_and_kind_mismatches_have_their_own_message():
    """Do a wrong shape, dtype, device, kind (numpy for torch) and None each get their own message?"""
    assert "has shape (3,), expected (3, 1)" in failure(expect_close, np.zeros(3), np.zeros((3, 1)))
    assert "has dtype float32, expected float64" in failure(expect_close, np.zeros(2, np.float32), np.zeros(2),
                                                             check_dtype=True)
    assert "on device 'cpu', expected 'cuda'" in failure(expect_close, torch.zeros(2), torch.zeros(2), device="cuda")
    assert "should be a torch.Tensor, but it is a ndarray" in failure(expect_close, np.zeros(2), torch.zeros(2))
    assert "did you forget to `return` it?" in failure(expect_close, None, 1.0)
    assert "should be an array/tensor, but it is a str" in failure(expect_close, "abc", np.zeros(2))


def test_nan_and_inf_are_named():
    """Is a NaN or inf where a finite number was expected reported with its index?"""
    msg = failure(expect_close, np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    assert "contains nan at index (1,)" in msg and "division by zero" in msg
    assert "NaN or infinity" in failure(expect_finite, torch.tensor([1.0, float("inf")]))


def test_scalar_messages_are_plain():
    """Is a wrong scalar reported as 'is X, expected Y'?"""
    assert "w is 6, expected 3" in failure(expect_close, 6.0, 3.0, what="w")


def test_tensorflow_tensors_are_understood():
    """Are TensorFlow tensors compared like numpy arrays?"""
    tf = pytest.importorskip("tensorflow")
    expect_close(tf.constant([1.0, 2.0]), np.array([1.0, 2.0]))
    assert "has shape (2,), expected (3,)" in failure(expect_close, tf.constant([1.0, 2.0]), np.zeros(3))
    np.testing.assert_array_equal(to_numpy(tf.constant([[1, 2]])), [[1, 2]])


def test_call_records_what_was_called_and_catches_in_place_mutation():
    """Does call() record the call for messages and fail when the learner's function changes its input?"""
    def bad_relu(x):
        x[x < 0] = 0
        return x

    calls = []
    with describe_call.recording(calls):
        msg = failure(call, bad_relu, torch.tensor([-1.0, 2.0]))
    assert calls == ["bad_relu(tensor([-1.,  2.], dtype=float32))"]
    assert "changed its argument #1 in place" in msg
    assert call(lambda x: x * 2, np.array([1.0]), name="double")[0] == 2.0
    lst = [3, 1, 2]
    assert "in place" in failure(call, lambda v: v.sort(), lst)
    assert "should be a function, but it is int" in failure(call, 3, 1)


def test_equal_shape_type():
    """Do expect_equal, expect_shape and expect_type pass right values and name wrong ones?"""
    expect_equal((1, 2), (1, 2))
    assert "is 4, expected 5" in failure(expect_equal, 4, 5)
    expect_shape(torch.zeros(2, 3), (2, 3))
    assert "has shape (2, 3), expected (3, 2)" in failure(expect_shape, np.zeros((2, 3)), (3, 2))
    assert "should be a Tensor, but it is a list" in failure(expect_type, [1], torch.Tensor)


def test_gradient_check_agrees_with_calculus_and_catches_a_wrong_gradient():
    """Does the finite-difference gradient match the analytic one, and a sign error fail?"""
    x = np.array([0.3, -1.2, 2.0])
    f = lambda v: float(np.sum(v ** 3))  # noqa: E731
    np.testing.assert_allclose(numerical_gradient(f, x), 3 * x ** 2, rtol=1e-6)
    expect_gradient(f, 3 * x ** 2, x)
    assert "compared with finite differences" in failure(expect_gradient, f, -3 * x ** 2, x)


def test_parameter_count_and_layers():
    """Are trainable parameters counted and layer structure compared with the first difference named?"""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    assert count_parameters(model) == 4 * 3 + 3 + 3 * 2 + 2
    expect_parameter_count(model, 23)
    assert "has 23 trainable parameters, expected 24" in failure(expect_parameter_count, model, 24)
    assert layer_types(model) == ["Linear", "ReLU", "Linear"]
    msg = failure(expect_layers, model, ["Linear", "Sigmoid", "Linear"])
    assert "First difference at position 1" in msg


def test_loss_decreases_catches_a_step_with_the_wrong_sign():
    """Does 'this training step lowers the loss' pass gradient descent and fail gradient ascent?"""
    torch.manual_seed(0)
    X, y = torch.randn(16, 3), torch.randn(16, 1)

    def make(sign):
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loss = lambda: torch.nn.functional.mse_loss(model(X), y)  # noqa: E731

        def step():
            opt.zero_grad()
            (sign * loss()).backward()
            opt.step()
        return step, lambda: loss().item()

    expect_loss_decreases(*make(+1), steps=3)
    assert "it should go down" in failure(expect_loss_decreases, *make(-1), steps=3)


def test_tolerance_follows_the_answers_dtype():
    """Does a float32 answer pass at float32 rounding where a float64 one is held to the stated tolerance,
    and does a real float32 mistake still fail?"""
    import torch

    from course_utils.grading.asserts import CheckFailure, expect_close

    exact = np.float64(0.3868912345678)
    expect_close(np.float32(exact), exact, rtol=1e-9, atol=1e-12)
    expect_close(torch.tensor([exact, 2 * exact], dtype=torch.float32), np.array([exact, 2 * exact]), rtol=1e-9)
    with pytest.raises(CheckFailure):
        expect_close(np.float64(exact) * (1 + 1e-7), exact, rtol=1e-9, atol=1e-12)
    with pytest.raises(CheckFailure):
        expect_close(np.float32(exact * 1.001), exact, rtol=1e-9)


def test_a_mismatch_never_shows_two_equal_numbers():
    """Are two close but different numbers printed with enough digits to tell them apart?"""
    from course_utils.grading.asserts import CheckFailure, expect_close, fmt_pair

    a, b = fmt_pair(0.38689001, 0.38689)
    assert a != b
    with pytest.raises(CheckFailure) as info:
        expect_close(0.3868901, 0.38689, rtol=1e-9, atol=0)
    text = str(info.value)
    got, expected = text.split(" is ")[1].split(", expected ")
    assert got != expected.split(" ")[0]


def test_as_number_and_short_descriptions():
    """Does as_number refuse None, bools and strings as basic failures, and do messages show NumPy scalars,
    models and optimizers as one short line?"""
    import torch

    from course_utils.grading.asserts import CheckFailure, _short, as_number

    assert as_number(np.float32(0.5)) == 0.5 and as_number(torch.tensor([2.0])) == 2.0
    for bad in (None, True, "0.5", [1.0]):
        with pytest.raises(CheckFailure) as info:
            as_number(bad, what="lr")
        assert info.value.basic
    assert _short(np.float64(5.5)) == "5.5"
    model = torch.nn.Linear(3, 2)
    assert _short(model) == "Linear model (8 parameters)"
    assert _short(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)) == "SGD(lr=0.1, momentum=0.9)"
