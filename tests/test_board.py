"""The board path without a board: the UART link's framing, and the host
driver (`sw.board.Device`) against the board top over its simulated UART
pins, bit for bit against the golden model."""

import json
import struct

import numpy as np
import pytest

import sim
import sw
from sw import link
from sw.board import BoardError, Device

from models import random_inputs, random_model

CONFIG = sw.Config(n_pe=2, weight_depth=256, pointer_depth=128, row_depth=16, max_layers=2, act_bits=8,
                   weight_bits=8, acc_bits=24, fifo_depth=8)


# ---- the framing ---------------------------------------------------------------

def test_crc8_is_crc8_smbus():
    assert link.crc8(b"123456789") == 0xF4          # the catalogued check value


def test_request_layout():
    frame = link.request("write", 0x1234, 2, struct.pack("<2I", 7, 0xDEADBEEF))
    assert frame[:7] == bytes([0x57, 0x34, 0x12, 0, 0, 2, 0])
    assert frame[7] == link.crc8(frame[:7])
    assert frame[8:16] == struct.pack("<2I", 7, 0xDEADBEEF) and frame[16] == link.crc8(frame[8:16])
    with pytest.raises(ValueError, match="payload of 8 bytes"):
        link.request("write", 0, 2, b"\0" * 4)
    with pytest.raises(ValueError, match="count"):
        link.request("read", 0, 0)


def reader(data: bytes):
    buf = bytearray(data)

    def read(n):
        out = bytes(buf[:n])
        del buf[:n]
        return out
    return read


def reply(op, payload=b"", status=0):
    body = bytes([link.OPS[op]]) + payload + bytes([status])
    return body + bytes([link.crc8(body)])


def test_read_reply_checks_everything():
    words = struct.pack("<2I", 1, 2)
    assert link.read_reply(reader(reply("read", words)), "read", 2) == words
    with pytest.raises(link.LinkError, match="no reply"):
        link.read_reply(reader(b""), "read", 1)
    with pytest.raises(link.LinkError, match="stopped after"):
        link.read_reply(reader(reply("read", words)[:5]), "read", 2)
    bad = bytearray(reply("read", words))
    bad[3] ^= 1
    with pytest.raises(link.LinkError, match="CRC is wrong"):
        link.read_reply(reader(bytes(bad)), "read", 2)
    with pytest.raises(link.LinkError, match="payload_crc") as e:
        link.read_reply(reader(reply("write", status=link.STATUS_BITS["payload_crc"])), "write", 1)
    assert e.value.status == link.STATUS_BITS["payload_crc"]
    nak = bytes([link.NAK, 1, link.crc8(bytes([link.NAK, 1]))])
    with pytest.raises(link.LinkError, match="refused the request's header") as e:
        link.read_reply(reader(nak), "read", 1)
    assert e.value.acted is False
    with pytest.raises(link.LinkError, match="out of step"):
        link.read_reply(reader(reply("output", b"\0\0")), "read", 1)


class FakeBoard:
    """Answers the identification reads as a board of `config` would."""

    def __init__(self, config, ident=None):
        from hw.hostmap import CONFIG_FIELDS, HW_VERSION, ID_VALUE, HostMap
        self.regs = {HostMap.ID: ID_VALUE if ident is None else ident,
                     HostMap.VERSION: (HW_VERSION << 16) | sw.format.FORMAT_VERSION}
        for i, f in enumerate(CONFIG_FIELDS):
            self.regs[HostMap.CONFIG + i] = getattr(config, f)
        self.out = b""

    def write(self, frame):
        op, addr, count = struct.unpack("<BIH", frame[:7])
        assert op == link.OPS["read"]
        self.out += reply("read", struct.pack(f"<{count}I", *[self.regs.get(addr + k, 0) for k in range(count)]))

    def read(self, n):
        out, self.out = self.out[:n], self.out[n:]
        return out


def test_device_refuses_another_design_and_another_configuration():
    with pytest.raises(BoardError, match="not OpenEIE"):
        Device(FakeBoard(CONFIG, ident=0x12345678))
    dev = Device(FakeBoard(CONFIG))
    assert dev.config == CONFIG
    other = sw.pack(random_model(np.random.default_rng(0), CONFIG.replace(n_pe=1), [8, 8]), CONFIG.replace(n_pe=1))
    with pytest.raises(BoardError, match="n_pe: board 2, image 1"):
        dev.load(other)
    with pytest.raises(BoardError, match="load an image first"):
        dev.run(np.zeros(8, dtype=np.int64))


def test_device_refuses_to_load_while_the_accelerator_is_busy():
    """The board would drop the writes: `load` says so and writes nothing
    (the fake board answers reads only)."""
    from hw.hostmap import HostMap
    board = FakeBoard(CONFIG)
    dev = Device(board)
    image = sw.pack(random_model(np.random.default_rng(2), CONFIG, [8, 6]), CONFIG)
    board.regs[HostMap.STATUS] = HostMap.STATUS_BUSY
    with pytest.raises(BoardError, match=r"busy \(STATUS 0x1\).*wait for the run to end"):
        dev.load(image)
    assert dev.image is None


def test_board_command_line_says_what_is_missing(capsys):
    from sw.cli import main
    with pytest.raises(SystemExit):
        main(["board", "run", "--port", "/dev/null"])
    assert "the following arguments are required: image, input" in capsys.readouterr().err


def test_board_command_line_talks_to_a_board(monkeypatch, capsys, tmp_path):
    """`board info` prints the board's configuration; `board run --no-load`
    reads the image back first and, where the board does not hold it, says
    to load it."""
    import sw.board
    from sw.cli import main
    monkeypatch.setattr(sw.board, "_Serial", lambda port, baud, timeout: FakeBoard(CONFIG))
    assert main(["board", "info", "--port", "fake"]) == 0
    assert json.loads(capsys.readouterr().out)["n_pe"] == CONFIG.n_pe
    image = sw.pack(random_model(np.random.default_rng(1), CONFIG, [8, 6]), CONFIG)
    image.save(tmp_path / "img")
    np.save(tmp_path / "x.npy", np.zeros((1, 8), dtype=np.int64))
    assert main(["board", "run", "--no-load", "--port", "fake", str(tmp_path / "img"), str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "memories differ from the image" in err and "without --no-load" in err


# ---- the driver over the simulated UART -----------------------------------------

@pytest.fixture(scope="module")
def board_case():
    rng = np.random.default_rng(7)
    image = sw.pack(random_model(rng, CONFIG, [12, 20, 10]), CONFIG)
    x = random_inputs(rng, 3, 12, CONFIG.act_bits, density=0.6)
    x[1] = 0
    return image, x, sim.run_board(image, x)


def test_uart_host_loads_verifies_and_runs_the_image_bit_exactly(board_case):
    """Load over the UART (the memories start empty), read every memory back
    (`Device.verify`: the host port's readback of PE memories, layer table
    and codebook), run, compare every output with the golden model; a word
    changed after loading fails the verification."""
    image, x, r = board_case
    np.testing.assert_array_equal(r["outputs"], sw.golden.run(image, x))
    words = sum(m.depth for m in image.memories().values())
    assert r["bytes_sent"] > 4 * words and r["bytes_received"] > 4 * words     # all of it, both ways
    assert r["verify_caught_a_change"]


def test_uart_host_reads_the_exit_each_run_left_by():
    """An early-exit image over the UART: `Device.run(exits=True)` gives the
    head's outputs and the exit (the EXIT register) for inputs that leave
    early and for those that do not."""
    from test_early_exit import exit_model
    config = CONFIG.replace(max_layers=4)           # the trunk's three layers and the head
    model, x = exit_model(config, [12, 10, 8, 6], {0: []}, 3)
    image = sw.pack(model, config)
    taken = sw.golden.run(image, x, exits=True)[1]
    x = x[[int(np.argmax(taken == 1)), int(np.argmax(taken == 0))]]
    r = sim.run_board(image, x, verify=False)
    y, taken = sw.golden.run(image, x, exits=True)
    assert list(taken) == [1, 0]
    np.testing.assert_array_equal(r["outputs"], y)
    np.testing.assert_array_equal(r["exits"], taken)


@pytest.mark.parametrize("corrupt", [2, 40, 1000], ids=["header", "payload", "later"])
def test_a_corrupted_byte_costs_a_retry_not_a_wrong_answer(board_case, corrupt):
    """One bit flipped in the host's stream: in the identification read's
    header (a NAK), in a write's payload (a payload CRC error), later on."""
    image, x, clean = board_case
    r = sim.run_board(image, x, corrupt_byte=corrupt)
    np.testing.assert_array_equal(r["outputs"], sw.golden.run(image, x))
    assert r["bytes_sent"] > clean["bytes_sent"]    # the request went again


def test_a_wait_for_outputs_that_never_come_times_out_and_the_board_goes_on(board_case):
    image, x, _ = board_case
    r = sim.run_board(image, x, probe_timeout=True)
    assert r["stream_timed_out"]
    np.testing.assert_array_equal(r["outputs"], sw.golden.run(image, x))


@pytest.mark.parametrize("drop", [5, 60], ids=["header", "payload"])
def test_a_lost_byte_costs_a_timeout_and_a_retry(board_case, drop):
    """A byte left out of the host's stream: the board waits for it, abandons
    the request after its timeout, the host hears nothing and sends again."""
    image, x, clean = board_case
    r = sim.run_board(image, x, drop_byte=drop)
    np.testing.assert_array_equal(r["outputs"], sw.golden.run(image, x))
    assert r["bytes_sent"] > clean["bytes_sent"]
    assert r["identify_cycles"] + r["load_cycles"] > clean["identify_cycles"] + clean["load_cycles"] \
        + sim.runner.SIM_BOARD["timeout"]


def test_board_run_checks_its_inputs_before_touching_the_board(monkeypatch, capsys, tmp_path):
    # `board run --batch N`: an image that is not N copies of a model is refused first
    import sw.board
    from sw.cli import main

    def no_board(*a, **k):
        raise AssertionError("the board was opened before the inputs were checked")

    monkeypatch.setattr(sw.board, "_Serial", no_board)
    image = sw.pack(random_model(np.random.default_rng(1), CONFIG, [8, 6]), CONFIG)
    image.save(tmp_path / "img")
    np.save(tmp_path / "x.npy", np.zeros((1, 8), dtype=np.int64))
    assert main(["board", "run", "--port", "fake", "--batch", "2", str(tmp_path / "img"), str(tmp_path / "x.npy")]) == 2
    assert "batch 2: layer 0 is not 2 copies of one layer side by side" in capsys.readouterr().err
    assert main(["board", "run", "--port", "fake", "--batch", "3", str(tmp_path / "img"), str(tmp_path / "x.npy")]) == 2
    assert "the image's 8 inputs and 6 outputs do not split into 3 copies" in capsys.readouterr().err
