"""The accelerator: PEs, broadcast, control, host port."""

from __future__ import annotations

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sw.config import Config
from sw.format import PE_MEMORIES, memory_specs, pe_memory_name, signed_words
from sw.image import Image

from . import wishbone
from .broadcast import Broadcast, InputStage, NonzeroTree
from .control import ControlUnit
from .exit_test import ExitTest
from .hostmap import HostMap
from .hostport import HostPort
from .layouts import HOST_DATA_BITS, Widths, input_layout
from .output_stage import OutputStage, output_layout
from .parts import add_parts, image_memory_paths
from .pe import ProcessingElement
from .pipeline import delay_line, fanout, fanout_decoded, fanout_stages, flat, reduce_and, reduce_stages

__all__ = ["Accelerator", "HardwareError"]


class HardwareError(ValueError):
    """A configuration or image the hardware cannot be built for."""


class Core(wiring.Component):
    """Everything a soft reset resets: control, broadcast, PEs, output.

    Between the centre and the PEs every signal passes a registered tree
    (`hw.pipeline`): ``fanout = fanout_stages(n_pe)`` cycles towards the
    PEs (activations, control, output reads), ``reduce = reduce_stages(n_pe)``
    cycles back (almost-full flags, idle, scan done, output data). The
    almost-full flags' AND is registered once more beside the broadcast
    (`ROOM_DELAY`: its push decision fans out to the broadcast and the
    nonzero trees' roots). The queues keep ``fanout + reduce + ROOM_DELAY``
    pairs of slack for the pushes the broadcast makes before it sees a
    queue almost full (`queue_slack`).
    """

    def __init__(self, widths: Widths, host_offset_bits: int, init: dict):
        c = widths.config
        self._widths = widths
        self.fanout, self.reduce = fanout_stages(c.n_pe), reduce_stages(c.n_pe)
        self.slack = queue_slack(c)
        self.control = ControlUnit(widths, init_layers=init.get("layers", ()), init_codebook=init.get("codebook", ()),
                                   fanout=self.fanout, reduce=self.reduce)
        self.pes = [ProcessingElement(widths, k, host_offset_bits, slack=self.slack,
                                      init={kind: init.get(pe_memory_name(k, kind), ()) for kind in PE_MEMORIES})
                    for k in range(c.n_pe)]
        # one nonzero tree per broadcast lane: PE k feeds tree k % len(trees)
        n_trees = min(c.broadcast_width, c.n_pe)
        self.trees = [NonzeroTree(widths, n=len(range(q, c.n_pe, n_trees))) for q in range(n_trees)]
        self.input = InputStage(widths)
        self.broadcast = Broadcast(widths)
        self.output = OutputStage(widths, fanout=self.fanout)
        self.exit_test = ExitTest(widths) if c.exit_heads else None
        tree_names = ["tree"] if n_trees == 1 else [f"tree_{q}" for q in range(n_trees)]
        self.parts = {"control": self.control, **dict(zip(tree_names, self.trees)), "input": self.input,
                      "broadcast": self.broadcast, "output": self.output,
                      **({"exit_test": self.exit_test} if c.exit_heads else {}),
                      **{f"pe_{k}": pe for k, pe in enumerate(self.pes)}}
        super().__init__({
            "i": In(stream.Signature(input_layout(widths))),
            "o": Out(stream.Signature(output_layout(widths))),
            "soft_reset": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        ctl, trees, inp, bc, out, pes = self.control, self.trees, self.input, self.broadcast, self.output, self.pes
        n = len(pes)
        # each part gets its own copy of the soft reset, all in the same cycle
        # (one net to every flip-flop of the design would be far too slow);
        # the registers between the parts need none: the reset lasts until
        # what they hold has drained into parts held in reset
        resets = fanout(m, self.soft_reset, len(self.parts), "reset")
        for (name, part), reset in zip(self.parts.items(), resets):
            m.submodules[name] = ResetInserter(reset)(part)

        # layer 0 from the input stream, later layers from the PEs through the
        # trees: the broadcast takes every root that holds a pair, tree 0's
        # first (its src[1] only with src[0])
        wiring.connect(m, wiring.flipped(self.i), inp.i)
        first = ctl.first_layer
        m.d.comb += [
            inp.start.eq(ctl.input_start), inp.active.eq(ctl.computing & first), inp.n_in.eq(ctl.pe.layer.n_in),
            bc.ptr_base.eq(ctl.ptr_base), bc.layer_start.eq(ctl.pe.count_reset),
        ]
        roots = [tree.out for tree in trees]
        if len(roots) == 2:
            a, b = roots
            offers = [(a.valid | b.valid, Mux(a.valid, a.payload, b.payload)), (a.valid & b.valid, b.payload)]
        else:
            offers = [(roots[0].valid, roots[0].payload)]
        for q, src in enumerate(bc.src):
            lane = inp.out[q]
            m.d.comb += lane.ready.eq(first & src.ready)
            valid, payload = offers[q] if q < len(offers) else (0, lane.payload)
            m.d.comb += [src.valid.eq(Mux(first, lane.valid, valid)), src.payload.eq(Mux(first, lane.payload, payload))]
        for root in roots:                  # the broadcast loads all its sources at once
            m.d.comb += root.ready.eq(~first & bc.src[0].ready)
        for k, pe in enumerate(pes):
            wiring.connect(m, pe.scan, trees[k % len(trees)].ins[k // len(trees)])

        # towards the PEs: activations, control, output reads
        acts = deliveries(m, bc, n)
        ctls = fanout(m, flat(ctl.pe), n, "ctl")
        reads = fanout(m, Cat(out.read_en, out.read_addr), n, "out_read")
        for k, pe in enumerate(pes):
            m.d.comb += [
                Cat(*(Cat(act.valid, act.payload) for act in pe.act)).eq(acts[k]),
                flat(pe.ctl).eq(ctls[k]),
                Cat(pe.out_en, pe.out_addr).eq(reads[k]),
                out.pe_data[k].eq(pe.out_data),
            ]

        # back from the PEs
        m.d.comb += [
            bc.all_ok.eq(room(m, [pe.almost_full for pe in pes])),
            ctl.pes_idle.eq(reduce_and(m, [pe.idle for pe in pes], "idle")),
            ctl.scan_done.eq(reduce_and(m, [pe.scan_done for pe in pes], "scan_done")),
            ctl.input_done.eq(inp.done),
            ctl.tree_idle.eq(Cat(tree.idle for tree in trees).all()),
            ctl.bcast_valid.eq(bc.busy), ctl.pushed.eq(bc.pushed), ctl.stall.eq(bc.stall),
            out.start.eq(ctl.output_start), out.n_out.eq(ctl.n_out), out.bank.eq(ctl.pe.layer.dst_bank),
            ctl.output_done.eq(out.done),
        ]
        # an exit head's outputs go to the exit test, the run's to the output stream
        testing = ctl.testing
        if self.exit_test is not None:
            test = self.exit_test
            m.d.comb += [
                test.start.eq(ctl.test_start), test.threshold.eq(ctl.threshold),
                test.valid.eq(out.o.valid & testing), test.value.eq(out.o.payload.data),
                ctl.exit_passed.eq(test.passed),
            ]
        m.d.comb += [
            self.o.valid.eq(out.o.valid & ~testing),
            self.o.payload.data.eq(out.o.payload.data), self.o.payload.last.eq(out.o.payload.last),
            self.o.payload.exit.eq(ctl.exit_index),
            out.o.ready.eq(testing | self.o.ready),
        ]
        return m


ROOM_DELAY = 1      # registers between the almost-full reduction and the broadcast


def deliveries(m: Module, bc: Broadcast, n: int) -> list:
    """The broadcast's pushes towards `n` PEs, `fanout_stages(n)` cycles
    late: per PE, ``(valid, payload)`` of each lane, lane ``q`` for queue
    ``q`` (the proofs of `formal.harnesses` wire queues to the same values)."""
    lanes = range(len(bc.src))
    return fanout(m, Cat(*(Cat(bc.pushed & bc.valid[q], bc.payload[q]) for q in lanes)), n, "act")


def room(m: Module, almost_full: list) -> Value:
    """The broadcast's `all_ok`: no queue almost full, ``reduce_stages +
    ROOM_DELAY`` cycles late (the proof `formal.harnesses.FlowControl` builds
    the same flow control with this and `queue_slack`)."""
    return delay_line(m, reduce_and(m, [~f for f in almost_full], "room"), ROOM_DELAY, "room_near")[-1]


def queue_slack(config: Config) -> int:
    """Pairs each activation queue keeps free for the broadcast's pushes in
    flight. A push decided in cycle ``t`` reaches the queue in ``t +
    fanout``, and the broadcast's `all_ok` in ``t`` reflects the queue
    levels of ``t - reduce - ROOM_DELAY``: the pushes of ``t - reduce -
    ROOM_DELAY - fanout + 1 .. t`` are not yet counted in them."""
    return fanout_stages(config.n_pe) + reduce_stages(config.n_pe) + ROOM_DELAY


class Accelerator(wiring.Component):
    """An EIE-style sparse accelerator for `config`.

    Ports: `i`, the first layer's input (a stream of beats of
    ``input_width`` signed ``act_bits`` values, in index order); `o`, the last layer's outputs in index order
    (`data`, and `last` on the final one); `bus`, a Wishbone B4 target laid
    out as `hw.hostmap` says; `irq`, high while the last run is done;
    `busy` and `error`, as ``STATUS`` says (for a board's LEDs). The
    clock domain's reset must last `hw.pipeline.drain_cycles(n_pe)` cycles
    (the registered trees to and from the PEs take none: they drain).

    With `image`, every memory starts with the image's contents (this is what
    puts weights into a bitstream); without, they start empty and the host
    loads an image over `bus`. `image` may also be a mapping from image
    memory names to words (a bitstream's template contents, `synth.bitstream`).
    """

    def __init__(self, config: Config, image: Image | None = None):
        try:
            self._check(config, image)
        except (TypeError, HardwareError):
            self._MustUse__silence = True      # a rejected design is not an unused one
            raise
        self.config = config
        self.map = HostMap(config)
        widths = Widths(config)
        init = {}
        if image is not None:
            specs = memory_specs(config)
            contents = image if isinstance(image, dict) else {n: m.words for n, m in image.memories().items()}
            for name, words in contents.items():
                words = signed_words(words, specs[name].width) if specs[name].signed else words
                init[name] = [int(v) for v in words]
        self.core = Core(widths, self.map.pe_offset_bits, init)
        self.host = HostPort(config, fanout=self.core.fanout)
        self.parts = {"host": self.host, "core": self.core}
        super().__init__({
            "i": In(stream.Signature(input_layout(widths))),
            "o": Out(stream.Signature(output_layout(widths))),
            "bus": In(wishbone.Signature(addr_width=self.map.addr_width)),
            "irq": Out(1), "busy": Out(1), "error": Out(1),
        })

    @staticmethod
    def _check(config, image):
        if not isinstance(config, Config):
            raise TypeError(f"Accelerator() takes an sw.Config, got {type(config).__name__}")
        for name, bits in (("a sparse-matrix word (entries_per_word * entry bits)", config.word_bits),
                           ("acc_bits", config.acc_bits), ("weight_bits", config.weight_bits),
                           ("a pointer (weight_depth)", config.pointer_bits)):
            if bits > HOST_DATA_BITS:
                raise HardwareError(f"{name} is {bits} bits; the host port loads memories through "
                                    f"{HOST_DATA_BITS}-bit words")
        if isinstance(image, dict):
            unknown = set(image) - set(memory_specs(config))
            if unknown:
                raise HardwareError(f"no such memories in this configuration: {', '.join(sorted(unknown))}")
        elif image is not None and image.config != config:
            raise HardwareError("the image was packed for another configuration; pack it for this one")
        if config.fifo_depth <= queue_slack(config):
            raise HardwareError(f"fifo_depth is {config.fifo_depth}, but at n_pe = {config.n_pe} the queues keep "
                                f"{queue_slack(config)} pairs free for those in flight; give at least "
                                f"{queue_slack(config) + 1}")

    def memory_locations(self) -> dict[str, list[tuple[str, str]]]:
        """Where each image memory (`sw.format` names) sits in the generated
        design: ``(module path below the top, memory name)`` for every copy."""
        loc = {}
        for name, module, memory in image_memory_paths(self):
            loc.setdefault(name, []).append((module, memory))
        return loc

    def elaborate(self, platform):
        m = Module()
        add_parts(m, self, skip=("core",))
        host = self.host
        m.submodules.core = self.core
        m.d.comb += self.core.soft_reset.eq(host.soft_reset)
        core, ctl = self.core, self.core.control
        wiring.connect(m, wiring.flipped(self.bus), host.bus)
        wiring.connect(m, wiring.flipped(self.i), core.i)
        wiring.connect(m, core.o, wiring.flipped(self.o))
        m.d.comb += [
            host.status.busy.eq(ctl.busy), host.status.done.eq(ctl.done), host.status.error.eq(ctl.error),
            host.status.ready.eq(ctl.ready), host.cycles.eq(ctl.cycles), host.layers_done.eq(ctl.layers_done),
            host.exit_index.eq(ctl.exit_index),
            ctl.start.eq(host.start),
            ctl.log_read_addr.eq(host.log_read_addr), host.log_word.eq(ctl.log_word),
            ctl.host_layers.addr.eq(host.offset), ctl.host_layers.data.eq(host.wdata),
            ctl.host_layers.en.eq(host.layers_we),
            ctl.host_codebook.addr.eq(host.offset), ctl.host_codebook.data.eq(host.wdata),
            ctl.host_codebook.en.eq(host.codebook_we),
            ctl.host_layers_read.eq(host.layers_re), ctl.host_codebook_read.eq(host.codebook_re),
            host.layers_data.eq(ctl.host_layers_data), host.codebook_data.eq(ctl.host_codebook_data),
            self.irq.eq(ctl.done), self.busy.eq(ctl.busy), self.error.eq(ctl.error),
        ]
        # the host's writes into PE memories and its busy-counter reads, through
        # the registered fan-out (the answers come back through the host port's
        # selection tree); the PE's number is decoded on the way
        n = self.config.n_pe
        writes = fanout(m, Cat(host.pe_kind, host.offset, host.wdata), n, "host_write")
        enables = fanout_decoded(m, Cat(host.pe_we, host.pe_re), host.pe_select, n, "host_enable")
        layers = fanout(m, host.busy_read_layer, n, "busy_layer")
        for k, pe in enumerate(core.pes):
            kind, offset, data = Signal.like(host.pe_kind), Signal.like(host.offset), Signal.like(host.wdata)
            m.d.comb += [
                Cat(kind, offset, data).eq(writes[k]),
                pe.host.kind.eq(kind), pe.host.addr.eq(offset), pe.host.data.eq(data),
                Cat(pe.host.en, pe.host.re).eq(enables[k]),
                pe.busy_read_layer.eq(layers[k]), host.pe_read_data[k].eq(pe.host_read_data),
            ]
        return m
