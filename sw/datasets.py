"""Datasets for the model-compression flow, read from local files only
(nothing is downloaded).

Fashion-MNIST (Xiao et al., 2017: 60,000 training and 10,000 test images of
28x28 clothing, 10 classes) comes from Debian's ``dataset-fashion-mnist``
package, which installs the four IDX files under
``/usr/share/datasets/fashion-mnist``; ``$OEIE_FASHION_MNIST`` or `root`
points elsewhere.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DatasetError", "read_idx", "fashion_mnist", "fashion_mnist_files", "FASHION_MNIST_CLASSES",
           "FASHION_MNIST_DIR"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
          "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
_INSTALL = "sudo apt-get install dataset-fashion-mnist"


class DatasetError(OSError):
    """A dataset is missing or its files are not what they should be; the
    message names the file and says how to get it."""


@dataclass(frozen=True)
class Dataset:
    """Images as float32 ``(N, pixels)`` in [0, 1], labels as int64 ``(N,)``."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, gzipped or not) as an array of its
    own shape and type; raises `DatasetError` naming the file if it is
    truncated, too long or not IDX."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing") from None
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: cannot be read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated in its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != size:
        raise DatasetError(f"{path}: {len(raw) - header} bytes of data, its header {shape} says {size}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DatasetError(f"Fashion-MNIST is not in {root} (no {stem}[.gz]): install Debian's package "
                       f"({_INSTALL}), or point $OEIE_FASHION_MNIST at a directory with the four IDX files")


def fashion_mnist_files(root=None) -> dict[str, Path]:
    """The four IDX files of Fashion-MNIST (keys ``x_train``, ``y_train``,
    ``x_test``, ``y_test``) in `root` (default ``$OEIE_FASHION_MNIST``, else
    Debian's ``/usr/share/datasets/fashion-mnist``), without reading them;
    `DatasetError` (with the install command) when one is missing."""
    root = Path(root or os.environ.get("OEIE_FASHION_MNIST") or FASHION_MNIST_DIR)
    return {key: _find(root, stem) for key, stem in _FILES.items()}


def fashion_mnist(root=None) -> Dataset:
    """Fashion-MNIST from `root` (see `fashion_mnist_files`): pixels scaled
    to [0, 1] and flattened to 784 values."""
    files = fashion_mnist_files(root)
    root = files["x_train"].parent
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DatasetError(f"{root}: the {split} images {x.shape} and labels {y.shape} do not match")
        if y.size and (y.min() < 0 or y.max() >= len(FASHION_MNIST_CLASSES)):
            raise DatasetError(f"{root}: {split} labels outside 0..{len(FASHION_MNIST_CLASSES) - 1}")
    flat = {k: (v.reshape(v.shape[0], -1).astype(np.float32) / 255.0 if k.startswith("x") else v.astype(np.int64))
            for k, v in arrays.items()}
    return Dataset(flat["x_train"], flat["y_train"], flat["x_test"], flat["y_test"], FASHION_MNIST_CLASSES)
