"""The textbook NumPy CNN engine the benchmarks compare against.

Forward and backward written by hand with im2col (sliding_window_view + one
matmul per layer), as in the NumPy-from-scratch CNN tutorials. Only what the
benchmarked models need: conv2d (stride 1, zero padding), 2x2-style max
pooling, ReLU, linear, softmax cross-entropy and SGD with momentum.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Conv:
    def __init__(self, w, b, padding):
        self.w, self.b, self.p = w, b, padding

    def forward(self, x):
        p = self.p
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        k, c, kh, kw = self.w.shape
        win = sliding_window_view(xp, (kh, kw), axis=(2, 3))          # N C OH OW kh kw
        n, _, oh, ow = win.shape[:4]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
        self.cache = (xp.shape, cols, n, oh, ow)
        y = cols @ self.w.reshape(k, -1).T + self.b
        return y.reshape(n, oh, ow, k).transpose(0, 3, 1, 2)

    def backward(self, g):
        xp_shape, cols, n, oh, ow = self.cache
        k, c, kh, kw = self.w.shape
        g2 = g.transpose(0, 2, 3, 1).reshape(-1, k)
        self.dw = (g2.T @ cols).reshape(self.w.shape)
        self.db = g2.sum(0)
        dcols = (g2 @ self.w.reshape(k, -1)).reshape(n, oh, ow, c, kh, kw)
        dxp = np.zeros(xp_shape, g.dtype)
        for i in range(kh):
            for j in range(kw):
                dxp[:, :, i:i + oh, j:j + ow] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        p = self.p
        return dxp[:, :, p:-p, p:-p] if p else dxp

    def params(self):
        return [(self.w, "dw"), (self.b, "db")]


class MaxPool:
    def __init__(self, k, s, padding=0):
        self.k, self.s, self.p = k, s, padding

    def forward(self, x):
        p, k, s = self.p, self.k, self.s
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf) if p else x
        win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        n, c, oh, ow = win.shape[:4]
        flat = win.reshape(n, c, oh, ow, k * k)
        arg = flat.argmax(-1)
        self.cache = (xp.shape, arg, oh, ow)
        return np.take_along_axis(flat, arg[..., None], -1)[..., 0]

    def backward(self, g):
        xp_shape, arg, oh, ow = self.cache
        k, s, p = self.k, self.s, self.p
        dxp = np.zeros(xp_shape, g.dtype)
        n, c = g.shape[:2]
        ii, jj = np.divmod(arg, k)
        rows = np.arange(oh)[None, None, :, None] * s + ii
        cols = np.arange(ow)[None, None, None, :] * s + jj
        nn_ = np.arange(n)[:, None, None, None]
        cc = np.arange(c)[None, :, None, None]
        np.add.at(dxp, (nn_, cc, rows, cols), g)
        return dxp[:, :, p:-p, p:-p] if p else dxp

    def params(self):
        return []


class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, g):
        return g * self.mask

    def params(self):
        return []


class Flatten:
    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, g):
        return g.reshape(self.shape)

    def params(self):
        return []


class Linear:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, x):
        self.x = x
        return x @ self.w.T + self.b

    def backward(self, g):
        self.dw = g.T @ self.x
        self.db = g.sum(0)
        return g @ self.w

    def params(self):
        return [(self.w, "dw"), (self.b, "db")]


def softmax_cross_entropy(logits, labels):
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    n = len(labels)
    loss = -logp[np.arange(n), labels].mean()
    g = np.exp(logp)
    g[np.arange(n), labels] -= 1
    return loss, g / n


class Net:
    """A stack of the layers above trained by SGD with momentum."""

    def __init__(self, layers, lr=0.01, momentum=0.9):
        self.layers, self.lr, self.momentum = layers, lr, momentum
        self.bufs = {}

    def step(self, x, labels):
        for layer in self.layers:
            x = layer.forward(x)
        loss, g = softmax_cross_entropy(x, labels)
        for layer in reversed(self.layers):
            g = layer.backward(g)
        for layer in self.layers:
            for p, gname in layer.params():
                grad = getattr(layer, gname)
                buf = self.bufs.get(id(p))
                buf = grad.copy() if buf is None else self.momentum * buf + grad
                self.bufs[id(p)] = buf
                p -= self.lr * buf
        return loss


def from_cnnlab(model, lr=0.01, momentum=0.9) -> Net:
    """The same architecture and weights as a cnnlab nn.Sequential."""
    layers = []
    for m in model:
        kind = type(m).__name__
        if kind == "Conv2d":
            layers.append(Conv(m.weight.numpy().copy(), m.bias.numpy().copy(), m.padding[0]))
        elif kind == "MaxPool2d":
            layers.append(MaxPool(m.kernel_size, m.stride, m.padding))
        elif kind == "ReLU":
            layers.append(ReLU())
        elif kind == "Flatten":
            layers.append(Flatten())
        elif kind == "Linear":
            layers.append(Linear(m.weight.numpy().copy(), m.bias.numpy().copy()))
        else:
            raise ValueError(f"numpy reference has no {kind}")
    return Net(layers, lr, momentum)
