"""Bad input gets one clear error that names what is wrong and where, never a
traceback or a silent change, and loses nothing."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import sw
from sw.cli import main

from models import random_inputs, random_model


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(3)
    config = sw.Config(n_pe=2, weight_depth=1024, pointer_depth=256, row_depth=64, max_layers=4)
    image = sw.pack(random_model(rng, config, [12, 9, 4]), config)
    image.save(tmp_path / "img")
    np.save(tmp_path / "x.npy", random_inputs(rng, 3, 12, config.act_bits))
    return tmp_path / "img"


def cli(capsys, *argv):
    """Run ``python -m sw`` in-process: (exit status, stderr)."""
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_clean_error(code, err, *needles):
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


# ---- empty batches and zero-size layers ---------------------------------------

def test_empty_batch(image_dir, tmp_path, capsys):
    image = sw.Image.load(image_dir)
    assert sw.golden.run(image, np.zeros((0, 12), dtype=np.int16)).shape == (0, 4)
    assert sw.golden.accumulator_wraps(image, np.zeros((0, 12), dtype=np.int16)).shape == (0, 2)
    np.save(tmp_path / "empty.npy", np.zeros((0, 12), dtype=np.int16))
    assert_clean_error(*cli(capsys, "run", image_dir, tmp_path / "empty.npy"), "holds no input vectors")


@pytest.mark.parametrize("shape", [(0, 5), (5, 0)])
def test_zero_size_layers(shape):
    with pytest.raises(sw.ModelError, match=r"has shape .*: a layer needs at least one input and one output"):
        sw.Layer(np.zeros(shape))
    with pytest.raises(sw.ModelError, match=r"a layer needs at least one input and one output"):
        sw.CompressedLayer(np.zeros(shape, dtype=int), [0, 1])
    with pytest.raises(sw.ModelError, match=r"a layer needs at least one input and one output"):
        sw.CompressedLayer(sp.csr_array(shape, dtype=np.int64), [0, 1])


def test_density_that_keeps_nothing():
    layers = [sw.Layer(np.ones((8, 8)))]
    with pytest.raises(sw.ModelError, match=r"layer 0: density 1e-09 keeps none of its 64 weights"):
        sw.compress(layers, density=1e-9)


# ---- files that cannot be read or written --------------------------------------

def test_unreadable_files(image_dir, tmp_path, capsys, monkeypatch):
    # root reads everything, so the permission error is injected where the file is opened
    real = Path.read_bytes

    def denied(self):
        if self.name == "pe1.entries.hex":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert_clean_error(*cli(capsys, "inspect", image_dir), "pe1.entries.hex: Permission denied")


def test_unwritable_output(image_dir, tmp_path, capsys, monkeypatch):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", k.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert_clean_error(*cli(capsys, "run", image_dir, tmp_path / "x.npy", "-o", tmp_path / "out" / "y.npy"),
                       "Permission denied")
    assert not (tmp_path / "out" / "y.npy").exists()


def test_directories_where_files_belong(image_dir, tmp_path, capsys):
    (tmp_path / "dir.npy").mkdir()
    assert_clean_error(*cli(capsys, "run", image_dir, tmp_path / "dir.npy"), "is a directory")
    assert_clean_error(*cli(capsys, "run", image_dir, tmp_path / "x.npy", "-o", tmp_path / "dir.npy", "--force"),
                       "is a directory")
    assert_clean_error(*cli(capsys, "pack", tmp_path / "m.npz", "-o", tmp_path / "o", "--config", tmp_path),
                       "Is a directory")
    assert_clean_error(*cli(capsys, "pack", tmp_path, "-o", tmp_path / "o"), "is a directory")


def test_inputs_of_the_wrong_kind(image_dir, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", a=np.zeros(12))
    assert_clean_error(*cli(capsys, "run", image_dir, tmp_path / "x.npz"), "is an .npz archive (a)")
    (tmp_path / "text.npy").write_text("1 2 3\n")
    assert_clean_error(*cli(capsys, "run", image_dir, tmp_path / "text.npy"), "not a valid .npy file")
    np.save(tmp_path / "ragged.npy", np.array([np.zeros(3), np.zeros(2)], dtype=object), allow_pickle=True)
    assert_clean_error(*cli(capsys, "run", image_dir, tmp_path / "ragged.npy"), "not a valid .npy file")
    np.save(tmp_path / "f.npy", np.zeros((2, 12)))
    assert_clean_error(*cli(capsys, "run", image_dir, tmp_path / "f.npy"), "pass --quantize")


def test_ragged_and_non_numeric_inputs(image_dir):
    image = sw.Image.load(image_dir)
    with pytest.raises(TypeError, match="inputs is not a rectangular array"):
        sw.golden.run(image, [[1] * 12, [2] * 11])
    with pytest.raises(TypeError, match="inputs must be integers"):
        sw.golden.run(image, np.array([["a"] * 12]))
    with pytest.raises(TypeError, match="inputs must be integers"):
        sw.golden.run(image, np.ones((1, 12), dtype=bool))


def test_pack_into_the_current_directory(tmp_path, capsys, monkeypatch):
    np.savez(tmp_path / "m.npz", **{"layer0.weight": np.ones((4, 3))})
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("precious")
    monkeypatch.chdir(work)
    assert_clean_error(*cli(capsys, "pack", tmp_path / "m.npz", "-o", ".", "--density", "0.5", "--force"),
                       "current directory")
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "work"] and os.listdir(work) == ["notes.txt"]


# ---- values that used to be changed silently ------------------------------------

def test_complex_and_non_numeric_weights():
    with pytest.raises(sw.ModelError, match=r"weight holds complex numbers"):
        sw.Layer(np.ones((2, 2)) * (1 + 1j))
    with pytest.raises(sw.ModelError, match=r"weight must hold real numbers, got dtype complex"):
        sw.Layer(sp.csr_array(np.ones((2, 2)) * 1j))
    with pytest.raises(sw.ModelError, match=r"weight must hold numbers, got dtype <U1"):
        sw.Layer(np.array([["a", "b"]]))
    with pytest.raises(sw.ModelError, match=r"relu must be True or False, got 'no'"):
        sw.Layer(np.ones((2, 2)), relu="no")
    with pytest.raises(sw.ModelError, match=r"NaN or infinite value at row 1, column 0"):
        sw.Layer(np.array([[1.0, 2.0], [np.nan, 0.0]]))


def _compressed_npz(path, **changes):
    rng = np.random.default_rng(0)
    model = random_model(rng, sw.Config(), [5, 4])
    sw.save_model(model, path)
    with np.load(path) as f:
        arrays = dict(f)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("changes,message", [
    ({"layer0.fa": np.float64(8.7)}, r"layer0.fa must be an integer, got 8.7"),
    ({"layer0.relu": np.str_("no")}, r"layer0.relu must be a boolean, got 'no'"),
    ({"layer0.codebook": None}, r"missing layer0.codebook"),
    ({"layer0.bias": None}, r"missing layer0.bias"),
    ({"layer0.codes.shape": np.array([4.7, 5])}, r"codes.shape must be two positive integers"),
    ({"layer0.codes.shape": np.array([3, 5])}, r"codes.indptr must rise from 0"),
    ({"layer0.codes.shape": np.array([4, 2])}, r"codes.indices\[\d+\] = \d is outside the 2 columns"),
    ({"layer0.codes.indptr": None}, r"sparse codes need layer0.codes.indptr"),
    ({"layer0.codes.data": np.array(["x"])}, r"layer0.codes.data must hold integers"),
    ({"layer0.wieght": np.ones(2)}, r"unexpected layer0.wieght in a compressed model"),
])
def test_compressed_model_files_are_read_strictly(tmp_path, changes, message):
    path = _compressed_npz(tmp_path / "m.npz", **changes)
    with pytest.raises(sw.ModelError, match=message) as e:
        sw.load_model(path)
    assert str(e.value).count("layer 0:") <= 1                     # no "layer 0: layer 0:"
    assert str(e.value).startswith(str(path))


def test_float_model_files_are_read_strictly(tmp_path):
    np.savez(tmp_path / "s.npz", **{"layer0.weight": np.array([["1", "2"]])})
    with pytest.raises(sw.ModelError, match=r"s.npz: layer 0: weight must hold numbers"):
        sw.load_model(tmp_path / "s.npz")
    np.savez(tmp_path / "mixed.npz", **{"layer0.weight": np.ones((2, 2)), "layer1.codes": np.ones((2, 2), dtype=int)})
    with pytest.raises(sw.ModelError, match=r"a model is all float or all compressed"):
        sw.load_model(tmp_path / "mixed.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(sw.ModelError, match=r"text.npz: not a valid .npz model file"):
        sw.load_model(tmp_path / "text.npz")
    import pickle
    (tmp_path / "p.npz").write_bytes(pickle.dumps({"layer0.weight": 1}))
    with pytest.raises(sw.ModelError, match=r"not a valid .npz model file"):       # pickles stay refused
        sw.load_model(tmp_path / "p.npz")
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(sw.ModelError, match=r"holds one array"):
        sw.load_model(tmp_path / "one.npy")


def test_quantize_input_is_checked():
    with pytest.warns(UserWarning, match=r"2 of 3 values lie outside the 16-bit format with 8 fraction bits"):
        q = sw.quantize_input([1.0, 1e300, -1e9], 8)
    assert q.tolist() == [256, 32767, -32768]
    for bits in (0, 1, 64):
        with pytest.raises(ValueError, match=r"act_bits must be an int in 2..32"):
            sw.quantize_input([1.0], 4, act_bits=bits)
    for frac in (5000, -1, 2.5):
        with pytest.raises(ValueError, match=r"frac_bits must be an int in 0..64"):
            sw.quantize_input([1.0], frac)
    with pytest.raises(ValueError, match=r"inputs to quantise has a NaN or infinite value at index 1"):
        sw.quantize_input([1.0, np.nan], 4)
    with pytest.raises(ValueError, match=r"must hold numbers"):
        sw.quantize_input(["1.0"], 4)


def test_calibration_is_checked():
    layers = [sw.Layer(np.ones((3, 4)))]
    with pytest.raises(sw.ModelError, match=r"calibration inputs .* needs at least one element"):
        sw.compress(layers, density=0.5, calibration=np.zeros((0, 4)))
    with pytest.raises(sw.ModelError, match=r"calibration inputs must hold numbers"):
        sw.compress(layers, density=0.5, calibration=np.array([["a"] * 4]))
    with pytest.raises(sw.ModelError, match=r"acc_headroom must be a number >= 1"):
        sw.compress(layers, density=0.5, acc_headroom=0.5)


# ---- one rule for every output: --force ---------------------------------------------

def test_outputs_need_force(image_dir, tmp_path, capsys):
    x = tmp_path / "x.npy"
    (tmp_path / "y.npy").write_text("mine")
    assert_clean_error(*cli(capsys, "run", image_dir, x, "-o", tmp_path / "y.npy"), "y.npy exists (--force replaces it)")
    assert (tmp_path / "y.npy").read_text() == "mine"
    assert cli(capsys, "run", image_dir, x, "-o", tmp_path / "y.npy", "--force")[0] == 0
    assert np.load(tmp_path / "y.npy").shape == (3, 4)
    assert_clean_error(*cli(capsys, "run", image_dir, x, "-o", tmp_path / "y"), "must end in .npy")
    assert not (tmp_path / "y").exists() and not (tmp_path / "y.npy.npy").exists()
    assert_clean_error(*cli(capsys, "pack", tmp_path / "m.npz", "-o", image_dir), "img exists (--force replaces it)")

    rng = np.random.default_rng(1)
    np.savez(tmp_path / "m.npz", **{"layer0.weight": rng.standard_normal((4, 3))})
    (tmp_path / "c.npz").write_text("mine")
    code, err = cli(capsys, "pack", tmp_path / "m.npz", "-o", tmp_path / "new", "--density", "0.5",
                    "--save-compressed", tmp_path / "c.npz")
    assert_clean_error(code, err, "c.npz exists (--force replaces it)")
    assert (tmp_path / "c.npz").read_text() == "mine" and not (tmp_path / "new").exists()   # checked before any work


def test_inspect_json_is_json(tmp_path, capsys):
    layer = sw.CompressedLayer(np.zeros((3, 2), dtype=int), [0, 1])          # no nonzero weights at all
    sw.pack(sw.CompressedModel([layer], 0), sw.Config(n_pe=2)).save(tmp_path / "img")
    assert main(["inspect", str(tmp_path / "img"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert data["layers"][0]["bits_per_nonzero"] is None
    assert main(["inspect", str(tmp_path / "img")]) == 0


def test_config_file_errors(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", **{"layer0.weight": np.ones((4, 3))})
    (tmp_path / "c.json").write_text("{nope")
    assert_clean_error(*cli(capsys, "pack", tmp_path / "m.npz", "-o", tmp_path / "o", "--density", "1",
                            "--config", tmp_path / "c.json"), "c.json: not valid JSON")
    (tmp_path / "c.json").write_text('{"n_pes": 4}')
    assert_clean_error(*cli(capsys, "pack", tmp_path / "m.npz", "-o", tmp_path / "o", "--density", "1",
                            "--config", tmp_path / "c.json"), "unknown configuration keys: n_pes")


def test_run_warns_when_accumulators_wrap(tmp_path, capsys):
    """The output is still bit-exact with the hardware, but the user is told."""
    codes = np.ones((2, 3), dtype=int)
    layer = sw.CompressedLayer(codes, [0, 2**15 - 1], [0, 0], False, 0, 16, 0)
    sw.pack(sw.CompressedModel([layer], 0), sw.Config(n_pe=2)).save(tmp_path / "img")
    np.save(tmp_path / "x.npy", np.full((2, 3), 2**15 - 1, dtype=np.int16))     # 3 * (2**15 - 1)**2 > 2**31
    code, err = cli(capsys, "run", tmp_path / "img", tmp_path / "x.npy")
    assert code == 0 and "warning: layer 0: accumulators wrap (acc_bits = 32) in 2 of 2 vectors, 4 outputs" in err


def test_pack_batch(tmp_path, capsys):
    # python -m sw pack --batch N: N block-diagonal copies; a bad N is refused before anything is written
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "m.npz", **{"layer0.weight": rng.standard_normal((4, 3))})
    assert cli(capsys, "pack", tmp_path / "m.npz", "-o", tmp_path / "img", "--density", "0.5", "--batch", "3",
               "--n-pe", "2")[0] == 0
    image = sw.Image.load(tmp_path / "img")
    assert (image.n_in, image.n_out) == (9, 12)
    assert_clean_error(*cli(capsys, "pack", tmp_path / "m.npz", "-o", tmp_path / "bad", "--density", "0.5",
                            "--batch", "0"), "batch must be a whole number in 1..256, got 0")
    assert not (tmp_path / "bad").exists()


def test_run_batch_and_the_hint(tmp_path, capsys):
    # python -m sw run --batch N takes and gives one copy's vectors; without it the error says what to do
    rng = np.random.default_rng(6)
    config = sw.Config(n_pe=2)
    model = random_model(rng, config, [5, 3])
    sw.pack(sw.batched(model, 2), config).save(tmp_path / "two")
    x = random_inputs(rng, 3, 5, config.act_bits)
    np.save(tmp_path / "x.npy", x)
    assert cli(capsys, "run", tmp_path / "two", tmp_path / "x.npy", "--batch", "2", "-o", tmp_path / "y.npy")[0] == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), sw.golden.run(sw.pack(model, config), x))
    assert_clean_error(*cli(capsys, "run", tmp_path / "two", tmp_path / "x.npy"),
                       "got (3, 5) (if it was packed from sw.batched(model, 2), stack 2 vectors a run")
    assert_clean_error(*cli(capsys, "run", tmp_path / "two", tmp_path / "x.npy", "--batch", "3"),
                       "the image's 10 inputs and 6 outputs do not split into 3 copies")
