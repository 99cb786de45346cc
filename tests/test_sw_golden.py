"""The golden model against a plain Python reference (docs/design.md §5)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sw
from sw.fixedpoint import round_shift, signed_range, wrap

from models import padding_model, random_inputs, random_model
from reference import run_image_reference


@settings(max_examples=120)
@given(seed=st.integers(0, 2**32 - 1), n_pe=st.sampled_from([1, 2, 4, 64]),
       dims=st.lists(st.integers(1, 40), min_size=2, max_size=4), extreme=st.booleans(),
       act_density=st.sampled_from([0.0, 0.1, 0.5, 1.0]), run_bits=st.integers(1, 4))
def test_golden_matches_reference(seed, n_pe, dims, extreme, act_density, run_bits):
    rng = np.random.default_rng(seed)
    config = sw.Config(n_pe=n_pe, run_bits=run_bits)
    image = sw.pack(random_model(rng, config, dims, extreme=extreme), config)
    x = random_inputs(rng, 3, dims[0], config.act_bits, density=act_density, extreme=extreme)
    traced = sw.golden.run(image, x, trace=True)
    for b in range(x.shape[0]):
        expected = run_image_reference(image, x[b])
        for layer, (got, want) in enumerate(zip(traced, expected)):
            assert got[b].tolist() == want, f"layer {layer}, vector {b}"
    assert np.array_equal(sw.golden.run(image, x[1]), traced[-1][1])     # 1-D input, same result


@pytest.mark.parametrize("act_bits,acc_bits", [(8, 20), (12, 24), (16, 32)])
def test_golden_other_widths(act_bits, acc_bits):
    rng = np.random.default_rng(act_bits)
    config = sw.Config(n_pe=4, act_bits=act_bits, weight_bits=act_bits, acc_bits=acc_bits)
    image = sw.pack(random_model(rng, config, [20, 30, 10], extreme=True), config)
    x = random_inputs(rng, 4, 20, act_bits, extreme=True)
    y = sw.golden.run(image, x, trace=True)
    for b in range(4):
        assert [l[b].tolist() for l in y] == run_image_reference(image, x[b])


def test_padding_model_against_reference():
    for n_pe in (1, 2, 16):
        config = sw.Config(n_pe=n_pe, run_bits=2)
        image = sw.pack(padding_model(config), config)
        x = np.array([[3, -5, 7, 11, -13, 17], [0, 0, 0, 0, 0, 0]])
        y = sw.golden.run(image, x)
        for b in range(2):
            assert y[b].tolist() == run_image_reference(image, x[b])[-1]


def _single(codes, codebook, bias, relu, shift, config=sw.Config(n_pe=2)):
    layer = sw.CompressedLayer(np.asarray(codes), np.asarray(codebook), np.asarray(bias), relu, shift, 0, 0)
    return sw.pack(sw.CompressedModel([layer], shift), config)


def test_all_zero_input_gives_written_back_bias():
    image = _single([[1, 2], [2, 1], [1, 1]], [0, 5, -5], [7, -7, 100], False, 2)
    y = sw.golden.run(image, np.zeros(2, dtype=np.int16))
    assert y.tolist() == [2, -2, 25]      # (7+2)>>2, (-7+2)>>2 = floor(-1.25), (100+2)>>2


def test_rounding_half_up_and_shift_zero():
    assert round_shift(np.array([-3, -2, -1, 1, 2, 3, 5]), 1).tolist() == [-1, -1, 0, 1, 1, 2, 3]
    assert round_shift(np.array([-3, 7]), 0).tolist() == [-3, 7]
    image = _single([[1]], [0, 1], [0], False, 0)
    assert sw.golden.run(image, np.array([-32768])).tolist() == [-32768]


def test_saturation_both_ways_and_relu():
    lo, hi = signed_range(16)
    image = _single([[1], [2], [1]], [0, 32767, -32768], [0, 0, 0], False, 0)
    assert sw.golden.run(image, np.array([32767])).tolist() == [hi, lo, hi]
    image = _single([[1], [2]], [0, 32767, -32768], [0, 0], True, 0)
    assert sw.golden.run(image, np.array([32767])).tolist() == [hi, 0]


def test_accumulator_wraps_modulo():
    # bias at the top of the 32-bit range plus a positive product wraps negative
    alo, ahi = signed_range(32)
    image = _single([[1]], [0, 2], [ahi], False, 0)
    assert sw.golden.run(image, np.array([3])).tolist() == [signed_range(16)[0]]  # wraps to alo+5, saturates
    assert wrap(np.array([ahi + 6]), 32).tolist() == [alo + 5]
    # the rounding addition itself does not wrap (exact integer write-back)
    image = _single([[0]], [0, 1], [ahi], False, 4)
    assert sw.golden.run(image, np.array([0])).tolist() == [signed_range(16)[1]]


def test_input_validation():
    image = _single([[1, 2]], [0, 1, 2], [0], True, 0)
    with pytest.raises(TypeError, match="must be integers"):
        sw.golden.run(image, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\) or \(B, 2\).*got \(3,\)"):
        sw.golden.run(image, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"input \(1,\) = 40000 is outside the act_bits = 16 range"):
        sw.golden.run(image, np.array([1, 40000]))


def test_output_dtype_and_shapes():
    image = _single([[1, 2]], [0, 1, 2], [0], True, 0)
    y = sw.golden.run(image, np.array([[1, 2], [3, 4]], dtype=np.int16))
    assert y.dtype == np.int16 and y.shape == (2, 1)
    assert sw.golden.run(image, np.array([1, 2])).shape == (1,)
