"""`python -m sim` and `sim.run` fail before any work on bad input, say what
they wait for, and show progress."""

import importlib
import threading
import time

import numpy as np
import pytest

import sim
import sw
from sim.cli import main

from models import random_inputs, random_model

build_module = importlib.import_module("sim.build")       # `sim.build` is also the function
runner_module = importlib.import_module("sim.runner")


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if anything gets as far as building or simulating."""
    def refuse(*a, **k):
        raise AssertionError("work started before the bad input was refused")

    monkeypatch.setattr(runner_module, "build", refuse)
    monkeypatch.setattr(runner_module, "run_job", refuse)
    import sim.cli
    monkeypatch.setattr(sim.cli, "run", refuse)


@pytest.fixture
def job(tmp_path):
    rng = np.random.default_rng(2)
    config = sw.Config(n_pe=2)
    image = sw.pack(random_model(rng, config, [9, 7]), config)
    image.save(tmp_path / "img")
    np.save(tmp_path / "x.npy", random_inputs(rng, 3, 9, config.act_bits))
    return image, tmp_path


def test_empty_batch_is_refused_before_any_work(job, no_simulation, capsys):
    image, path = job
    with pytest.raises(ValueError, match="no input vectors to simulate"):
        sim.run(image, np.zeros((0, 9), dtype=np.int16))
    np.save(path / "empty.npy", np.zeros((0, 9), dtype=np.int16))
    assert main(["--image", str(path / "img"), "--input", str(path / "empty.npy")]) == 2
    assert "holds no input vectors" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (lambda p: ["--report", str(p)], "is a directory"),
    (lambda p: ["--labels", str(p / "short.npy")], "has 2 labels for 3 input vectors"),
    (lambda p: ["--labels", str(p / "x.npy")], "labels must be a 1-D array of integers"),
    (lambda p: ["--n-pe", "4"], "was packed for n_pe = 2"),
    (lambda p: ["--broadcast-width", "2"], "was packed for broadcast_width = 1; --broadcast-width 2 would need"),
    (lambda p: ["--preset", "ice40-up5k"], "--preset applies to the default model"),
])
def test_cli_refuses_before_simulating(job, no_simulation, capsys, extra, message):
    _, path = job
    np.save(path / "short.npy", np.array([1, 2]))
    assert main(["--image", str(path / "img"), "--input", str(path / "x.npy"), *extra(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("vectors", ["0", "-1", "two"])
def test_vectors_must_be_positive(vectors, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--vectors", vectors])
    assert e.value.code == 2 and "--vectors" in capsys.readouterr().err


def test_idle_and_backpressure_are_probabilities(job, no_simulation):
    image, _ = job
    with pytest.raises(ValueError, match="backpressure is a probability"):
        sim.run(image, np.zeros((1, 9), dtype=np.int16), backpressure=1.5)


def test_build_says_when_it_waits_for_another_build(tmp_path, monkeypatch):
    from filelock import FileLock
    monkeypatch.setenv("OPENEIE_BUILD_DIR", str(tmp_path))
    config = sw.Config(n_pe=1, weight_depth=64, pointer_depth=16, row_depth=8, max_layers=1)
    key = f"{config.key()}-{build_module._sources_digest()}"
    lines, result = [], {}
    with FileLock(str(tmp_path / key) + ".lock"):              # another process is building it
        thread = threading.Thread(target=lambda: result.update(info=sim.build(config, progress=lines.append)))
        thread.start()
        for _ in range(100):
            if lines:
                break
            time.sleep(0.05)
        assert lines and lines[0].startswith("waiting for another process that is building this model")
        (tmp_path / key).mkdir()
        (tmp_path / key / "built.json").write_text("{}")       # ... and it finishes
    thread.join(timeout=30)
    assert result["info"].cached


def test_progress_bar(job, capfd):
    image, path = job
    x = np.load(path / "x.npy")
    result = sim.run(image, x, progress_bar=True, progress=None)
    assert np.array_equal(result.outputs, sw.golden.run(image, x))
    err = capfd.readouterr().err
    assert "simulating: 100%" in err and "3/3" in err and "cycles" in err
    assert set(result.phases) == {"build", "simulate", "metrics"}
    assert result.summary()["phases_seconds"]["simulate"] > 0


def test_default_model_takes_any_configuration(monkeypatch, tmp_path):
    # make sim CONFIG="--input-width 8 --broadcast-width 2": the default model
    # is packed for that configuration (the simulation itself is stopped here)
    import sim.cli
    seen = {}

    def capture(image, x, **k):
        seen.update(config=image.config, shape=x.shape, balanced=image.balanced)
        raise KeyboardInterrupt

    def job(*options):
        seen.clear()
        with pytest.raises(KeyboardInterrupt):
            main([*options, "--vectors", "5", "--report", str(tmp_path / "r.json")])
        return seen

    monkeypatch.setattr(sim.cli, "run", capture)
    # the job's own defaults: four vectors a run (5 vectors: two runs of 4 x 64 inputs), JOB_CONFIG
    assert job("--n-pe", "4") == {"config": sw.Config(n_pe=4, input_width=8, broadcast_width=2, fifo_depth=16),
                                  "shape": (2, 256), "balanced": True}
    # every one of them can be given back
    assert job("--batch", "1", "--no-balance", "--input-width", "1", "--broadcast-width", "1",
               "--fifo-depth", "8") == {"config": sw.Config(), "shape": (5, 64), "balanced": False}
    # a preset is taken as it is, one vector a run unless --batch says otherwise
    assert job("--preset", "ice40-up5k") == {"config": sw.Config.preset("ice40-up5k"), "shape": (5, 64),
                                             "balanced": True}
    assert job("--preset", "ecp5-85f", "--batch", "2")["shape"] == (3, 128)
    assert main(["--broadcast-width", "3", "--report", str(tmp_path / "r.json")]) == 2    # Config's own check


def test_batched_image_runs_per_vector(job, tmp_path, capsys):
    # an image packed with `python -m sw pack --batch 2` takes per-vector inputs
    # with --batch 2; every output is checked on the RTL (3 vectors: two runs)
    import json
    image, path = job
    model = sw.unpack(image)
    sw.pack(sw.batched(model, 2), image.config).save(tmp_path / "two")
    x = np.load(path / "x.npy")
    labels = sw.golden.run(image, x).argmax(axis=1)
    np.save(path / "labels.npy", labels)
    report = tmp_path / "r.json"
    assert main(["--image", str(tmp_path / "two"), "--input", str(path / "x.npy"), "--batch", "2",
                 "--labels", str(path / "labels.npy"), "--report", str(report), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 input vectors on the RTL (cocotb + Verilator), 2 a run (2 runs)" in out
    assert "accuracy on 3 labelled vectors: RTL 100.00%, golden 100.00%" in out
    r = json.loads(report.read_text())
    assert r["bit_exact"] and r["batch"] == 2 and r["summary"]["runs"] == 2 and r["summary"]["vectors"] == 3
    assert r["summary"]["cycles_per_vector"] == pytest.approx(r["summary"]["cycles_per_run"] * 2 / 3)
    assert r["layers"][0]["n_in"] == 9


@pytest.mark.parametrize("extra,message", [
    (["--batch", "2"], "9 inputs and 7 outputs do not split into 2 copies"),
    (["--no-balance"], "--no-balance applies to the default model"),
])
def test_batch_options_are_checked(job, no_simulation, capsys, extra, message):
    _, path = job
    assert main(["--image", str(path / "img"), "--input", str(path / "x.npy"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_batched_image_wants_vectors_of_one_copy(job, no_simulation, tmp_path, capsys):
    image, path = job
    sw.pack(sw.batched(sw.unpack(image), 2), image.config).save(tmp_path / "two")
    np.save(tmp_path / "wide.npy", np.zeros((2, 18), dtype=np.int16))
    assert main(["--image", str(tmp_path / "two"), "--input", str(tmp_path / "wide.npy"), "--batch", "2"]) == 2
    assert "with --batch 2 the image takes vectors of 9 values (2 a run)" in capsys.readouterr().err
