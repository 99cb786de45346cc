"""A small depthwise-separable CNN on Fashion-MNIST, compressed and run on the
engine: convolutions (plain, depthwise, grouped 1x1 with a channel shuffle,
a SqueezeNet fire module's concat) lowered to programs of per-pixel layers.

    make cnn          (or: python models/cnn.py [--rtl-images 50] [--no-rtl] [--epochs 8])

The network (28 x 28 x 1 in, channels last), 10 weighted layers:

    conv 3x3 s2 (1 -> 16) ReLU                                 14 x 14 x 16
    depthwise 3x3 s2 (16) ReLU, grouped 1x1 (16 -> 32, 2 groups) ReLU,
      channel shuffle (2), squeeze 1x1 (32 -> 16) ReLU          7 x 7 x 16
    fire expand: concat(1x1 (16 -> 32) ReLU, 3x3 (16 -> 32) ReLU)   7 x 7 x 64
    depthwise 3x3 s2 (64) ReLU, 1x1 (64 -> 64) ReLU              4 x 4 x 64
    global average pool, flatten, linear (64 -> 10)

Trained in numpy on the lowered layers (`sw.net.train`: Adam, float), pruned
per layer and retrained under the masks, weight-shared in 15 values per
layer (4-bit codes) and the centroids fine-tuned; then fixed point for the
ECP5-85F preset (8-bit activations and weights, 24-bit accumulators;
calibration on 512 training images), packed for its 64 PEs, the 10,000
test images on the golden model, and `--rtl-images` of them on the RTL
(Verilator), every output of every program against the golden model; the
cycles per image from the RTL and from the cycle model.

Writes build/cnn/report.json (``float_accuracy``, ``pruned_accuracy``,
``shared_accuracy``, ``compressed_accuracy`` (float model of the
compressed weights), ``golden_accuracy``, ``test_images``, ``rtl_images``,
``rtl_bit_exact_images``, ``cycles_per_image``, ``cycle_shares``,
``storage``, per layer details, and ``lenet_low_rank``: LeNet-300-100
pruned and low rank (`sw.LowRank` nodes) at the same storage, both on the
golden model, the low-rank one on the RTL) and plots accuracy.png and
cycles.png.
Deterministic (fixed seeds).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import sw  # noqa: E402
from sw import datasets  # noqa: E402
from sw.files import atomic_file, save_figure  # noqa: E402
from sw.net import lower  # noqa: E402
from sw.net.train import accuracy, prune_masks, share, train_network  # noqa: E402

OUT = ROOT / "build" / "cnn"
PRESET = "ecp5-85f"
# per weighted node: conv1, dw1, pw1 (grouped), squeeze, expand 1x1, expand 3x3, dw2, pw2, linear
DENSITY = [1.0, 0.7, 0.4, 0.4, 0.4, 0.25, 0.7, 0.3, 0.5]


def log(msg):
    print(msg, flush=True)


def network(seed: int = 0) -> sw.Network:
    rng = np.random.default_rng(seed)

    def conv(c_out, c_in_per_group, k, **kw):
        fan_in = c_in_per_group * k * k
        return sw.Conv2d(rng.standard_normal((c_out, c_in_per_group, k, k)) * np.sqrt(2 / fan_in),
                         np.zeros(c_out), **kw)

    return sw.Network((28, 28, 1), [
        conv(16, 1, 3, stride=2, padding=1), sw.ReLU(),
        conv(16, 1, 3, stride=2, padding=1, groups=16), sw.ReLU(),
        conv(32, 8, 1, groups=2), sw.ReLU(), sw.ChannelShuffle(2),
        conv(16, 32, 1), sw.ReLU(),
        sw.Concat([conv(32, 16, 1), sw.ReLU()], [conv(32, 16, 3, padding=1), sw.ReLU()]),
        conv(64, 1, 3, stride=2, padding=1, groups=64), sw.ReLU(),
        conv(64, 64, 1), sw.ReLU(),
        sw.AdaptiveAvgPool2d(1), sw.Flatten(),
        sw.Linear(rng.standard_normal((10, 64)) * np.sqrt(1 / 64), np.zeros(10)),
    ])


def golden_accuracy(program, x_int, y, chunk=1000):
    right = 0
    for s in range(0, x_int.shape[0], chunk):
        out = sw.golden.run_network(program, x_int[s:s + chunk])
        right += int(np.sum(out.reshape(out.shape[0], -1).argmax(axis=1) == y[s:s + chunk]))
    return right / x_int.shape[0]


LENET = [784, 300, 100, 10]
LENET_DENSITY = [0.05, 0.08, 0.25]


def lenet_low_rank(d, config, n_rtl: int, epochs: int = 8, retrain: int = 3):
    """LeNet-300-100 two ways at the same storage: pruned (5% / 8% / 25%,
    retrained under the masks) and low rank (the first two layers as
    `sw.LowRank` nodes of the largest rank that fits the pruned layer's
    weights, retrained freely), both 4-bit shared and in fixed point for
    `config`, on the golden model; the low-rank network on the RTL."""
    from sw import train
    from sw.lowrank import rank_for
    rng = np.random.default_rng(0)
    layers = [sw.Layer(rng.standard_normal((o, i)) * np.sqrt(2 / i), np.zeros(o), relu=k < len(LENET) - 2)
              for k, (i, o) in enumerate(zip(LENET[:-1], LENET[1:]))]
    log(f"LeNet-300-100: training the float model ({epochs} epochs) ...")
    layers = train.train(layers, d.x_train, d.y_train, epochs=epochs, lr=1e-3)
    masks = train.prune_masks(layers, LENET_DENSITY)
    pruned = train.train(layers, d.x_train, d.y_train, epochs=retrain, lr=5e-4, masks=masks, seed=1)
    ranks = [rank_for(l, int(m.sum())) for l, m in zip(layers[:2], masks[:2])]
    low = sum((sw.factorize(l, r) for l, r in zip(layers[:2], ranks)), []) + [layers[2]]
    low = train.train(low, d.x_train, d.y_train, epochs=retrain, lr=5e-4, seed=1)
    # the retrained factors as a network with LowRank nodes
    net = sw.Network((28, 28, 1), [sw.Flatten(),
                                   sw.LowRank(low[0].dense(), low[1].dense(), low[1].bias), sw.ReLU(),
                                   sw.LowRank(low[2].dense(), low[3].dense(), low[3].bias), sw.ReLU(),
                                   sw.Linear(low[4].dense(), low[4].bias)])
    x_cal = d.x_train[:1024].reshape(-1, 28, 28, 1)
    x_test = d.x_test.reshape(-1, 28, 28, 1)
    low_program = sw.pack(sw.compress(net, density=1.0, config=config, calibration=x_cal), config)
    xi = sw.quantize_input(x_test, low_program.input_frac_bits, config.act_bits)
    low_gold = golden_accuracy(low_program, xi, d.y_test)
    pruned_model = sw.compress(pruned, density=1.0, config=config, calibration=d.x_train[:1024])
    pruned_image = sw.pack(pruned_model, config)
    pruned_gold = float(np.mean(sw.golden.run(pruned_image, sw.quantize_input(d.x_test, pruned_model.input_frac_bits,
                                                                                config.act_bits)).argmax(axis=1)
                                == d.y_test))
    out = {"ranks": ranks, "pruned_weights": [int(m.sum()) for m in masks],
           "low_rank_weights": [r * (l.n_in + l.n_out) for l, r in zip(layers[:2], ranks)] + [layers[2].n_in * 10],
           "float_accuracy": train.accuracy(layers, d.x_test, d.y_test),
           "pruned_accuracy": train.accuracy(pruned, d.x_test, d.y_test),
           "low_rank_accuracy": train.accuracy(low, d.x_test, d.y_test),
           "pruned_golden_accuracy": pruned_gold, "low_rank_golden_accuracy": low_gold,
           "pruned_image_bits": pruned_image.stats().total["total_bits"],
           "low_rank_image_bits": sum(i.stats().total["total_bits"] for i in low_program.images()),
           "low_rank_programs": len(low_program.images())}
    log(f"LeNet-300-100 at the same storage, golden model: pruned {100 * pruned_gold:.2f}%, low rank (ranks {ranks}) "
        f"{100 * low_gold:.2f}%")
    if n_rtl:
        import sim
        r = sim.run_network(low_program, xi[:n_rtl], progress=None)
        out.update({"low_rank_rtl_images": n_rtl, "low_rank_rtl_bit_exact_images": r.bit_exact_images,
                    "low_rank_cycles_per_image": float(r.cycles_per_image.mean()),
                    "low_rank_rtl_cycles_equal_model": r.cycle_model_exact})
        log(f"low-rank LeNet on the RTL: {r.bit_exact_images}/{n_rtl} images bit-exact, "
            f"{out['low_rank_cycles_per_image']:,.0f} cycles per image")
    return out


def plots(report, out: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = ["float_accuracy", "pruned_accuracy", "shared_accuracy", "golden_accuracy"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    vals = [100 * report[k] for k in keys]
    ax.bar(["float", "pruned", "shared", "fixed point\n(golden)"], vals, color="#4878a8")
    for i, v in enumerate(vals):
        ax.text(i, v + 0.3, f"{v:.2f}%", ha="center")
    ax.set_ylim(min(vals) - 8, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Depthwise-separable CNN on Fashion-MNIST")
    save_figure(fig, out / "accuracy.png")
    shares = report["cycle_shares"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(shares)
    ax.barh(names, [100 * shares[n] for n in names], color="#6a9a58")
    ax.set_xlabel(f"share of the {report['cycles_per_image']:,.0f} cycles per image (%)")
    ax.set_title(f"Where the cycles go ({report['config']['n_pe']} PEs)")
    fig.tight_layout()
    save_figure(fig, out / "cycles.png")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=8, help="float training epochs (default 8)")
    ap.add_argument("--rtl-images", type=int, default=50,
                    help="test images on the RTL (default 50: about 40 minutes at 64 PEs)")
    ap.add_argument("--no-rtl", action="store_true", help="skip the RTL run")
    ap.add_argument("--test-images", type=int, default=10000, help="test images on the golden model")
    ap.add_argument("--train-images", type=int, default=60000, help="training images (default all 60,000)")
    ap.add_argument("--no-lenet", action="store_true", help="skip the low-rank LeNet-300-100 beside the pruned one")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    d = datasets.fashion_mnist()
    x_train = d.x_train.reshape(-1, 28, 28, 1).astype(np.float64)[:args.train_images]
    x_test = d.x_test.reshape(-1, 28, 28, 1).astype(np.float64)[:args.test_images]
    y_train, y_test = d.y_train[:args.train_images], d.y_test[:args.test_images]

    net = network()
    lowered = lower(net)
    log(f"{net}: {len(sw.net.engines(lowered.steps))} programs; training the float model ({args.epochs} epochs) ...")
    # Adam at 2e-3, the last two epochs at 5e-4
    lowered = train_network(lowered, x_train, y_train, epochs=max(0, args.epochs - 2), lr=2e-3, progress=log)
    lowered = train_network(lowered, x_train, y_train, epochs=min(2, args.epochs), lr=5e-4, seed=3, progress=log)
    float_acc = accuracy(lowered, x_test, y_test)
    log(f"float: {100 * float_acc:.2f}%")

    masks = prune_masks(lowered, DENSITY)
    pruned = train_network(lowered, x_train, y_train, epochs=2, lr=1e-3, masks=masks, seed=1, progress=log)
    pruned_acc = accuracy(pruned, x_test, y_test)
    log(f"pruned: {100 * pruned_acc:.2f}%")
    codes, centroids = share(pruned, code_bits=4)
    shared = train_network(pruned, x_train, y_train, epochs=1, lr=3e-4, shared=(codes, centroids), seed=2,
                           progress=log)
    shared_acc = accuracy(shared, x_test, y_test)
    log(f"shared (4-bit): {100 * shared_acc:.2f}%")

    config = sw.Config.preset(PRESET)
    cnet = sw.compress(shared, density=DENSITY, config=config, calibration=x_train[:512], progress=log)
    program = sw.pack(cnet, config)
    x_int = sw.quantize_input(x_test, cnet.input_frac_bits, config.act_bits)
    gold_acc = golden_accuracy(program, x_int, y_test)
    log(f"fixed point on the golden model: {100 * gold_acc:.2f}% ({x_int.shape[0]:,} test images)")

    n_rtl = 0 if args.no_rtl else min(args.rtl_images, x_int.shape[0])
    model_cycles = program.cycles(x_int[:max(n_rtl, 256)])
    report = {
        "network": repr(net), "preset": PRESET, "config": config.to_dict(),
        "float_accuracy": float_acc, "pruned_accuracy": pruned_acc, "shared_accuracy": shared_acc,
        "golden_accuracy": gold_acc, "compressed_accuracy": gold_acc, "test_images": int(x_int.shape[0]),
        "density": DENSITY,
        "vectors_per_image": model_cycles.vectors_per_image,
        "cycles_per_image_model": model_cycles.mean,
        "cycle_shares": model_cycles.shares(),
        "layers": cnet.report,
    }
    # storage: every packed image (entries with padding, pointers, codebooks, biases) against fp32 weights
    weights = sum(e["weights"] for e in cnet.report)
    stored_bits = sum(img.stats().total["total_bits"] for img in program.images())
    report["storage"] = {"fp32_weights": weights, "fp32_bytes": 4 * weights, "nonzeros": int(cnet.nnz),
                         "weight_density": cnet.nnz / weights, "packed_bytes": stored_bits / 8,
                         "compression_ratio": 32 * weights / stored_bits}
    if n_rtl:
        import sim
        log(f"running {n_rtl} test images on the RTL ({config.n_pe} PEs) ...")
        r = sim.run_network(program, x_int[:n_rtl])
        report.update({
            "rtl_images": n_rtl, "rtl_bit_exact_images": r.bit_exact_images,
            "rtl_accuracy": float(np.mean(r.outputs.reshape(n_rtl, -1).argmax(axis=1) == y_test[:n_rtl])),
            "cycles_per_image": float(r.cycles_per_image.mean()),
            "rtl_cycles_equal_model": r.cycle_model_exact, "rtl_programs": r.programs,
            "rtl_wall_seconds": r.wall_seconds,
        })
        log(f"RTL: {r.bit_exact_images}/{n_rtl} images bit-exact, {report['cycles_per_image']:,.0f} cycles per image "
            f"(cycle model {'equal' if r.cycle_model_exact else 'DIFFERENT'})")
    else:
        report.update({"rtl_images": 0, "rtl_bit_exact_images": 0, "cycles_per_image": model_cycles.mean})
    # time per image at the preset's clock: the 64-PE place and route, if one was run here
    synth = ROOT / "build" / "synth" / f"ecp5-{config.n_pe}pe" / "report.json"
    fmax = json.loads(synth.read_text()).get("fmax_mhz") if synth.is_file() else None
    report["fmax_mhz"] = fmax
    report["fmax_source"] = str(synth.relative_to(ROOT)) if fmax else \
        f"none: no place-and-route report for {config.n_pe} PEs here (make synth TARGET=ecp5)"
    report["microseconds_per_image_at_100mhz"] = report["cycles_per_image"] / 100.0
    if fmax:
        report["microseconds_per_image_at_fmax"] = report["cycles_per_image"] / fmax
    if not args.no_lenet:
        report["lenet_low_rank"] = lenet_low_rank(d, config, n_rtl)
    report["seconds"] = time.perf_counter() - t_start
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_file(OUT / "report.json", "w") as f:
        json.dump(report, f, indent=1)
    plots(report, OUT)
    log(f"wrote {OUT / 'report.json'}")
    lenet = report.get("lenet_low_rank", {})
    exact = report["rtl_bit_exact_images"] == n_rtl and lenet.get("low_rank_rtl_bit_exact_images", n_rtl) == n_rtl
    return 0 if not n_rtl or exact else 1


if __name__ == "__main__":
    sys.exit(main())
