"""The UART bridge: `sw.link` requests in, host-port accesses and stream
transfers out, replies back.

It works one byte at a time from the receiver's FIFO and is never the slow
part: a byte on the line takes ``10 * divisor`` cycles, a Wishbone access
``read_latency + 2`` (`hw.hostport`).
"""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from sw import link

from . import wishbone
from .uart import UartRx, UartTx

__all__ = ["UartBridge", "crc8_next"]


def crc8_next(crc, byte):
    """CRC-8 (polynomial 0x07, as `sw.link.crc8`) after one more byte. The
    CRC is linear: each output bit is the XOR of the input bits whose
    single-bit table entry has it set (one LUT level, not eight muxes)."""
    v = crc ^ byte
    columns = [link.crc8(bytes([1 << j])) for j in range(8)]
    return Cat(*[_xor([v[j] for j in range(8) if columns[j] >> i & 1]) for i in range(8)])


def _xor(bits):
    out = bits[0]
    for b in bits[1:]:
        out = out ^ b
    return out


class UartBridge(wiring.Component):
    """`rx`/`tx` are the UART's pins; `bus` drives a host port; `i` feeds
    the accelerator's input stream and `o` drains its outputs.

    `timeout` (clock cycles): how long a request may stall, waiting for its
    next byte or for a stream, before it is abandoned (see `sw.link`).
    """

    def __init__(self, *, addr_width: int, act_bits: int, input_layout, output_layout, divisor: int, timeout: int,
                 rx_depth: int = 16):
        if act_bits > 8 * link.ACT_BYTES:
            raise ValueError(f"the UART link carries activations of up to {8 * link.ACT_BYTES} bits, "
                             f"not {act_bits}")
        self.divisor, self.timeout, self.rx_depth = divisor, timeout, rx_depth
        self._act_bits = act_bits
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "bus": Out(wishbone.Signature(addr_width=addr_width)),
            "i": Out(stream.Signature(input_layout)),       # beats of one value
            "o": In(stream.Signature(output_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UartRx(self.divisor)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=self.rx_depth)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx),
                     fifo.w_data.eq(urx.o.payload), fifo.w_en.eq(urx.o.valid), urx.o.ready.eq(fifo.w_rdy)]
        byte, got = fifo.r_data, fifo.r_rdy & fifo.r_en
        tx = utx.i
        bus = self.bus
        ops, bits = link.OPS, link.STATUS_BITS

        # the header's fields go straight where they are used as their bytes
        # come (op, then addr and count, little-endian), not through a shift
        # register: fewer flip-flops, which the iCE40 board needs
        op = Signal(8)
        n = Signal(3)                       # header bytes so far
        addr = Signal(len(bus.adr))         # the bus ignores higher bits
        left = Signal(16)                   # items still to go
        word = Signal(32)
        k = Signal(2)                       # byte of the word being assembled or sent
        crc_in, crc_out = Signal(8), Signal(8)
        status = Signal(8)
        line_errors = Signal(2)             # overrun, framing: sticky until a reply carries them
        drop = Signal()                     # a stream timed out: the rest of the request is skipped
        idle = Signal(range(self.timeout + 1))
        progress, stalled = Signal(), Signal()
        expired = idle == self.timeout

        with m.If(urx.overrun):
            m.d.sync += line_errors[0].eq(1)
        with m.If(urx.framing_error):
            m.d.sync += line_errors[1].eq(1)
        with m.If(progress | ~stalled):
            m.d.sync += idle.eq(0)
        with m.Elif(~expired):
            m.d.sync += idle.eq(idle + 1)

        def send(value, then):
            m.d.comb += [tx.valid.eq(1), tx.payload.eq(value)]
            with m.If(tx.ready):
                m.d.sync += crc_out.eq(crc8_next(crc_out, value))
                m.next = then

        def send_word(last_byte, here, then):
            """Send `word` low byte first, bytes 0 .. `last_byte`, staying in
            `here`, then go to `then`."""
            send(word[:8], here)
            with m.If(tx.ready):
                m.d.sync += [word.eq(word >> 8), k.eq(k + 1)]
                with m.If(k == last_byte):
                    m.next = then

        def next_item(done, more):
            """After an item: `done` when none is left, else `more`."""
            with m.If(left == 0):
                m.next = done
            with m.Else():
                m.next = more

        def take():
            """Take the request's next byte (`got`); the request is
            abandoned, with no reply, if it does not come in time."""
            m.d.comb += [fifo.r_en.eq(1), stalled.eq(1), progress.eq(got)]
            with m.If(~fifo.r_rdy & expired):
                m.d.sync += [n.eq(0), crc_in.eq(0), line_errors.eq(0)]
                m.next = "HEADER"

        with m.FSM():
            with m.State("HEADER"):
                m.d.comb += [fifo.r_en.eq(1), stalled.eq(n != 0), progress.eq(got)]
                with m.If(got):
                    m.d.sync += [crc_in.eq(crc8_next(crc_in, byte)), n.eq(n + 1)]
                    with m.Switch(n):
                        with m.Case(0):
                            m.d.sync += op.eq(byte)
                        for b in range(4):                  # addr, bytes 1 .. 4
                            if 8 * b < len(addr):
                                with m.Case(1 + b):
                                    m.d.sync += addr[8 * b:8 * b + 8].eq(byte)
                        for b in range(2):                  # count, bytes 5 and 6
                            with m.Case(5 + b):
                                m.d.sync += left[8 * b:8 * b + 8].eq(byte)
                    with m.If(n == link.HEADER_BYTES - 2):
                        m.next = "HEADER_CRC"
                with m.Elif((n != 0) & expired):
                    m.d.sync += [n.eq(0), crc_in.eq(0)]
            with m.State("HEADER_CRC"):
                take()
                with m.If(got):
                    m.d.sync += [n.eq(0), crc_in.eq(0), crc_out.eq(0), k.eq(0), drop.eq(0)]
                    # (a count of 0 is never sent: that header is bad too)
                    m.d.sync += status.eq(Mux((byte != crc_in) | (left == 0), bits["header_crc"], 0))
                    m.next = "SEND_OP"
            with m.State("SEND_OP"):
                with m.If(status != 0):
                    send(link.NAK, "STATUS")
                with m.Elif(op == ops["write"]):
                    send(op, "W_DATA")
                with m.Elif(op == ops["read"]):
                    send(op, "R_BUS")
                with m.Elif(op == ops["input"]):
                    send(op, "I_DATA")
                with m.Elif(op == ops["output"]):
                    send(op, "O_POP")
                with m.Else():
                    m.d.sync += status.eq(bits["unknown_op"])     # then a NAK, as for a bad header

            # ---- write: words in, the last only after its CRC
            with m.State("W_DATA"):
                take()
                with m.If(got):
                    m.d.sync += [word.eq(Cat(word[8:], byte)), crc_in.eq(crc8_next(crc_in, byte)), k.eq(k + 1)]
                    with m.If(k == 3):
                        m.next = "W_NEXT"
            with m.State("W_NEXT"):
                with m.If(left == 1):
                    m.next = "W_CRC"
                with m.Else():
                    m.next = "W_BUS"
            with m.State("W_CRC"):
                take()
                with m.If(got):
                    with m.If(byte == crc_in):
                        m.next = "W_BUS"
                    with m.Else():
                        m.d.sync += status.eq(status | bits["payload_crc"])
                        m.next = "STATUS"
            with m.State("W_BUS"):
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(1), bus.adr.eq(addr), bus.dat_w.eq(word),
                             bus.sel.eq(~0)]
                with m.If(bus.ack):
                    m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
                    m.next = "W_DONE"
            with m.State("W_DONE"):
                next_item("STATUS", "W_DATA")

            # ---- read: words out
            with m.State("R_BUS"):
                m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.adr.eq(addr), bus.sel.eq(~0)]
                with m.If(bus.ack):
                    m.d.sync += [word.eq(bus.dat_r), addr.eq(addr + 1), left.eq(left - 1), k.eq(0)]
                    m.next = "R_SEND"
            with m.State("R_SEND"):
                send_word(3, "R_SEND", "R_DONE")
            with m.State("R_DONE"):
                next_item("STATUS", "R_BUS")

            # ---- input: activations into the input stream
            with m.State("I_DATA"):
                take()
                with m.If(got):
                    m.d.sync += [word.eq(Cat(word[8:16], byte)), crc_in.eq(crc8_next(crc_in, byte)), k.eq(k + 1)]
                    with m.If(k == 1):
                        m.d.sync += k.eq(0)
                        m.next = "I_PUSH"
            with m.State("I_PUSH"):
                m.d.comb += [self.i.valid.eq(~drop), self.i.payload[0].eq(word[:self._act_bits]),
                             stalled.eq(~drop), progress.eq(self.i.ready)]
                with m.If(drop | self.i.ready | expired):
                    with m.If(~drop & ~self.i.ready):
                        m.d.sync += [drop.eq(1), status.eq(status | bits["stream_timeout"])]
                    m.d.sync += left.eq(left - 1)
                    m.next = "I_DONE"
            with m.State("I_DONE"):
                next_item("I_CRC", "I_DATA")
            with m.State("I_CRC"):
                take()
                with m.If(got):
                    with m.If(byte != crc_in):
                        m.d.sync += status.eq(status | bits["payload_crc"])
                    m.next = "STATUS"

            # ---- output: results from the output stream
            with m.State("O_POP"):
                m.d.comb += [self.o.ready.eq(~drop), stalled.eq(~drop), progress.eq(self.o.valid)]
                with m.If(drop | self.o.valid | expired):
                    with m.If(drop | ~self.o.valid):
                        m.d.sync += word.eq(0)
                        with m.If(~drop):
                            m.d.sync += [drop.eq(1), status.eq(status | bits["stream_timeout"])]
                    with m.Else():
                        m.d.sync += word.eq(self.o.payload.data)
                    m.d.sync += [left.eq(left - 1), k.eq(0)]
                    m.next = "O_SEND"
            with m.State("O_SEND"):
                send_word(1, "O_SEND", "O_DONE")
            with m.State("O_DONE"):
                next_item("STATUS", "O_POP")

            # ---- the reply's end
            with m.State("STATUS"):
                value = status | Mux(line_errors[0], bits["overrun"], 0) | Mux(line_errors[1], bits["framing"], 0)
                send(value, "CRC")
                with m.If(tx.ready):
                    m.d.sync += [line_errors.eq(0), crc_in.eq(0)]
            with m.State("CRC"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(crc_out)]
                with m.If(tx.ready):
                    # after a header that cannot be trusted, or an op not known,
                    # drop bytes until the line is quiet
                    with m.If((status & (bits["header_crc"] | bits["unknown_op"])) != 0):
                        m.next = "DISCARD"
                    with m.Else():
                        m.next = "HEADER"
            with m.State("DISCARD"):
                m.d.comb += [fifo.r_en.eq(1), stalled.eq(1), progress.eq(fifo.r_rdy)]
                with m.If(expired):
                    m.next = "HEADER"
        return m
