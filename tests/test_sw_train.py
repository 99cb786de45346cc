"""The numpy training of the compression flow (`sw.train`) and the dataset
readers (`sw.datasets`), on small synthetic data (no dataset needed)."""

import gzip

import numpy as np
import pytest

import sw
from sw import datasets, train
from sw.compress import forward


def blobs(rng, n=600, dim=12, classes=3):
    centres = rng.standard_normal((classes, dim)) * 3
    y = rng.integers(0, classes, n)
    return centres[y] + rng.standard_normal((n, dim)), y


def mlp(rng, dims):
    return [sw.Layer(rng.standard_normal((o, i)) * np.sqrt(2 / i), rng.standard_normal(o) * 0.1, relu=k < len(dims) - 2)
            for k, (i, o) in enumerate(zip(dims[:-1], dims[1:]))]


@pytest.mark.parametrize("distill, relus", [(False, None), (True, None), (False, [False, True, False]),
                                            (True, [True, False, True])])
def test_gradients_match_finite_differences(distill, relus):
    rng = np.random.default_rng(1)
    layers = mlp(rng, [5, 7, 6, 4])
    w = [l.dense().copy() for l in layers]
    b = [l.bias.copy() for l in layers]
    x, y = rng.standard_normal((9, 5)), rng.integers(0, 4, 9)
    kw = dict(teacher_logits=rng.standard_normal((9, 4)) * 2, temperature=3.0, distill=0.4) if distill else {}
    kw["relus"] = relus
    _, gw, gb = train.loss_and_grads(w, b, x, y, **kw)
    eps = 1e-6
    for params, grads in ((w, gw), (b, gb)):
        for p, g in zip(params, grads):
            flat, gflat = p.reshape(-1), g.reshape(-1)
            for i in range(0, flat.size, 3):
                old = flat[i]
                flat[i] = old + eps
                up = train.loss_and_grads(w, b, x, y, **kw)[0]
                flat[i] = old - eps
                down = train.loss_and_grads(w, b, x, y, **kw)[0]
                flat[i] = old
                assert abs((up - down) / (2 * eps) - gflat[i]) < 1e-6


def test_training_pruning_and_sharing_keep_their_constraints():
    rng = np.random.default_rng(2)
    x, y = blobs(rng)
    layers = train.train(mlp(rng, [12, 32, 3]), x, y, epochs=30, lr=3e-3)
    assert train.accuracy(layers, x, y) > 0.97
    masks = train.prune_masks(layers, [0.2, 0.5])
    assert [int(m.sum()) for m in masks] == [round(0.2 * 12 * 32), round(0.5 * 32 * 3)]
    pruned = train.train(layers, x, y, epochs=10, lr=1e-3, masks=masks)
    for layer, mask in zip(pruned, masks):
        assert np.all(layer.dense()[~mask] == 0)               # pruned weights stay zero
    assert train.accuracy(pruned, x, y) > 0.95
    codes, centroids = train.share(pruned, code_bits=2)
    assert all(c.size <= 3 for c in centroids)
    tuned = train.train(pruned, x, y, epochs=10, lr=1e-3, shared=(codes, centroids))
    for layer, code in zip(tuned, codes):
        w = layer.dense()
        assert np.all(w[code == 0] == 0)
        for k in np.unique(code[code > 0]):                     # one value per code
            assert np.unique(w[code == k]).size == 1
    assert train.accuracy(tuned, x, y) > 0.95
    # the shared weights are what sw.compress keeps as the codebook, exactly
    model = sw.compress(tuned, density=1.0, calibration=x[:64], config=sw.Config(code_bits=2))
    for layer, entry in zip(tuned, model.report):
        assert sorted(entry["codebook_float"][1:]) == sorted(np.unique(layer.dense()[layer.dense() != 0]).tolist())


def test_distillation_runs_and_errors_are_clear():
    rng = np.random.default_rng(3)
    x, y = blobs(rng, n=200)
    teacher = train.train(mlp(rng, [12, 16, 3]), x, y, epochs=20, lr=3e-3)
    student = train.train(mlp(rng, [12, 16, 3]), x, y, epochs=20, lr=3e-3, teacher=teacher, temperature=2.0)
    assert train.accuracy(student, x, y) > 0.9
    with pytest.raises(sw.ModelError, match="labels must be in 0..2"):
        train.train(teacher, x, y + 3, epochs=1)
    with pytest.raises(sw.ModelError, match="masks or shared, not both"):
        train.train(teacher, x, y, epochs=1, masks=[None], shared=([], []))
    with pytest.raises(sw.ModelError, match="density must be in"):
        train.prune_masks(teacher, [0.5, 0])


def _idx(data: np.ndarray, code: int) -> bytes:
    return bytes([0, 0, code, data.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in data.shape) + data.tobytes()


def test_idx_files_and_the_fashion_mnist_reader(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    for split in ("train", "t10k"):
        (tmp_path / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images, 0x08)))
        (tmp_path / f"{split}-labels-idx1-ubyte").write_bytes(_idx(labels, 0x08))      # plain IDX also reads
    monkeypatch.setenv("OEIE_FASHION_MNIST", str(tmp_path))
    d = datasets.fashion_mnist()
    assert d.x_train.shape == (5, 784) and d.x_train.dtype == np.float32
    assert np.allclose(d.x_test * 255, images.reshape(5, -1)) and d.y_test.tolist() == labels.tolist()
    assert d.classes[9] == "Ankle boot"
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(labels, 0x08)[:-1])
    with pytest.raises(datasets.DatasetError, match="4 bytes of data, its header"):
        datasets.fashion_mnist()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(datasets.DatasetError, match="not an IDX file"):
        datasets.fashion_mnist()
    with pytest.raises(datasets.DatasetError, match="apt-get install dataset-fashion-mnist"):
        datasets.fashion_mnist(tmp_path / "nowhere")


def test_ternary_training_gives_a_two_bit_codebook_that_runs_exactly():
    rng = np.random.default_rng(4)
    x, y = blobs(rng, n=400)
    layers = train.train(mlp(rng, [12, 24, 3]), x, y, epochs=20, lr=3e-3)
    masks = train.prune_masks(layers, [0.4, 0.6])
    tern = train.train(layers, x, y, epochs=15, lr=1e-3, masks=masks, ternary=True)
    for layer, mask in zip(tern, masks):
        w = layer.dense()
        assert np.array_equal(w != 0, mask)                     # the pruning is kept, no kept weight is 0
        a = np.abs(w[mask])
        assert np.allclose(a, a[0])                             # one magnitude per layer: {0, -a, +a}
    assert train.accuracy(tern, x, y) > 0.9
    codes, centroids = train.share(tern, code_bits=2)
    assert all(np.allclose(c, [-np.abs(c).max(), np.abs(c).max()]) for c in centroids)
    config = sw.Config(n_pe=2, code_bits=2)
    model = sw.compress(tern, density=1.0, calibration=x[:64], config=config)
    image = sw.pack(model, config)
    assert all(np.count_nonzero(entry["codebook_float"]) <= 2 for entry in model.report)
    q = sw.quantize_input(x, model.input_frac_bits, config.act_bits)
    assert np.mean(sw.golden.run(image, q).argmax(axis=1) == y) > 0.9
    with pytest.raises(sw.ModelError, match="ternary training takes masks"):
        train.train(tern, x, y, epochs=1, ternary=True, shared=(codes, centroids))


def test_ternarize_uses_the_mean_magnitude():
    w = np.array([[0.5, -1.5, 0.0], [2.0, 0.0, -0.0]])
    mask = np.array([[True, True, True], [True, False, False]])
    t = train.ternarize(w, mask)
    a = (0.5 + 1.5 + 0.0 + 2.0) / 4
    assert np.array_equal(t, [[a, -a, a], [a, 0, 0]])         # a kept 0 becomes +a: still nonzero


def test_neuron_pruning_is_exact_and_shrinks_the_model():
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((6, 5))
    w0[1] = 0                                      # neuron 1: no weight in, outputs relu(bias) = 0.7
    w0[:, 3] = 0                                   # input 3 read by nothing
    b0 = rng.standard_normal(6)
    b0[1] = 0.7
    w1 = rng.standard_normal((4, 6))
    w1[:, 4] = 0                                   # neuron 4: no weight out
    w2 = rng.standard_normal((3, 4))
    w2[:, 2] = 0                                   # layer 1's neuron 2 carries nothing on ...
    w1[0, :] = 0                                   # ... and neuron 0 of layer 1 has no weight in
    layers = [sw.Layer(w0, b0), sw.Layer(w1, rng.standard_normal(4)), sw.Layer(w2, rng.standard_normal(3), relu=False)]
    result = train.prune_neurons(layers, inputs=True)
    assert [l.dense().shape for l in result.layers] == [(4, 4), (2, 4), (3, 2)]
    assert result.kept[0].tolist() == [0, 1, 2, 4]
    assert result.kept[1].tolist() == [0, 2, 3, 5]
    assert result.kept[2].tolist() == [1, 3]
    assert result.removed == [1, 2, 2]
    x = rng.standard_normal((50, 5))
    np.testing.assert_allclose(forward(result.layers, result.select_inputs(x)),
                               forward(layers, x), rtol=1e-12, atol=1e-12)
    # nothing to remove: the same model back
    same = train.prune_neurons(result.layers)
    assert same.removed == [0, 0, 0]


def test_a_factorised_layer_trains_with_its_identity_kept():
    rng = np.random.default_rng(6)
    x, y = blobs(rng, n=300)
    layers = train.train(mlp(rng, [12, 32, 3]), x, y, epochs=10, lr=3e-3)
    low = sw.factorize(layers[0], 3) + layers[1:]
    tuned = train.train(low, x, y, epochs=10, lr=1e-3)
    assert [l.relu for l in tuned] == [False, True, False]
    assert train.accuracy(tuned, x, y) >= train.accuracy(low, x, y) - 0.02


def test_ternary_training_of_a_dense_model_gives_binary_weights():
    rng = np.random.default_rng(8)
    x, y = blobs(rng, n=300)
    layers = train.train(mlp(rng, [12, 16, 3]), x, y, epochs=10, lr=3e-3)
    binary = train.train(layers, x, y, epochs=30, lr=3e-3, ternary=True)
    for layer in binary:
        w = layer.dense()
        assert np.all(w != 0) and np.unique(np.abs(w)).size == 1           # {-a, +a}
    assert train.accuracy(binary, x, y) > 0.85
