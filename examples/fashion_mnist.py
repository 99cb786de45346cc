"""Deep Compression on Fashion-MNIST, end to end, in a page.

LeNet-300-100 (784-300-100-10) trained in numpy (`sw.train`), pruned with
retraining, weight-shared in 4-bit codes with the centroids fine-tuned, the
neurons and pixels that carry nothing removed, converted to fixed point,
packed for 4 PEs and run on the RTL against the golden model.
`models/fashion_mnist.py` (``make fashion-mnist``) is the full, measured
version of this, with a report and plots.

    apt-get install dataset-fashion-mnist   # Debian's package of the IDX files
    python examples/fashion_mnist.py          # several minutes, plus a Verilator build
    python examples/fashion_mnist.py --quick  # 6,000 training images, 100 on the RTL (the test suite runs this)
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import sw  # noqa: E402
from sw import datasets, train  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the training set, 100 images on the RTL")
    args = parser.parse_args(argv)
    try:
        d = datasets.fashion_mnist()                 # local files only; the error says how to install them
    except datasets.DatasetError as e:
        sys.exit(f"error: {e}")
    x_train, y_train = (d.x_train[:6000], d.y_train[:6000]) if args.quick else (d.x_train, d.y_train)
    epochs = 3 if args.quick else 15
    log = print if not args.quick else None

    # 1. the float model
    rng = np.random.default_rng(0)
    dims = [784, 300, 100, 10]
    layers = [sw.Layer(rng.standard_normal((o, i)) * np.sqrt(2 / i), np.zeros(o), relu=k < 2)
              for k, (i, o) in enumerate(zip(dims[:-1], dims[1:]))]
    layers = train.train(layers, x_train, y_train, epochs=epochs, progress=log)
    print(f"float: {100 * train.accuracy(layers, d.x_test, d.y_test):.2f}%")

    # 2. iterative magnitude pruning: a growing share of the weights at zero,
    #    retraining under the masks after each step
    pruned = layers
    for density in ([0.5, 0.5, 0.6], [0.2, 0.25, 0.4], [0.08, 0.09, 0.26]):
        pruned = train.train(pruned, x_train, y_train, epochs=max(1, epochs // 5), lr=5e-4,
                             masks=train.prune_masks(pruned, density))
    print(f"pruned to 8% / 9% / 26%: {100 * train.accuracy(pruned, d.x_test, d.y_test):.2f}%")

    # 3. weight sharing: 15 values per layer (code 0 is zero), centroids fine-tuned
    codes, centroids = train.share(pruned, code_bits=4)
    shared = train.train(pruned, x_train, y_train, epochs=max(1, epochs // 5), lr=2e-4, shared=(codes, centroids))
    print(f"4-bit shared weights: {100 * train.accuracy(shared, d.x_test, d.y_test):.2f}%")

    # 4. structured pruning of what carries nothing (exact): dead neurons, unread pixels
    slim = train.prune_neurons(shared, inputs=True)
    print(f"removed {slim.removed[0]} unread pixels and {sum(slim.removed[1:])} dead neurons")

    # 5. fixed point (calibrated on training images), packed for 4 PEs: rows
    #    balanced across the PEs, and ordered within each for short zero runs
    config = sw.Config(n_pe=4)
    model = sw.compress(slim.layers, density=1.0, calibration=slim.select_inputs(x_train[:1024]), config=config)
    image = sw.pack(model, config, balance=True, shorten_runs=True)
    x = sw.quantize_input(slim.select_inputs(d.x_test), model.input_frac_bits, config.act_bits)
    golden = sw.golden.run(image, x)
    stats = image.stats().total
    print(f"fixed point (golden model): {100 * np.mean(golden.argmax(axis=1) == d.y_test):.2f}%; the image is "
          f"{stats['compression_ratio']:.1f}x smaller than fp32 dense")

    # 6. the RTL, every output against the golden model
    import sim
    n = 100 if args.quick else len(x)
    result = sim.run(image, x[:n])
    exact = bool(np.array_equal(result.outputs, golden[:n]))
    print(f"RTL on {n:,} test images: bit-exact {'yes' if exact else 'NO'}, accuracy "
          f"{100 * np.mean(result.outputs.argmax(axis=1) == d.y_test[:n]):.2f}%, "
          f"{result.cycles.mean():,.0f} cycles per image")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
