"""User data to numpy arrays, with errors that say what is wrong and where.

numpy's own messages for bad input ("could not convert string to float",
"setting an array element with a sequence", an imaginary part silently
dropped) name neither the argument nor the fix; these helpers do, and refuse
what numpy would quietly change.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_array", "real_array", "integer_array", "check_ndim", "position"]


def as_array(value, what: str, error) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as e:                      # ragged nested sequences
        raise error(f"{what} is not a rectangular array ({e})") from None
    if arr.dtype == object:
        raise error(f"{what} is not a rectangular array of numbers (ragged, or mixed types)")
    return arr


def real_array(value, what: str, error=ValueError) -> np.ndarray:
    """`value` as float64, refusing non-numbers, complex numbers, NaN and infinity."""
    arr = as_array(value, what, error)
    if np.iscomplexobj(arr):
        raise error(f"{what} holds complex numbers ({arr.dtype}); weights and activations are real")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise error(f"{what} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise error(f"{what} has a NaN or infinite value at {position(np.argwhere(~np.isfinite(arr))[0])}")
    return arr


def position(index) -> str:
    """An array position in words: "row 3, column 5", "index 7"."""
    index = [int(i) for i in index]
    if len(index) == 2:
        return f"row {index[0]}, column {index[1]}"
    if len(index) == 1:
        return f"index {index[0]}"
    return f"position {tuple(index)}" if index else "its only element"


def integer_array(value, what: str, error=ValueError) -> np.ndarray:
    """`value` as int64, refusing floats (even integral ones: a float where an
    integer format is expected is usually a missed quantisation step)."""
    arr = as_array(value, what, error)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise error(f"{what} must hold integers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) >= 2**63:
        raise error(f"{what} holds values beyond the int64 range")
    return arr.astype(np.int64)


def check_ndim(arr: np.ndarray, ndim: int, what: str, error=ValueError, *, nonempty: bool = False):
    if arr.ndim != ndim:
        names = {1: "a 1-D vector", 2: "a 2-D matrix"}
        raise error(f"{what} must be {names.get(ndim, f'{ndim}-D')}, got shape {arr.shape}")
    if nonempty and 0 in arr.shape:
        raise error(f"{what} has shape {arr.shape}: it needs at least one element along each axis")
