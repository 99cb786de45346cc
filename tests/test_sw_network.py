"""Networks on the engine (sw.net): the lowering against direct
convolutions, compression, packing, the golden model, the cycle model, and
the RTL bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sw
from sw.fixedpoint import wrap, writeback
from sw.net import Network, engines, lower
from sw.net.lower import Engine, Gather, Join, Pool, host


def direct_conv(x, w, b, stride, pad, groups):
    """A convolution written out over the kernel taps (NHWC input)."""
    n, h, wd, c = x.shape
    co, cig, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, ho, wo, co))
    per = co // groups
    for o in range(co):
        g = o // per
        for y in range(kh):
            for xx in range(kw):
                patch = xp[:, y:y + stride * ho:stride, xx:xx + stride * wo:stride, g * cig:(g + 1) * cig]
                out[..., o] += patch @ w[o, :, y, xx]
        out[..., o] += b[o]
    return out


def rand(rng, *shape, scale=0.5):
    return rng.standard_normal(shape) * scale


@pytest.mark.parametrize("k,stride,pad,c_in,c_out,groups", [
    (1, 1, 0, 6, 4, 1), (1, 2, 0, 6, 4, 1), (3, 1, 1, 3, 5, 1), (3, 2, 1, 4, 6, 2), (5, 2, 2, 2, 3, 1),
    (3, 1, 0, 8, 8, 8), (3, 2, 1, 6, 6, 6), (2, 2, 0, 4, 8, 4), (1, 1, 0, 8, 12, 4)])
def test_convolution_lowers_to_a_matrix_on_gathered_patches(k, stride, pad, c_in, c_out, groups):
    rng = np.random.default_rng(k * 100 + stride * 10 + groups)
    w, b = rand(rng, c_out, c_in // groups, k, k), rand(rng, c_out)
    net = Network((9, 7, c_in), [sw.Conv2d(w, b, stride=stride, padding=pad, groups=groups)])
    x = rand(rng, 3, 9, 7, c_in)
    lowered = lower(net)
    assert np.allclose(lowered.forward(x), direct_conv(x, w, b, stride, pad, groups))
    conv = net.nodes[0]
    assert isinstance(lowered.steps[0], Gather) != conv.pointwise
    # a grouped convolution's matrix is block-diagonal: k*k*C_in/groups weights per row can be nonzero
    assert conv.structure().count_nonzero() == c_out * k * k * c_in // groups
    assert np.allclose(conv.with_matrix(conv.matrix(), b).weight, w)


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pad = draw(st.integers(0, min(kh, kw) // 2))
    stride = draw(st.integers(1, 3))
    h, w = draw(st.integers(kh, 9)), draw(st.integers(kw, 9))
    return groups, c_in, c_out, kh, kw, pad, stride, h, w, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(conv_case())
def test_any_convolution_lowers_exactly(case):
    groups, c_in, c_out, kh, kw, pad, stride, h, w, seed = case
    rng = np.random.default_rng(seed)
    wt, b = rand(rng, c_out, c_in // groups, kh, kw), rand(rng, c_out)
    x = rand(rng, 2, h, w, c_in)
    # direct, over the taps, rectangular kernels included
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    ref = np.zeros((2, ho, wo, c_out)) + b
    per, cig = c_out // groups, c_in // groups
    for o in range(c_out):
        g = o // per
        for y in range(kh):
            for xx in range(kw):
                ref[..., o] += xp[:, y:y + stride * ho:stride, xx:xx + stride * wo:stride, g * cig:(g + 1) * cig] \
                    @ wt[o, :, y, xx]
    net = Network((h, w, c_in), [sw.Conv2d(wt, b, stride=stride, padding=pad, groups=groups),
                                 sw.MaxPool2d(1)])
    assert np.allclose(lower(net).forward(x), ref)


def test_pooling_flatten_shuffle_concat_and_low_rank():
    rng = np.random.default_rng(1)
    x = rand(rng, 2, 6, 6, 4)
    w1, w2 = rand(rng, 4, 4, 1, 1), rand(rng, 3, 4, 3, 3)
    lr = sw.LowRank.factorize(rand(rng, 3, 63), rank=2, bias=rand(rng, 3))
    net = Network((6, 6, 4), [
        sw.Conv2d(w1), sw.ChannelShuffle(2), sw.ReLU(),
        sw.Concat([sw.Conv2d(w1), sw.ReLU()], [sw.Conv2d(w2, padding=1)]),
        sw.MaxPool2d(2), sw.AvgPool2d(3, stride=1, padding=1), sw.ReLU(), sw.Flatten(),
        sw.LowRank(lr.first, lr.second, lr.bias)])
    # by hand
    h = direct_conv(x, w1, np.zeros(4), 1, 0, 1)[..., [0, 2, 1, 3]]
    h = np.maximum(h, 0)
    h = np.concatenate([np.maximum(direct_conv(h, w1, np.zeros(4), 1, 0, 1), 0),
                        direct_conv(h, w2, np.zeros(3), 1, 1, 1)], axis=3)
    h = h.reshape(2, 3, 2, 3, 2, 7).max(axis=(2, 4))
    hp = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h = np.stack([np.stack([hp[:, i:i + 3, j:j + 3].mean(axis=(1, 2)) for j in range(3)], 1) for i in range(3)], 1)
    h = np.maximum(h, 0).transpose(0, 3, 1, 2).reshape(2, -1)          # PyTorch's flatten order
    h = h @ lr.first.T @ lr.second.T + lr.bias
    lowered = lower(net)
    assert np.allclose(lowered.forward(x).reshape(2, -1), h)
    # the shuffle and both ReLUs before the concat fold into the first layer: no host step for them
    kinds = [type(s).__name__ for s in lowered.steps]
    assert kinds == ["Engine", "Join", "Pool", "Pool", "Relu", "FlattenStep", "Engine"]
    assert lowered.steps[0].layers[0].relu and lowered.weighted == 4
    assert [e.kinds for e in engines(lowered.steps)][-1] == ["low-rank", "low-rank"]


def test_fixed_point_average_rounds_half_up():
    step = Pool((1, 2, 1), (1, 1, 1), "avg", (1, 2), (1, 2), (0, 0))
    x = np.array([1, 2, -1, -2, 3, 4, -3, -3]).reshape(4, 1, 2, 1)
    assert host(step, x, fixed=True).reshape(-1).tolist() == [2, -1, 4, -3]      # 1.5, -1.5, 3.5, -3


def test_shapes_and_options_are_checked_with_the_node_named():
    w = np.zeros((4, 3, 3, 3))
    with pytest.raises(sw.ModelError, match=r"node 1: Conv2d\(3 -> 4, 3x3\) takes 3 channels, its input has 4"):
        Network((8, 8, 3), [sw.Conv2d(np.ones((4, 3, 1, 1))), sw.Conv2d(w)])
    with pytest.raises(sw.ModelError, match="does not fit an input of 2"):
        Network((2, 2, 3), [sw.Conv2d(w)])
    with pytest.raises(sw.ModelError, match="do not split into 3 groups"):
        sw.Conv2d(np.ones((4, 1, 3, 3)), groups=3)
    with pytest.raises(sw.ModelError, match="the branches give 4x4, 2x2 pixels"):
        Network((4, 4, 3), [sw.Concat([sw.Conv2d(np.ones((2, 3, 1, 1)))],
                                       [sw.Conv2d(np.ones((2, 3, 1, 1)), stride=2)])])
    with pytest.raises(sw.ModelError, match="a Flatten before it"):
        Network((4, 4, 3), [sw.Linear(np.ones((2, 48)))])
    with pytest.raises(sw.ModelError, match="item 0 is a Layer"):
        Network((4, 4, 3), [sw.Layer(np.ones((2, 3)))])
    net = Network((4, 4, 3), [sw.Conv2d(np.ones((2, 3, 1, 1))), sw.Flatten(), sw.Linear(np.ones((2, 32)))])
    with pytest.raises(sw.ModelError, match="density lists 1 values for 2 weighted nodes"):
        sw.compress(net, density=[0.5])
    with pytest.raises(sw.ModelError, match=r"calibration images must have shape \(N, 4, 4, 3\)"):
        sw.compress(net, density=0.5, calibration=np.zeros((2, 3, 4, 4)))


def small_cnn(rng, c=2, size=8) -> Network:
    """Every kind of node, small enough for one PE."""
    return Network((size, size, c), [
        sw.Conv2d(rand(rng, 4, c, 3, 3), rand(rng, 4, scale=0.1), stride=2, padding=1), sw.ReLU(),
        sw.Conv2d(rand(rng, 4, 1, 3, 3), rand(rng, 4, scale=0.1), padding=1, groups=4), sw.ReLU(),
        sw.Conv2d(rand(rng, 8, 2, 1, 1), rand(rng, 8, scale=0.1), groups=2), sw.ReLU(), sw.ChannelShuffle(2),
        sw.Concat([sw.Conv2d(rand(rng, 4, 8, 1, 1)), sw.ReLU()],
                  [sw.Conv2d(rand(rng, 4, 8, 3, 3), rand(rng, 4, scale=0.1), padding=1), sw.ReLU()]),
        sw.MaxPool2d(2), sw.AdaptiveAvgPool2d(1), sw.Flatten(),
        sw.LowRank(rand(rng, 3, 8), rand(rng, 8, 3), rand(rng, 8, scale=0.1)), sw.ReLU(),
        sw.Linear(rand(rng, 5, 8), rand(rng, 5, scale=0.1)),
    ])


def images(rng, n, shape, act_bits=16):
    """Random images, some pixels zero, an all-zero image and one at the
    format's largest magnitude (saturating later layers)."""
    x = rng.random((n, *shape)) * (rng.random((n, *shape)) < 0.7)
    x[0] = 0
    x[1] = 1.0
    return x


def reference_run(cnet, x_int, act_bits, acc_bits):
    """The compressed network by hand: each engine layer as codebook[codes]
    times the vector plus bias, wrapped and written back, on the host
    steps (not through packed images)."""
    def walk(steps, x):
        for s in steps:
            if isinstance(s, Engine):
                v = x.reshape(-1, x.shape[3])
                for l in s.layers:
                    v = writeback(wrap(np.asarray(v @ l.weights().T) + l.bias, acc_bits), l.shift, l.relu, act_bits)
                x = v.reshape(x.shape[0], s.out_shape[0], s.out_shape[1], -1)
            elif isinstance(s, Join):
                x = np.concatenate([walk(b, x) for b in s.branches], axis=3)
            else:
                x = host(s, x, fixed=True)
        return x
    return walk(cnet.steps, x_int)


@pytest.mark.parametrize("config", [sw.Config(n_pe=1, weight_depth=512, pointer_depth=128, row_depth=16, max_layers=2),
                                    sw.Config(n_pe=4, act_bits=8, weight_bits=8, acc_bits=24)])
def test_golden_network_equals_a_hand_run_of_the_compressed_layers(config):
    rng = np.random.default_rng(3)
    net = small_cnn(rng)
    x = images(rng, 12, net.input_shape)
    cnet = sw.compress(net, density=[1.0, 0.8, 0.6, 0.7, 0.5, 0.9, 0.6], calibration=x, config=config)
    program = sw.pack(cnet, config)
    # max_layers 2 splits the last program (low rank's two layers, then the linear one) in two
    assert [len(e.images) for e in engines(program.steps)] == \
        ([1, 1, 1, 1, 2] if config.max_layers == 2 else [1, 1, 1, 1, 1])
    xi = sw.quantize_input(x, cnet.input_frac_bits, config.act_bits)
    y = sw.golden.run_network(program, xi)
    assert y.shape == (12, 1, 1, 5)
    assert np.array_equal(y, reference_run(cnet, xi.astype(np.int64), config.act_bits, config.acc_bits))
    # the concat's branches end in one format
    join = next(s for s in cnet.steps if isinstance(s, Join))
    assert len({engines(b)[-1].layers[-1].fo for b in join.branches}) == 1
    # close to the float network it came from (pruned, 4-bit shared)
    yf = sw.dequantize(y, cnet.output_frac_bits).reshape(12, -1)
    ref = lower(net).forward(x).reshape(12, -1)
    assert np.abs(yf - ref).max() < 0.5 * np.abs(ref).max()
    # the cycle model sums its programs' cycles per image
    cycles = program.cycles(xi[:3])
    assert cycles.per_image.shape == (3,) and cycles.vectors_per_image == 4 * 16 + (2 if config.max_layers == 2 else 1)
    assert abs(sum(cycles.shares().values()) - 1) < 1e-9


def test_run_network_refuses_bad_inputs():
    rng = np.random.default_rng(4)
    net = small_cnn(rng)
    config = sw.Config(n_pe=2)
    program = sw.pack(sw.compress(net, density=1.0, calibration=images(rng, 4, net.input_shape), config=config),
                      config)
    with pytest.raises(ValueError, match=r"inputs must have shape \(N, 8, 8, 2\)"):
        sw.golden.run_network(program, np.zeros((2, 2, 8, 8), dtype=np.int16))
    with pytest.raises(TypeError, match="must be integers"):
        sw.golden.run_network(program, np.zeros((2, 8, 8, 2)))
    with pytest.raises(ValueError, match="outside the act_bits = 16 range"):
        sw.golden.run_network(program, np.full((1, 8, 8, 2), 1 << 16))


@pytest.mark.parametrize("config", [sw.Config(n_pe=1, weight_depth=512, pointer_depth=128, row_depth=16, max_layers=2),
                                    sw.Config(n_pe=4), sw.Config(n_pe=16)], ids=["1pe-split", "4pe", "16pe"])
def test_rtl_runs_a_cnn_bit_exactly_with_the_predicted_cycles(config):
    import sim
    rng = np.random.default_rng(5)
    net = small_cnn(rng)
    x = images(rng, 6, net.input_shape)
    cnet = sw.compress(net, density=[1.0, 0.8, 0.6, 0.7, 0.5, 0.9, 0.6], calibration=x, config=config)
    program = sw.pack(cnet, config)
    xi = sw.quantize_input(x, cnet.input_frac_bits, config.act_bits)
    result = sim.run_network(program, xi, progress=None)
    assert result.bit_exact_images == 6
    assert all(p["mismatched_vectors"] == 0 for p in result.programs)
    assert np.array_equal(result.outputs, sw.golden.run_network(program, xi))
    assert result.cycle_model_exact
    assert np.array_equal(result.cycles_per_image, program.cycles(xi).per_image)


def test_a_program_too_large_names_itself():
    rng = np.random.default_rng(6)
    net = small_cnn(rng)
    config = sw.Config(n_pe=1, weight_depth=256, pointer_depth=64, row_depth=16, max_layers=4)
    cnet = sw.compress(net, density=1.0, calibration=images(rng, 4, net.input_shape), config=config)
    with pytest.raises(sw.PackError, match=r"program 1 \(depthwise 3x3, grouped conv 1x1; network layers 1 to 2\): "
                                           r"layer 1: the pointer banks need 66 slots"):
        sw.pack(cnet, config)


def test_a_program_saves_and_loads_strictly(tmp_path):
    import json
    from sw.files import OutputExistsError
    from sw.net.files import NetworkFileError
    rng = np.random.default_rng(7)
    net = small_cnn(rng)
    config = sw.Config(n_pe=2)
    x = images(rng, 5, net.input_shape)
    program = sw.pack(sw.compress(net, density=0.8, calibration=x, config=config), config)
    xi = sw.quantize_input(x, program.input_frac_bits)
    program.save(tmp_path / "p")
    loaded = sw.net.NetworkProgram.load(tmp_path / "p")
    assert np.array_equal(sw.golden.run_network(loaded, xi), sw.golden.run_network(program, xi))
    assert np.array_equal(loaded.cycles(xi).per_image, program.cycles(xi).per_image)
    with pytest.raises(OutputExistsError):
        program.save(tmp_path / "p")                       # never over what exists, unless asked
    program.save(tmp_path / "p", overwrite=True)
    # a step whose shape does not follow, a missing image: named
    doc = json.loads((tmp_path / "p" / "network.json").read_text())
    bad = json.loads(json.dumps(doc))
    bad["steps"][1]["in_shape"] = [4, 4, 5]
    (tmp_path / "p" / "network.json").write_text(json.dumps(bad))
    with pytest.raises(NetworkFileError, match=r"step 1: takes \(4, 4, 5\), the step before gives \(4, 4, 18\)"):
        sw.net.NetworkProgram.load(tmp_path / "p")
    bad = json.loads(json.dumps(doc))
    bad["steps"][4]["branches"][0][0]["images"] = ["program_9"]
    (tmp_path / "p" / "network.json").write_text(json.dumps(bad))
    with pytest.raises(NetworkFileError, match=r"step 4, branch 0, step 0: .*program_9"):
        sw.net.NetworkProgram.load(tmp_path / "p")
    with pytest.raises(NetworkFileError, match="no network.json"):
        sw.net.NetworkProgram.load(tmp_path)
