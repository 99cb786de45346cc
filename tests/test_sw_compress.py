"""Compression: pruning, weight sharing, fixed-point formats."""

import numpy as np
import pytest
import scipy.sparse as sp

import sw
from sw.compress import prune, share_weights


def _mlp(rng, dims):
    return [sw.Layer(rng.standard_normal((o, i)) / np.sqrt(i), 0.1 * rng.standard_normal(o), relu=k < len(dims) - 2)
            for k, (i, o) in enumerate(zip(dims[:-1], dims[1:]))]


def test_prune_keeps_largest_magnitudes():
    w = np.array([[0.1, -5.0, 0.3], [2.0, -0.2, 0.0]])
    p = prune(w, 0.5).toarray()
    assert np.array_equal(p, [[0, -5.0, 0.3], [2.0, 0, 0]])


def test_share_weights_linear_init_keeps_extremes():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 0.1, 10000), [5.0, -4.0]])     # two rare large weights
    centroids, labels = share_weights(v, 15)
    assert centroids.size == 15 and np.all(np.diff(centroids) > 0)
    # linear initialisation keeps a centroid at each rare extreme (Deep Compression's point)
    assert centroids[labels[-2]] == pytest.approx(5.0) and centroids[labels[-1]] == pytest.approx(-4.0)
    # every weight is within half the initial spacing of its shared value
    err = np.abs(centroids[labels] - v)
    assert err.max() <= (5.0 + 4.0) / 14 / 2


def test_compress_report_and_accuracy():
    rng = np.random.default_rng(1)
    layers = _mlp(rng, [64, 48, 32, 10])
    cal = rng.random((300, 64))
    model = sw.compress(layers, density=[0.5, 0.4, 0.6], calibration=cal)
    assert len(model.report) == 3
    for r, l, d in zip(model.report, model.layers, [0.5, 0.4, 0.6]):
        assert r["density"] == pytest.approx(d, abs=1e-3)
        assert l.codebook.size <= 16 and l.codebook[0] == 0
        assert r["acc_overflows"] == 0 and r["saturated"] == 0 and r["warnings"] == []
        assert r["acc_wrap_scale_observed"] >= 16            # the default headroom
        # the 16x accumulator headroom costs weight bits, not accuracy
        assert r["error_vs_shared"]["relative_rms"] < 0.01
    # without headroom: fixed-point error against the float pruned and shared model of a few output LSBs
    tight = sw.compress(layers, density=[0.5, 0.4, 0.6], calibration=cal, acc_headroom=1)
    for r, l in zip(tight.report, tight.layers):
        assert r["error_vs_shared"]["max_abs"] < 8 * 2.0 ** -l.fo
    image = sw.pack(model, sw.Config(n_pe=4))
    x = rng.random((50, 64))
    y = sw.dequantize(sw.golden.run(image, sw.quantize_input(x, model.input_frac_bits)), model.output_frac_bits)
    y_shared = sw.forward(model.float_layers(), sw.dequantize(sw.quantize_input(x, model.input_frac_bits),
                                                               model.input_frac_bits))
    assert np.max(np.abs(y - y_shared)) < 0.05 * np.max(np.abs(y_shared))


def test_compress_avoids_accumulator_overflow():
    rng = np.random.default_rng(2)
    # large weights and inputs: the first choice of fw would overflow 32 bits
    layers = [sw.Layer(rng.uniform(-100, 100, (20, 400)), relu=False)]
    model = sw.compress(layers, density=1.0, calibration=rng.uniform(-1000, 1000, (20, 400)))
    r = model.report[0]
    assert r["acc_overflows"] == 0
    image = sw.pack(model)
    x = sw.quantize_input(rng.uniform(-1000, 1000, (5, 400)), model.input_frac_bits)
    assert sw.golden.run(image, x).shape == (5, 20)


def test_compress_without_calibration_warns():
    rng = np.random.default_rng(3)
    model = sw.compress(_mlp(rng, [8, 4]), density=0.5)
    assert any("no calibration" in w for w in model.report[0]["warnings"])


@pytest.mark.parametrize("density", [0, -0.1, 1.5, float("nan")])
def test_bad_density(density):
    with pytest.raises(sw.ModelError, match="density must be in"):
        sw.compress(_mlp(np.random.default_rng(0), [4, 3]), density=density)


def test_compress_input_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(sw.ModelError, match="layer 1 takes 5 inputs but layer 0 produces 3"):
        sw.compress([sw.Layer(np.ones((3, 4))), sw.Layer(np.ones((2, 5)))], density=0.5)
    with pytest.raises(sw.ModelError, match="calibration inputs have 3 values per vector, layer 0 takes 4"):
        sw.compress([sw.Layer(np.ones((3, 4)))], density=0.5, calibration=rng.random((2, 3)))
    with pytest.raises(sw.ModelError, match="density lists 1 values for 2 layers"):
        sw.compress(_mlp(rng, [4, 3, 2]), density=[0.5])


def _wraps_at_scales(model, config, rng, scales, n=200):
    import warnings
    image = sw.pack(model, config)
    out = []
    for s in scales:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")               # inputs beyond the format saturate; that is the point
            x = sw.quantize_input(s * rng.standard_normal((n, model.n_in)), model.input_frac_bits)
        out.append(int(sw.golden.accumulator_wraps(image, x).sum()))
    return out


def test_accumulator_headroom_against_larger_inputs():
    """Inputs several times the calibration's (saturating at the input
    format) wrapped accumulators and flipped signs while the report said
    nothing; the default 16x headroom keeps them exact."""
    rng = np.random.default_rng(1)
    layers = _mlp(rng, [64, 48, 12])
    cal = rng.standard_normal((400, 64))
    config = sw.Config(n_pe=4)
    tight = sw.compress(layers, density=0.5, calibration=cal, acc_headroom=1)
    assert sum(_wraps_at_scales(tight, config, np.random.default_rng(2), [3, 4, 6])) > 0
    model = sw.compress(layers, density=0.5, calibration=cal)
    assert _wraps_at_scales(model, config, np.random.default_rng(2), [1, 3, 4, 6, 12]) == [0] * 5
    for r in model.report:
        assert r["warnings"] == [] and r["acc_wrap_scale_observed"] >= 16
        assert 0 < r["acc_wrap_scale_worst"] <= r["acc_wrap_scale_observed"]


def test_wrap_scales_by_hand():
    from sw.compress import wrap_scales
    w = sp.csr_array(np.array([[3, -2], [0, 1]]))
    bias = np.array([10, 0])
    x = np.array([[100, 50]])                    # acc = 200 + 10, 50
    observed, worst = wrap_scales(w, bias, x, acc_bits=12)       # range -2048..2047
    assert observed == pytest.approx((2047 - 10) / 200)
    assert worst == pytest.approx((2048 - 10 - 1) / (5 * 100))  # row 0: (3 + 2) * max|x|, room min(2037, 2058)
    assert wrap_scales(w, np.array([5000, 0]), x, 12) == (0.0, 0.0)     # the bias alone does not fit
    assert wrap_scales(w, bias, np.zeros((1, 2), dtype=int), 12)[0] == np.inf


def test_warns_when_calibration_comes_within_the_headroom():
    rng = np.random.default_rng(4)
    layers = [sw.Layer(rng.uniform(0.5, 1, (4, 200)), relu=False)]     # coherent sums: large accumulators
    config = sw.Config(act_bits=16, weight_bits=16, acc_bits=24)
    model = sw.compress(layers, density=1.0, calibration=rng.uniform(0.5, 1, (50, 200)), config=config)
    r = model.report[0]
    assert r["fw"] == 0 and 1 <= r["acc_wrap_scale_observed"] < 16
    assert any("within the headroom asked for (16x)" in w for w in r["warnings"])
