"""Bitstreams with the weights inside (`synth.bitstream`): the block-RAM
slice bookkeeping, the splice's refusals, and (opt-in, ``-m pnr``) a real
iCEBreaker build whose splice equals a full rebuild byte for byte."""

import json

import numpy as np
import pytest

import sw
from synth import bitstream as bs

from models import random_model


# ---- the ECP5 slice bookkeeping, on a synthetic text config --------------------

def ecp5_text(brams: dict[int, np.ndarray]) -> str:
    lines = []
    for key, words in brams.items():
        lines.append(f".bram_init {key}")
        for i in range(0, len(words), 8):
            lines.append(" ".join(f"{int(w):03x}" for w in words[i:i + 8]))
        lines.append("")
    return "\n".join(lines) + "\n"


def put_slice(words: np.ndarray, mode: int, j: int, bits: np.ndarray):
    w, b = bs._ecp5_slice_index(mode, j)
    for k in range(512):
        words[w[k]] = (words[w[k]] & ~(1 << b[k])) | (int(bits[k]) << b[k])


def test_every_slice_of_a_memory_is_found_and_read_back():
    """A 1024 x 12 memory laid into two block RAMs in two width modes; the
    locator finds each of its 24 slices and `read_back` returns its words."""
    rng = np.random.default_rng(3)
    words = rng.integers(0, 1 << 12, size=1024)
    brams = {3: np.zeros(2048, dtype=np.int64), 7: np.zeros(2048, dtype=np.int64)}
    slices = bs._memory_slices(words, 12, 512)
    places = {}
    for n, ((bit, c), bits) in enumerate(sorted(slices.items())):
        key, mode, j = (3, 4, n) if n < 18 else (7, 3, n - 18)      # 18-bit mode, then 9-bit mode
        put_slice(brams[key], mode, j, bits)
        places[f"{bit}:{c}"] = [str(key), mode, j]
    text = ecp5_text(brams)
    found = {}
    for key, bits in bs._slices("ecp5", text).items():
        found.setdefault(bits.tobytes(), key)
    for (bit, c), bits in slices.items():
        assert list(found[bits.tobytes()]) == places[f"{bit}:{c}"]
    memories = {"m": {"width": 12, "depth": 1024, "slices": places}}
    np.testing.assert_array_equal(bs.read_back("ecp5", text, memories)["m"], words)
    brams[7][5] ^= 0x1FF                                     # damage: the read-back must differ
    assert not np.array_equal(bs.read_back("ecp5", ecp5_text(brams), memories)["m"], words)


def test_template_contents_are_distinct_and_skip_runtime_memories():
    config = sw.Config.preset("ice40-up5k", n_pe=1)
    t = bs.template_contents(config, 1, ("entries",))
    assert "pe0.entries" not in t and "pe0.ptr_even" in t
    assert not np.array_equal(t["pe0.ptr_even"][:256], t["pe0.ptr_odd"][:256])
    assert all(len(w) == sw.format.memory_specs(config)[n].depth for n, w in t.items())


# ---- the splice's refusals -------------------------------------------------------

def test_splice_refuses_what_is_not_a_build_of_this_project(tmp_path):
    image = sw.pack(random_model(np.random.default_rng(0), sw.Config(n_pe=1), [8, 8]), sw.Config(n_pe=1))
    with pytest.raises(bs.BitstreamError, match="not a bitstream build directory"):
        bs.splice(tmp_path, image, tmp_path / "x.bit")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(bs.BitstreamError, match="not an OpenEIE bitstream manifest"):
        bs.splice(tmp_path, image, tmp_path / "x.bit")
    config = sw.Config.preset("ice40-up5k", n_pe=1)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": bs.MANIFEST_FORMAT, "version": bs.MANIFEST_VERSION,
                                                        "target": "ice40", "config": config.to_dict()}))
    with pytest.raises(bs.BitstreamError, match="another configuration.*--preset ice40-up5k --n-pe 1"):
        bs.splice(tmp_path, image, tmp_path / "x.bin")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": bs.MANIFEST_FORMAT, "version": bs.MANIFEST_VERSION,
                                                        "target": "ice40", "board": "icebreaker",
                                                        "config": config.to_dict()}))
    with pytest.raises(bs.BitstreamError, match="another configuration.*--preset icebreaker --n-pe 1"):
        bs.splice(tmp_path, image, tmp_path / "x.bin")
    right = sw.pack(random_model(np.random.default_rng(0), config, [8, 8]), config)
    with pytest.raises(bs.BitstreamError, match="written as .bin"):
        bs.splice(tmp_path, right, tmp_path / "x.bit")


# ---- a real build (minutes) -------------------------------------------------------

@pytest.mark.pnr
@pytest.mark.parametrize("board,preset,suffix,runtime", [("icebreaker", "icebreaker", ".bin", ["pe0.entries"]),
                                                         ("ulx3s", "ecp5-85f", ".bit", [])])
def test_splice_equals_a_full_rebuild(tmp_path, board, preset, suffix, runtime):
    """One PE on each board: a second image spliced into the first's build
    is byte for byte the bitstream a full build with the second image gives
    (the same placement seed)."""
    config = sw.Config.preset(preset, n_pe=1)
    rng = np.random.default_rng(5)
    first = sw.pack(random_model(rng, config, [30, 32, 10]), config)        # (32 rows a PE on the ECP5)
    second = sw.pack(random_model(rng, config, [20, 24, 12]), config)
    out = bs.build(board, first, out_dir=tmp_path / "build", progress=lambda s: None)
    manifest = bs.load_manifest(out)
    assert manifest["image_sha256"] == bs.image_digest(first)
    assert [n for n, m in manifest["memories"].items() if m["place"] == "runtime"] == runtime
    done = bs.splice(out, second, tmp_path / f"second{suffix}", progress=lambda s: None)
    assert done["memories"] == 5 - len(runtime)
    rebuilt = bs.rebuild(board, second, tmp_path / "rebuild")
    assert (tmp_path / f"second{suffix}").read_bytes() == rebuilt.read_bytes()
    assert (out / f"openeie{suffix}").read_bytes() != rebuilt.read_bytes()
    # building again with the second image, the design unchanged: a splice, the same bytes
    lines = []
    bs.build(board, second, out_dir=tmp_path / "build", progress=lines.append)
    assert "splicing the image into it" in lines[0]
    assert (out / f"openeie{suffix}").read_bytes() == rebuilt.read_bytes()
