"""From a PyTorch model to the RTL, bit for bit.

Train a small ``nn.Sequential`` on scikit-learn's bundled 8x8 digits, prune
it with ``torch.nn.utils.prune``, import it with `sw.from_torch`, compress it
(4-bit shared weights, fixed point), pack it for 4 PEs, run the test images
on the RTL (cocotb + Verilator) against the golden model, and ask
`sw.compare` where the compressed model departs from the PyTorch one.

    pip install -e '.[torch,train]'          # or: pip install torch==2.13.0 scikit-learn
    python examples/pytorch_to_rtl.py         # about a minute, plus a Verilator build
    python examples/pytorch_to_rtl.py --quick # fewer epochs and vectors (the test suite runs this)
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import sw  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, 40 test vectors on the RTL")
    args = parser.parse_args(argv)
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from torch import nn
    from torch.nn.utils import prune

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=360,
                                                        random_state=0, stratify=digits.target)
    torch.manual_seed(0)
    xt, yt = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train)

    def fit(model, epochs):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(epochs):
            for idx in torch.randperm(len(xt)).split(64):
                opt.zero_grad()
                nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
                opt.step()

    # 1. an ordinary PyTorch model and training loop
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(64, 10))
    epochs = 10 if args.quick else 60
    fit(model, epochs)

    # 2. PyTorch's own magnitude pruning, retrained with the masks attached
    for layer, amount in ((model[1], 0.7), (model[4], 0.5)):
        prune.l1_unstructured(layer, "weight", amount=amount)
    fit(model, epochs // 2)
    model.eval()
    with torch.no_grad():
        torch_acc = float((model(torch.tensor(x_test, dtype=torch.float32)).argmax(1).numpy() == y_test).mean())

    # 3. into OpenEIE: the import checks itself against the module on example inputs
    layers = sw.from_torch(model, example_input=torch.tensor(x_test[:8], dtype=torch.float32))
    config = sw.Config(n_pe=4)
    compressed = sw.compress(layers, density=1.0, calibration=x_train[:256], config=config)
    image = sw.pack(compressed, config)
    x = sw.quantize_input(x_test, compressed.input_frac_bits, config.act_bits)
    golden = sw.golden.run(image, x)
    print(f"PyTorch {100 * torch_acc:.2f}%, compressed (golden model) "
          f"{100 * np.mean(golden.argmax(axis=1) == y_test):.2f}% on {len(y_test)} test images")

    # 4. where the accuracy goes, layer by layer
    print(sw.compare(layers, image, x_test).table())

    # 5. the RTL: every output against the golden model
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
