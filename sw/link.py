"""The byte protocol between a host and a board over a UART (8N1).

The one definition of the framing: the board's bridge (`hw.uart_bridge`)
and the host driver (`sw.board`) both use it.

A request is a header, ``op`` (one byte), ``addr`` (four bytes, little
endian), ``count`` (two bytes, little endian, at least 1), and the header's
CRC-8; ``WRITE`` and ``INPUT`` carry a payload after it and then the
payload's CRC-8:

=========  ====================================  ==========================
op         payload (host to board)               reply payload
=========  ====================================  ==========================
``W`` 57   ``count`` words of 4 bytes, written   none
           to host-port addresses ``addr ..``
``R`` 52   none                                  ``count`` words of 4 bytes
                                                 read from ``addr ..``
``I`` 49   ``count`` activations of 2 bytes,     none
           into the input stream
``O`` 4F   none                                  ``count`` outputs of 2 bytes
                                                 from the output stream
=========  ====================================  ==========================

Every request gets one reply: the ``op`` again, its payload, a status byte
(`STATUS_BITS`, 0 when all went well) and the CRC-8 of the reply's bytes.
A header whose CRC is wrong (or whose op is unknown, or count 0) is answered
at once by the three bytes ``NAK``, status, CRC, and then every byte is
dropped until the line has been idle for the board's timeout (the
request's length cannot be trusted). A request that stops half way (a
lost byte) is abandoned after the same timeout, with no reply; so is a wait
for the input stream to take an activation or for an output to come: those
reply with ``STREAM_TIMEOUT`` (and zeros for the outputs that did not come).

A ``WRITE``'s last word is written only if the payload's CRC is right (so
a single-word write, such as ``CTRL``, never lands corrupted); earlier words
are written as they arrive, and a host that sees ``PAYLOAD_CRC`` sends the
request again (memory writes can be repeated). Inputs are pushed as they
arrive.

CRC-8: polynomial 0x07, initial value 0, no reflection (CRC-8/SMBUS).
"""

from __future__ import annotations

import struct

__all__ = ["OPS", "NAK", "STATUS_BITS", "LinkError", "crc8", "request", "reply_length", "read_reply",
           "ACT_BYTES", "WORD_BYTES", "HEADER_BYTES", "MAX_COUNT"]

OPS = {"write": 0x57, "read": 0x52, "input": 0x49, "output": 0x4F}
NAK = 0x15
STATUS_BITS = {"header_crc": 1, "payload_crc": 2, "overrun": 4, "framing": 8, "unknown_op": 16,
               "stream_timeout": 32}
WORD_BYTES, ACT_BYTES = 4, 2
HEADER_BYTES = 8                    # op, addr (4), count (2), CRC
MAX_COUNT = 0xFFFF

_TABLE = []
for _byte in range(256):
    _c = _byte
    for _ in range(8):
        _c = ((_c << 1) ^ 0x07) & 0xFF if _c & 0x80 else (_c << 1) & 0xFF
    _TABLE.append(_c)


class LinkError(IOError):
    """The board's reply was missing, malformed, or reported an error.
    `status`: the reply's status byte, when it got that far; `acted`: False
    when the board certainly did nothing of the request (a NAK), None when
    that is not known."""

    def __init__(self, message: str, status: int | None = None, acted: bool | None = None):
        super().__init__(message)
        self.status, self.acted = status, acted


def crc8(data: bytes, crc: int = 0) -> int:
    for b in data:
        crc = _TABLE[crc ^ b]
    return crc


def request(op: str, addr: int = 0, count: int = 1, payload: bytes = b"") -> bytes:
    """The bytes of one request (`payload` for ``write``: little-endian
    32-bit words; for ``input``: little-endian 16-bit activations)."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; ops: {', '.join(OPS)}")
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be 1 .. {MAX_COUNT}, got {count}")
    if not 0 <= addr < 1 << 32:
        raise ValueError(f"address {addr:#x} does not fit 32 bits")
    want = {"write": WORD_BYTES * count, "input": ACT_BYTES * count}.get(op, 0)
    if len(payload) != want:
        raise ValueError(f"a {op} of {count} needs a payload of {want} bytes, got {len(payload)}")
    header = struct.pack("<BIH", OPS[op], addr, count)
    out = header + bytes([crc8(header)])
    if want:
        out += payload + bytes([crc8(payload)])
    return out


def reply_length(op: str, count: int) -> int:
    """The bytes of a good reply to `op` with `count`."""
    return 1 + {"read": WORD_BYTES * count, "output": ACT_BYTES * count}.get(op, 0) + 2


def _status_names(status: int) -> str:
    return ", ".join(name for name, bit in STATUS_BITS.items() if status & bit)


def read_reply(read, op: str, count: int) -> bytes:
    """Read one reply with `read(n) -> bytes` (fewer on a timeout); returns
    its payload after checking op, CRC and status."""
    first = read(1)
    if not first:
        raise LinkError(f"{op}: no reply from the board (is it powered, programmed, on this port and at this baud "
                        f"rate?)")
    if first[0] == NAK:
        rest = read(2)
        if len(rest) == 2 and crc8(first + rest[:1]) == rest[1]:
            raise LinkError(f"{op}: the board refused the request's header ({_status_names(rest[0])})", rest[0],
                            acted=False)
        raise LinkError(f"{op}: the board refused the request's header (its reply was garbled too)", acted=False)
    data = first + read(reply_length(op, count) - 1)
    if data[0] != OPS[op]:
        raise LinkError(f"{op}: the reply starts with {data[0]:#04x}, not {OPS[op]:#04x} (out of step with the board)")
    if len(data) != reply_length(op, count):
        raise LinkError(f"{op}: the reply stopped after {len(data)} of {reply_length(op, count)} bytes")
    if crc8(data[:-1]) != data[-1]:
        raise LinkError(f"{op}: the reply's CRC is wrong (a byte was corrupted on the way back)")
    status = data[-2]
    if status:
        raise LinkError(f"{op} of {count}: the board reports {_status_names(status)} (status {status:#04x})", status)
    return data[1:-2]
