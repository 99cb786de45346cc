"""The scripts in examples/ run, in their quick variants, so that they never
rot: each trains, compresses, packs and runs the RTL, and exits non-zero
when the RTL and the golden model disagree."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from sw import datasets

ROOT = Path(__file__).resolve().parents[1]


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def _fashion_mnist_missing() -> bool:
    try:
        datasets.fashion_mnist_files()
    except datasets.DatasetError:
        return True
    return False


def run_example(name: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "bit-exact yes" in proc.stdout, proc.stdout
    return proc.stdout


@pytest.mark.skipif(_missing("sklearn"), reason="scikit-learn is not installed (pip install -e '.[train]')")
def test_ternary_weights_example():
    out = run_example("ternary_weights.py")
    assert "ternary {0, -a, +a}" in out


@pytest.mark.skipif(_missing("torch") or _missing("sklearn"),
                    reason="PyTorch or scikit-learn is not installed (pip install -e '.[torch,train]')")
def test_pytorch_to_rtl_example():
    out = run_example("pytorch_to_rtl.py")
    assert "PyTorch" in out and "compressed (golden model)" in out


@pytest.mark.skipif(_fashion_mnist_missing(),
                    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_example():
    out = run_example("fashion_mnist.py")
    assert "removed" in out and "smaller than fp32 dense" in out


@pytest.mark.skipif(_missing("sklearn"), reason="scikit-learn is not installed (pip install -e '.[train]')")
def test_cnn_digits_example():
    out = run_example("cnn_digits.py")
    assert "16/16 images bit-exact" in out and "the cycle model agrees" in out
