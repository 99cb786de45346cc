"""sw.compare: float, compressed and golden models side by side."""

import json

import numpy as np
import pytest

import sw
from sw.cli import main


@pytest.fixture(scope="module")
def digits():
    layers = sw.load_model("models/digits_mlp.npz")
    d = np.load("models/digits_data.npz")
    config = sw.Config(n_pe=4)
    image = sw.pack(sw.compress(layers, density=1.0, calibration=d["x_cal"], config=config), config)
    return layers, image, d["x_test"]


def test_a_good_model_does_not_diverge(digits):
    layers, image, x = digits
    r = sw.compare(layers, image, x)
    assert r.first_divergent is None and r.cause is None
    assert r.vectors == 360 and r.input_saturated == 0
    for e in r.layers:
        assert e["saturated"] == 0 and e["wrapped"] == 0
        assert e["hardware_vs_compressed"]["relative_rms"] < 0.01     # fixed point adds little
        assert 0 < e["compressed_vs_float"]["relative_rms"] < 0.1    # 4-bit sharing costs some
    assert r.top1_agreement > 0.97
    assert "no layer is beyond the tolerance" in r.table()
    balanced = sw.pack(sw.unpack(image), image.config, balance=True)      # outputs come back in model order
    assert balanced.balanced and sw.compare(layers, balanced, x).to_dict() == r.to_dict()


def test_an_exactly_representable_model_has_only_fixed_point_error(digits):
    _, image, x = digits
    float_layers = sw.unpack(image).float_layers()
    r = sw.compare(float_layers, image, x)
    assert all(e["compressed_vs_float"]["max_abs"] < 1e-12 for e in r.layers)
    # the hardware's error is at most rounding: half an output LSB per layer, growing through the chain
    assert r.layers[0]["hardware_vs_float"]["max_abs"] <= 2.0 ** -image.layers[0].fo
    assert r.layers[-1]["hardware_vs_float"]["max_abs"] > 0


def test_it_names_the_layer_and_the_cause(digits):
    layers, image, x = digits
    r = sw.compare(layers, image, 40 * x)                # inputs beyond the format
    assert (r.first_divergent, r.cause) == (0, "saturated inputs") and r.input_saturated > 0
    # the digits model is already shared in 15 values per layer: 3 (2-bit codes) cost accuracy
    config = sw.Config(n_pe=4, code_bits=2)
    coarse = sw.pack(sw.compress(layers, density=1.0, calibration=x[:64], config=config), config)
    r = sw.compare(layers, coarse, x)
    assert r.cause == "compression" and r.first_divergent is not None
    # a model compressed with no accumulator headroom wraps on larger inputs
    config = sw.Config(n_pe=2, acc_bits=20)
    small = sw.pack(sw.compress(layers, density=1.0, calibration=x / 8, config=config, acc_headroom=1), config)
    r = sw.compare(layers, small, x)
    e = r.layers[r.first_divergent]
    assert e["wrapped"] > 0 and r.cause == "wrapped accumulators"
    assert f"layer {r.first_divergent} is the first beyond" in r.table()


def test_errors(digits):
    layers, image, x = digits
    with pytest.raises(sw.ModelError, match="2 layers, the image 3"):
        sw.compare(layers[:2], image, x)
    other = [sw.Layer(np.ones((64, 64)), relu=False), layers[1], layers[2]]
    with pytest.raises(sw.ModelError, match="layer 0: the float model has no ReLU"):
        sw.compare(other, image, x)
    with pytest.raises(sw.ModelError, match="inputs have 10 values per vector"):
        sw.compare(layers, image, x[:, :10])


def test_cli(tmp_path, digits, capsys):
    _, image, x = digits
    image.save(tmp_path / "img")
    np.save(tmp_path / "x.npy", x[:50])
    assert main(["compare", "models/digits_mlp.npz", str(tmp_path / "img"), str(tmp_path / "x.npy"),
                 "--plot", str(tmp_path / "err.png")]) == 0
    assert "rel. RMS error against float" in capsys.readouterr().out
    assert (tmp_path / "err.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["compare", "models/digits_mlp.npz", str(tmp_path / "img"), str(tmp_path / "x.npy"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["vectors"] == 50 and len(report["layers"]) == 3
