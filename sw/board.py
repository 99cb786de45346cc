"""Drive an OpenEIE board over its UART (`sw.link` framing).

    dev = sw.board.Device("/dev/ttyUSB0")     # pyserial; or any object with write(bytes) and read(n)
    dev.load(image)                           # checks the board's configuration first
    y = dev.run(x)                            # x: (n_in,) or (batch, n_in) integers
    dev.counters()                            # cycles of the last run, per layer

The simulation drives the same class: its transport moves the bytes over
the board design's UART pins in Verilator (`sim.board_bench`).
"""

from __future__ import annotations

import struct
import time

import numpy as np

from . import format as fmt
from . import link
from .config import Config, ConfigError
from .image import Image
from .link import LinkError

__all__ = ["Device", "LinkError", "BoardError"]

CHUNK_WORDS = 256           # words a request: short enough that a retry is cheap


class BoardError(RuntimeError):
    """The board is not what the host expects (another design, another configuration)."""


class _Serial:
    """A pyserial port as a transport."""

    def __init__(self, port: str, baud: int, timeout: float):
        try:
            import serial
        except ImportError as e:
            raise BoardError("talking to a board needs pyserial: pip install -e '.[board]'") from e
        # a device path, or any pyserial URL (socket://host:port, rfc2217://...)
        self.port = serial.serial_for_url(port, baudrate=baud, timeout=timeout)

    def write(self, data: bytes):
        self.port.write(data)

    def read(self, n: int) -> bytes:
        return self.port.read(n)

    def discard(self):
        self.port.reset_input_buffer()

    def close(self):
        self.port.close()


class Device:
    """An OpenEIE board. `port`: a serial port name, or a transport with
    ``write(bytes)`` and ``read(n) -> bytes`` (fewer bytes on a timeout).
    `retries`: how often a request that went wrong on the line is sent again
    after the board's request timeout (`quiet`, seconds) has passed."""

    def __init__(self, port, *, baud: int = 1_000_000, timeout: float = 2.0, retries: int = 2,
                 quiet: float = 0.3):
        self.transport = _Serial(port, baud, timeout) if isinstance(port, str) else port
        self.retries, self.quiet = retries, quiet
        self._pause = getattr(self.transport, "pause", time.sleep)     # a simulation waits simulated time
        self.bytes_sent = self.bytes_received = 0
        self.image: Image | None = None
        try:
            self._identify()
        except BaseException:
            self.close()
            raise

    def _identify(self):
        """Check that the board is OpenEIE of this version and read its configuration."""
        from hw.hostmap import CONFIG_FIELDS, HW_VERSION, ID_VALUE, HostMap
        self._HostMap = HostMap
        probe = HostMap(Config())          # the registers' addresses do not depend on the configuration
        self._ctrl = probe.reg(HostMap.CTRL)
        ident = self._transfer("read", probe.reg(HostMap.ID), 2)
        magic, version = struct.unpack("<II", ident)
        if magic != ID_VALUE:
            raise BoardError(f"the board answers ID {magic:#010x}, not OpenEIE's {ID_VALUE:#010x}")
        if version != (HW_VERSION << 16) | fmt.FORMAT_VERSION:
            raise BoardError(f"the board has hardware version {version >> 16} and image format {version & 0xFFFF}; "
                             f"this software drives {HW_VERSION} and {fmt.FORMAT_VERSION}")
        values = struct.unpack(f"<{len(CONFIG_FIELDS)}I",
                               self._transfer("read", probe.reg(HostMap.CONFIG), len(CONFIG_FIELDS)))
        try:
            self.config = Config(**dict(zip(CONFIG_FIELDS, values)))
        except (ConfigError, TypeError) as e:
            raise BoardError(f"the board reports a configuration this software rejects: {e}") from e
        self.map = HostMap(self.config)
        self._ctrl = self.map.reg(HostMap.CTRL)

    # ---- the link ------------------------------------------------------------

    def _transfer(self, op: str, addr: int = 0, count: int = 1, payload: bytes = b"") -> bytes:
        """One request and its reply. A request that went wrong on the line
        is sent again (after the board's quiet time) when that is safe: when
        the board refused its header, or for reads and memory writes (which
        can be repeated); never for the streams or a ``CTRL`` write."""
        frame = link.request(op, addr, count, payload)
        repeatable = op == "read" or (op == "write" and addr != self._ctrl)
        for attempt in range(self.retries + 1):
            self.transport.write(frame)
            self.bytes_sent += len(frame)
            try:
                data = link.read_reply(self._read, op, count)
                return data
            except LinkError as e:
                if attempt == self.retries or not (repeatable or e.acted is False):
                    raise
            self._pause(self.quiet)
            if hasattr(self.transport, "discard"):
                self.transport.discard()

    def _read(self, n: int) -> bytes:
        data = self.transport.read(n)
        self.bytes_received += len(data)
        return data

    def read(self, addr: int, count: int = 1) -> list[int]:
        """`count` words from host-port address `addr` on."""
        out = []
        for at in range(0, count, CHUNK_WORDS):
            n = min(CHUNK_WORDS, count - at)
            out += struct.unpack(f"<{n}I", self._transfer("read", addr + at, n))
        return out

    def write(self, addr: int, words) -> None:
        words = [int(w) & 0xFFFFFFFF for w in words]
        for at in range(0, len(words), CHUNK_WORDS):
            chunk = words[at:at + CHUNK_WORDS]
            self._transfer("write", addr + at, len(chunk), struct.pack(f"<{len(chunk)}I", *chunk))

    # ---- the accelerator -------------------------------------------------------

    def status(self) -> int:
        return self.read(self.map.reg(self._HostMap.STATUS))[0]

    def load(self, image: Image) -> None:
        """Write every memory of `image` (it must be packed for the board's
        configuration), whole: the words past the image's end are zeroed, so
        that `verify` can hold the board to the image word for word. Refused
        while the accelerator is busy (it would drop the writes)."""
        self._check_config(image)
        status = self.status()
        if status & self._HostMap.STATUS_BUSY:
            raise BoardError(f"the accelerator is busy (STATUS {status:#x}); memories are written only while "
                             f"it is not: wait for the run to end (or write CTRL bit 1, a soft reset)")
        for name, mem in image.memories().items():
            self.write(self.map.memory(name), mem.padded().tolist())
        self.image = image

    def verify(self, image: Image | None = None) -> None:
        """Read every memory back and compare it with `image` (default: the
        one loaded); raises `BoardError` naming the memories that differ."""
        image = image or self.image
        if image is None:
            raise BoardError("verify needs an image (or load one first)")
        self._check_config(image)
        if self.status() & self._HostMap.STATUS_BUSY:
            raise BoardError("the accelerator is busy; memories are read back only while it is not")
        wrong = []
        for name, mem in image.memories().items():
            got = np.array(self.read(self.map.memory(name), mem.depth), dtype=np.uint64)
            diff = np.flatnonzero(got != mem.padded())
            if diff.size:
                a = int(diff[0])
                wrong.append(f"{name} ({diff.size} words, first at {a}: board {int(got[a]):#x}, "
                             f"image {int(mem.padded()[a]):#x})")
        if wrong:
            raise BoardError(f"{len(wrong)} memories differ from the image: " + "; ".join(wrong[:4]))

    def _check_config(self, image: Image):
        if image.config != self.config:
            diff = [f"{k}: board {v}, image {image.config.to_dict()[k]}" for k, v in self.config.to_dict().items()
                    if image.config.to_dict()[k] != v]
            raise BoardError("the image was packed for another configuration than the board's: " + "; ".join(diff))

    def run(self, x, *, max_wait: float = 10.0, exits: bool = False):
        """Run the loaded image on `x` (one vector or a batch); returns the
        run's outputs as integers, in the model's order: the last layer's, or
        an exit head's (docs/design.md §15). With `exits`, also which exit
        each vector left by (the ``EXIT`` register; 0: none)."""
        if self.image is None:
            raise BoardError("load an image first (Device.load)")
        layers = self.image.layers
        n_in, n_out = layers[0].n_in, layers[-1].n_out
        x = np.asarray(x)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != n_in:
            raise ValueError(f"the image's first layer takes {n_in} inputs, got vectors of {x.shape[1]}")
        lo, hi = -(1 << (self.config.act_bits - 1)), (1 << (self.config.act_bits - 1)) - 1
        if x.min(initial=0) < lo or x.max(initial=0) > hi:
            raise ValueError(f"inputs must be {self.config.act_bits}-bit signed integers ({lo} .. {hi})")
        out = np.zeros((x.shape[0], n_out), dtype=np.int64)
        taken = np.zeros(x.shape[0], dtype=np.int64)
        HM = self._HostMap
        for b, vec in enumerate(x):
            self._wait(HM.STATUS_READY, max_wait)
            self.write(self.map.reg(HM.CTRL), [HM.CTRL_START])
            payload = struct.pack(f"<{n_in}H", *[int(v) & 0xFFFF for v in vec])
            self._transfer("input", 0, n_in, payload)
            data = self._transfer("output", 0, n_out)
            out[b] = struct.unpack(f"<{n_out}h", data)
            status = self._wait(HM.STATUS_READY, max_wait)
            if status & HM.STATUS_ERROR or not status & HM.STATUS_DONE:
                raise BoardError(f"vector {b}: the accelerator reports STATUS {status:#x} (error: a layer "
                                 f"descriptor is invalid; reload the image)")
            if self.image.exits:
                taken[b] = self.read(self.map.reg(HM.EXIT))[0]
        ordered = self.image.run_order(out, taken)   # a balanced image's outputs leave in hardware order
        if single:
            ordered, taken = ordered[0], taken[0]
        return (ordered, taken) if exits else ordered

    def _wait(self, bit: int, max_wait: float) -> int:
        t0 = time.monotonic()
        while True:
            status = self.status()
            if status & bit:
                return status
            if time.monotonic() - t0 > max_wait:
                raise BoardError(f"the accelerator stayed busy for {max_wait} s (STATUS {status:#x})")

    def counters(self) -> dict:
        """The last run's cycle counters: total and per layer (cycles, broadcast stalls)."""
        HM, mp = self._HostMap, self.map
        n = len(self.image.layers) if self.image else self.config.max_layers
        return {"cycles": self.read(mp.reg(HM.CYCLES))[0],
                "layers_done": self.read(mp.reg(HM.LAYERS_DONE))[0], "exit": self.read(mp.reg(HM.EXIT))[0],
                "layer_cycles": [self.read(mp.layer_cycles(l))[0] for l in range(n)],
                "layer_stalls": [self.read(mp.layer_stalls(l))[0] for l in range(n)]}

    def close(self):
        if hasattr(self.transport, "close"):
            self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
