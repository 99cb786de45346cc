"""Ternary weights on the accelerator: every kept weight is -a or +a.

A 64-32-10 MLP on scikit-learn's bundled 8x8 digits, pruned to 30% / 50% of
its weights and trained ternary (BinaryConnect's straight-through estimator,
BWN's scale: the codebook {0, -a, +a} per layer), then the two values
fine-tuned apart ({0, -a_n, +a_p}, as trained ternary quantization does),
packed with 2-bit codes and run on the RTL, every output checked against the
golden model.

    pip install -e '.[train]'
    python examples/ternary_weights.py            # about a minute, plus a Verilator build
    python examples/ternary_weights.py --quick    # fewer epochs and vectors (the test suite runs this)
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import sw  # noqa: E402
from sw import train  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, 40 test vectors on the RTL")
    args = parser.parse_args(argv)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=360,
                                                        random_state=0, stratify=digits.target)
    epochs = 10 if args.quick else 40

    # 1. a float model, trained as usual
    rng = np.random.default_rng(0)
    layers = [sw.Layer(rng.standard_normal((32, 64)) * 0.18, np.zeros(32)),
              sw.Layer(rng.standard_normal((10, 32)) * 0.25, np.zeros(10), relu=False)]
    layers = train.train(layers, x_train, y_train, epochs=30, lr=1e-3, batch=64)
    float_acc = train.accuracy(layers, x_test, y_test)

    # 2. magnitude pruning, then ternary training under the masks: the forward
    #    pass sees a * sign(w), the latent float weights take the gradient
    masks = train.prune_masks(layers, [0.3, 0.5])
    ternary = train.train(layers, x_train, y_train, epochs=epochs, lr=2e-3, batch=64, masks=masks, ternary=True)
    ternary_acc = train.accuracy(ternary, x_test, y_test)

    # 3. the two nonzero values of each layer fine-tuned as shared weights
    codes, values = train.share(ternary, code_bits=2)
    tuned = train.train(ternary, x_train, y_train, epochs=epochs // 2, lr=3e-4, batch=64, shared=(codes, values))
    tuned_acc = train.accuracy(tuned, x_test, y_test)

    # 4. 2-bit codes on the accelerator: code 0 is zero, codes 1 and 2 the two values
    config = sw.Config(n_pe=2, code_bits=2)
    model = sw.compress(tuned, density=1.0, calibration=x_train[:256], config=config)
    image = sw.pack(model, config)
    x = sw.quantize_input(x_test, model.input_frac_bits, config.act_bits)
    golden = sw.golden.run(image, x)
    print(f"test accuracy: float {100 * float_acc:.2f}%, ternary {{0, -a, +a}} {100 * ternary_acc:.2f}%, "
          f"{{0, -a_n, +a_p}} tuned {100 * tuned_acc:.2f}%, fixed point (golden model) "
          f"{100 * np.mean(golden.argmax(axis=1) == y_test):.2f}%")
    for i, v in enumerate(train.share(tuned, code_bits=2)[1]):
        print(f"  layer {i}: values {v.round(3).tolist()}, {100 * np.mean(codes[i] != 0):.0f}% of the weights kept")
    print(f"  {image.stats().total['bits_per_nonzero']:.1f} bits per nonzero weight, whole image "
          f"{image.stats().total['compression_ratio']:.1f}x smaller than fp32 dense")

    # 5. the RTL (Verilator): every output against the golden model
    import sim
    n = 40 if args.quick else len(x)
    result = sim.run(image, x[:n])
    exact = bool(np.array_equal(result.outputs, golden[:n]))
    print(f"RTL on {n} test images: bit-exact {'yes' if exact else 'NO'}, accuracy "
          f"{100 * np.mean(result.outputs.argmax(axis=1) == y_test[:n]):.2f}%, "
          f"{result.cycles.mean():.0f} cycles per image")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
