"""An early-exit MLP on Fashion-MNIST: accuracy against cycles as the exit
threshold moves, on the golden model, the cycle model and the RTL.

    make early-exit       (or: python models/early_exit.py [--rtl-vectors 1000] [--no-rtl] [--epochs 6])

A trunk 784 -> 256 -> 256 -> 256 -> 10 (ReLU) with exit heads (one linear
layer to the 10 logits) after trunk layers 0 and 1. Trained jointly (the
cross-entropies of both exits and the trunk, summed; `sw.exits`), pruned
(trunk 10% / 15% / 15% / 30%, heads 30%) and retrained under the masks,
weight-shared (4-bit codes) and fine-tuned, then in fixed point for 16 PEs
(two activations a cycle, four inputs a beat). For each threshold (the
margin between a head's two largest logits at which it ends the run; the
same for both heads) the 10,000 test images run on the golden model
(accuracy, the share leaving by each exit) and the cycle model (mean cycles
per input); at one threshold, `--rtl-vectors` of them run on the RTL,
outputs, exits and cycles against the golden and cycle models.

Writes build/early-exit/report.json (``thresholds``, ``accuracy``,
``mean_cycles``, ``exit_share``, ``rtl_vectors``, ``rtl_bit_exact_vectors``,
``rtl_threshold``, per exit accuracies of the float model, per layer
details) and accuracy_cycles.png, exits.png. Deterministic (fixed seeds).
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
import sw.perf  # noqa: E402
from sw import datasets  # noqa: E402
from sw.exits import EarlyExit, compress_exits, exit_accuracy, masks_for, share_exits, train_joint  # noqa: E402
from sw.files import atomic_file, save_figure  # noqa: E402

OUT = ROOT / "build" / "early-exit"
TRUNK = [784, 256, 256, 256, 10]
HEADS_AFTER = (0, 1)
TRUNK_DENSITY = [0.10, 0.15, 0.15, 0.30]
HEAD_DENSITY = 0.30
THRESHOLDS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, None]     # None: never exit early
RTL_THRESHOLD = 2.0
CONFIG = sw.Config(n_pe=16, input_width=4, broadcast_width=2, fifo_depth=16)


def log(msg):
    print(msg, flush=True)


def build(seed=0) -> EarlyExit:
    rng = np.random.default_rng(seed)

    def layer(n_in, n_out, relu=True):
        return sw.Layer(rng.standard_normal((n_out, n_in)) * np.sqrt(2 / n_in), np.zeros(n_out), relu=relu)

    trunk = [layer(i, o, relu=k < len(TRUNK) - 2) for k, (i, o) in enumerate(zip(TRUNK[:-1], TRUNK[1:]))]
    return EarlyExit(trunk, {t: [layer(TRUNK[t + 1], TRUNK[-1], relu=False)] for t in HEADS_AFTER})


def plots(report, out: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = ["never" if t is None else f"{t:g}" for t in report["thresholds"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(report["mean_cycles"], [100 * a for a in report["accuracy"]], "o-", color="#4878a8")
    for c, a, lab in zip(report["mean_cycles"], report["accuracy"], labels):
        ax.annotate(lab, (c, 100 * a), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel("mean cycles per input (cycle model, 10,000 test images)")
    ax.set_ylabel("test accuracy (%), golden model")
    ax.set_title("Early exits: accuracy against cycles as the threshold moves")
    save_figure(fig, out / "accuracy_cycles.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    shares = np.array(report["exit_share"])
    bottom = np.zeros(len(labels))
    names = ["trunk (no exit)"] + [f"exit {k}" for k in range(1, shares.shape[1])]
    for k in [1, 2, 0][:shares.shape[1]]:
        ax.bar(labels, 100 * shares[:, k], bottom=bottom, label=names[k])
        bottom += 100 * shares[:, k]
    ax.set_xlabel("threshold (margin between the two largest logits)")
    ax.set_ylabel("share of inputs (%)")
    ax.legend(fontsize=8)
    save_figure(fig, out / "exits.png")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=6, help="joint float training epochs (default 6)")
    ap.add_argument("--rtl-vectors", type=int, default=1000, help="test images on the RTL (default 1,000)")
    ap.add_argument("--no-rtl", action="store_true", help="skip the RTL run")
    ap.add_argument("--cycle-vectors", type=int, default=10000, help="test images through the cycle model")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    d = datasets.fashion_mnist()
    model = build()
    log(f"training the trunk and both exits jointly ({args.epochs} epochs) ...")
    model = train_joint(model, d.x_train, d.y_train, epochs=args.epochs, lr=1e-3, progress=log)
    float_acc = exit_accuracy(model, d.x_test, d.y_test)
    masks = masks_for(model, TRUNK_DENSITY, HEAD_DENSITY)
    model = train_joint(model, d.x_train, d.y_train, epochs=2, lr=5e-4, masks=masks, seed=1, progress=log)
    pruned_acc = exit_accuracy(model, d.x_test, d.y_test)
    model = train_joint(model, d.x_train, d.y_train, epochs=1, lr=2e-4, shared=share_exits(model), seed=2,
                        progress=log)
    shared_acc = exit_accuracy(model, d.x_test, d.y_test)
    log(f"accuracy of exit 1, exit 2, trunk: float {float_acc}, pruned {pruned_acc}, shared {shared_acc}")

    n_cyc = min(args.cycle_vectors, len(d.x_test))
    rows = []
    for th in THRESHOLDS:
        cm = compress_exits(model, calibration=d.x_train[:1024], thresholds=[th, th], config=CONFIG)
        image = sw.pack(cm, CONFIG)
        x = sw.quantize_input(d.x_test, cm.input_frac_bits, CONFIG.act_bits)
        y, taken = sw.golden.run(image, x, exits=True)
        perf = sw.perf.simulate(image, x[:n_cyc])
        rows.append({"threshold": th, "accuracy": float(np.mean(y.argmax(axis=1) == d.y_test)),
                     "mean_cycles": float(perf.cycles.mean()),
                     "exit_share": (np.bincount(taken, minlength=3) / taken.size).tolist(),
                     "thresholds_int": [cm.layers[l].exit_threshold for l in cm.exits]})
        log(f"threshold {th}: accuracy {100 * rows[-1]['accuracy']:.2f}%, {rows[-1]['mean_cycles']:.0f} cycles "
            f"per input, exits (none, 1, 2) {np.round(rows[-1]['exit_share'], 3).tolist()}")
        if th == RTL_THRESHOLD:
            rtl_image, rtl_x, rtl_cm = image, x, cm
    report = {"trunk": TRUNK, "heads_after": list(HEADS_AFTER), "config": CONFIG.to_dict(),
              "float_exit_accuracy": float_acc, "pruned_exit_accuracy": pruned_acc,
              "shared_exit_accuracy": shared_acc, "thresholds": THRESHOLDS,
              "accuracy": [r["accuracy"] for r in rows], "mean_cycles": [r["mean_cycles"] for r in rows],
              "exit_share": [r["exit_share"] for r in rows], "thresholds_int": [r["thresholds_int"] for r in rows],
              "cycle_model_vectors": n_cyc, "test_vectors": len(d.x_test), "rtl_threshold": RTL_THRESHOLD,
              "layers": rtl_cm.report}
    n = 0 if args.no_rtl else min(args.rtl_vectors, len(d.x_test))
    report.update(rtl_vectors=n, rtl_bit_exact_vectors=0)
    if n:
        import sim
        log(f"threshold {RTL_THRESHOLD}: {n} test images on the RTL ({CONFIG.n_pe} PEs) ...")
        x = rtl_x[:n]
        y, taken = sw.golden.run(rtl_image, x, exits=True)
        r = sim.run(rtl_image, x)
        perf = sw.perf.simulate(rtl_image, x)
        exact = np.all(r.outputs == y, axis=1) & (r.exits == taken)
        report.update(rtl_bit_exact_vectors=int(exact.sum()), rtl_exits_equal=bool(np.array_equal(r.exits, taken)),
                      rtl_cycles_equal_model=bool(np.array_equal(r.cycles, perf.cycles)),
                      rtl_mean_cycles=float(r.cycles.mean()),
                      rtl_exit_share=(np.bincount(r.exits, minlength=3) / n).tolist(),
                      rtl_accuracy=float(np.mean(r.outputs.argmax(axis=1) == d.y_test[:n])))
        log(f"RTL: {report['rtl_bit_exact_vectors']}/{n} bit-exact (outputs and exit), cycles "
            f"{'equal to' if report['rtl_cycles_equal_model'] else 'DIFFERENT from'} the cycle model, "
            f"{report['rtl_mean_cycles']:.0f} per input")
    report["seconds"] = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_file(OUT / "report.json", "w") as f:
        json.dump(report, f, indent=1)
    plots(report, OUT)
    log(f"wrote {OUT / 'report.json'}")
    return 0 if report["rtl_bit_exact_vectors"] == n and report.get("rtl_cycles_equal_model", True) else 1


if __name__ == "__main__":
    sys.exit(main())
