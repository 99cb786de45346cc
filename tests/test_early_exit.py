"""Early exits (docs/design.md §15): exit heads branch off the trunk, and a
confident head ends the run. The model, the image, the golden model, and
the RTL bit for bit, with the exit taken and every counter against the
cycle model."""

import numpy as np
import pytest

import sw
from sim.random_models import random_exit_model, random_inputs, random_layer


def exit_model(config, trunk, heads, seed):
    """A random model and inputs such that inputs leave by every exit and by
    none: each head's threshold is the middle one of the distinct margins it
    sees on the inputs that reach it (the first seed from `seed` on whose
    heads' margins are not all alike)."""
    for _ in range(50):
        rng = np.random.default_rng(seed)
        x = random_inputs(rng, 80, trunk[0], config.act_bits)
        never = 1 << config.act_bits
        probe = sw.pack(random_exit_model(np.random.default_rng(seed), config, trunk, heads,
                                          thresholds=[never] * len(heads)), config)
        ys = sw.golden.run_layers(probe, x)
        reach = np.ones(len(x), dtype=bool)
        thresholds = []
        for l in probe.exits:
            margins = np.unique(sw.golden.margin(ys[l])[reach])
            if margins.size < 3:
                break
            thresholds.append(int(margins[margins.size // 2]))
            reach &= sw.golden.margin(ys[l]) < thresholds[-1]
        if len(thresholds) == len(probe.exits) and reach.any():
            return random_exit_model(np.random.default_rng(seed), config, trunk, heads, thresholds=thresholds), x
        seed += 1000
    raise AssertionError(f"no seed gave heads with distinct margins for {trunk}, {heads}")


def test_golden_exits_by_the_first_confident_head():
    config = sw.Config(n_pe=4)
    model, x = exit_model(config, [12, 10, 8, 6], {0: [], 1: [7]}, 1)
    image = sw.pack(model, config)
    assert image.exits == [1, 4] and image.sources == [-1, 0, 0, 2, 3, 2]
    # the trunk stays in its half while a head runs; a head's later layers work in place
    assert image.banks == [(0, 0), (0, 1), (0, 0), (0, 1), (1, 1), (0, 0)]
    y, taken = sw.golden.run(image, x, exits=True)
    ys = [image.model_order(v, l) for l, v in enumerate(sw.golden.run_layers(image, x))]
    for b in range(len(x)):                    # by hand
        expect = 0
        for k, l in enumerate(image.exits, start=1):
            top = np.sort(ys[l][b])
            if top[-1] - top[-2] >= model.layers[l].exit_threshold:
                expect = k
                break
        assert taken[b] == expect
        assert np.array_equal(y[b], ys[image.exits[expect - 1]][b] if expect else ys[-1][b])
    assert set(np.unique(taken)) == {0, 1, 2}


def test_thresholds_at_the_margin_exactly_always_and_never():
    config = sw.Config(n_pe=2)
    model, x = exit_model(config, [9, 8, 5], {0: []}, 2)
    image = sw.pack(model, config)
    margins = sw.golden.margin(sw.golden.run_layers(image, x)[1])
    m = int(margins[0])
    layers = list(model.layers)

    def with_threshold(t):
        h = layers[1]
        head = sw.CompressedLayer(h.codes, h.codebook, h.bias, h.relu, h.fa, h.fw, h.fo, src=h.src, exit_threshold=t)
        return sw.pack(sw.CompressedModel([layers[0], head, *layers[2:]], model.input_frac_bits), config)

    assert sw.golden.run(with_threshold(m), x[:1], exits=True)[1][0] == 1        # margin == threshold exits
    assert sw.golden.run(with_threshold(m + 1), x[:1], exits=True)[1][0] == 0
    assert np.all(sw.golden.run(with_threshold(0), x, exits=True)[1] == 1)
    never = 1 << config.act_bits                                                  # above every margin
    assert np.all(sw.golden.run(with_threshold(never), x, exits=True)[1] == 0)
    with pytest.raises(sw.PackError, match="exit threshold 65537 is above 2\\*\\*act_bits"):
        with_threshold(never + 1)


def test_models_and_images_with_exits_are_checked(tmp_path):
    config = sw.Config(n_pe=2)
    rng = np.random.default_rng(3)
    a = random_layer(rng, 6, 8, config, fa=4)
    head = random_layer(rng, 8, 3, config, fa=a.fo)
    b = random_layer(rng, 8, 3, config, fa=a.fo)

    def layer(l, **kw):
        return sw.CompressedLayer(l.codes, l.codebook, l.bias, l.relu, l.fa, l.fw, l.fo, **kw)

    model = sw.CompressedModel([a, layer(head, exit_threshold=5), layer(b, src=0)], a.fa)
    image = sw.pack(model, config)
    assert sw.unpack(image) == model
    image.save(tmp_path / "img")
    assert sw.unpack(sw.Image.load(tmp_path / "img")) == model
    sw.save_model(model, tmp_path / "m.npz")
    assert sw.load_model(tmp_path / "m.npz") == model
    with pytest.raises(sw.ModelError, match="the last layer always ends the run"):
        sw.CompressedModel([a, layer(b, exit_threshold=1)], a.fa)
    with pytest.raises(sw.ModelError, match="layer 1: an exit head gives the run's outputs"):
        sw.CompressedModel([a, layer(random_layer(rng, 8, 4, config, fa=a.fo), exit_threshold=1), layer(b, src=0)],
                           a.fa)
    with pytest.raises(sw.ModelError, match="layer 1: src = 1 must be an earlier layer"):
        sw.CompressedModel([a, layer(head, src=1)], a.fa)
    # a layer that reads layer 0 while both layer 0's and layer 1's outputs are still to be read
    h1 = random_layer(rng, 8, 8, config, fa=a.fo)
    side = layer(random_layer(rng, 8, 8, config, fa=a.fo), src=0)
    h2 = layer(random_layer(rng, 8, 3, config, fa=h1.fo), src=1, exit_threshold=1)
    deep = sw.CompressedModel([a, h1, side, h2, layer(random_layer(rng, 8, 3, config, fa=a.fo), src=0)], a.fa)
    with pytest.raises(sw.PackError, match="layer 2 needs a third half of the activation buffer"):
        sw.pack(deep, config)


NARROW_SEED = 3_584_007      # 8-bit heads mostly saturate or are all zero: 3,584 seeds before this one are not usable
CONFIGS = {
    "1pe": (sw.Config(n_pe=1), [7, 9, 6, 4], {0: [], 1: [5]}),
    "2pe": (sw.Config(n_pe=2), [9, 14, 11, 7, 5], {0: [6], 2: []}),
    "4pe-narrow": (sw.Config(n_pe=4, code_bits=3, run_bits=2, entries_per_word=4, act_bits=8, weight_bits=8,
                             acc_bits=20, fifo_depth=8), [12, 10, 8, 6], {0: [], 1: [7]}),
    "16pe-wide": (sw.Config(n_pe=16, input_width=4, broadcast_width=2, fifo_depth=16), [40, 50, 30, 10],
                  {0: [], 1: [20, 12]}),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rtl_exits_bit_exactly_with_the_predicted_cycles(name):
    import sim
    config, trunk, heads = CONFIGS[name]
    # seed 7, or for the 8-bit configuration the first seed from 7 on (7 + 1000 k) whose heads' margins differ
    model, x = exit_model(config, trunk, heads, NARROW_SEED if name == "4pe-narrow" else 7)
    image = sw.pack(model, config, balance=True)
    y, taken = sw.golden.run(image, x, exits=True)
    assert set(np.unique(taken)) == {0, 1, 2}, "the inputs should leave by every exit and by none"
    r = sim.run(image, x, progress=None)
    assert np.array_equal(r.outputs, y) and np.array_equal(r.exits, taken)
    p = sw.perf.simulate(image, x)
    for field, measured in r.counters().items():
        assert np.array_equal(measured, getattr(p, field)), field
    # an exit saves what the layers after it would cost
    assert r.cycles[taken == 1].mean() < r.cycles[taken == 0].mean()


def test_exit_heads_need_act_bits_the_descriptor_holds():
    config = sw.Config(n_pe=2, act_bits=20, acc_bits=32)
    rng = np.random.default_rng(9)
    model = random_exit_model(rng, config, [6, 8, 3], {0: []}, thresholds=[5])
    with pytest.raises(sw.PackError, match="exit heads need act_bits <= 18"):
        sw.pack(model, config)


def test_rtl_with_thresholds_no_input_reaches():
    """Thresholds of 2**act_bits: every input runs the whole table, each
    head's test costing its cycles, and the outputs are the last layer's."""
    import sim
    config, trunk, heads = CONFIGS["2pe"]
    model = random_exit_model(np.random.default_rng(11), config, trunk, heads,
                              thresholds=[1 << config.act_bits] * len(heads))
    image = sw.pack(model, config)
    x = random_inputs(np.random.default_rng(12), 12, trunk[0], config.act_bits)
    r = sim.run(image, x, progress=None)
    assert np.all(r.exits == 0)
    np.testing.assert_array_equal(r.outputs, sw.golden.run(image, x))
    np.testing.assert_array_equal(r.cycles, sw.perf.simulate(image, x).cycles)


def test_a_configuration_without_the_exit_test_refuses_exit_heads():
    config = sw.Config(n_pe=2, exit_heads=0)
    model = random_exit_model(np.random.default_rng(10), config, [6, 8, 3], {0: []}, thresholds=[5])
    with pytest.raises(sw.PackError, match="no exit test \\(exit_heads = 0\\)"):
        sw.pack(model, config)
