"""Batching by replicated weights (`sw.batched`, `sw.stack`, `sw.unstack`):
each vector of a run gets, bit for bit, what the model alone gives it."""

import numpy as np
import pytest

import sw
from sw.perf import simulate

from models import random_inputs, random_layer, random_model


@pytest.mark.parametrize("n_pe,batch,balance", [(1, 2, False), (4, 3, False), (4, 4, True), (16, 2, True)])
def test_each_vector_gets_what_the_model_alone_gives(n_pe, batch, balance):
    rng = np.random.default_rng(n_pe * 10 + batch)
    config = sw.Config(n_pe=n_pe)
    model = random_model(rng, config, [11, 9, 7, 5])
    x = random_inputs(rng, 7, 11, config.act_bits)                   # 7 vectors: the last run is not full
    alone = sw.golden.run(sw.pack(model, config), x)
    image = sw.pack(sw.batched(model, batch), config, balance=balance)
    runs = sw.stack(x, batch)
    assert runs.shape == (-(-7 // batch), batch * 11)
    together = sw.golden.run(image, runs)
    assert np.array_equal(sw.unstack(together, batch, len(x)), alone)
    # the zero vectors that fill the last run are computed like any other
    filling = sw.unstack(together, batch)[len(x):]
    assert np.array_equal(filling, sw.golden.run(sw.pack(model, config), np.zeros((len(filling), 11), x.dtype)))


def test_batched_model_is_block_diagonal():
    rng = np.random.default_rng(1)
    config = sw.Config(n_pe=2)
    model = random_model(rng, config, [5, 4])
    two = sw.batched(model, 2)
    codes = two.layers[0].codes.toarray()
    w = model.layers[0].codes.toarray()
    assert codes.shape == (8, 10)
    assert np.array_equal(codes[:4, :5], w) and np.array_equal(codes[4:, 5:], w)
    assert not codes[:4, 5:].any() and not codes[4:, :5].any()
    assert np.array_equal(two.layers[0].bias, np.tile(model.layers[0].bias, 2))
    assert sw.batched(model, 1) is model


def test_stack_and_unstack():
    x = np.arange(10, dtype=np.int16).reshape(5, 2)
    runs = sw.stack(x, 2)
    assert runs.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 0]]
    assert np.array_equal(sw.unstack(runs, 2, 5), x)
    with pytest.raises(ValueError, match="do not split into 3 copies"):
        sw.unstack(runs, 3)
    with pytest.raises(ValueError, match="7 vectors asked for, the runs hold 6"):
        sw.unstack(runs, 2, 7)
    with pytest.raises(ValueError, match=r"input vectors \(V, n_in\) with V >= 1"):
        sw.stack(np.zeros((0, 2)), 2)


@pytest.mark.parametrize("n", [0, -1, 257, 2.0, True])
def test_batch_must_be_a_small_whole_number(n):
    config = sw.Config(n_pe=2)
    model = random_model(np.random.default_rng(0), config, [3, 2])
    with pytest.raises(ValueError, match="batch must be a whole number in 1..256"):
        sw.batched(model, n)


def test_exit_heads_are_refused():
    config = sw.Config(n_pe=2)
    rng = np.random.default_rng(3)
    a = random_layer(rng, 6, 8, config, fa=4)
    h = random_layer(rng, 8, 3, config, fa=a.fo)
    b = random_layer(rng, 8, 3, config, fa=a.fo)
    head = sw.CompressedLayer(h.codes, h.codebook, h.bias, h.relu, h.fa, h.fw, h.fo, exit_threshold=5)
    tail = sw.CompressedLayer(b.codes, b.codebook, b.bias, b.relu, b.fa, b.fw, b.fo, src=0)
    model = sw.CompressedModel([a, head, tail], a.fa)
    with pytest.raises(sw.ModelError, match="layer 1 ends an exit head: a batch of 2 vectors"):
        sw.batched(model, 2)


def test_too_many_copies_get_the_capacity_error():
    config = sw.Config(n_pe=2, row_depth=8)
    model = random_model(np.random.default_rng(4), config, [6, 12])       # 6 rows per PE
    sw.pack(sw.batched(model, 1), config)
    with pytest.raises(sw.PackError, match="needs 12 output rows in every PE"):
        sw.pack(sw.batched(model, 2), config)                             # 12 rows per PE


def test_a_run_shares_its_fixed_costs():
    # the cycle model (equal to the RTL, tests/test_sim.py): a small model's
    # vector costs far less in a run of four than alone
    rng = np.random.default_rng(5)
    config = sw.Config(n_pe=4)
    model = random_model(rng, config, [16, 16, 8])
    x = random_inputs(rng, 8, 16, config.act_bits)
    alone = simulate(sw.pack(model, config), x).cycles.sum() / len(x)
    four = simulate(sw.pack(sw.batched(model, 4), config), sw.stack(x, 4)).cycles.sum() / len(x)
    assert four < 0.75 * alone


def test_perf_cli_counts_per_vector(tmp_path, capsys):
    import json
    from sw.perf.__main__ import main
    rng = np.random.default_rng(7)
    config = sw.Config(n_pe=2)
    model = random_model(rng, config, [6, 4])
    image = sw.pack(sw.batched(model, 2), config)
    image.save(tmp_path / "two")
    x = random_inputs(rng, 5, 6, config.act_bits)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "two"), str(tmp_path / "x.npy"), "--batch", "2", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    runs = simulate(image, sw.stack(x, 2)).cycles
    assert (got["vectors"], got["runs"], got["cycles"]) == (5, 3, runs.tolist())
    assert got["cycles_per_vector"] == pytest.approx(runs.sum() / 5)
    assert main(["run", str(tmp_path / "two"), str(tmp_path / "x.npy")]) == 2
    assert "stack 2 vectors a run" in capsys.readouterr().err


def test_check_batched_knows_copies_from_lookalikes():
    rng = np.random.default_rng(8)
    config = sw.Config(n_pe=2)
    model = random_model(rng, config, [6, 4, 4])
    sw.batching.check_batched(sw.pack(sw.batched(model, 2), config, balance=True), 2)
    sw.batching.check_batched(sw.pack(model, config), 1)
    with pytest.raises(ValueError, match="batch 2: layer 0 is not 2 copies of one layer side by side"):
        sw.batching.check_batched(sw.pack(model, config), 2)            # 6 -> 4 splits, but is one layer
    two = sw.batched(model, 2)
    last = two.layers[1]
    bias = last.bias.copy()
    bias[-1] += 1                                                         # the second copy's bias differs
    other = sw.CompressedModel([two.layers[0], sw.CompressedLayer(last.codes, last.codebook, bias, last.relu,
                                                                  last.fa, last.fw, last.fo)],
                               two.input_frac_bits)
    with pytest.raises(ValueError, match="layer 1 is not 2 copies"):
        sw.batching.check_batched(sw.pack(other, config), 2)
    with pytest.raises(ValueError, match="do not split into 3 copies"):
        sw.batching.check_batched(sw.pack(two, config), 3)
