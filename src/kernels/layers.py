"""Layers run by the package's CPU kernels (see engine.py): ``KernelConv2d`` (``nn.Conv2d``),
``KernelBatchNorm2d`` (``nn.BatchNorm2d`` with an optional ReLU and residual sum, as ``BatchNormReLU``
is with MindSpore's kernels) and ``KernelMaxPool2d`` (``nn.MaxPool2d(2, 2)``). Same parameters, names and initialisation as the MindSpore layers they derive
from, so checkpoints do not depend on which runs.

Activations may be in oneDNN's blocked layout, [N, C/B, H, W, B] (``block`` B of KernelConv2d): the
kernels take either layout, so that between them no reorder is needed; MindSpore only carries such
tensors (and adds their gradients, which is elementwise)."""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from .loader import operator


def geometry(conv):
    """[stride h, w, padding top, bottom, left, right, dilation h, w] of an ``nn.Conv2d``."""
    if conv.pad_mode == "valid":
        pads = (0, 0, 0, 0)
    elif conv.pad_mode == "pad":
        pads = (conv.padding,) * 4 if isinstance(conv.padding, int) else tuple(conv.padding)
    else:
        raise ValueError(f"KernelConv2d: pad_mode {conv.pad_mode!r} is not supported (use 'pad' or 'valid')")
    return [*conv.stride, *pads, *conv.dilation]


def blocked_shape(shape, block):
    """[N, C, H, W] as the 5-D shape of its blocked layout: [N, C/B, H, W, B]."""
    return [shape[0], shape[1] // block, shape[2], shape[3], block]


def output_side(side, kernel, stride, pad_before, pad_after, dilation):
    if side < 0:   # a dimension left free when compiling
        return side
    return (side + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


class KernelConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, names and initialisation) whose convolution, bias and gradients
    run in the kernel ``library`` (plain NCHW, groups 1, ``pad_mode`` 'pad' or 'valid').

    ``input_grad=False``: the input gradient is not computed and reads as zeros (a first layer,
    whose input is the images). ``block`` B: the output is in the blocked layout [N, K/B, OH, OW, B]
    if B divides its channels (0: always plain); the input may be in either layout.
    """

    def __init__(self, library, *args, input_grad=True, block=0, **kwargs):
        super().__init__(*args, **kwargs)
        if self.group != 1 or self.data_format != "NCHW":
            raise ValueError("KernelConv2d: only group=1 and data_format='NCHW' are supported")
        g = geometry(self)
        # An input of the kernel (not an attribute): MindSpore passes its kernels tensors only.
        self.geometry = ms.Tensor(np.array(g, np.int64))
        (kh, kw), (sh, sw), (pt, pb, pl, pr), (dh, dw) = self.kernel_size, g[0:2], g[2:6], g[6:8]

        blocked = bool(block) and self.out_channels % block == 0

        def out_shape(x, w, *_):
            y = [x[0], w[0], output_side(x[2], kh, sh, pt, pb, dh), output_side(x[3], kw, sw, pl, pr, dw)]
            return blocked_shape(y, block) if blocked else y

        bias = "_bias" if self.has_bias else ""
        # What the backward computes: (dx, dw[, db]), or (dw[, db]) without an input gradient.
        outputs = ((lambda x, w, dy, g: x),) if input_grad else ()
        outputs += (lambda x, w, dy, g: w,) + ((lambda x, w, dy, g: [w[0]],) if self.has_bias else ())
        backward = operator(library, f"ats_conv_backward{'' if input_grad else '_weights'}{bias}",
                            out_shape=lambda *shapes: tuple(f(*shapes) for f in outputs),
                            out_dtype=lambda x, w, dy, g: (x,) * len(outputs))

        def gradients(x, w, dout, geo):
            grads = backward(x, w, dout, geo)
            return grads if input_grad else (ops.zeros_like(x),) + tuple(grads)

        if self.has_bias:
            def bprop(x, w, b, geo, out, dout):
                return gradients(x, w, dout, geo) + (ops.zeros_like(geo),)
        else:
            def bprop(x, w, geo, out, dout):
                return gradients(x, w, dout, geo) + (ops.zeros_like(geo),)

        # Graph mode keeps one bprop per AOT function name: each kind of layer has its own name.
        forward = f"ats_conv_forward{bias}{'' if input_grad else '_no_dx'}"
        self.convolve = operator(library, forward, out_shape=out_shape, out_dtype=lambda x, *_: x, bprop=bprop)

    def construct(self, x):
        if self.has_bias:
            return self.convolve(x, self.weight, self.bias, self.geometry)
        return self.convolve(x, self.weight, self.geometry)


class ShortcutReLU(nn.Cell):
    """``x``, plus ``shortcut`` if one is given (a residual block's sum), then a ReLU if ``relu``: what
    follows the BatchNorm in a BatchNormReLU cell, and what remains of one folded into its
    convolution (fold_bn.py)."""

    def __init__(self, relu):
        super().__init__()
        self.relu = relu
        self.activation = nn.ReLU()

    def construct(self, x, shortcut=None):
        if shortcut is not None:
            x = x + shortcut
        return self.activation(x) if self.relu else x


class BatchNormReLU(nn.BatchNorm2d):
    """``nn.BatchNorm2d``, then ShortcutReLU: one cell, so that the package's kernel can do it all at
    once (KernelBatchNorm2d), with the parameters and names of the BatchNorm alone."""

    def __init__(self, *args, relu=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = relu
        self.tail = ShortcutReLU(relu)

    def construct(self, x, shortcut=None):
        # super() with its arguments: graph mode resolves a bare super() from the instance's class.
        return self.tail(super(BatchNormReLU, self).construct(x), shortcut)


def _inference_gradients(x, gamma, mean, var, eps, out, dout, relu):
    """The gradients of inference-mode BatchNorm (+ ReLU) as MindSpore operators: (the gradient at
    the sum, which is the shortcut's, dx, dgamma, dbeta). ``x`` plain or blocked."""
    dy = dout * (out > 0).astype(dout.dtype) if relu else dout
    inv_std = ops.rsqrt(var + eps)
    per_channel = (1, -1, 1, 1) if x.ndim == 4 else (1, -1, 1, 1, x.shape[4])
    xhat = (x - mean.reshape(per_channel)) * inv_std.reshape(per_channel)
    return (dy, dy * (gamma * inv_std).reshape(per_channel), (dy * xhat).sum((0, 2, 3)).reshape(-1),
            dy.sum((0, 2, 3)).reshape(-1))


class KernelBatchNorm2d(BatchNormReLU):
    """``BatchNormReLU`` run by the kernel ``library``: in training mode its forward and backward, in
    inference mode its forward (the gradient through it, which only tests take, is MindSpore's
    operators). A shortcut needs ``relu`` (the kernel fuses it as a residual block ends). The moving
    statistics are updated as MindSpore does: ``moving = momentum * moving + (1 - momentum) *
    batch``, the variance unbiased (n - 1)."""

    def __init__(self, library, *args, relu=False, **kwargs):
        super().__init__(*args, relu=relu, **kwargs)
        if self.format != "NCHW" or self.use_batch_statistics is not None:
            raise ValueError("KernelBatchNorm2d: only data_format='NCHW' and use_batch_statistics=None")
        self.epsilon = ms.Tensor(np.array([self.eps], np.float32))
        suffix = "_relu" if relu else ""   # one bprop per AOT function name (see KernelConv2d)

        def kernel(name, out_shape, bprop=None):
            # Every output is float32 and shaped as an input: x (index 0) or a per-channel one.
            return operator(library, name, out_shape=lambda *s: tuple(s[i] for i in out_shape),
                            out_dtype=lambda *t: tuple(t[i] for i in out_shape), bprop=bprop)

        backward = kernel(f"ats_bn_backward{suffix}", (0, 2, 2))   # x, dy, gamma, ...

        def bprop(x, gamma, beta, eps, out, dout):
            # The batch mean and variance only feed the moving statistics: no gradient flows back.
            dx, dgamma, dbeta = backward(x, dout[0], gamma, beta, out[1], out[2], eps)
            return dx, dgamma, dbeta, ops.zeros_like(eps)

        self.normalize = kernel(f"ats_bn_forward{suffix}", (0, 1, 1), bprop)   # x, gamma, ...

        def inference_bprop(x, gamma, beta, mean, var, eps, out, dout):
            _, dx, dgamma, dbeta = _inference_gradients(x, gamma, mean, var, eps, out[0], dout[0], relu)
            return dx, dgamma, dbeta, ops.zeros_like(mean), ops.zeros_like(var), ops.zeros_like(eps)

        self.normalize_inference = kernel(f"ats_bn_inference{suffix}", (0,), inference_bprop)
        if not relu:
            return
        backward_add = kernel("ats_bn_backward_add_relu", (0, 0, 3, 3))   # x, y, dy, gamma, ...

        def bprop_add(x, shortcut, gamma, beta, eps, out, dout):
            dx, dshortcut, dgamma, dbeta = backward_add(x, out[0], dout[0], gamma, beta, out[1], out[2], eps)
            return dx, dshortcut, dgamma, dbeta, ops.zeros_like(eps)

        self.normalize_add = kernel("ats_bn_forward_add_relu", (0, 2, 2), bprop_add)   # x, shortcut, gamma, ...

        def inference_bprop_add(x, shortcut, gamma, beta, mean, var, eps, out, dout):
            dshortcut, dx, dgamma, dbeta = _inference_gradients(x, gamma, mean, var, eps, out[0], dout[0], True)
            return dx, dshortcut, dgamma, dbeta, ops.zeros_like(mean), ops.zeros_like(var), ops.zeros_like(eps)

        self.normalize_add_inference = kernel("ats_bn_inference_add_relu", (0,), inference_bprop_add)

    def construct(self, x, shortcut=None):
        if shortcut is not None and not self.relu:
            raise ValueError("KernelBatchNorm2d: a shortcut needs relu=True")
        statistics = (self.gamma, self.beta, self.moving_mean, self.moving_variance, self.epsilon)
        if not self.training:
            if shortcut is None:
                return self.normalize_inference(x, *statistics)[0]
            return self.normalize_add_inference(x, shortcut, *statistics)[0]
        if shortcut is None:
            y, mean, var = self.normalize(x, self.gamma, self.beta, self.epsilon)
        else:
            y, mean, var = self.normalize_add(x, shortcut, self.gamma, self.beta, self.epsilon)
        count = x.shape[0] * x.shape[2] * x.shape[3]
        # nn.BatchNorm2d keeps 1 - momentum as self.momentum (the batch's weight).
        new_mean = self.moving_mean * (1 - self.momentum) + ops.stop_gradient(mean) * self.momentum
        new_var = (self.moving_variance * (1 - self.momentum)
                   + ops.stop_gradient(var) * (self.momentum * count / max(count - 1, 1)))
        y = ops.depend(y, ops.assign(self.moving_mean, new_mean))
        return ops.depend(y, ops.assign(self.moving_variance, new_var))


class KernelMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d(2, 2)`` run by the kernel ``library``: the forward records where each maximum
    was, so the backward is a scatter (the first of equal inputs gets the gradient, as with
    MindSpore's). Plain or blocked, the output's layout is the input's."""

    def __init__(self, library):
        super().__init__(kernel_size=2, stride=2)
        backward = operator(library, "ats_maxpool_backward", out_shape=lambda x, dy, where: x,
                            out_dtype=lambda x, dy, where: x)

        def bprop(x, out, dout):
            return (backward(x, dout[0], out[1]),)

        def out_shape(x):
            pooled = [x[0], x[1], x[2] // 2 if x[2] > 0 else x[2], x[3] // 2 if x[3] > 0 else x[3], *x[4:]]
            return pooled, pooled

        self.pool = operator(library, "ats_maxpool_forward", out_shape=out_shape, out_dtype=lambda x: (x, ms.uint8),
                             bprop=bprop)

    def construct(self, x):
        return self.pool(x)[0]
