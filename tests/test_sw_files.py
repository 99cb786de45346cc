"""Image directories, model files, configuration files, and the CLI."""

import json
import os

import numpy as np
import pytest

import sw
from sw import format as fmt
from sw.cli import main
from sw.manifest import seal

from models import random_inputs, random_model


@pytest.fixture
def image():
    rng = np.random.default_rng(7)
    config = sw.Config(n_pe=4, weight_depth=4096, pointer_depth=512, row_depth=64, max_layers=4)
    return sw.pack(random_model(rng, config, [30, 40, 12]), config)


def test_save_load_roundtrip(tmp_path, image):
    image.save(tmp_path / "img")
    loaded = sw.Image.load(tmp_path / "img")
    assert loaded.config == image.config
    assert loaded.memories() == image.memories()
    assert sw.unpack(loaded) == sw.unpack(image)
    x = random_inputs(np.random.default_rng(0), 5, 30, 16)
    assert np.array_equal(sw.golden.run(loaded, x), sw.golden.run(image, x))
    assert sorted(os.listdir(tmp_path)) == ["img"]            # no temporary left behind


def test_hex_files_are_readmemh(tmp_path, image):
    image.save(tmp_path / "img")
    text = (tmp_path / "img" / "pe0.entries.hex").read_text().splitlines()
    words = image.memories()["pe0.entries"].words
    assert text == [f"{int(w):04x}" for w in words]
    bias = (tmp_path / "img" / "pe1.bias.hex").read_text().splitlines()
    assert all(len(line) == 8 for line in bias)


def test_save_is_atomic_and_does_not_clobber(tmp_path, image, monkeypatch):
    target = tmp_path / "img"
    image.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(FileExistsError, match="exists"):
        image.save(target)
    calls = []

    def failing(self):
        calls.append(self.name)
        if len(calls) == 3:
            raise OSError("disk full")
        return fmt.hex_bytes(self.words, self.width)

    monkeypatch.setattr(fmt.MemoryImage, "hex_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        image.save(target, overwrite=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before     # the old image is intact
    assert sorted(os.listdir(tmp_path)) == ["img"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    monkeypatch.undo()
    with pytest.raises(FileExistsError, match="not an OpenEIE image"):
        image.save(other, overwrite=True)
    assert (other / "thesis.tex").read_text() == "precious"


def _edit(path, name, fn, fix_checksum=False):
    """Apply `fn` to a file's bytes; with `fix_checksum`, record the new file
    in the manifest and seal the manifest again (an edit made to pass the
    checksums, which the loader must still see through)."""
    file = path / name
    data = fn(file.read_bytes())
    file.write_bytes(data)
    if fix_checksum:
        _edit_manifest(path, lambda m: _record(m, name, data))


def _record(manifest, name, data):
    for entry in manifest["memories"].values():
        if entry["file"] == name:
            entry["sha256"] = fmt.sha256(data)
            entry["words"] = data.count(b"\n")


def _edit_manifest(path, fn):
    """Change the parsed manifest with `fn` and seal it again."""
    manifest = json.loads((path / "manifest.json").read_text())
    fn(manifest)
    (path / "manifest.json").write_text(json.dumps(seal(manifest)))


@pytest.mark.parametrize("damage,message", [
    (lambda p: _edit(p, "pe0.entries.hex", lambda d: d[:-3]), "checksum does not match"),
    (lambda p: _edit(p, "pe0.entries.hex", lambda d: d[:-3], True), "not a whole number of 4-digit lines"),
    (lambda p: _edit(p, "pe2.bias.hex", lambda d: b"zz" + d[2:], True), "line 1 has a character"),
    (lambda p: _edit(p, "codebook.hex", lambda d: b"1" + d[1:]), "checksum does not match"),
    (lambda p: os.remove(p / "pe3.ptr_odd.hex"), "missing"),
    (lambda p: _edit(p, "manifest.json", lambda d: d.replace(b'"version": 2', b'"version": 99')),
     "format version 99"),
    (lambda p: _edit(p, "manifest.json", lambda d: d.replace(b'"n_pe": 4', b'"n_pe": 8')),
     "sha256 does not match its contents"),
    (lambda p: _edit_manifest(p, lambda m: m["config"].update(n_pe=8)), "memories missing: pe4"),
    (lambda p: _edit(p, "manifest.json", lambda d: d[:40]), "not valid JSON"),
    (lambda p: _edit(p, "pe1.ptr_odd.hex", lambda d: b"0fff" + d[4:], True), "PE 1: pointers are not increasing"),
    (lambda p: _edit(p, "layers.hex", lambda d: d.replace(b"00000028", b"00000029", 1), True), "layer"),
])
def test_load_rejects_damaged_images(tmp_path, image, damage, message):
    image.save(tmp_path / "img")
    damage(tmp_path / "img")
    with pytest.raises(sw.ImageError, match=message):
        sw.Image.load(tmp_path / "img")


def test_load_rejects_non_image(tmp_path):
    with pytest.raises(sw.ImageError, match="no manifest.json"):
        sw.Image.load(tmp_path)


def test_config_validation_and_json():
    c = sw.Config(n_pe=64, weight_depth=131072)
    assert sw.Config.from_json(c.to_json()) == c
    with pytest.raises(AttributeError):
        c.n_pe = 2
    with pytest.raises(sw.ConfigError, match="n_pe must be a power of two, got 12"):
        sw.Config(n_pe=12)
    with pytest.raises(sw.ConfigError, match="acc_bits .* must be at least act_bits"):
        sw.Config(acc_bits=8)
    with pytest.raises(sw.ConfigError, match="unknown configuration keys: n_pes"):
        sw.Config.from_dict({"n_pes": 4})
    with pytest.raises(sw.ConfigError, match="must be an int"):
        sw.Config(n_pe=4.0)
    with pytest.raises(sw.ConfigError, match="weight_depth .* multiple of entries_per_word"):
        sw.Config(weight_depth=1001, entries_per_word=2)


def test_atomic_file(tmp_path):
    from sw.files import atomic_file, umask
    target = tmp_path / "out.json"
    with atomic_file(target, "w") as f:
        f.write("first")
    assert target.read_text() == "first"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask()         # not mkstemp's private 0o600
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_file(target, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "first"                              # the old file is intact
    assert os.listdir(tmp_path) == ["out.json"]                       # no temporary left behind


def test_model_npz_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    model = random_model(rng, sw.Config(), [9, 7, 3])
    sw.save_model(model, tmp_path / "m.npz")
    assert sw.load_model(tmp_path / "m.npz") == model
    layers = [sw.Layer(rng.standard_normal((4, 9)), rng.standard_normal(4)), sw.Layer(np.ones((2, 4)), relu=False)]
    sw.save_model(layers, tmp_path / "f.npz")
    back = sw.load_model(tmp_path / "f.npz")
    assert [l.relu for l in back] == [True, False] and np.array_equal(back[0].weight, layers[0].weight)
    np.savez(tmp_path / "bad.npz", **{"layer0.weight": np.ones((3, 2)), "layer2.weight": np.ones((1, 3))})
    with pytest.raises(sw.ModelError, match="layer 1 is missing"):
        sw.load_model(tmp_path / "bad.npz")
    np.savez(tmp_path / "chain.npz", **{"layer0.weight": np.ones((3, 2)), "layer1.weight": np.ones((1, 4))})
    with pytest.raises(sw.ModelError, match=r"chain\.npz: layer 1 takes 4 inputs but layer 0 produces 3 outputs"):
        sw.load_model(tmp_path / "chain.npz")


def test_cli_pack_inspect_run(tmp_path, capsys):
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "float.npz", **{"layer0.weight": rng.standard_normal((16, 12)),
                                       "layer1.weight": rng.standard_normal((5, 16))})
    np.save(tmp_path / "cal.npy", rng.standard_normal((64, 12)))
    assert main(["pack", str(tmp_path / "float.npz"), "-o", str(tmp_path / "img"), "--density", "0.5",
                 "--calibration", str(tmp_path / "cal.npy"), "--n-pe", "4", "--save-compressed",
                 str(tmp_path / "c.npz")]) == 0
    assert "bits/nz" in capsys.readouterr().out
    image = sw.Image.load(tmp_path / "img")
    assert image.config.n_pe == 4 and len(image.layers) == 2
    assert main(["inspect", str(tmp_path / "img")]) == 0
    out = capsys.readouterr().out
    assert "layer 1: 16 -> 5" in out and "imbalance" in out
    x = sw.quantize_input(rng.standard_normal((3, 12)), image.layers[0].fa)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "img"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), sw.golden.run(image, x))
    # a compressed model packs directly, for another configuration
    assert main(["pack", str(tmp_path / "c.npz"), "-o", str(tmp_path / "img2"), "--n-pe", "2"]) == 0
    assert sw.unpack(sw.Image.load(tmp_path / "img2")) == sw.load_model(tmp_path / "c.npz")


def test_cli_errors(tmp_path, capsys):
    np.savez(tmp_path / "float.npz", **{"layer0.weight": np.ones((4, 3))})
    assert main(["pack", str(tmp_path / "float.npz"), "-o", str(tmp_path / "img")]) == 2
    assert "give --density" in capsys.readouterr().err
    assert main(["pack", str(tmp_path / "float.npz"), "-o", str(tmp_path / "img"), "--density", "0.5",
                 "--n-pe", "3"]) == 2
    assert "power of two" in capsys.readouterr().err
    assert not (tmp_path / "img").exists()
    assert main(["inspect", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
