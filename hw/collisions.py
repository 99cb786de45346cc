"""A word read in the cycle it is written: no block uses what such a read
returns (docs/design.md §7).

A block RAM of the iCE40 returns undefined data for a read of the word
that the other port writes in the same cycle. Amaranth's read ports promise
the old word (the new one where `transparent_for`), and Yosys keeps that
promise with logic around each block RAM: the write delayed a cycle in
registers (data, address, enable) and a bypass multiplexer on the read,
about 40 flip-flops and 20 LUTs a memory (1,667 of the 7,195 logic cells of
four UP5K PEs). No block needs the promise:

* the accumulators: S3 reads the row that S4 writes only when the next
  entry updates the same row, and S4 then takes its own last sum instead
  (`forward`); write-back reads row ``i`` while clearing row ``i - 1``;
* the pointer banks and the sparse-matrix memory: one address for reads
  and the host's writes, and no read while the host writes;
* the codebook copies, the codebook store, the layer table, the activation
  buffers and the logs: written between the phases that read them (the
  host writes only while the accelerator is idle);
* the FIFOs (`amaranth.lib.fifo`): a read takes a word that is already
  there, never the slot being written.

So the iCE40 flow declares every clocked read's collisions undefined
(`synth.targets`), and `read_data` is how blocks take a read's data: as it
is, or in a build made inside `poisoning()`, inverted after every read
that collided with a write. The RTL suite run on such a build
(`tests/test_collisions.py`) fails if any output depends on one.
"""

from __future__ import annotations

from contextlib import contextmanager

from amaranth import *

__all__ = ["read_data", "poisoning", "poisoned"]

_poison = False


@contextmanager
def poisoning():
    """Designs elaborated inside this block invert every collided read."""
    global _poison
    before, _poison = _poison, True
    try:
        yield
    finally:
        _poison = before


def poisoned() -> bool:
    """Whether designs elaborated now invert collided reads."""
    return _poison


def read_data(m: Module, read, *writes):
    """The data of synchronous read port `read`, whose memory the ports
    `writes` write: as it is, or in a `poisoning()` build inverted while it
    holds a word read in the cycle one of `writes` wrote it."""
    if not _poison:
        return read.data
    data = Value.cast(read.data)
    collide = Cat(*((Value.cast(w.en).any() & (w.addr == read.addr)) for w in writes)).any()
    hit = Signal(name="collided")
    with m.If(read.en):             # a disabled read holds its word, and so its poison
        m.d.sync += hit.eq(collide)
    out = data.as_unsigned() ^ hit.replicate(len(data))
    return out.as_signed() if data.shape().signed else out
