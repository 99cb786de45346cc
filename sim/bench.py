"""The cocotb bench: runs inside the simulator, driven by a JSON job file.

`sim.run` writes the job (``$OEIE_JOB``) and reads back the results; users
call `sim.run`, not this module. Steps of a job:

``run``    every vector of an ``.npy`` file: start, stream the inputs (with
           random idle cycles if asked), drain the outputs (with random
           backpressure if asked), read the counters over the host port.
``abort``  start a run, stream part of a vector, soft-reset through ``CTRL``.
``load``   write an image directory's memories through the host port.

Only top-level ports are touched; the design runs freely between transfers
(the bench waits on edges of ``o.valid`` and ``irq``, not on every clock).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge

from hw.hostmap import HostMap
from hw.pipeline import drain_cycles
from sw import format as fmt
from sw.config import Config


class SimulationTimeout(AssertionError):
    pass


class TB:
    def __init__(self, dut, config: Config):
        self.dut = dut
        self.config = config
        self.map = HostMap(config)
        self.act_mask = (1 << config.act_bits) - 1
        self.clk = dut.clk
        self.progress_file = os.environ.get("OEIE_PROGRESS")
        self.vectors_done = self.cycles_done = 0

    def report_progress(self, cycles: int):
        """One more vector done: rewrite the file `sim.run`'s progress bar reads."""
        self.vectors_done += 1
        self.cycles_done += cycles
        if self.progress_file:
            tmp = f"{self.progress_file}.tmp"
            Path(tmp).write_text(f"{self.vectors_done} {self.cycles_done}\n")
            os.replace(tmp, self.progress_file)

    async def reset(self):
        d = self.dut
        for sig in (d.bus__cyc, d.bus__stb, d.bus__we, d.i__valid):
            sig.value = 0
        d.o__ready.value = 0
        d.rst.value = 1                 # long enough for the trees to drain (they have no reset)
        await ClockCycles(self.clk, drain_cycles(self.config.n_pe))
        d.rst.value = 0
        await RisingEdge(self.clk)

    # ---- host port ---------------------------------------------------------

    async def wb(self, addr: int, data: int | None = None) -> int:
        d = self.dut
        d.bus__adr.value = addr
        d.bus__we.value = int(data is not None)
        d.bus__dat_w.value = data or 0
        d.bus__sel.value = 0xF
        d.bus__cyc.value = 1
        d.bus__stb.value = 1
        for _ in range(100):
            await RisingEdge(self.clk)            # values read now are the ones the edge saw
            if d.bus__ack.value:
                break
        else:
            raise SimulationTimeout(f"no Wishbone ack for address {addr:#x}")
        value = int(d.bus__dat_r.value)
        d.bus__cyc.value = 0
        d.bus__stb.value = 0
        return value

    async def wait_ready(self, max_polls: int):
        for _ in range(max_polls):
            status = await self.wb(self.map.reg(HostMap.STATUS))
            if status & HostMap.STATUS_READY:
                return status
        raise SimulationTimeout(f"the accelerator never became ready (STATUS = {status:#x})")

    async def load_image(self, image_dir: Path):
        manifest = json.loads((image_dir / "manifest.json").read_text())
        for name, entry in manifest["memories"].items():
            words = fmt.parse_hex((image_dir / entry["file"]).read_bytes(), entry["width"], entry["depth"], name)
            base = self.map.memory(name)
            for addr, word in enumerate(words.tolist()):
                await self.wb(base + addr, word)

    # ---- streams -------------------------------------------------------------

    async def feed(self, x: list[int], idle: float, rng: random.Random, limit: int | None = None):
        """Stream `x` into `i`, `input_width` values a beat; with probability
        `idle` a cycle offers nothing.
        Without idle cycles, a refused value waits for `i.ready` to rise
        rather than being offered again every clock (the design runs freely
        while its queues are full). Stops early after `limit` cycles (for the
        abort step)."""
        d = self.dut
        width, bits = self.config.input_width, self.config.act_bits
        padded = list(x) + [0] * (-len(x) % width)          # the last beat's extra lanes are ignored
        x = [sum((padded[b + l] & self.act_mask) << (l * bits) for l in range(width))
             for b in range(0, len(padded), width)]          # beats, the first value in the low bits
        k = cycles = 0
        while k < len(x):
            if limit is not None and cycles >= limit:
                break
            offered = rng.random() >= idle
            d.i__valid.value = int(offered)
            d.i__payload.value = x[k]
            await RisingEdge(self.clk)
            cycles += 1
            if not offered:
                continue
            if d.i__ready.value:                  # the edge saw valid and ready
                k += 1
            elif not idle and limit is None:
                await RisingEdge(d.i__ready)      # ready only changes at edges; the next takes it
                await RisingEdge(self.clk)
                k += 1
        d.i__valid.value = 0
        return k

    async def drain(self, n: int, backpressure: float, rng: random.Random, max_cycles: int) -> tuple[list[int], int]:
        """Collect `n` outputs from `o`, refusing a cycle with probability
        `backpressure`; checks `last` on the final one, and that every output
        names the same exit. Returns the values and that exit."""
        d, c = self.dut, self.config
        out, exits = [], set()
        ready = 1
        d.o__ready.value = ready
        budget = max_cycles
        while len(out) < n:
            if not d.o__valid.value:              # the design runs freely until output appears
                d.o__ready.value = ready = 1
                timer = ClockCycles(self.clk, budget)
                fired = await First(RisingEdge(d.o__valid), timer)
                if fired is timer:
                    raise SimulationTimeout(f"no output after {max_cycles} cycles ({len(out)} of {n} received)")
            await RisingEdge(self.clk)
            budget -= 1
            if budget <= 0:
                raise SimulationTimeout(f"outputs stalled ({len(out)} of {n} received)")
            if ready and d.o__valid.value:
                word = int(d.o__payload.value)
                last = (word >> c.act_bits) & 1
                if last != (len(out) == n - 1):
                    raise AssertionError(f"output {len(out)} of {n} has last = {last}")
                out.append(word & self.act_mask)
                exits.add(word >> (c.act_bits + 1))
            ready = int(rng.random() >= backpressure)
            d.o__ready.value = ready
        d.o__ready.value = 0
        if len(exits) != 1:
            raise AssertionError(f"the outputs of one run name exits {sorted(exits)}")
        return fmt.signed_words(out, c.act_bits).tolist(), exits.pop()

    async def counters(self, n_layers: int):
        """The run's counters; a layer an exit skipped (at or past
        ``LAYERS_DONE``) counts 0 (its logs hold an earlier run's)."""
        mp = self.map
        cycles = await self.wb(mp.reg(HostMap.CYCLES))
        ran = await self.wb(mp.reg(HostMap.LAYERS_DONE))
        layer = [await self.wb(mp.layer_cycles(l)) if l < ran else 0 for l in range(n_layers)]
        stalls = [await self.wb(mp.layer_stalls(l)) if l < ran else 0 for l in range(n_layers)]
        pes = self.config.n_pe if self.config.busy_logs else 0       # else there are none to read
        busy = [[await self.wb(mp.pe_busy(k, l)) if l < ran else 0 for k in range(pes)] for l in range(n_layers)]
        return cycles, layer, stalls, busy


async def run_step(tb: TB, step: dict, results: dict, index: int):
    x = np.load(step["inputs"]).astype(np.int64)
    rng = random.Random(step.get("seed", 0))
    outputs, exits, cycles, layer, stalls, busy = [], [], [], [], [], []
    for b in range(x.shape[0]):
        await tb.wait_ready(step["max_polls"])
        # the first beat waits on the stream as the run starts (the input stage
        # takes none before): layer 0 need not wait for the host's bus access
        feeder = cocotb.start_soon(tb.feed(x[b].tolist(), step.get("idle", 0.0), rng))
        await tb.wb(tb.map.reg(HostMap.CTRL), HostMap.CTRL_START)
        out, exit_ = await tb.drain(step["n_out"], step.get("backpressure", 0.0), rng, step["max_cycles"])
        await feeder
        status = await tb.wait_ready(step["max_polls"])
        if not status & HostMap.STATUS_DONE or status & HostMap.STATUS_ERROR:
            raise AssertionError(f"vector {b}: STATUS = {status:#x} after the outputs")
        c, l, s, k = await tb.counters(step["n_layers"])
        outputs.append(out)
        exits.append(exit_)
        cycles.append(c)
        layer.append(l)
        stalls.append(s)
        busy.append(k)
        tb.report_progress(c)
    results[f"s{index}_outputs"] = np.array(outputs, dtype=np.int64)
    results[f"s{index}_exits"] = np.array(exits, dtype=np.int64)
    results[f"s{index}_cycles"] = np.array(cycles, dtype=np.int64)
    results[f"s{index}_layer_cycles"] = np.array(layer, dtype=np.int64)
    results[f"s{index}_stall_cycles"] = np.array(stalls, dtype=np.int64)
    results[f"s{index}_pe_busy"] = np.array(busy, dtype=np.int64)


async def abort_step(tb: TB, step: dict):
    x = np.load(step["inputs"]).astype(np.int64)
    await tb.wait_ready(step["max_polls"])
    await tb.wb(tb.map.reg(HostMap.CTRL), HostMap.CTRL_START)
    tb.dut.o__ready.value = 1
    await tb.feed(x[0].tolist(), 0.0, random.Random(0), limit=step["after_cycles"])
    await ClockCycles(tb.clk, step.get("wait_cycles", 0))
    await tb.wb(tb.map.reg(HostMap.CTRL), HostMap.CTRL_RESET)
    tb.dut.o__ready.value = 0


@cocotb.test()
async def job(dut):
    spec = json.loads(Path(os.environ["OEIE_JOB"]).read_text())
    config = Config.from_dict(spec["config"])
    Clock(dut.clk, 10, unit="ns").start()
    tb = TB(dut, config)
    await tb.reset()
    results = {}
    for i, step in enumerate(spec["steps"]):
        if step["op"] == "run":
            await run_step(tb, step, results, i)
        elif step["op"] == "abort":
            await abort_step(tb, step)
        elif step["op"] == "load":
            await tb.load_image(Path(step["image"]))
        else:
            raise ValueError(f"unknown step {step['op']!r}")
    np.savez(spec["results"], **results)
