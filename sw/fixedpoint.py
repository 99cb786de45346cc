"""Fixed-point arithmetic of docs/design.md §5, on numpy int64 arrays.

This is the one place the numeric rules live on the software side; the RTL's
write-back (`hw/writeback.py`) implements the same steps in the same order.

* Accumulation wraps modulo ``2**acc_bits`` (two's complement), so the order
  of additions cannot matter.
* Write-back: ``y = (acc + (1 << (shift - 1))) >> shift`` computed on the
  exact integer value of the (already wrapped) accumulator, i.e. the rounding
  addition itself does not wrap; arithmetic shift (floor), round half up, no
  rounding term when ``shift == 0``; then ReLU if enabled; then saturation to
  the signed ``act_bits`` range.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "signed_range", "wrap", "saturate", "round_shift", "writeback",
    "to_fixed", "from_fixed", "fits",
]


def signed_range(bits: int) -> tuple[int, int]:
    """Smallest and largest value of a signed `bits`-bit integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def fits(values, bits: int) -> bool:
    """True if every value is representable as a signed `bits`-bit integer."""
    lo, hi = signed_range(bits)
    values = np.asarray(values)
    return values.size == 0 or (int(values.min()) >= lo and int(values.max()) <= hi)


def wrap(x, bits: int) -> np.ndarray:
    """Reduce int64 values modulo ``2**bits`` into the signed range."""
    x = np.asarray(x, dtype=np.int64)
    if bits >= 64:
        return x
    half = np.int64(1) << np.int64(bits - 1)
    mask = (np.int64(1) << np.int64(bits)) - 1
    return ((x + half) & mask) - half


def saturate(x, bits: int) -> np.ndarray:
    """Clamp int64 values to the signed `bits`-bit range."""
    lo, hi = signed_range(bits)
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def round_shift(x, shift: int) -> np.ndarray:
    """``(x + 2**(shift-1)) >> shift``: arithmetic shift rounding half up."""
    x = np.asarray(x, dtype=np.int64)
    if shift == 0:
        return x
    return (x + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)


def writeback(acc, shift: int, relu: bool, act_bits: int) -> np.ndarray:
    """Round and shift a wrapped accumulator, apply ReLU, saturate."""
    y = round_shift(acc, shift)
    if relu:
        y = np.maximum(y, 0)
    return saturate(y, act_bits)


def to_fixed(x, frac_bits: int, bits: int) -> np.ndarray:
    """Quantise floats to signed `bits`-bit integers with `frac_bits` fraction
    bits (round half up, as the write-back does, then saturate)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot quantise NaN or infinite values")
    scaled = np.floor(x * float(2.0 ** frac_bits) + 0.5)
    lo, hi = signed_range(bits)
    return np.clip(scaled, lo, hi).astype(np.int64)


def from_fixed(y, frac_bits: int) -> np.ndarray:
    """Integers with `frac_bits` fraction bits back to float64."""
    return np.asarray(y, dtype=np.float64) / float(2.0 ** frac_bits)
