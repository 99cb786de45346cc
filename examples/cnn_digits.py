"""A small CNN from training to the RTL, bit for bit.

A depthwise-separable network (a 3x3 convolution, a depthwise 3x3, a
grouped 1x1 with a channel shuffle, a 2x2 average pool and a linear
classifier) on scikit-learn's bundled 8x8 digits: trained in numpy on its
lowered layers (`sw.net.train`), pruned and retrained, weight-shared (4-bit
codes) and fine-tuned, compressed to fixed point, packed for 4 PEs as one
image per program, and run on the RTL (cocotb + Verilator), every output of
every program against the golden model.

    pip install -e '.[train]'             # scikit-learn, for the digits
    python examples/cnn_digits.py          # about a minute, plus a Verilator build
    python examples/cnn_digits.py --quick  # fewer epochs and images (the test suite runs this)
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import sw  # noqa: E402
from sw.net.train import accuracy, prune_masks, share, train_network  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, 16 test images on the RTL")
    args = parser.parse_args(argv)
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.images / 16.0)[..., None]                        # (N, 8, 8, 1): channels last
    y = digits.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, test = order[:1400], order[1400:]

    def conv(c_out, c_in, k, **kw):
        return sw.Conv2d(rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2 / (c_in * k * k)), np.zeros(c_out), **kw)

    net = sw.Network((8, 8, 1), [
        conv(8, 1, 3, padding=1), sw.ReLU(),                    # 8 x 8 x 8
        conv(8, 1, 3, stride=2, padding=1, groups=8), sw.ReLU(),  # depthwise, 4 x 4 x 8
        conv(16, 4, 1, groups=2), sw.ReLU(), sw.ChannelShuffle(2),  # grouped 1x1, shuffled
        sw.AvgPool2d(2), sw.Flatten(),                          # 2 x 2 x 16 = 64 values
        sw.Linear(rng.standard_normal((10, 64)) * 0.18, np.zeros(10))])
    lowered = sw.net.lower(net)
    epochs = 16 if args.quick else 40
    lowered = train_network(lowered, x[train], y[train], epochs=epochs, lr=3e-3, batch=32)
    print(f"float: {100 * accuracy(lowered, x[test], y[test]):.1f}% on {len(test)} test images")
    density = [1.0, 1.0, 0.5, 0.6]                              # per weighted node: conv, depthwise, 1x1, linear
    lowered = train_network(lowered, x[train], y[train], epochs=epochs // 2, lr=1e-3, batch=32,
                            masks=prune_masks(lowered, density), seed=1)
    print(f"pruned: {100 * accuracy(lowered, x[test], y[test]):.1f}%")
    lowered = train_network(lowered, x[train], y[train], epochs=epochs // 2, lr=3e-4, batch=32,
                            shared=share(lowered, code_bits=4), seed=2)   # 15 shared values a layer, fine-tuned
    print(f"shared (4-bit codes): {100 * accuracy(lowered, x[test], y[test]):.1f}%")

    config = sw.Config(n_pe=4)
    cnet = sw.compress(lowered, density=density, config=config, calibration=x[train][:256])
    program = sw.pack(cnet, config)
    x_int = sw.quantize_input(x[test], cnet.input_frac_bits, config.act_bits)
    out = sw.golden.run_network(program, x_int).reshape(len(test), -1)
    print(f"fixed point (golden model): {100 * np.mean(out.argmax(axis=1) == y[test]):.1f}%; "
          f"{len(program.images())} programs, {program.cycles(x_int[:8]).mean:,.0f} cycles per image (cycle model)")

    import sim
    n = 16 if args.quick else 64
    result = sim.run_network(program, x_int[:n], progress=None)
    exact = result.bit_exact_images == n and result.cycle_model_exact
    print(f"RTL: {result.bit_exact_images}/{n} images bit-exact, {result.cycles_per_image.mean():,.0f} cycles per "
          f"image (the cycle model {'agrees' if result.cycle_model_exact else 'DISAGREES'}); "
          f"bit-exact {'yes' if exact else 'NO'}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
