"""The contract's fused kernels, composed on the CPU from its single-op kernels.

On a GPU each of these is one launch where the unfused path took several (a launch
costs host time whatever its size); on the CPU a call costs next to nothing, so each
is written as the very sequence of operations the engine ran before they were fused,
which keeps the CPU's numbers bit for bit. cuda_nn.py holds the GPU versions.
"""
from __future__ import annotations

import numpy as np

from .cpu_nn import batch_norm_stats, nll_backward, nll_forward


def batch_norm_train_stats(x3, running_mean, running_var, momentum, eps, num_batches=None):
    """Batch mean and 1/sqrt(biased var + eps); the running averages updated in place (unbiased
    variance), and the module's batch counter counted."""
    if num_batches is not None:
        num_batches[...] += 1
    mean, var = batch_norm_stats(x3)
    if running_mean is not None:
        count = x3.shape[0] * x3.shape[2]
        running_mean[...] = running_mean * (1 - momentum) + mean * momentum
        running_var[...] = running_var * (1 - momentum) + var * momentum * (count / (count - 1))
    return mean, batch_norm_invstd(var, eps)


def batch_norm_invstd(var, eps):
    return (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(var.dtype)


def nll_loss_forward(logp2d, target, weight, ignore_index, reduction):
    """(loss, wsel, denominator): per-row losses or their sum or weighted mean; the weights
    used per row; the mean's denominator (sum of wsel), None for the other reductions."""
    if weight is None:
        weight = np.full((logp2d.shape[1],), 1.0, logp2d.dtype)
    losses, wsel = nll_forward(logp2d, target, weight, ignore_index)
    if reduction == "none":
        return losses, wsel, None
    total = np.sum(losses)
    if reduction == "sum":
        return total, wsel, None
    denominator = np.sum(wsel)
    return np.divide(total, denominator), wsel, denominator


def nll_loss_backward(g, target, wsel, denominator, shape, dtype, reduction):
    """d logp of shape `shape` for the loss's gradient g (per row if reduction is 'none', else 0-d)."""
    if reduction == "none":
        rows = g
    else:
        scale = g if reduction == "sum" else np.divide(g, denominator)
        rows = np.multiply(np.full(wsel.shape, 1.0, dtype), scale)
    return nll_backward(rows, target, wsel, shape, dtype).astype(dtype, copy=False)
