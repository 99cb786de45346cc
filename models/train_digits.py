"""Train the default model of `make sim`: a 64-64-32-10 ReLU MLP on
scikit-learn's bundled 8x8 digits (1797 images, no download), pruned as Deep
Compression does: prune the smallest weights, retrain the rest, repeat
(retraining re-applies the pruning mask after every epoch).

    pip install -e '.[train]' && python models/train_digits.py

Writes ``models/digits_mlp.npz`` (the pruned float model, ``sw.load_model``
layout; weight density ``DENSITY`` per layer) and
``models/digits_data.npz`` (``x_cal``: 256 training images for calibration;
``x_test``, ``y_test``: the 360 held-out images and labels). Pixels are
scaled to [0, 1]. Deterministic (fixed seeds).
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import sw

HERE = Path(__file__).resolve().parent
DENSITY = [0.25, 0.25, 0.5]
STEPS = 4           # prune in this many steps towards DENSITY
EPOCHS = 60         # retraining epochs after each step


def prune_masks(mlp, densities):
    masks = []
    for w, d in zip(mlp.coefs_, densities):
        keep = int(round(d * w.size))
        threshold = np.sort(np.abs(w).reshape(-1))[::-1][keep - 1]
        masks.append(np.abs(w) >= threshold)
    return masks


def retrain(mlp, masks, x, y, epochs):
    for _ in range(epochs):
        mlp.partial_fit(x, y)
        for w, mask in zip(mlp.coefs_, masks):
            w *= mask


def main():
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=360, random_state=0, stratify=y)
    mlp = MLPClassifier(hidden_layer_sizes=(64, 32), activation="relu", max_iter=600, random_state=0)
    mlp.fit(x_train, y_train)
    print(f"dense float test accuracy: {mlp.score(x_test, y_test):.4f}")
    for step in range(1, STEPS + 1):
        densities = [1 - (1 - d) * step / STEPS for d in DENSITY]
        retrain(mlp, prune_masks(mlp, densities), x_train, y_train, EPOCHS)
        print(f"density {[round(d, 3) for d in densities]}: test accuracy {mlp.score(x_test, y_test):.4f}")
    layers = [sw.Layer(w.T, b, relu=i < len(mlp.coefs_) - 1)
              for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_))]
    sw.save_model(layers, HERE / "digits_mlp.npz", overwrite=True)
    rng = np.random.default_rng(0)
    cal = x_train[rng.choice(len(x_train), 256, replace=False)]
    np.savez_compressed(HERE / "digits_data.npz", x_cal=cal, x_test=x_test, y_test=y_test)
    print(f"wrote {HERE / 'digits_mlp.npz'} and {HERE / 'digits_data.npz'}")


if __name__ == "__main__":
    main()
