"""Import from ONNX (default run: graphs built with onnx.helper) and from
PyTorch (when torch is installed)."""

import numpy as np
import pytest

import sw
from sw.cli import main

onnx = pytest.importorskip("onnx", reason="the onnx package is in the test extra: pip install -e '.[test]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def forward(layers, x):
    for layer in layers:
        x = layer.forward(x)
    return x


def graph(nodes, inits, n_in, n_out, inputs=("x",), output="y"):
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(i, TensorProto.FLOAT, [None, n_in]) for i in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, n_out])],
        initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def reference(model, x):
    """The graph evaluated by onnx's own reference runtime."""
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0]


@pytest.fixture
def weights():
    rng = np.random.default_rng(3)
    return {"w0": rng.standard_normal((12, 8)), "b0": rng.standard_normal(12),
            "w1": rng.standard_normal((12, 5)), "b1": rng.standard_normal(5)}


def test_gemm_and_matmul_add_chain(weights):
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "w0", "b0"], ["h"], transB=1, alpha=0.5, beta=2.0, name="fc0"),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Dropout", ["r"], ["d"]),
             helper.make_node("MatMul", ["d", "w1"], ["m"]),
             helper.make_node("Add", ["b1", "m"], ["y"])]
    model = graph(nodes, weights, 8, 5)
    layers = sw.from_onnx(model)
    assert [(l.n_in, l.n_out, l.relu) for l in layers] == [(8, 12, True), (12, 5, False)]
    x = np.random.default_rng(0).standard_normal((20, 8))
    np.testing.assert_allclose(forward(layers, x), reference(model, x), rtol=1e-4, atol=1e-4)


def test_constant_nodes_and_a_file(tmp_path, weights):
    nodes = [helper.make_node("Constant", [], ["w0"], value=numpy_helper.from_array(weights["w0"].T.astype(np.float32))),
             helper.make_node("Gemm", ["x", "w0"], ["y"])]
    model = graph(nodes, {}, 8, 12)
    onnx.save(model, tmp_path / "m.onnx")
    layers = sw.from_onnx(tmp_path / "m.onnx")
    assert len(layers) == 1 and not layers[0].relu
    np.testing.assert_allclose(layers[0].dense(), weights["w0"], rtol=1e-6)
    assert np.all(layers[0].bias == 0)


@pytest.mark.parametrize("nodes, message", [
    ([helper.make_node("Sigmoid", ["x"], ["y"], name="sig1")], r"node sig1 \(Sigmoid\) is not supported"),
    ([helper.make_node("Conv", ["x", "w0"], ["y"], name="conv1")], r"node conv1 \(Conv\): Conv2d weight .* must be 4-D"),
    ([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gemm", ["r", "w0"], ["y"], transB=1)],
     "ReLU before any layer"),
    ([helper.make_node("Gemm", ["x", "w0"], ["h"], transB=1), helper.make_node("Gemm", ["x", "w0"], ["y"], transB=1)],
     "reads x, not the chain's value 'h'"),
    ([helper.make_node("Gemm", ["x", "w0"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
      helper.make_node("Add", ["r", "b0"], ["y"])], "after a ReLU"),
    ([helper.make_node("Flatten", ["x"], ["y"], axis=0)], "axis = 0"),
])
def test_unsupported_graphs_name_the_node(weights, nodes, message):
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 12])],
        initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]))
    with pytest.raises(sw.ModelError, match=message):
        sw.from_onnx(model)


def test_not_an_onnx_file(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(sw.ModelError, match="bad.onnx: not an ONNX model"):
        sw.from_onnx(tmp_path / "bad.onnx")
    with pytest.raises(sw.ModelError, match="no such file"):
        sw.from_onnx(tmp_path / "none.onnx")
    with pytest.raises(sw.ModelError, match=r"unknown model file suffix '.h5'"):
        sw.load_any(tmp_path / "m.h5")


def test_pack_cli_takes_onnx(tmp_path, weights, capsys):
    nodes = [helper.make_node("Gemm", ["x", "w0", "b0"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w1"], ["m"]), helper.make_node("Add", ["m", "b1"], ["y"])]
    onnx.save(graph(nodes, weights, 8, 5), tmp_path / "m.onnx")
    assert main(["pack", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "img"), "--density", "0.5",
                 "--n-pe", "2"]) == 0
    image = sw.Image.load(tmp_path / "img")
    assert (image.n_in, image.n_out, len(image.layers)) == (8, 5, 2)


# --- PyTorch (optional extra) -------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch", reason="PyTorch is an opt-in extra: pip install -e '.[torch]'")


def test_from_torch_sequential_with_pruning(tmp_path):
    torch = _torch()
    from torch.nn.utils import prune
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 20), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                              torch.nn.Sequential(torch.nn.Linear(20, 10, bias=False), torch.nn.ReLU()),
                              torch.nn.Identity(), torch.nn.Linear(10, 4))
    prune.l1_unstructured(net[1], "weight", amount=0.7)
    x = torch.randn(32, 1, 4, 4)
    layers = sw.from_torch(net, example_input=x)
    assert [(l.n_in, l.n_out, l.relu) for l in layers] == [(16, 20, True), (20, 10, True), (10, 4, False)]
    assert np.count_nonzero(layers[0].dense()) == round(0.3 * 320)     # read through the mask
    net.eval()
    with torch.no_grad():
        np.testing.assert_allclose(forward(layers, x.reshape(32, -1).double().numpy()), net(x).double().numpy(),
                                   rtol=1e-5, atol=1e-5)
    prune.remove(net[1], "weight")                      # after remove: the plain weight
    assert np.count_nonzero(sw.from_torch(net)[0].dense()) == round(0.3 * 320)
    torch.save(net, tmp_path / "net.pt")
    assert main(["pack", str(tmp_path / "net.pt"), "-o", str(tmp_path / "img"), "--density", "0.5"]) == 0
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(sw.ModelError, match="state_dict"):
        sw.load_any(tmp_path / "sd.pt")


def test_from_torch_refuses_what_it_cannot_run():
    torch = _torch()
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh())
    with pytest.raises(sw.ModelError, match=r"module 1 \(Tanh\) is not supported"):
        sw.from_torch(net)
    with pytest.raises(sw.ModelError, match="ReLU before any layer"):
        sw.from_torch(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(4, 4)))
    with pytest.raises(sw.ModelError, match=r"module 0 \(Linear\) takes 4 inputs|takes 3 inputs"):
        sw.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(3, 2)))

    class Skip(torch.nn.Module):                        # forward does more than its modules say
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) + x
    with pytest.raises(sw.ModelError, match="not supported"):
        sw.from_torch(torch.nn.Sequential(Skip()))
    net = torch.nn.Sequential(torch.nn.Linear(4, 4))
    net.forward = lambda x: 2 * torch.nn.Sequential.forward(net, x)
    with pytest.raises(sw.ModelError, match="differ from the module on example_input"):
        sw.from_torch(net, example_input=torch.randn(3, 4))
