"""Binary cross-entropy (plain and from logits) is written with the backend's array operations:
the same losses and gradients on 'cuda' as on the CPU, the -100 floor and log(0) included."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn.functional as F


@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_on_cuda_matches_cpu(logits, reduction):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((3, 4)) * 8).astype(np.float32) if logits else rng.random((3, 4)).astype(np.float32)
    if not logits:
        x[0, :2] = [0.0, 1.0]                              # the floor, and log(0) kept finite
    t = rng.random((3, 4)).astype(np.float32)
    w, pw = rng.random(4).astype(np.float32), (rng.random(4) * 3).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        xs, ts = (cnnlab.tensor(a, device=device, requires_grad=True) for a in (x, t))
        extra = {"weight": cnnlab.tensor(w, device=device)}
        if logits:
            extra["pos_weight"] = cnnlab.tensor(pw, device=device)
        fn = F.binary_cross_entropy_with_logits if logits else F.binary_cross_entropy
        loss = fn(xs, ts, reduction=reduction, **extra)
        loss.sum().backward()
        results.append([loss.detach().cpu().numpy(), xs.grad.cpu().numpy(), ts.grad.cpu().numpy()])
    for got, want in zip(results[1], results[0]):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
