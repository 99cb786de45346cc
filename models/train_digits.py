"""Train the default model of `make sim`: a 64-64-32-10 ReLU MLP on
scikit-learn's bundled 8x8 digits (1797 images, no download), compressed as
Deep Compression does, with `sw.train` (numpy): train the float model, prune
the smallest weights in steps with retraining under the masks, share each
layer's weights in 15 values (4-bit codes) and fine-tune the centroids;
every retraining step distils from the float model.

    pip install -e '.[train]' && python models/train_digits.py

Writes ``models/digits_mlp.npz`` (the pruned and shared float model,
``sw.load_model`` layout: `sw.compress` keeps its 15 values per layer as the
codebook) and ``models/digits_data.npz`` (``x_cal``: 256 training images for
calibration; ``x_test``, ``y_test``: the 360 held-out images and labels;
``dense_float_accuracy``: the uncompressed float model's test accuracy).
Pixels are scaled to [0, 1]. Deterministic (fixed seeds).
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import sw
from sw import train

HERE = Path(__file__).resolve().parent
DIMS = [64, 64, 32, 10]
DENSITY = [0.25, 0.25, 0.5]
STEPS = 4           # prune in this many steps towards DENSITY
EPOCHS = 150        # float training
RETRAIN = 40        # retraining epochs after each pruning step, and for the centroids


def main():
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=360, random_state=0, stratify=y)
    rng = np.random.default_rng(0)
    layers = [sw.Layer(rng.standard_normal((o, i)) * np.sqrt(2 / i), np.zeros(o), relu=k < len(DIMS) - 2)
              for k, (i, o) in enumerate(zip(DIMS[:-1], DIMS[1:]))]
    dense = train.train(layers, x_train, y_train, epochs=EPOCHS, lr=1e-3, batch=64)
    dense_acc = train.accuracy(dense, x_test, y_test)
    print(f"dense float test accuracy: {dense_acc:.4f}")
    pruned = dense
    for step in range(1, STEPS + 1):
        densities = [d + (1 - d) * (1 - step / STEPS) ** 3 for d in DENSITY]
        masks = train.prune_masks(pruned, densities)
        pruned = train.train(pruned, x_train, y_train, epochs=RETRAIN, lr=5e-4, batch=64, masks=masks,
                             teacher=dense, seed=step)
        print(f"density {[round(d, 3) for d in densities]}: test accuracy "
              f"{train.accuracy(pruned, x_test, y_test):.4f}")
    codes, centroids = train.share(pruned, code_bits=4)
    shared = train.train(pruned, x_train, y_train, epochs=RETRAIN, lr=2e-4, batch=64, shared=(codes, centroids),
                         teacher=dense, seed=99)
    print(f"4-bit weight sharing, centroids fine-tuned: test accuracy {train.accuracy(shared, x_test, y_test):.4f}")
    sw.save_model(shared, HERE / "digits_mlp.npz", overwrite=True)
    cal = x_train[rng.choice(len(x_train), 256, replace=False)]
    np.savez_compressed(HERE / "digits_data.npz", x_cal=cal, x_test=x_test, y_test=y_test,
                        dense_float_accuracy=dense_acc)
    print(f"wrote {HERE / 'digits_mlp.npz'} and {HERE / 'digits_data.npz'}")


if __name__ == "__main__":
    main()
