"""Every autodiff primitive's VJP against central finite differences (float64)."""

import numpy as np
import pytest

from rnngraph.engine import autodiff as ad
from rnngraph.activations import ACTIVATIONS, DIFFERENTIABLE


def numeric_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


def check_op(op, *arrays, seed=0):
    """d sum(r * op(...)) / d each input, analytic vs numeric, r random."""
    rng = np.random.default_rng(seed)
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    out_shape = np.shape(op(*[ad.const(a) for a in arrays]).value)
    r = rng.normal(size=out_shape)

    def scalar():
        return float((op(*[ad.const(a) for a in arrays]).value * r).sum())
    tape = ad.Tape()
    leaves = [tape.param(a) for a in arrays]
    out = op(*leaves)
    tape.backward(out, seed=r)
    for leaf, a in zip(leaves, arrays):
        expected = numeric_grad(scalar, a)
        np.testing.assert_allclose(leaf.grad, expected, rtol=1e-6, atol=1e-8)


R = np.random.default_rng(42)


def rand(*shape):
    return R.normal(size=shape)


def test_add_broadcasts_and_unbroadcasts():
    check_op(ad.add, rand(3, 2, 4), rand(4))
    check_op(ad.add, rand(3, 1, 4), rand(3, 5, 4))


def test_add_into_writes_into_its_first_operand():
    # add_into may only take an intermediate nobody else reads: scale makes a fresh one
    check_op(lambda a, b: ad.add_into(ad.scale(a, 1.0), b), rand(3, 2, 4), rand(4))
    a = ad.const(np.zeros((2, 3)))
    out = ad.add_into(a, ad.const(np.arange(3.0)))
    assert out.value is a.value and a.value[1, 2] == 2.0


def test_sub_and_mul_and_neg_and_scale():
    check_op(ad.sub, rand(2, 3), rand(2, 3))
    check_op(ad.mul, rand(2, 3, 4), rand(4))
    check_op(ad.mul, rand(2, 3), rand())
    check_op(ad.neg, rand(5))
    check_op(lambda a: ad.scale(a, -2.5), rand(3, 2))


def test_total_and_product_of_many():
    check_op(lambda a, b, c: ad.total([a, b, c]), rand(2, 3), rand(2, 3), rand(2, 3))
    check_op(lambda a, b, c: ad.product([a, b, c]), rand(2, 3), rand(2, 3), rand(2, 3))


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_activation(name):
    a = rand(3, 4)
    if name in ("relu", "leaky_relu"):
        a = np.where(np.abs(a) < 1e-3, 0.5, a)   # away from the kink
    check_op(lambda x: ad.activation(name, x), a)


@pytest.mark.parametrize("name", ["sign", "step"])
def test_piecewise_constant_activations_have_zero_gradient(name):
    tape = ad.Tape()
    x = tape.param(rand(4))
    y = ad.activation(name, x)
    tape.backward(ad.sum_all(y))
    assert np.all(x.grad == 0)
    forward = ACTIVATIONS[name].forward
    assert set(np.unique(forward(np.array([-1.0, 0.0, 2.0])))) <= ({-1.0, 1.0} if name == "sign" else {0.0, 1.0})


def test_linear_over_sequences():
    check_op(ad.linear, rand(4, 3, 5), rand(2, 5))
    check_op(ad.linear, rand(3, 5), rand(2, 5))


def test_transpose_concat_split_take_stack_reshape_broadcast():
    check_op(ad.transpose, rand(3, 4))
    check_op(lambda a, b: ad.concat([a, b], axis=0), rand(2, 3), rand(4, 3))
    check_op(lambda a: ad.split(a, [0, 2, 5])[1], rand(3, 5))
    check_op(lambda a: ad.take(a, 2), rand(4, 3))
    check_op(lambda a, b: ad.stack([a, b]), rand(2, 3), rand(2, 3))
    check_op(lambda a: ad.reshape(a, (6,)), rand(2, 3))
    check_op(lambda a: ad.broadcast(a, (4, 2, 3)), rand(3))


@pytest.mark.parametrize("delay", [1, 2, 5, 7])
def test_shift_reads_history_before_time_zero(delay):
    seq, hist = rand(5, 2, 3), rand(7, 2, 3)
    check_op(lambda s, h: ad.shift(s, delay, h), seq, hist)
    out = ad.shift(ad.const(seq), delay, ad.const(hist)).value
    for t in range(5):
        expected = seq[t - delay] if t >= delay else hist[7 + t - delay]
        np.testing.assert_array_equal(out[t], expected)


def test_constraints():
    check_op(ad.symmetric, rand(4, 4))
    check_op(ad.zero_diagonal, rand(4, 4))


def test_losses():
    y = R.uniform(size=(3, 2, 4))
    onehot = np.eye(4)[R.integers(0, 4, size=(3, 2))]
    w = (R.uniform(size=(3, 2)) > 0.3).astype(float)
    check_op(lambda v: ad.weighted_mean(ad.squared_error(v, y), w[..., None], 7.0), rand(3, 2, 4))
    check_op(lambda v: ad.mean_squared_error(v, y, 7.0), rand(3, 2, 4))
    v = rand(3, 2, 4)
    assert ad.mean_squared_error(ad.const(v), y, 24.0).value == pytest.approx(np.mean((v - y) ** 2), rel=1e-12)
    check_op(lambda a: ad.bce_with_logits(a, y), rand(3, 2, 4))
    # given sigmoid(a) (a sigmoid output's value), the VJP reads it instead of computing it
    check_op(lambda a: ad.bce_with_logits(a, y, 1 / (1 + np.exp(-a.value))), rand(3, 2, 4))
    check_op(lambda v: ad.bce_on_probs(v, y), R.uniform(0.1, 0.9, size=(3, 2, 4)))
    check_op(lambda a: ad.cross_entropy_with_logits(a, onehot), rand(3, 2, 4))
    check_op(lambda v: ad.cross_entropy_on_probs(v, onehot), R.uniform(0.1, 0.9, size=(3, 2, 4)))
    check_op(ad.sum_all, rand(3, 2))


def test_stable_losses_stay_finite_at_extreme_logits():
    a = np.array([[-800.0, 0.0, 800.0]])
    value = ad.bce_with_logits(ad.const(a), np.array([[1.0, 0.5, 0.0]])).value
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, [[800.0, np.log(2), 800.0]])
    ce = ad.cross_entropy_with_logits(ad.const(a), np.array([[1.0, 0.0, 0.0]])).value
    np.testing.assert_allclose(ce, [1600.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_softplus_match_their_definitions_over_the_whole_range(dtype):
    a = np.concatenate([np.linspace(-120, 120, 2401), [-1e4, -800, 800, 1e4, 0.0]]).astype(dtype)
    exact = a.astype(np.longdouble)
    sigmoid, softplus = ACTIVATIONS["sigmoid"].forward(a), ACTIVATIONS["softplus"].forward(a)
    assert sigmoid.dtype == softplus.dtype == dtype
    eps = np.finfo(dtype).eps
    # sigmoid to the dtype's rounding of a value in [0, 1]; softplus to its relative rounding
    # (below the smallest normal number it underflows to zero, as the exact value would)
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-exact)), rtol=0, atol=2 * eps)
    np.testing.assert_allclose(softplus, np.logaddexp(0, exact), rtol=4 * eps, atol=np.finfo(dtype).tiny)
    assert np.all(np.diff(sigmoid[:2401]) >= 0) and sigmoid.min() >= 0 and sigmoid.max() <= 1
    # the array form is the compiled loops' (their in-place lines), bit for bit
    assert ACTIVATIONS["sigmoid"].in_place == ("multiply(a, HALF, out=v)", "tanh(v, out=v)",
                                               "multiply(v, HALF, out=v)", "add(v, HALF, out=v)")
    v = np.multiply(a, dtype(0.5))
    np.tanh(v, out=v)
    np.multiply(v, dtype(0.5), out=v)
    np.add(v, dtype(0.5), out=v)
    assert np.array_equal(sigmoid, v)


def test_a_value_used_many_times_accumulates_its_gradients():
    # the RNN case: one weight read at every step must get the sum of the uses
    tape = ad.Tape()
    w = tape.param(np.array([0.5]))
    h = ad.const(np.array([1.0]))
    for _ in range(4):
        h = ad.mul(h, w)          # h = w^4
    tape.backward(ad.sum_all(h))
    np.testing.assert_allclose(w.grad, [4 * 0.5 ** 3])


def test_backward_is_iterative_on_a_very_long_chain():
    tape = ad.Tape()
    w = tape.param(np.array([1.0]))
    h = ad.const(np.array([0.0]))
    for _ in range(20_000):
        h = ad.add(ad.mul(h, ad.const(np.array([0.999]))), w)
    tape.backward(ad.sum_all(h))
    expected = sum(0.999 ** k for k in range(20_000))
    np.testing.assert_allclose(w.grad, [expected], rtol=1e-9)


def test_constant_inputs_record_nothing():
    a, b = ad.const(rand(2)), ad.const(rand(2))
    out = ad.mul(ad.add(a, b), a)
    assert out.tape is None and not out.needs_grad
