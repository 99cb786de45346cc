"""Deep Compression of LeNet-300-100 on Fashion-MNIST, end to end on the RTL.

    make fashion-mnist          (or: python models/fashion_mnist.py [--vectors 10000] [--n-pe 4] [--no-rtl])

Trains a float 784-300-100-10 ReLU MLP (`sw.train`, numpy, Adam), prunes it
in ten steps (Zhu and Gupta's cubic schedule) to 5% / 8% / 25% of the
weights per layer (5.4% in all; Deep Compression's LeNet-300-100 had 8%,
9%, 26%) with retraining under the masks after each step and longer at the
end, shares the surviving weights of each layer in 15 values (4-bit codes,
k-means with linear initialisation) and fine-tunes the centroids, every
retraining step distilled from the float model (T = 4, half the loss);
removes the pixels and neurons that carry nothing (exact), converts to fixed
point (`sw.compress`, calibration on training images), packs with balanced
rows ordered for short zero runs, the sparse-matrix memory sized to the
model, and runs the 10,000 test images on the RTL (Verilator), every output
against the golden model.

Writes build/fashion-mnist/report.json (``float_accuracy``,
``pruned_accuracy``, ``shared_accuracy``, ``compressed_accuracy`` (golden
model, fixed point), ``rtl_accuracy``, ``rtl_bit_exact_vectors``,
``test_vectors``, ``compression_ratio`` (the whole image against fp32
dense), ``huffman_compression_ratio``, ``weight_density``, per stage and
per layer details) and plots accuracy.png, compression.png, weights.png,
pe_work.png. Needs Debian's dataset-fashion-mnist (the make target installs
it when it can). Deterministic (fixed seeds).
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
from sw import datasets, train  # noqa: E402
from sw.files import atomic_file, save_figure  # noqa: E402

OUT = ROOT / "build" / "fashion-mnist"
DIMS = [784, 300, 100, 10]
DENSITY = [0.05, 0.08, 0.25]      # 5.4% of the weights in all (Deep Compression: 8%, 9%, 26%, 8.2%)


def log(msg):
    print(msg, flush=True)


def plots(report, layers_pruned, centroids, busy, out: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, name):
        save_figure(fig, out / name)

    stages = ["float", "pruned", "shared", "fixed point", "RTL"]
    keys = ["float_accuracy", "pruned_accuracy", "shared_accuracy", "compressed_accuracy", "rtl_accuracy"]
    values = [report[k] for k in keys]
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(stages, [v if v is not None else 0 for v in values], color="tab:blue")
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, (v or 0) + 0.002, "n/a" if v is None else f"{100 * v:.2f}%",
                ha="center", fontsize=9)
    lo = min(v for v in values if v is not None)
    ax.set_ylim(lo - 0.03, min(1.0, max(v for v in values if v is not None) + 0.02))
    ax.set_ylabel("test accuracy")
    ax.set_title("LeNet-300-100 on Fashion-MNIST, per stage")
    save(fig, "accuracy.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    names = ["pruning", "+ weight sharing", "+ Huffman (accounting)"]
    ratios = [report["pruning_compression_ratio"], report["compression_ratio"], report["huffman_compression_ratio"]]
    bars = ax.bar(names, ratios, color="tab:green")
    for b, v in zip(bars, ratios):
        ax.text(b.get_x() + b.get_width() / 2, v + 0.5, f"{v:.1f}x", ha="center")
    ax.set_ylabel("fp32 dense bits / stored bits")
    ax.set_title("Compression per stage (whole image: entries, pointers, codebooks, biases)")
    save(fig, "compression.png")

    fig, axes = plt.subplots(1, len(layers_pruned), figsize=(4 * len(layers_pruned), 3.2))
    for i, (ax, layer, c) in enumerate(zip(axes, layers_pruned, centroids)):
        w = layer.dense()
        ax.hist(w[w != 0], bins=80, color="tab:gray")
        for v in c:
            ax.axvline(v, color="tab:red", lw=0.7)
        ax.set_title(f"layer {i}: nonzero weights, {len(c)} centroids")
    save(fig, "weights.png")

    fig, axes = plt.subplots(1, len(busy), figsize=(4 * len(busy), 3.2))
    for i, (ax, b) in enumerate(zip(axes, busy)):
        ax.bar(np.arange(len(b)), b, color="tab:blue")
        ax.axhline(np.mean(b), color="tab:green", lw=1, label="mean")
        ax.set_title(f"layer {i}: busy cycles per PE (max/mean {max(b) / np.mean(b):.3f})")
        ax.set_xlabel("PE")
    save(fig, "pe_work.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15, help="float training epochs")
    parser.add_argument("--prune-steps", type=int, default=10)
    parser.add_argument("--prune-epochs", type=int, default=6, help="retraining epochs after each pruning step")
    parser.add_argument("--final-epochs", type=int, default=15, help="retraining epochs at the final density")
    parser.add_argument("--share-epochs", type=int, default=5, help="centroid fine-tuning epochs")
    parser.add_argument("--n-pe", type=int, default=4)
    parser.add_argument("--vectors", type=int, default=10_000, help="test images run on the RTL")
    parser.add_argument("--density", type=lambda t: [float(v) for v in t.split(",")], default=DENSITY,
                        help="per-layer weight density (default 0.05,0.08,0.25)")
    parser.add_argument("--no-distill", dest="distill", action="store_false",
                        help="retrain against the labels only (default: also the float model's soft outputs, T = 4)")
    parser.add_argument("--ternary", action="store_true",
                        help="ternary weights (2-bit codes, {0, -a, +a} then the two values fine-tuned)")
    parser.add_argument("--ternary-epochs", type=int, default=10, help="ternary training epochs (with --ternary)")
    parser.add_argument("--weight-depth", type=int, default=0,
                        help="sparse-matrix entries per PE (default: the largest PE's, rounded up to 256)")
    parser.add_argument("--no-rtl", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT, help="report directory (default build/fashion-mnist)")
    args = parser.parse_args()
    if len(args.density) != len(DIMS) - 1 or not all(0 < d <= 1 for d in args.density):
        parser.error(f"--density takes {len(DIMS) - 1} values in (0, 1]")
    t0 = time.perf_counter()
    try:
        d = datasets.fashion_mnist()
    except datasets.DatasetError as e:
        sys.exit(f"error: {e}")
    log(f"Fashion-MNIST: {len(d.x_train):,} training and {len(d.x_test):,} test images")
    rng = np.random.default_rng(0)
    layers = [sw.Layer(rng.standard_normal((o, i)) * np.sqrt(2 / i), np.zeros(o), relu=k < len(DIMS) - 2)
              for k, (i, o) in enumerate(zip(DIMS[:-1], DIMS[1:]))]
    step = lambda s: log(f"  {s}")
    log(f"training the float {'-'.join(map(str, DIMS))} MLP, {args.epochs} epochs ...")
    layers = train.train(layers, d.x_train, d.y_train, epochs=args.epochs, lr=1e-3, progress=step)
    float_acc = train.accuracy(layers, d.x_test, d.y_test)
    log(f"float test accuracy {100 * float_acc:.2f}%")
    pruned = layers
    teacher = dict(teacher=layers) if args.distill else {}
    for s in range(1, args.prune_steps + 1):
        # Zhu and Gupta's cubic schedule: large steps first, small ones near the target
        dens = [t + (1 - t) * (1 - s / args.prune_steps) ** 3 for t in args.density]
        masks = train.prune_masks(pruned, dens)
        pruned = train.train(pruned, d.x_train, d.y_train, epochs=args.prune_epochs, lr=5e-4, masks=masks,
                             seed=s, progress=step, **teacher)
        log(f"pruned to {'/'.join(f'{x:.3f}' for x in dens)}: test accuracy "
            f"{100 * train.accuracy(pruned, d.x_test, d.y_test):.2f}%")
    if args.final_epochs:       # longer retraining at the final density, at a lower rate
        pruned = train.train(pruned, d.x_train, d.y_train, epochs=args.final_epochs, lr=2e-4, masks=masks,
                             seed=77, progress=step, **teacher)
        log(f"retrained at the final density: test accuracy {100 * train.accuracy(pruned, d.x_test, d.y_test):.2f}%")
    code_bits = 4
    if args.ternary:            # kept weights -a or +a: trained through a straight-through estimator
        code_bits = 2
        pruned = train.train(pruned, d.x_train, d.y_train, epochs=args.ternary_epochs, lr=1e-3, masks=masks,
                             ternary=True, seed=50, progress=step, **teacher)
        log(f"ternary weights {{0, -a, +a}}: test accuracy {100 * train.accuracy(pruned, d.x_test, d.y_test):.2f}%")
    pruned_acc = train.accuracy(pruned, d.x_test, d.y_test)
    codes, centroids = train.share(pruned, code_bits=code_bits)
    shared = train.train(pruned, d.x_train, d.y_train, epochs=args.share_epochs, lr=2e-4, shared=(codes, centroids),
                         seed=99, progress=step, **teacher)
    shared_acc = train.accuracy(shared, d.x_test, d.y_test)
    log(f"{code_bits}-bit weight sharing, values fine-tuned: test accuracy {100 * shared_acc:.2f}%")
    # structured pruning of what carries nothing: exact, it only shrinks the image
    slim = train.prune_neurons(shared, inputs=True)
    log(f"neuron pruning: {slim.removed[0]} unread pixels and {sum(slim.removed[1:])} dead neurons removed "
        f"({'-'.join(str(l.n_in) for l in slim.layers)}-{slim.layers[-1].n_out})")

    config = sw.Config(n_pe=args.n_pe, code_bits=code_bits, weight_depth=args.weight_depth or 1 << 20,
                       pointer_depth=2048, row_depth=128, max_layers=4)
    model = sw.compress(slim.layers, density=1.0, calibration=slim.select_inputs(d.x_train[:1024]), config=config)
    pack = dict(balance=True, shorten_runs=True)
    if not args.weight_depth:   # the sparse-matrix memory sized to the model: narrower pointers
        need = max(sw.pack(model, config, **pack).stats().total["per_pe_entries"])
        config = config.replace(weight_depth=-(-need // 256) * 256)    # the formats do not depend on it
    image = sw.pack(model, config, **pack)
    x_test = sw.quantize_input(slim.select_inputs(d.x_test), model.input_frac_bits, config.act_bits)
    golden = sw.golden.run(image, x_test)
    fixed_acc = float(np.mean(golden.argmax(axis=1) == d.y_test))
    stats = image.stats().total
    nnz = stats["nnz"]
    dense_bits = 32 * sum(i * o for i, o in zip(DIMS[:-1], DIMS[1:]))     # the fp32 model before neuron pruning
    # pruning alone: the same layout with 32-bit weights in place of the codes
    pruning_bits = stats["total_bits"] - stats["entry_bits"] + stats["entries"] * (32 + config.run_bits) \
        - stats["codebook_bits"]
    log(f"fixed point ({config.act_bits}-bit activations, {config.code_bits}-bit codes), golden model: "
        f"{100 * fixed_acc:.2f}%; image {stats['total_bits'] / 8 / 1024:.1f} KiB, "
        f"{dense_bits / stats['total_bits']:.1f}x smaller than fp32 dense ({dense_bits / stats['huffman_bits']:.1f}x "
        f"with Huffman coding)")
    report = {
        "model": "LeNet-300-100", "dataset": "Fashion-MNIST", "dims": DIMS, "config": config.to_dict(),
        "target_density": args.density, "distillation": args.distill, "weight_density": nnz / (dense_bits // 32),
        "layer_density": [float(np.count_nonzero(c) / c.size) for c in codes],     # of the original shapes
        "float_accuracy": float_acc, "pruned_accuracy": pruned_acc, "shared_accuracy": shared_acc,
        "compressed_accuracy": fixed_acc, "rtl_accuracy": None, "rtl_bit_exact_vectors": None,
        "test_vectors": int(len(d.x_test)), "rtl_vectors": 0,
        "compression_ratio": dense_bits / stats["total_bits"],
        "huffman_compression_ratio": dense_bits / stats["huffman_bits"],
        "code_bits": code_bits, "ternary": args.ternary,
        "neurons_removed": slim.removed, "dims_after_neuron_pruning": [slim.layers[0].n_in] + [l.n_out for l in slim.layers],
        "pruning_compression_ratio": dense_bits / pruning_bits, "image_bits": stats["total_bits"],
        "dense_bits": dense_bits, "stats": image.stats().to_dict(),
        "training": {"epochs": args.epochs, "prune_steps": args.prune_steps, "prune_epochs": args.prune_epochs,
                     "final_epochs": args.final_epochs, "share_epochs": args.share_epochs,
                     "ternary_epochs": args.ternary_epochs if args.ternary else None},
    }
    if not args.no_rtl:
        import sim
        n = min(args.vectors, len(x_test))
        log(f"running {n:,} test images on the RTL ({config.n_pe} PEs) ...")
        result = sim.run(image, x_test[:n], progress=log)
        exact = np.all(result.outputs == golden[:n], axis=1)
        report.update(rtl_accuracy=float(np.mean(result.outputs.argmax(axis=1) == d.y_test[:n])),
                      rtl_bit_exact_vectors=int(exact.sum()), rtl_vectors=n,
                      rtl_cycles_per_vector=float(result.cycles.mean()),
                      rtl_layer_efficiency=[float(v) for v in np.nanmean(result.efficiency, axis=0)],
                      rtl_sim_seconds=result.sim_seconds)
        busy = [result.pe_busy[:, l, :].mean(axis=0) for l in range(result.pe_busy.shape[1])]
        log(f"RTL: {int(exact.sum()):,} of {n:,} vectors bit-exact against the golden model; accuracy "
            f"{100 * report['rtl_accuracy']:.2f}%; {result.cycles.mean():,.0f} cycles per image")
    else:                       # without the RTL: the entries each PE holds
        busy = [np.asarray(l["per_pe_entries"], dtype=float) for l in image.stats().to_dict()["layers"]]
    report["seconds"] = time.perf_counter() - t0
    with atomic_file(args.out / "report.json", "w") as f:
        json.dump(report, f, indent=1)
    plots(report, pruned, centroids, busy, args.out)
    log(f"wrote {args.out / 'report.json'} and the plots ({report['seconds']:.0f} s)")
    if report["rtl_bit_exact_vectors"] is not None and report["rtl_bit_exact_vectors"] != report["rtl_vectors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
