"""The ATS/TS loss against an independent NumPy computation of the formula (the README's "The method")."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import ops

from src.losses import kd_loss, teacher_temperatures


def np_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def np_kd(s, t, y, tp_tau, t_tau, s_tau):
    """Loop form of the formula: per sample, per class temperature; float64."""
    n, c = s.shape
    total = 0.0
    for i in range(n):
        tau = np.array([tp_tau if k == y[i] else t_tau for k in range(c)])
        p_t = np_softmax((t[i] / tau)[None])[0]
        log_p_s = np.log(np_softmax((s[i] / s_tau)[None])[0])
        total += -(p_t * log_p_s).sum()
    return s_tau ** 2 * total / n


def batch(seed, n=16, c=10, scale=5.0):
    rng = np.random.default_rng(seed)
    s = (rng.standard_normal((n, c)) * scale).astype(np.float32)
    t = (rng.standard_normal((n, c)) * scale).astype(np.float32)
    y = rng.integers(0, c, size=n).astype(np.int32)
    return s, t, y


TEMPS = [(4.0, 2.0, 1.0), (4.0, 4.0, 1.0), (1.0, 3.0, 1.0), (6.0, 1.0, 2.5), (0.5, 0.5, 0.7)]


@pytest.mark.parametrize("tp_tau,t_tau,s_tau", TEMPS)
def test_kd_loss_matches_numpy(tp_tau, t_tau, s_tau):
    s, t, y = batch(int(tp_tau * 10 + t_tau))
    got = kd_loss(ms.Tensor(s), ms.Tensor(t), ms.Tensor(y), tp_tau, t_tau, s_tau).asnumpy()
    want = np_kd(s.astype(np.float64), t.astype(np.float64), y, tp_tau, t_tau, s_tau)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def kd_grad(position, s, t, y, *temps):
    """Gradient of kd_loss w.r.t. its input at ``position`` (0: student logits, 1: teacher logits)."""
    fn = lambda s_, t_, y_: kd_loss(s_, t_, y_, *temps)  # noqa: E731 (temperatures are constants)
    return ms.grad(fn, grad_position=position)(ms.Tensor(s), ms.Tensor(t), ms.Tensor(y)).asnumpy()


@pytest.mark.parametrize("tp_tau,t_tau,s_tau", TEMPS)
def test_kd_gradient_wrt_student(tp_tau, t_tau, s_tau):
    s, t, y = batch(7)
    grad = kd_grad(0, s, t, y, tp_tau, t_tau, s_tau)
    tau = np.where(np.eye(10)[y] > 0, tp_tau, t_tau)
    p_t = np_softmax(t.astype(np.float64) / tau)
    want = s_tau * (np_softmax(s.astype(np.float64) / s_tau) - p_t) / len(y)
    np.testing.assert_allclose(grad, want, atol=1e-6)


def test_no_gradient_flows_into_the_teacher():
    s, t, y = batch(3)
    assert not kd_grad(1, s, t, y, 4.0, 2.0, 1.0).any()


def test_ats_with_equal_temperatures_is_ts_exactly():
    s, t, y = batch(11)
    ats = kd_loss(ms.Tensor(s), ms.Tensor(t), ms.Tensor(y), 3.0, 3.0, 1.0).asnumpy()
    # Plain Hinton KD written directly: one temperature for every class.
    p_t = ops.softmax(ms.Tensor(t) / 3.0, axis=-1)
    ts = (-(p_t * ops.log_softmax(ms.Tensor(s), axis=-1)).sum(-1)).mean().asnumpy()
    assert ats == ts


def test_teacher_temperatures_mask():
    tau = teacher_temperatures(ms.Tensor(np.array([2, 0], np.int32)), 4, 4.0, 2.0).asnumpy()
    np.testing.assert_array_equal(tau, [[2, 2, 4, 2], [4, 2, 2, 2]])


def test_asymmetric_temperature_raises_wrong_class_spread():
    """The paper's point: an over-confident teacher's wrong classes look flatter under TS than ATS."""
    t = np.array([[12.0, 3.0, 1.0, -1.0, -3.0]], np.float32)
    ts = np_softmax(t / 4.0)[0, 1:]
    tau = np.array([4.0, 2.0, 2.0, 2.0, 2.0])
    ats = np_softmax(t / tau)[0, 1:]
    assert np.std(ats / ats.sum()) > np.std(ts / ts.sum())


class LossCell(ms.nn.Cell):
    def construct(self, s, t, y):
        return kd_loss(s, t, y, 4.0, 2.0, 1.5)


def test_graph_and_pynative_agree():
    s, t, y = batch(5)
    args = (ms.Tensor(s), ms.Tensor(t), ms.Tensor(y))
    graph = LossCell()(*args).asnumpy()                      # conftest sets GRAPH_MODE
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        eager = LossCell()(*args).asnumpy()
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    np.testing.assert_allclose(graph, eager, rtol=1e-6)
