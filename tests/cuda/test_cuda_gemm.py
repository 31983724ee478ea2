"""The register-tiled matmul (cuda_math.gemm) against NumPy: odd shapes (m, n, k not multiples
of the block's tile), several matrices, operands read transposed through their strides, bias
on and off, and the row sums (Linear's bias gradient) from the same launch; for several tile
settings, since each builds its own kernel."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab import _config

TILES = [dict(CUDA_TILE=2, CUDA_TILE_OUTPUTS=(1, 2)), dict(CUDA_TILE=3, CUDA_TILE_OUTPUTS=(3, 1)),
         dict(CUDA_TILE=4, CUDA_TILE_OUTPUTS=(2, 4))]


@pytest.fixture(params=TILES, ids=lambda t: f"tile{t['CUDA_TILE']}x{t['CUDA_TILE_OUTPUTS']}")
def tiles(request):
    old = {k: getattr(_config, k) for k in request.param}
    _config.set_cuda(**request.param)
    yield request.param
    _config.set_cuda(**old)


def _operand(x, transposed):
    """x (batch, r, c) on the device, stored as is or as its transpose; (buffer array, strides)."""
    from cnnlab.backends import cuda as C

    batch, r, c = x.shape
    if transposed:
        return C.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))), (r * c, 1, r)
    return C.from_numpy(np.ascontiguousarray(x)), (r * c, c, 1)


@pytest.mark.parametrize("m, n, k, batch", [(1, 1, 1, 1), (7, 10, 11, 1), (13, 9, 6, 3)])
@pytest.mark.parametrize("a_t, b_t", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_numpy(tiles, m, n, k, batch, a_t, b_t):
    from cnnlab.backends import cuda as C
    from cnnlab.backends.cuda_math import gemm

    r = np.random.default_rng(m * 100 + n * 10 + k)
    a = r.standard_normal((batch, m, k)).astype(np.float32)
    b = r.standard_normal((batch, k, n)).astype(np.float32)
    bias = r.standard_normal(n).astype(np.float32)
    da, sa = _operand(a, a_t)
    db, sb = _operand(b, b_t)
    want = np.einsum("zmk,zkn->zmn", a.astype(np.float64), b.astype(np.float64))
    got = C.to_numpy(gemm(da, sa, db, sb, m, n, k, batch, np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    got = C.to_numpy(gemm(da, sa, db, sb, m, n, k, batch, np.float32, bias=C.from_numpy(bias)))
    np.testing.assert_allclose(got, want + bias, rtol=1e-5, atol=1e-5)
    c, sums = gemm(da, sa, db, sb, m, n, k, batch, np.float32, row_sums=True)
    np.testing.assert_allclose(C.to_numpy(c), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(C.to_numpy(sums), a.astype(np.float64).sum(2), rtol=1e-5, atol=1e-5)


def test_gemm_float64_and_empty_depth(tiles):
    from cnnlab.backends import cuda as C
    from cnnlab.backends.cuda_math import gemm

    r = np.random.default_rng(3)
    a, b = r.standard_normal((1, 9, 14)), r.standard_normal((1, 14, 10))
    got = C.to_numpy(gemm(*_operand(a, True), *_operand(b, False), 9, 10, 14, 1, np.float64))
    np.testing.assert_allclose(got, a @ b, rtol=1e-12)
    bias = r.standard_normal(10).astype(np.float32)  # k = 0: only the bias is left
    empty = C.from_numpy(np.zeros((1, 4, 0), np.float32))
    got = C.to_numpy(gemm(empty, (0, 0, 1), C.from_numpy(np.zeros((1, 0, 10), np.float32)), (0, 10, 1), 4, 10, 0, 1,
                          np.float32, bias=C.from_numpy(bias)))
    np.testing.assert_array_equal(got, np.broadcast_to(bias, (1, 4, 10)))


def test_linear_backward_is_two_gemm_launches(tiles):
    """dx, and dw with db: two launches (the bias gradient rides on the weight gradient's)."""
    from cnnlab.backends import cuda as C
    from cnnlab.backends import cuda_array

    r = np.random.default_rng(4)
    x, w, g = (r.standard_normal(s).astype(np.float32) for s in ((2, 5, 19), (6, 19), (2, 5, 6)))
    dev = [C.from_numpy(v) for v in (x, w, g)]
    before = cuda_array.COUNTS["launches"]
    dx, dw, db = C.linear_backward(*dev, True, True, True)
    assert cuda_array.COUNTS["launches"] - before == 2
    g2, x2 = g.reshape(-1, 6).astype(np.float64), x.reshape(-1, 19).astype(np.float64)
    np.testing.assert_allclose(C.to_numpy(dx), g @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(C.to_numpy(dw), g2.T @ x2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(C.to_numpy(db), g2.sum(0), rtol=1e-5, atol=1e-5)


def test_tile_settings_are_checked():
    with pytest.raises(ValueError, match="CUDA_TILE_OUTPUTS"):
        _config.set_cuda(CUDA_TILE_OUTPUTS=(0, 4))
    with pytest.raises(ValueError, match=r"CUDA_TILE_OUTPUTS = \(3, 4\) .* CUDA_TILE \(16\) must be a multiple"):
        _config.set_cuda(CUDA_TILE=16, CUDA_TILE_OUTPUTS=(3, 4))
    with pytest.raises(ValueError, match="CUDA_TILE_OUTPUTS .* shared memory"):
        _config.set_cuda(CUDA_TILE=32, CUDA_TILE_OUTPUTS=(16, 16))
    with pytest.raises(ValueError, match="CUDA_TILE_OUTPUTS .* registers"):
        _config.set_cuda(CUDA_TILE=32, CUDA_TILE_OUTPUTS=(2, 2))
