"""Importing networks with convolutions: ONNX graphs built here with
onnx.helper (always), PyTorch modules (when torch is installed)."""

import numpy as np
import pytest

import sw
from sw.net import nchw_to_nhwc

from test_sw_network import direct_conv

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32 if np.asarray(value).dtype.kind == "f"
                                              else np.int64), name)


def shufflenet_like(rng, concat_order=("b", "a"), pads=(1, 1, 1, 1), concat_axis=1):
    """conv s2 + BatchNorm + ReLU, depthwise + ReLU, channel shuffle (the
    PyTorch export idiom), a fork of a 1x1 and a 3x3 conv joined by Concat,
    max pool, global average pool, flatten, Gemm."""
    p = {"w1": rng.standard_normal((4, 2, 3, 3)), "b1": rng.standard_normal(4),
         "gamma": rng.random(4) + 0.5, "beta": rng.standard_normal(4), "mean": rng.standard_normal(4),
         "var": rng.random(4) + 0.5,
         "w2": rng.standard_normal((4, 1, 3, 3)), "w3": rng.standard_normal((3, 4, 1, 1)),
         "b3": rng.standard_normal(3), "w4": rng.standard_normal((3, 4, 3, 3)), "w5": rng.standard_normal((5, 6)),
         "b5": rng.standard_normal(5)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 2], pads=list(pads), kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["n1"], epsilon=1e-3),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Reshape", ["r2", "s5"], ["v5"]),
        helper.make_node("Transpose", ["v5"], ["t5"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t5", "s4"], ["sh"]),
        helper.make_node("Conv", ["sh", "w3", "b3"], ["c3"]),
        helper.make_node("Relu", ["c3"], ["a"]),
        helper.make_node("Conv", ["sh", "w4"], ["c4"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c4"], ["b"]),
        helper.make_node("Concat", list(concat_order), ["cat"], axis=concat_axis),
        helper.make_node("MaxPool", ["cat"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["mp"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["fl"], axis=1),
        helper.make_node("Gemm", ["fl", "w5", "b5"], ["y"], transB=1),
    ]
    inits = [const(k, v) for k, v in p.items()] + [const("s5", [1, 2, 2, 4, 4]), const("s4", [1, 4, 4, 4])]
    graph = helper.make_graph(nodes, "shufflenet_like",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    return helper.make_model(graph), {k: v.astype(np.float64) for k, v in p.items()}


def reference(p, x_nhwc, concat_order=("b", "a")):
    h = direct_conv(x_nhwc, p["w1"], p["b1"], 2, 1, 1)
    h = (h - p["mean"]) / np.sqrt(p["var"] + 1e-3) * p["gamma"] + p["beta"]
    h = np.maximum(h, 0)
    h = np.maximum(direct_conv(h, p["w2"], np.zeros(4), 1, 1, 4), 0)
    h = h[..., [0, 2, 1, 3]]                                   # shuffle, 2 groups of 2
    a = np.maximum(direct_conv(h, p["w3"], p["b3"], 1, 0, 1), 0)
    b = np.maximum(direct_conv(h, p["w4"], np.zeros(3), 1, 1, 1), 0)
    h = np.concatenate([{"a": a, "b": b}[k] for k in concat_order], axis=3)
    n = h.shape[0]
    h = h.reshape(n, 2, 2, 2, 2, 6).max(axis=(2, 4)).mean(axis=(1, 2))
    return h @ p["w5"].T + p["b5"]


@pytest.mark.parametrize("order", [("b", "a"), ("a", "b")])
def test_onnx_network_with_batchnorm_shuffle_and_concat(order):
    rng = np.random.default_rng(0)
    model, p = shufflenet_like(rng, order)
    net = sw.from_onnx(model)
    assert isinstance(net, sw.Network) and net.input_shape == (8, 8, 2) and net.output_shape == (1, 1, 5)
    assert [type(n).__name__ for n in net.nodes] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "ChannelShuffle", "Concat",
                                                     "MaxPool2d", "AdaptiveAvgPool2d", "Flatten", "Linear"]
    x = nchw_to_nhwc(rng.standard_normal((3, 2, 8, 8)))
    y = sw.net.lower(net).forward(x).reshape(3, -1)
    assert np.allclose(y, reference(p, x, order), atol=1e-4)
    # and it compresses and runs like any network
    config = sw.Config(n_pe=2)
    program = sw.pack(sw.compress(net, density=1.0, calibration=x, config=config), config)
    assert sw.golden.run_network(program, sw.quantize_input(x, program.input_frac_bits)).shape == (3, 1, 1, 5)


def test_onnx_network_refusals_name_the_node():
    rng = np.random.default_rng(1)
    with pytest.raises(sw.ModelError, match=r"node 0 \(Conv\) pads \[1, 1, 0, 0\] unevenly"):
        sw.from_onnx(shufflenet_like(rng, pads=(1, 1, 0, 0))[0])
    with pytest.raises(sw.ModelError, match="joins along axis 2"):
        sw.from_onnx(shufflenet_like(rng, concat_axis=2)[0])
    # a residual add (two values) is refused
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["c", "x"], ["y"])]
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [const("w", np.ones((2, 2, 1, 1), dtype=np.float32))])
    with pytest.raises(sw.ModelError, match=r"branches that fork from 'x' do not all end in one Concat|reads c, x"):
        sw.from_onnx(helper.make_model(graph))


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is an opt-in extra: pip install -e '.[torch]'")


def test_from_torch_sequential_cnn_with_batchnorm():
    torch = _torch()
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 16, 1, groups=2), nn.ReLU(), nn.ChannelShuffle(2),
                        nn.MaxPool2d(2), nn.AvgPool2d(3, stride=1, padding=1), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 10))
    for m in net.modules():                 # BatchNorm statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-1, 1)
    x = torch.randn(4, 1, 12, 12)
    got = sw.from_torch(net, example_input=x)            # checked against the module on x
    assert isinstance(got, sw.Network) and got.input_shape == (12, 12, 1)
    with torch.no_grad():
        ref = net.eval()(x).numpy()
    assert np.allclose(sw.net.lower(got).forward(nchw_to_nhwc(x.numpy())).reshape(4, -1), ref, atol=1e-4)
    with pytest.raises(sw.ModelError, match="example_input"):
        sw.from_torch(net)


def test_torch_module_with_branches_through_onnx(tmp_path):
    """SqueezeNet's fire module (BatchNorm after the squeeze) and the
    shuffle idiom ShuffleNet writes, exported by PyTorch, imported from ONNX."""
    torch = _torch()
    nn = torch.nn

    class Fire(nn.Module):
        def __init__(self):
            super().__init__()
            self.squeeze, self.bn = nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)
            self.e1, self.e3 = nn.Conv2d(4, 8, 1), nn.Conv2d(4, 8, 3, padding=1)

        def forward(self, x):
            h = torch.relu(self.bn(self.squeeze(x)))
            return torch.cat([torch.relu(self.e1(h)), torch.relu(self.e3(h))], 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fire, self.fc = nn.Conv2d(1, 8, 3, stride=2, padding=1), Fire(), nn.Linear(16, 10)

        def forward(self, x):
            h = self.fire(torch.relu(self.conv(x)))
            n, c, hh, ww = h.shape
            h = h.view(n, 4, c // 4, hh, ww).transpose(1, 2).contiguous().view(n, c, hh, ww)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))

    torch.manual_seed(0)
    m = Net().eval()
    m.fire.bn.running_mean.uniform_(-1, 1)
    m.fire.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(3, 1, 10, 10)
    torch.onnx.export(m, (x,), str(tmp_path / "fire.onnx"), dynamo=False)
    net = sw.from_onnx(tmp_path / "fire.onnx")
    assert [type(n).__name__ for n in net.nodes] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Concat", "ChannelShuffle",
                                                     "AdaptiveAvgPool2d", "Flatten", "Linear"]
    with torch.no_grad():
        ref = m(x).numpy()
    assert np.allclose(sw.net.lower(net).forward(nchw_to_nhwc(x.numpy())).reshape(3, -1), ref, atol=1e-5)
