"""Image directories, model files, configuration files, and the CLI."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    banks = (tmp_path / "img" / "pe1.ptr_odd.hex").read_text().splitlines()
    assert all(len(line) == 4 for line in banks)          # 16-bit words: pointers, then bias halves


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
    entry = manifest.get("memories", {}).get(name.removesuffix(".hex"))
    if isinstance(entry, dict):
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
    (lambda p: _edit(p, "pe2.ptr_even.hex", lambda d: b"zz" + d[2:], True), "line 1 has a character"),
    (lambda p: _edit(p, "codebook.hex", lambda d: b"1" + d[1:]), "checksum does not match"),
    (lambda p: os.remove(p / "pe3.ptr_odd.hex"), "missing"),
    (lambda p: _edit(p, "manifest.json", lambda d: d.replace(b'"version": 4', b'"version": 99')),
     "format version 99"),
    (lambda p: _edit(p, "manifest.json", lambda d: d.replace(b'"version": 4', b'"version": 3')),
     "written by an older OpenEIE: pack the model again"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"][0].update(order=[0] * m["layers"][0]["n_out"])),
     "layer 0: the row order is not a permutation"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"][0].update(order=list(range(m["layers"][0]["n_out"])))),
     "identity row order is written as"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"][0].update(order=None)), "order must be a list"),
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
    with pytest.raises(sw.ConfigError, match=r"fifo_depth must be in \[4, 1024\], got 3"):
        sw.Config(fifo_depth=3)


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
    # rows reordered (balanced, shorter runs): the same model, the same outputs
    assert main(["pack", str(tmp_path / "c.npz"), "-o", str(tmp_path / "img3"), "--n-pe", "4", "--balance",
                 "--shorten-runs"]) == 0
    assert "rows reordered" in capsys.readouterr().err
    reordered = sw.Image.load(tmp_path / "img3")
    assert sw.unpack(reordered) == sw.load_model(tmp_path / "c.npz")
    assert np.array_equal(sw.golden.run(reordered, x), sw.golden.run(image, x))


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


# ---- no data loss: saves never replace what they were not asked to ---------

def _during_save(monkeypatch, action):
    """Run `action` once, in the middle of the next save (after its first memory file)."""
    calls = []
    original = fmt.MemoryImage.hex_bytes

    def hooked(self):
        calls.append(self.name)
        if len(calls) == 2:
            action()
        return original(self)

    monkeypatch.setattr(fmt.MemoryImage, "hex_bytes", hooked)


def test_save_never_replaces_a_directory_that_appears_meanwhile(tmp_path, image, monkeypatch):
    target = tmp_path / "img"

    def user_creates_it():
        target.mkdir()
        (target / "thesis.tex").write_text("precious")

    _during_save(monkeypatch, user_creates_it)
    with pytest.raises(FileExistsError, match="img exists"):
        image.save(target)
    assert (target / "thesis.tex").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["img"]                  # no temporary left behind


def test_concurrent_saves_without_overwrite_one_wins(tmp_path, image, monkeypatch):
    """Save B finishes while save A is half-way: A must fail, not replace B."""
    other = sw.pack(random_model(np.random.default_rng(99), image.config, [30, 12]), image.config)
    target = tmp_path / "img"
    _during_save(monkeypatch, lambda: (monkeypatch.undo(), other.save(target)))
    with pytest.raises(FileExistsError, match="exists"):
        image.save(target)
    assert sw.Image.load(target).memories() == other.memories()
    assert sorted(os.listdir(tmp_path)) == ["img"]


def test_overwrite_puts_back_a_non_image_that_appears_meanwhile(tmp_path, image, monkeypatch):
    target = tmp_path / "img"
    image.save(target)

    def swapped_for_notes():
        import shutil
        shutil.rmtree(target)
        target.mkdir()
        (target / "notes.txt").write_text("precious")

    _during_save(monkeypatch, swapped_for_notes)
    with pytest.raises(FileExistsError, match="not an OpenEIE image"):
        image.save(target, overwrite=True)
    assert (target / "notes.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["img"]


def test_overwrite_replaces_an_image_atomically(tmp_path, image):
    target = tmp_path / "img"
    other = sw.pack(random_model(np.random.default_rng(5), image.config, [30, 12]), image.config)
    other.save(target)
    image.save(target, overwrite=True)
    assert sw.Image.load(target).memories() == image.memories()
    assert sorted(os.listdir(tmp_path)) == ["img"]


def test_save_refuses_the_current_directory(tmp_path, image, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    for path in (".", "..", str(tmp_path / "work")):
        with pytest.raises(FileExistsError, match="current directory"):
            image.save(path, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["work"] and os.listdir(tmp_path / "work") == []


def test_killed_save_leaves_a_temporary_the_next_save_removes(tmp_path, image):
    """SIGKILL half-way through a save (in a real process): the partial
    directory is hidden, never at the target, and the next save of the
    same target removes it."""
    import signal
    import subprocess
    import sys
    import textwrap
    image.save(tmp_path / "src")
    script = textwrap.dedent(f"""
        import os, sys, time
        import sw
        from sw import format as fmt
        image = sw.Image.load({str(tmp_path / "src")!r})
        original = fmt.MemoryImage.hex_bytes
        def slow(self):
            print("writing", flush=True)
            time.sleep(60)
        fmt.MemoryImage.hex_bytes = slow
        image.save({str(tmp_path / "img")!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".img.")]
    assert len(leftovers) == 1 and not (tmp_path / "img").exists()
    image.save(tmp_path / "img")
    assert sorted(os.listdir(tmp_path)) == ["img", "src"]


def test_temporaries_of_running_writers_are_kept(tmp_path, image):
    live = tmp_path / f".img.oeie-tmp-{os.getpid()}-abc"      # this process is alive
    live.mkdir()
    image.save(tmp_path / "img")
    assert live.is_dir()


def test_atomic_file_without_overwrite(tmp_path):
    from sw.files import OutputExistsError, atomic_file
    target = tmp_path / "out.npy"
    target.write_text("mine")
    with pytest.raises(OutputExistsError):
        with atomic_file(target, overwrite=False) as f:
            f.write(b"new")
    assert target.read_text() == "mine"
    target.unlink()
    with pytest.raises(OutputExistsError):          # appears while the file is written
        with atomic_file(target, overwrite=False) as f:
            f.write(b"new")
            target.write_text("theirs")
    assert target.read_text() == "theirs" and os.listdir(tmp_path) == ["out.npy"]
    with pytest.raises(IsADirectoryError):
        with atomic_file(tmp_path, overwrite=True):
            pass


# ---- strict loading: what loads is exactly what sw.pack writes --------------

def _layer_table_word(image_dir, layer, word, fn):
    def edit(data):
        lines = data.decode().split("\n")
        i = layer * fmt.DESC_WORDS + word
        lines[i] = f"{fn(int(lines[i], 16)):08x}"
        return "\n".join(lines).encode()
    _edit(image_dir, "layers.hex", edit, True)


@pytest.mark.parametrize("damage,message", [
    # the golden model and the RTL would disagree on these
    (lambda p: _edit(p, "codebook.hex", lambda d: b"0005" + d[4:], True), r"layer 0: codebook\[0\] = 5"),
    (lambda p: (_layer_table_word(p, 1, 4, lambda w: (w & ~0xFF) | 40),
                _edit_manifest(p, lambda m: m["layers"][1].update(fo=m["layers"][1]["fa"] + m["layers"][1]["fw"] - 40,
                                                                 shift=40))),
     r"fo must be an int >= 0, got -\d+|shift 40 exceeds"),
    # manifest edits, sealed again
    (lambda p: _edit_manifest(p, lambda m: m["config"].pop("act_bits")), "configuration keys missing: act_bits"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"][0].update(fa=True)), "fa must be an int >= 0, got True"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"][0].update(nnz=m["layers"][0]["nnz"] + 1)),
     "manifest says nnz"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"][1].update(n_in=7)), "manifest says n_in = 7"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"][0].update(entries=1)), "manifest says entries = 1"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"][0].update(relu=not m["layers"][0]["relu"])),
     "manifest says relu"),
    (lambda p: _edit_manifest(p, lambda m: m.update(extra=1)), "unknown extra"),
    (lambda p: _edit_manifest(p, lambda m: m["memories"]["pe0.ptr_odd"].update(file="../x.hex")),
     "not pe0.ptr_odd.hex"),
    (lambda p: _edit_manifest(p, lambda m: m["layers"].pop()), "layer table 2"),
    # the manifest edited but not sealed
    (lambda p: _edit(p, "manifest.json", lambda d: d.replace(b'"act_bits": 16', b'"act_bits": 12')),
     "sha256 does not match its contents"),
    (lambda p: _edit(p, "manifest.json", lambda d: d.replace(b'"fa": ', b'"fa": 1', 1)),
     "sha256 does not match its contents"),
    # memories that decode, but not as sw.pack writes them
    (lambda p: _edit(p, "pe0.ptr_odd.hex", lambda d: d + b"0001\n", True), "memory pe0.ptr_odd: .* words"),
    (lambda p: _edit(p, "codebook.hex", lambda d: d + b"0007\n", True), "memory codebook"),
    (lambda p: _layer_table_word(p, 0, 6, lambda w: 1), "memory layers: word 6"),
])
def test_load_is_strict(tmp_path, image, damage, message):
    image.save(tmp_path / "img")
    damage(tmp_path / "img")
    with pytest.raises(sw.ImageError, match=message):
        sw.Image.load(tmp_path / "img")


def test_an_image_from_before_short_pipeline_loads_as_the_pipeline_it_was_packed_for(tmp_path, image):
    """`Config.short_pipeline` came after images were first written: a
    manifest without it loads as 0 (the only pipeline there was); any other
    missing field is still refused, and 1 round-trips."""
    image.save(tmp_path / "old")
    _edit_manifest(tmp_path / "old", lambda m: m["config"].pop("short_pipeline"))
    assert sw.Image.load(tmp_path / "old").config == image.config
    assert image.config.short_pipeline == 0
    config = image.config.replace(short_pipeline=1)
    assert sw.Config.from_dict(config.to_dict(), complete=True) == config
    with pytest.raises(sw.ConfigError, match="keys missing: exit_heads"):
        sw.Config.from_dict({k: v for k, v in config.to_dict().items() if k != "exit_heads"}, complete=True)


def _json_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _json_paths(v, prefix + (i,))
    else:
        yield prefix


@settings(max_examples=int(os.environ.get("OEIE_FUZZ_EXAMPLES", 200)), deadline=None)
@given(data=st.data())
def test_fuzzed_images_load_only_if_canonical(tmp_path_factory, data):
    """Flip hex digits and manifest fields, recompute every checksum, load:
    either a clear `ImageError`, or an image whose files are byte for byte
    what `sw.pack` writes for the model it holds (so the golden model and
    the RTL read it alike)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 3)))
    config = sw.Config(n_pe=2, weight_depth=512, pointer_depth=128, row_depth=32, max_layers=3,
                       entries_per_word=data.draw(st.sampled_from([1, 2])))
    image = sw.pack(random_model(rng, config, [9, 14, 5]), config)
    path = tmp_path_factory.mktemp("fuzz") / "img"
    image.save(path)
    manifest = json.loads((path / "manifest.json").read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.booleans()):                      # a hex digit
            name = data.draw(st.sampled_from(sorted(manifest["memories"])))
            file = path / f"{name}.hex"
            text = bytearray(file.read_bytes())
            digits = [i for i, c in enumerate(text) if c != ord("\n")]
            if not digits:
                continue
            i = data.draw(st.sampled_from(digits))
            text[i] = ord(data.draw(st.sampled_from("0123456789abcdef")))
            _edit(path, file.name, lambda d: bytes(text), True)
        else:                                             # a manifest field
            manifest = json.loads((path / "manifest.json").read_text())
            paths = [p for p in _json_paths(manifest) if p[0] != "sha256" and "sha256" not in p]
            where = data.draw(st.sampled_from(paths))
            value = data.draw(st.one_of(st.integers(-2, 70), st.booleans(), st.just(None), st.just("x"),
                                        st.floats(0, 20), st.just("delete")))

            def change(m):
                obj = m
                for k in where[:-1]:
                    obj = obj[k]
                if value == "delete":
                    del obj[where[-1]]
                else:
                    obj[where[-1]] = value
            _edit_manifest(path, change)
    try:
        loaded = sw.Image.load(path)
    except sw.ImageError as e:
        assert str(e)
        return
    again = tmp_path_factory.mktemp("again") / "img"
    sw.pack(sw.unpack(loaded), loaded.config).save(again)
    assert sorted(os.listdir(again)) == sorted(os.listdir(path))
    written, fuzzed = (json.loads((p / "manifest.json").read_text()) for p in (again, path))
    if set(written["config"]) - set(fuzzed["config"]):
        # a field newer than the image (Config._SINCE) deleted: what an older sw.pack wrote, loaded as such
        assert set(written["config"]) - set(fuzzed["config"]) <= set(sw.Config._SINCE)
        fuzzed["config"] = {**sw.Config._SINCE, **fuzzed["config"]}
        written.pop("sha256"), fuzzed.pop("sha256")
    assert written == fuzzed
    for name in os.listdir(path):
        if name != "manifest.json":
            assert (again / name).read_bytes() == (path / name).read_bytes(), name


def test_sigterm_during_a_cli_save_leaves_nothing(tmp_path, image):
    """The command lines turn SIGTERM into a clean exit: the temporary goes too."""
    import signal
    import subprocess
    import sys
    import textwrap
    sw.save_model(sw.unpack(image), tmp_path / "m.npz")
    script = textwrap.dedent(f"""
        import time
        from sw import format as fmt
        from sw.cli import main
        def slow(self):
            print("writing", flush=True)
            time.sleep(60)
        fmt.MemoryImage.hex_bytes = slow
        raise SystemExit(main(["pack", {str(tmp_path / "m.npz")!r}, "-o", {str(tmp_path / "img")!r}, "--n-pe", "4"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM and "terminated" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
