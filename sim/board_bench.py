"""The board bench: the host driver (`sw.board.Device`) talks to the board
top (`hw.board.BoardTop`) over its UART pins, in Verilator.

The driver runs unchanged in a thread (cocotb's `bridge`); its transport
turns `write`/`read` into bytes on ``uart_rx``/``uart_tx`` (cocotbext-uart
at the design's bit rate) and its pauses into simulated time. The memories
start empty: the image goes in over the UART. Steps of a job:

``board``  load the image (unless ``preloaded``: then the memories start
           with it, as a bitstream's do) and verify it (unless not
           ``verify``), run every vector of
           an ``.npy`` file, read the counters; optionally corrupt one byte of
           one request first, to see the link recover.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, Timer
from cocotb.utils import get_sim_time
from cocotbext.uart import UartSink, UartSource

from hw.pipeline import drain_cycles
from sw.board import Device
from sw.link import STATUS_BITS, LinkError
from sw.config import Config
from sw.image import Image

CLOCK_NS = 10


class PinTransport:
    """`sw.board.Device`'s transport over the simulated UART pins. Called
    from the driver's thread; every call runs on the simulator's side."""

    def __init__(self, source: UartSource, sink: UartSink, read_timeout_ns: int, corrupt: int | None = None,
                 drop: int | None = None):
        self.source, self.sink, self.read_timeout_ns = source, sink, read_timeout_ns
        self.corrupt = corrupt          # flip a bit of the byte with this index in the stream (once)
        self.drop = drop                # leave out the byte with this index (once)
        self.sent = 0

    def write(self, data: bytes):
        data = bytearray(data)
        if self.corrupt is not None and self.sent <= self.corrupt < self.sent + len(data):
            data[self.corrupt - self.sent] ^= 0x10
            self.corrupt = None
        n = len(data)
        if self.drop is not None and self.sent <= self.drop < self.sent + n:
            del data[self.drop - self.sent]
            self.drop = None
        self.sent += n
        resume(self.source.write)(bytes(data))

    def read(self, n: int) -> bytes:
        return resume(self._read)(n)

    async def _read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if self.sink.empty():
                await self.sink.wait(self.read_timeout_ns, "ns")
                if self.sink.empty():
                    break
            out += self.sink.read_nowait(min(n - len(out), self.sink.count()))
        return bytes(out)

    def pause(self, seconds: float):
        resume(self._pause)(seconds)

    async def _pause(self, seconds: float):
        await Timer(max(int(seconds * 1e9), 1), "ns")

    def now_cycles(self) -> int:
        return resume(self._now)()

    async def _now(self) -> int:
        return int(get_sim_time("ns")) // CLOCK_NS

    def discard(self):
        self.sink.clear()


async def board_step(dut, spec: dict, step: dict, results: dict, index: int):
    board = spec["board"]
    baud = 1e9 / (board["divisor"] * CLOCK_NS)
    source = UartSource(dut.uart_rx, baud=baud, bits=8, stop_bits=1)
    sink = UartSink(dut.uart_tx, baud=baud, bits=8, stop_bits=1)
    timeout_ns = board["timeout"] * CLOCK_NS
    transport = PinTransport(source, sink, read_timeout_ns=3 * timeout_ns, corrupt=step.get("corrupt_byte"),
                             drop=step.get("drop_byte"))
    image = Image.load(Path(spec["image"]))
    x = np.load(step["inputs"]).astype(np.int64)
    marks = {}

    @bridge
    def host():
        dev = Device(transport, retries=2, quiet=2 * timeout_ns * 1e-9)
        if step.get("probe_timeout"):
            # outputs asked for with no run going: the bridge gives up after its timeout
            try:
                dev._transfer("output", 0, 2)
                marks["timed_out"] = 0
            except LinkError as e:
                marks["timed_out"] = int(e.status is not None and bool(e.status & STATUS_BITS["stream_timeout"]))
        marks["t_load"] = transport.now_cycles()
        if step.get("preloaded"):
            dev.image = image
        else:
            dev.load(image)
        marks["t_verify"] = transport.now_cycles()
        if step.get("verify", True):
            dev.verify(image)
        marks["t_run"] = transport.now_cycles()
        outs, exits, cycles, running = [], [], [], 0
        for vec in x:
            t0 = transport.now_cycles()
            y, taken = dev.run(vec, exits=True)
            outs.append(y)
            exits.append(taken)
            running += transport.now_cycles() - t0      # the vector's own exchange, without the counter reads
            cycles.append(dev.counters()["cycles"])
        marks["t_end"] = marks["t_run"] + running
        # a changed word must be caught: the first entry word of PE 0, flipped
        marks["caught"] = -1
        if step.get("verify", True):
            from hw.hostmap import HostMap
            addr = HostMap(dev.config).memory("pe0.entries")
            dev.write(addr, [dev.read(addr)[0] ^ 1])
            try:
                dev.verify()
                marks["caught"] = 0
            except Exception as e:                  # noqa: BLE001 - recorded, checked by the test
                marks["caught"] = int("pe0.entries" in str(e))
        return (np.array(outs, dtype=np.int64), np.array(exits, dtype=np.int64), np.array(cycles, dtype=np.int64),
                dev.bytes_sent, dev.bytes_received)

    outputs, exits, cycles, sent, received = await host()
    results[f"s{index}_outputs"] = outputs
    results[f"s{index}_exits"] = exits
    results[f"s{index}_cycles"] = cycles
    # bytes each way; cycles to identify the board, to load the image, to verify it, to run the vectors
    # (`Device.run` alone);
    # whether a changed word failed the verification; whether a wait for outputs timed out
    results[f"s{index}_link"] = np.array([sent, received, marks["t_load"], marks["t_verify"] - marks["t_load"],
                                          marks["t_run"] - marks["t_verify"], marks["t_end"] - marks["t_run"],
                                          marks["caught"], marks.get("timed_out", -1)], dtype=np.int64)


@cocotb.test()
async def job(dut):
    spec = json.loads(Path(os.environ["OEIE_JOB"]).read_text())
    config = Config.from_dict(spec["config"])
    dut.uart_rx.value = 1
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 1                   # long enough for the trees to drain (they have no reset)
    await ClockCycles(dut.clk, drain_cycles(config.n_pe))
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    results = {}
    for i, step in enumerate(spec["steps"]):
        if step["op"] != "board":
            raise ValueError(f"unknown board step {step['op']!r}")
        await board_step(dut, spec, step, results, i)
    np.savez(spec["results"], **results)
