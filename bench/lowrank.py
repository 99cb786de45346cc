"""Low rank against pruning at the same storage, on LeNet-300-100 (Fashion-MNIST).

    python bench/lowrank.py          (needs Debian's dataset-fashion-mnist)

Trains the float 784-300-100-10 model as `models/fashion_mnist.py` does (the
same seed and epochs), then, per layer, keeps the weights the pruned model
of that script keeps (5% / 8% / 25%): either the largest ones (magnitude
pruning) or the two factors of the largest rank that fits in as many values
(`sw.factorize`; layer 2 is left whole, its rank would be 2). Reports the
relative Frobenius error of each and the test accuracy of each model, one
shot and after 5 epochs of retraining (under the masks; the factors freely),
and runs the retrained low-rank model's image on the golden model, an
ordinary chain of layers for the engine. Writes
build/bench/lowrank.json.
"""

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import sw  # noqa: E402
from sw import datasets, train  # noqa: E402
from sw.files import atomic_file  # noqa: E402
from sw.lowrank import low_rank_error, pruning_error, rank_for  # noqa: E402

DIMS = [784, 300, 100, 10]
DENSITY = [0.05, 0.08, 0.25]
RETRAIN = 5


def main():
    d = datasets.fashion_mnist()
    rng = np.random.default_rng(0)
    layers = [sw.Layer(rng.standard_normal((o, i)) * np.sqrt(2 / i), np.zeros(o), relu=k < len(DIMS) - 2)
              for k, (i, o) in enumerate(zip(DIMS[:-1], DIMS[1:]))]
    print("training the float model (15 epochs) ...", flush=True)
    layers = train.train(layers, d.x_train, d.y_train, epochs=15, lr=1e-3)
    rows, low, pruned = [], [], []
    masks = train.prune_masks(layers, DENSITY)
    for i, (layer, density, mask) in enumerate(zip(layers, DENSITY, masks)):
        weights = int(mask.sum())
        rank = rank_for(layer, weights)
        factored = i < len(layers) - 1
        rows.append({"layer": i, "shape": f"{layer.n_in}->{layer.n_out}", "weights": weights, "rank": rank,
                     "low_rank_weights": rank * (layer.n_in + layer.n_out),
                     "pruning_error": pruning_error(layer, weights), "low_rank_error": low_rank_error(layer, rank)})
        low += sw.factorize(layer, rank) if factored else [layer]
        pruned.append(sw.Layer(layer.dense() * mask, layer.bias, relu=layer.relu))
    float_acc, pruned_acc = train.accuracy(layers, d.x_test, d.y_test), train.accuracy(pruned, d.x_test, d.y_test)
    low_acc = train.accuracy(low, d.x_test, d.y_test)
    print(f"retraining both for {RETRAIN} epochs ...", flush=True)
    pruned_re = train.train(pruned, d.x_train, d.y_train, epochs=RETRAIN, lr=5e-4, masks=masks)
    low = train.train(low, d.x_train, d.y_train, epochs=RETRAIN, lr=5e-4)
    pruned_re_acc, low_re_acc = train.accuracy(pruned_re, d.x_test, d.y_test), train.accuracy(low, d.x_test, d.y_test)
    config = sw.Config(n_pe=4, max_layers=8)
    model = sw.compress(low, density=1.0, calibration=d.x_train[:1024], config=config)
    image = sw.pack(model, config)
    golden = sw.golden.run(image, sw.quantize_input(d.x_test, model.input_frac_bits, config.act_bits))
    report = {"float_accuracy": float_acc, "pruned_accuracy_one_shot": pruned_acc,
              "low_rank_accuracy_one_shot": low_acc, "retrain_epochs": RETRAIN,
              "pruned_accuracy_retrained": pruned_re_acc, "low_rank_accuracy_retrained": low_re_acc,
              "low_rank_golden_accuracy": float(np.mean(golden.argmax(axis=1) == d.y_test)),
              "low_rank_image_bits": image.stats().total["total_bits"], "layers": rows}
    for r in rows:
        print(f"layer {r['layer']} {r['shape']}: {r['weights']:,} weights; pruning error {r['pruning_error']:.3f}, "
              f"rank {r['rank']} ({r['low_rank_weights']:,} weights) error {r['low_rank_error']:.3f}")
    print(f"test accuracy: float {100 * float_acc:.2f}%; no retraining: pruned {100 * pruned_acc:.2f}%, "
          f"low rank {100 * low_acc:.2f}%; retrained {RETRAIN} epochs: pruned {100 * pruned_re_acc:.2f}%, "
          f"low rank {100 * low_re_acc:.2f}% (golden model, 4-bit shared factors: "
          f"{100 * report['low_rank_golden_accuracy']:.2f}%)")
    out = ROOT / "build" / "bench" / "lowrank.json"
    with atomic_file(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
