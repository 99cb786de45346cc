"""sw.factorize: truncated-SVD layers, run by the golden model as two layers."""

import numpy as np
import pytest

import sw
from sw.compress import forward
from sw.lowrank import low_rank_error, pruning_error, rank_for


def test_factorize_is_the_best_rank_r_approximation_and_runs_on_the_engine():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((40, 6)) @ rng.standard_normal((6, 30))       # rank 6 exactly
    layer = sw.Layer(w + 0.01 * rng.standard_normal(w.shape), rng.standard_normal(40), relu=True)
    v, u = sw.factorize(layer, 6)
    assert v.dense().shape == (6, 30) and u.dense().shape == (40, 6)
    assert not v.relu and u.relu and np.array_equal(u.bias, layer.bias)
    x = rng.standard_normal((20, 30))
    np.testing.assert_allclose(forward([v, u], x), forward([layer], x), atol=0.2)
    # the error is the tail of the singular values, and falls with the rank
    errors = [low_rank_error(layer, r) for r in (1, 3, 6, 30)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-12 and errors[2] < 0.01
    assert np.linalg.norm(u.dense() @ v.dense() - layer.dense()) / np.linalg.norm(layer.dense()) == \
        pytest.approx(low_rank_error(layer, 6))
    # the two factors compress, pack and run like any two layers (identity between them)
    config = sw.Config(n_pe=4)
    model = sw.compress([v, u], density=1.0, calibration=x, config=config)
    image = sw.pack(model, config)
    y = sw.golden.run(image, sw.quantize_input(x, model.input_frac_bits, config.act_bits))
    assert np.corrcoef(sw.dequantize(y, model.layers[-1].fo).ravel(), forward([layer], x).ravel())[0, 1] > 0.97   # 4-bit shared factors


def test_storage_comparisons_and_errors():
    rng = np.random.default_rng(1)
    layer = sw.Layer(rng.standard_normal((50, 80)))
    assert rank_for(layer, 130 * 10 + 5) == 10 and rank_for(layer, 3) == 1 and rank_for(layer, 10**9) == 50
    assert pruning_error(layer, 50 * 80) == 0 and pruning_error(layer, 0) == pytest.approx(1.0)
    # a random (full-rank) matrix: at the same storage, pruning keeps more than a low rank
    n = 130 * 10
    assert pruning_error(layer, n) < low_rank_error(layer, rank_for(layer, n))
    with pytest.raises(sw.ModelError, match=r"rank must be an integer in \[1, 50\]"):
        sw.factorize(layer, 51)
