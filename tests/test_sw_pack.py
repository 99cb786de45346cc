"""Packing: the entry encoding and per-PE layout of docs/design.md §4."""

import numpy as np
import scipy.sparse as sp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sw
from sw import format as fmt
from sw.pack import pack_layer, _padding

from models import padding_model, random_model
from reference import encode_column, pack_reference


@given(rows=st.lists(st.integers(0, 300), unique=True, max_size=20), run_bits=st.integers(1, 5),
       data=st.data())
def test_column_encoding_matches_reference(rows, run_bits, data):
    rows = sorted(rows)
    codes = [data.draw(st.integers(1, 15)) for _ in rows]
    config = sw.Config(n_pe=1, run_bits=run_bits, code_bits=4)
    n_out = (rows[-1] + 1) if rows else 1
    dense = np.zeros((n_out, 1), dtype=np.int64)
    dense[rows, 0] = codes
    entries, colptr = pack_layer(sw.CompressedLayer(dense, np.arange(16)).codes, config)
    expected = encode_column(list(zip(rows, codes)), run_bits)
    assert [(int(e) & config.max_run, int(e) >> run_bits) for e in entries] == expected
    assert colptr.tolist() == [0, len(expected)]


@settings(max_examples=150)
@given(seed=st.integers(0, 2**32 - 1), n_pe=st.sampled_from([1, 2, 4, 64]), run_bits=st.integers(1, 4),
       code_bits=st.integers(1, 4), n_in=st.integers(1, 30), n_out=st.integers(1, 150))
def test_pack_matches_reference_and_unpacks(seed, n_pe, run_bits, code_bits, n_in, n_out):
    rng = np.random.default_rng(seed)
    config = sw.Config(n_pe=n_pe, run_bits=run_bits, code_bits=code_bits)
    model = random_model(rng, config, [n_in, n_out])
    image = sw.pack(model, config)
    codes = model.layers[0].codes.toarray().tolist()
    for k, (entries, pointers) in enumerate(pack_reference(codes, n_pe, run_bits)):
        pe = image.layers[0].pes[k]
        assert [(int(e) & config.max_run, int(e) >> run_bits) for e in pe.entries] == entries
        assert pe.pointers.tolist() == pointers
    assert sw.unpack(image) == model


@settings(max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), n_pe=st.sampled_from([1, 2, 4, 16, 64]),
       dims=st.lists(st.integers(1, 70), min_size=2, max_size=4))
def test_multilayer_pack_unpack_identity(seed, n_pe, dims):
    rng = np.random.default_rng(seed)
    config = sw.Config(n_pe=n_pe)
    model = random_model(rng, config, dims)
    assert sw.unpack(sw.pack(model, config)) == model


def test_padding_counts():
    config = sw.Config(n_pe=4, run_bits=4)     # R = 15
    image = sw.pack(padding_model(config, rows_per_pe=40), config)
    counts = image.layers[0].column_counts
    # column 0: a nonzero at local row 39 of PE 3 -> gap 39 = 2 * 16 + 7 -> 2 paddings + 1
    assert counts[:, 0].tolist() == [0, 0, 0, 3]
    # column 1: local rows 0 (PE 0) and 39 (PE 3)
    assert counts[:, 1].tolist() == [1, 0, 0, 3]
    assert counts[:, 3].tolist() == [0, 0, 0, 0]            # empty column
    assert counts[:, 4].tolist() == [40, 40, 40, 40]        # full column, no padding
    # column 5: local row 16 of PE 0 = exactly R + 1 zeros before it: one padding
    assert counts[:, 5].tolist() == [2, 0, 0, 0]
    pe0 = image.layers[0].pes[0]
    col5 = pe0.entries[pe0.pointers[5]:pe0.pointers[6]]
    assert [(int(e) & 15, int(e) >> 4) for e in col5] == [(15, 0), (0, 6)]
    assert image.stats().layers[0]["padding"] == 2 + 2 + 1


def test_decode_inverts_pack_with_padding():
    config = sw.Config(n_pe=2, run_bits=2)
    model = padding_model(config, rows_per_pe=30)
    entries, colptr = pack_layer(model.layers[0].codes, config)
    local = fmt.decode_rows(entries, colptr, config)
    col = np.repeat(np.arange(colptr.size - 1), np.diff(colptr))
    pe, j = col // model.n_in, col % model.n_in
    code = fmt.entry_codes(entries, config).astype(np.int64)
    keep = code != 0
    got = np.zeros((model.n_out, model.n_in), dtype=np.int64)
    got[local[keep] * 2 + pe[keep], j[keep]] = code[keep]
    assert np.array_equal(got, model.layers[0].codes.toarray())
    assert np.all(local[~keep] < 30)


def test_memory_layout_by_hand():
    """A 4 x 3 layer on 2 PEs, 2 entries per word, worked out on paper."""
    config = sw.Config(n_pe=2, entries_per_word=2, code_bits=4, run_bits=4, max_layers=2,
                       weight_depth=16, pointer_depth=8, row_depth=4)
    codes = np.array([[1, 0, 2],     # row 0 -> PE 0, local 0
                      [0, 0, 3],     # row 1 -> PE 1, local 0
                      [4, 0, 0],     # row 2 -> PE 0, local 1
                      [0, 0, 5]])    # row 3 -> PE 1, local 1
    codebook = np.array([0, 10, -20, 30, -40, 50])
    layer = sw.CompressedLayer(codes, codebook, np.array([1, -2, 3, -4]), True, 2, 3, 4)
    image = sw.pack(sw.CompressedModel([layer], 2), config)
    m = image.memories()
    # PE 0: column 0 = (0,1),(0,4); column 1 empty; column 2 = (0,2)
    assert image.layers[0].pes[0].entries.tolist() == [0x10, 0x40, 0x20]
    assert image.layers[0].pes[0].pointers.tolist() == [0, 2, 2, 3]
    # PE 1: column 0 empty, column 1 empty, column 2 = (0,3),(0,5)
    assert image.layers[0].pes[1].entries.tolist() == [0x30, 0x50]
    assert image.layers[0].pes[1].pointers.tolist() == [0, 0, 0, 2]
    # lane 0 in the low byte
    assert m["pe0.entries"].words.tolist() == [0x4010, 0x0020]
    assert m["pe1.entries"].words.tolist() == [0x5030]
    # pointers: global index g in bank g % 2 at word g // 2; then the biases
    # (row i * n_pe + k at word bias_base + i = 2 + i), low 16 bits in the
    # even bank, high 16 in the odd bank
    assert m["pe0.ptr_even"].words.tolist() == [0, 2, 1, 3]
    assert m["pe0.ptr_odd"].words.tolist() == [2, 3, 0, 0]
    assert m["pe1.ptr_even"].words.tolist() == [0, 0, 0xFFFE, 0xFFFC]       # -2, -4
    assert m["pe1.ptr_odd"].words.tolist() == [0, 2, 0xFFFF, 0xFFFF]
    assert m["codebook"].words.tolist()[:6] == [0, 10, 0xFFEC, 30, 0xFFD8, 50]
    assert m["layers"].words.tolist() == [3, 4, 0, 2, 1 | 1 << 8 | 1 << 9, 0, 0, 0]
    assert (m["pe0.entries"].width, m["pe0.entries"].depth) == (16, 8)
    assert (m["pe0.ptr_even"].width, m["pe0.ptr_even"].depth) == (16, 4)
    assert sorted(m) == ["codebook", "layers", "pe0.entries", "pe0.ptr_even", "pe0.ptr_odd",
                         "pe1.entries", "pe1.ptr_even", "pe1.ptr_odd"]


def test_second_layer_offsets_in_memories():
    config = sw.Config(n_pe=2, max_layers=4, weight_depth=64, pointer_depth=32, row_depth=8)
    rng = np.random.default_rng(3)
    model = random_model(rng, config, [5, 6, 3])
    image = sw.pack(model, config)
    m = image.memories()
    d0, d1 = image.descriptors()
    assert (d0.bias_base, d1.ptr_base, d1.bias_base) == (7, 6, 10)      # 13 pointers: 7 bank words, then 3 rows
    for k in range(2):
        ptr = np.stack([m[f"pe{k}.ptr_even"].padded(), m[f"pe{k}.ptr_odd"].padded()], 1).reshape(-1)
        base = image.layers[0].pes[k].entries.size
        assert ptr[6:6 + 7].tolist() == (image.layers[1].pes[k].pointers + base).tolist()
        words = fmt.unpack_words(m[f"pe{k}.entries"].words, config)
        assert words[base:base + image.layers[1].pes[k].entries.size].tolist() == \
            image.layers[1].pes[k].entries.tolist()


@pytest.mark.parametrize("E", [1, 2, 4, 8])
def test_words_roundtrip(E):
    config = sw.Config(entries_per_word=E)
    e = np.random.default_rng(E).integers(0, 256, size=37).astype(np.uint8)
    w = fmt.pack_words(e, config)
    assert w.size == -(-37 // E)
    assert fmt.unpack_words(w, config)[:37].tolist() == e.tolist()


# ---- a model that does not fit is rejected with a precise message ----------

def _model(codes, codebook=None, bias=None, fa=0, fw=0, fo=0):
    codebook = np.arange(16) if codebook is None else codebook
    return sw.CompressedModel([sw.CompressedLayer(codes, codebook, bias, True, fa, fw, fo)], fa)


def test_weight_capacity_names_layer_and_pe():
    config = sw.Config(n_pe=2, weight_depth=8, pointer_depth=64)
    codes = np.zeros((4, 6), dtype=int)
    codes[1, :] = 1                  # all of row 1 -> PE 1: 6 entries
    codes[3, :] = 2                  # row 3 -> PE 1 too: 12 entries
    with pytest.raises(sw.PackError, match=r"layer 0: PE 1 needs 12 sparse-matrix entries.*weight_depth is 8"):
        sw.pack(_model(codes), config)


def test_pointer_row_and_layer_capacity():
    # 11 pointers (6 bank words) and 2 bias rows: 16 slots
    with pytest.raises(sw.PackError, match=r"layer 0: the pointer banks need 16 slots .*11 pointers.*2 rows.*"
                                           r"pointer_depth is 14"):
        sw.pack(_model(np.ones((2, 10), dtype=int)), sw.Config(n_pe=1, pointer_depth=14))
    sw.pack(_model(np.ones((2, 10), dtype=int)), sw.Config(n_pe=1, pointer_depth=16))       # exactly full
    with pytest.raises(sw.PackError, match=r"layer 0: needs 3 output rows.*row_depth is 2"):
        sw.pack(_model(np.ones((6, 2), dtype=int)), sw.Config(n_pe=2, row_depth=2))
    rng = np.random.default_rng(0)
    model = random_model(rng, sw.Config(), [3, 3, 3, 3])
    with pytest.raises(sw.PackError, match=r"3 layers but Config.max_layers is 2"):
        sw.pack(model, sw.Config(max_layers=2))


def test_codebook_and_bias_range_errors():
    codes = np.ones((2, 2), dtype=int)
    with pytest.raises(sw.PackError, match=r"codebook has 17 values but code_bits = 4 allows 16"):
        sw.pack(_model(codes, codebook=np.arange(17)))
    with pytest.raises(sw.PackError, match=r"codebook\[1\] = 40000 does not fit weight_bits = 16"):
        sw.pack(_model(codes, codebook=np.array([0, 40000])))
    with pytest.raises(sw.PackError, match=r"bias\[1\] = 4294967296 does not fit acc_bits = 32"):
        sw.pack(_model(codes, bias=np.array([0, 2**32])))
    with pytest.raises(sw.PackError, match=r"shift .* 40 exceeds"):
        sw.pack(_model(codes, fa=20, fw=20, fo=0))


def test_model_errors():
    with pytest.raises(sw.ModelError, match=r"codebook\[0\] must be 0"):
        sw.CompressedLayer(np.ones((2, 2), dtype=int), np.array([5, 1]))
    with pytest.raises(sw.ModelError, match=r"code 3 at row 1, column 0 is outside the codebook of 2"):
        sw.CompressedLayer(np.array([[0, 1], [3, 0]]), np.array([0, 1]))
    with pytest.raises(sw.ModelError, match=r"codes must be integers"):
        sw.CompressedLayer(np.ones((2, 2)) * 0.5, np.array([0, 1]))
    a = sw.CompressedLayer(np.ones((3, 2), dtype=int), np.array([0, 1]))
    b = sw.CompressedLayer(np.ones((4, 4), dtype=int), np.array([0, 1]))
    with pytest.raises(sw.ModelError, match=r"layer 1 takes 4 inputs but layer 0 produces 3 outputs"):
        sw.CompressedModel([a, b], 0)
    with pytest.raises(sw.ModelError, match=r"shift = fa \+ fw - fo = 1 \+ 1 - 3 is negative"):
        sw.CompressedLayer(np.ones((2, 2), dtype=int), np.array([0, 1]), fa=1, fw=1, fo=3)
    with pytest.raises(sw.ModelError, match=r"NaN or infinite value at row 1, column 0"):
        sw.Layer(np.array([[1.0, 2.0], [np.nan, 0.0]]))


def test_presets():
    for name, preset in sw.config.PRESETS.items():
        config = sw.Config.preset(name)
        assert config.to_dict() == {**sw.Config().to_dict(), **preset["config"]} and preset["holds"] and preset["part"]
        assert set(preset["config"]) == set(sw.Config().to_dict())              # every field chosen
        assert sw.Config.preset(name, n_pe=4).n_pe == 4                       # fewer PEs, same memories
    with pytest.raises(sw.ConfigError, match="unknown preset 'ecp5'; presets: ecp5-85f, ice40-up5k, icebreaker"):
        sw.Config.preset("ecp5")


def test_ecp5_preset_holds_a_transformer_feed_forward_block():
    """384 -> 1536 -> 384 at 10% weight density: about 118,000 nonzeros."""
    rng = np.random.default_rng(0)
    layers = []
    for i, (n_in, n_out) in enumerate([(384, 1536), (1536, 384)]):
        codes = sp.random(n_out, n_in, density=0.1, random_state=i, data_rvs=lambda n: rng.integers(1, 16, n))
        layers.append(sw.CompressedLayer(codes.astype(np.int64), np.arange(16), None, i == 0, 4, 4, 4))
    model = sw.CompressedModel(layers, 4)
    assert 117_000 < sum(l.nnz for l in layers) < 119_000
    image = sw.pack(model, sw.Config.preset("ecp5-85f"))
    assert image.config.n_pe == 64
    with pytest.raises(sw.PackError, match="row_depth is 32"):                 # and it needs every PE
        sw.pack(model, sw.Config.preset("ecp5-85f", n_pe=32))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_pe=st.sampled_from([1, 2, 4, 16, 64]),
       dims=st.lists(st.integers(1, 90), min_size=2, max_size=4))
def test_balanced_packing_keeps_outputs_and_unpacks(seed, n_pe, dims, tmp_path_factory):
    # balance=True moves rows between PEs; the golden model's outputs (every
    # layer's, in the model's order), unpack and a save/load are unchanged
    rng = np.random.default_rng(seed)
    config = sw.Config(n_pe=n_pe)
    model = random_model(rng, config, dims)
    plain, balanced = sw.pack(model, config), sw.pack(model, config, balance=True)
    assert sw.unpack(balanced) == model
    x = rng.integers(-300, 300, size=(3, dims[0]))
    for a, b in zip(sw.golden.run(plain, x, trace=True), sw.golden.run(balanced, x, trace=True)):
        assert np.array_equal(a, b)
    loaded = sw.Image.load(balanced.save(tmp_path_factory.mktemp("bal") / "image"))
    assert [None if l.order is None else l.order.tolist() for l in loaded.layers] == \
        [None if l.order is None else l.order.tolist() for l in balanced.layers]


def test_balancing_evens_the_nonzeros_per_pe():
    # rows of very different weight: r % n_pe puts every heavy row on PE 0
    n_pe, n_out = 4, 48                     # 12 heavy rows: 3 for each PE
    codes = np.zeros((n_out, 64), dtype=np.int64)
    for r in range(n_out):
        codes[r, : (60 if r % n_pe == 0 else 2)] = 1
    model = sw.CompressedModel([sw.CompressedLayer(codes, np.arange(16))], 0)
    config = sw.Config(n_pe=n_pe)
    per_pe = [sw.pack(model, config, balance=b).layers[0].nonzero_counts.sum(axis=1) for b in (False, True)]
    assert per_pe[0].max() / per_pe[0].mean() > 3
    assert per_pe[1].max() / per_pe[1].mean() < 1.05
    order = sw.pack(model, config, balance=True).layers[0].order
    assert sorted(order.tolist()) == list(range(n_out))
    # within a PE the rows keep their order (short runs stay short)
    for k in range(n_pe):
        assert order[k::n_pe].tolist() == sorted(order[k::n_pe].tolist())


def test_row_orders_are_checked_and_recorded():
    config = sw.Config(n_pe=4)
    model = random_model(np.random.default_rng(1), config, [12, 10, 6])
    with pytest.raises(ValueError, match="row_orders\\[0\\] is not a permutation"):
        sw.pack(model, config, row_orders=[[0] * 10, None])
    with pytest.raises(ValueError, match="1 entries for 2 layers"):
        sw.pack(model, config, row_orders=[None])
    with pytest.raises(ValueError, match="not both"):
        sw.pack(model, config, balance=True, row_orders=[None, None])
    order = np.random.default_rng(2).permutation(10)
    image = sw.pack(model, config, row_orders=[order, None])
    assert image.layers[0].order.tolist() == order.tolist() and image.layers[1].order is None
    assert sw.unpack(image) == model
    # the identity is recorded as no order at all
    assert sw.pack(model, config, row_orders=[np.arange(10), None]).layers[0].order is None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_pe=st.sampled_from([1, 2, 4, 16]), balance=st.booleans(),
       run_bits=st.integers(1, 4), density=st.floats(0.02, 0.5))
def test_shorter_runs_keep_outputs_and_never_add_padding(seed, n_pe, balance, run_bits, density):
    rng = np.random.default_rng(seed)
    config = sw.Config(n_pe=n_pe, run_bits=run_bits)
    n_out, n_in = int(rng.integers(1, 120)), int(rng.integers(1, 60))
    codes = sp.random(n_out, n_in, density=density, random_state=seed % 2**31,
                      data_rvs=lambda n: rng.integers(1, 16, n)).astype(np.int64)
    model = sw.CompressedModel([sw.CompressedLayer(codes, np.arange(16), rng.integers(-9, 9, n_out), True, 4, 4, 4),
                                sw.CompressedLayer(sp.csr_array(rng.integers(0, 3, (7, n_out))), np.arange(16), None, False, 4, 4, 4)], 4)
    base = sw.pack(model, config, balance=balance)
    short = sw.pack(model, config, balance=balance, shorten_runs=True)
    assert sw.unpack(short) == model
    for b, s in zip(base.layers, short.layers):            # each PE keeps its rows, with no more padding
        assert np.array_equal(np.sort(b.nonzero_counts.sum(axis=1)), np.sort(s.nonzero_counts.sum(axis=1)))
        assert s.entries.size <= b.entries.size
    x = rng.integers(-300, 300, size=(3, n_in))
    for a, b in zip(sw.golden.run(base, x, trace=True), sw.golden.run(short, x, trace=True)):
        assert np.array_equal(a, b)


def test_shorter_runs_need_fewer_padding_entries():
    # 4% density, 4-bit runs, 75 rows a PE: most columns have a gap past 15 rows
    rng = np.random.default_rng(7)
    codes = sp.random(300, 400, density=0.04, random_state=3, data_rvs=lambda n: rng.integers(1, 16, n))
    model = sw.CompressedModel([sw.CompressedLayer(codes.astype(np.int64), np.arange(16))], 0)
    config = sw.Config(n_pe=4)
    pad = [sw.pack(model, config, balance=True, shorten_runs=s).stats().total["padding"] for s in (False, True)]
    assert pad[1] < 0.8 * pad[0]                            # 3,000 -> 2,240 here
    image = sw.pack(model, config, shorten_runs=True)
    assert image.layers[0].order is not None
    # the padding count the greedy order minimises is the packer's own
    for k in range(4):
        rows = image.layers[0].order[k::4]
        nonzero = codes.tocsr()[rows].toarray() != 0
        expected = _padding(nonzero, config)
        assert expected == image.layers[0].pe_entry_counts()[k] - np.count_nonzero(nonzero)
