"""The RTL under Verilator against the golden model, bit for bit.

One simulator launch per PE count runs every case in sequence (building the
model once and starting it once keeps the default run short); each test
below checks one case's results. Every output integer of every vector is
compared with `sw.golden.run` on the same image, and every PE's busy cycles
with the image's ``work_k`` (docs/design.md §8): the hardware issues
exactly one entry per busy cycle.
"""

import numpy as np
import pytest
import scipy.sparse as sp

import sim
import sw
from sw import perf
from sim.runner import make_result, make_run_step
from sw.fixedpoint import signed_range

from models import padding_model, random_inputs, random_model

# the default widths at every PE count, then other widths (input streams of
# 4 and 2 values a beat, broadcasts of 2 activations a cycle), to hold the
# hardware to its claim of being parametrised by sw.Config alone
CONFIGS = {
    **{f"{n}pe": sw.Config(n_pe=n) for n in (1, 2, 4, 16)},
    "16pe-wide": sw.Config(n_pe=16, input_width=4, broadcast_width=2, fifo_depth=16),
    "4pe-narrow": sw.Config(n_pe=4, code_bits=3, run_bits=2, entries_per_word=4, act_bits=8, weight_bits=8,
                            acc_bits=24, fifo_depth=4, input_width=4, broadcast_width=2, weight_depth=4096,
                            pointer_depth=1024,
                            row_depth=64,
                            max_layers=4, column_fifo_depth=3),          # two column FIFOs in registers
    "2pe-odd": sw.Config(n_pe=2, code_bits=2, run_bits=3, entries_per_word=1, act_bits=12, weight_bits=10,
                         acc_bits=20, fifo_depth=4, input_width=2, weight_depth=2048, pointer_depth=512,
                         row_depth=128,
                         max_layers=4, exit_heads=0,             # built without the exit test
                         column_fifo_depth=3, busy_logs=0),      # the shallowest column FIFO; no busy counts
    # the iCEBreaker's: the short pipeline (Config.short_pipeline), SPRAM-sized sparse matrix
    "up5k": sw.Config.preset("ice40-up5k"),
}
SUITES = [*CONFIGS, pytest.param("64pe", marks=pytest.mark.slow)]
BATCHED = {}        # per configuration, the model its "batched" case runs three copies of


def same_row_model(config: sw.Config, n_in: int = 24):
    """One output row per PE and full columns: every entry a PE processes
    updates the same row as the one before it (forwarding, every cycle)."""
    codes = np.ones((config.n_pe, n_in), dtype=np.int64)
    codes[:, ::3] = 2
    codebook = np.array([0, 3, -5] + [0] * 13)
    bias = np.arange(config.n_pe) * 7 - 20
    return sw.CompressedModel([sw.CompressedLayer(codes, codebook[:3], bias, False, 2, 1, 1)], 2)


def saturates_both_ways(image, x) -> bool:
    """Whether some layer's output reaches the largest activation and some the smallest."""
    layers = np.concatenate([y.reshape(-1) for y in sw.golden.run(image, x, trace=True)])
    lo, hi = signed_range(image.config.act_bits)
    return bool((layers == hi).any() and (layers == lo).any())


def extreme_case(rng, config: sw.Config):
    """Extreme weights and inputs whose layers reach both saturation limits
    (the first of a few draws that does: whether one does depends on the
    widths)."""
    for _ in range(20):
        image = sw.pack(random_model(rng, config, [20, 30, 9], extreme=True, relu=[True, False]), config)
        x = random_inputs(rng, 4, 20, config.act_bits, density=0.7, extreme=True)
        if saturates_both_ways(image, x):
            return image, x
    raise AssertionError(f"no extreme case reaches both limits for {config}")


def cases(config: sw.Config, tmp_path):
    """The images and steps of the suite, for one configuration."""
    rng = np.random.default_rng(config.n_pe)
    main = sw.pack(random_model(rng, config, [40, 56, 33, 12]), config)
    x_main = random_inputs(rng, 6, 40, config.act_bits, density=0.5)
    x_main[1] = 0                                              # all-zero input
    x_main[2] = random_inputs(rng, 1, 40, config.act_bits, density=1.0, extreme=True)[0]
    x_main[3] = random_inputs(rng, 1, 40, config.act_bits, density=1.0)[0]
    others = {
        "padding": (sw.pack(padding_model(config, rows_per_pe=40), config),
                    random_inputs(rng, 3, 6, config.act_bits, density=0.8)),
        "same_row": (sw.pack(same_row_model(config), config),
                     random_inputs(rng, 3, 24, config.act_bits, density=0.9)),
        "extreme": extreme_case(rng, config),
    }

    def step(name, image, x, **kw):
        path = tmp_path / f"{name}-{len(steps)}.npy"
        np.save(path, x)
        return make_run_step(image, path, **kw)

    steps, expect = [], []
    steps.append(step("main", main, x_main, idle=0.3, backpressure=0.3, seed=1))
    expect.append(("main", main, x_main))
    for after, wait in ((10, 0), (40, 150)):                   # reset mid-input, and mid-layer
        steps.append({**step("main", main, x_main[:1]), "op": "abort", "after_cycles": after,
                      "wait_cycles": wait})
    steps.append(step("after_reset", main, x_main))
    expect.append(("after_reset", main, x_main))
    # timing cases for the cycle model: densities from padding-heavy to
    # dense, several layers (the scanners and the nonzero tree), zero inputs
    wide = [90, 70, 40, 9] if config.pointer_depth >= 512 else [60, 50, 30, 9]   # (the ice40-up5k preset's 256 slots)
    for i, (density, dims) in enumerate(((0.03, [50, 3 * config.n_pe + 5, 17]), (0.3, wide),
                                         (0.9, [30, 2 * config.n_pe, 5]))):
        image = sw.pack(random_model(rng, config, dims, density=density), config)
        x = random_inputs(rng, 3, dims[0], config.act_bits, density=(0.2, 0.6, 1.0)[i])
        x[0, : dims[0] // 2] = 0                                # a long run of zero inputs
        others[f"timing_{i}"] = (image, x)
    # rows placed to even the PEs' work: the RTL's outputs leave in hardware
    # order and come back in the model's
    balanced = sw.pack(random_model(rng, config, [36, 3 * config.n_pe + 7, 11]), config, balance=True)
    assert balanced.balanced or config.n_pe == 1          # one PE: every order is its own
    others["balanced"] = (balanced, random_inputs(rng, 3, 36, config.act_bits, density=0.7))
    # and each PE's rows reordered for fewer padding entries (a sparse layer, so that there are some)
    short = sw.pack(random_model(rng, config, [40, 24 * config.n_pe, 9], density=0.04), config, balance=True,
                    shorten_runs=True)
    others["short_runs"] = (short, random_inputs(rng, 3, 40, config.act_bits, density=0.7))
    # three vectors a run (sw.batched: block-diagonal copies, balanced rows)
    single = random_model(rng, config, [12, 2 * config.n_pe + 3, 7])
    others["batched"] = (sw.pack(sw.batched(single, 3), config, balance=True),
                         sw.stack(random_inputs(rng, 5, 12, config.act_bits, density=0.7), 3))
    BATCHED[config] = single
    for name, (image, x) in others.items():
        image.save(tmp_path / name)
        steps.append({"op": "load", "image": str(tmp_path / name)})
        steps.append(step(name, image, x))
        expect.append((name, image, x))
    return main, steps, expect


@pytest.fixture(scope="module", params=SUITES)
def suite(request, tmp_path_factory):
    config = CONFIGS.get(request.param) or sw.Config(n_pe=64)
    main, steps, expect = cases(config, tmp_path_factory.mktemp(f"sim-{request.param}"))
    results, info, seconds, _ = sim.run_job(main, steps)
    out = {}
    index = 0
    for i, step in enumerate(steps):
        if step["op"] == "run":
            name, image, x = expect[index]
            out[name] = (image, x, make_result(image, x, results, f"s{i}", info, seconds, seconds))
            index += 1
    return out


def check(image, x, result):
    expected = sw.golden.run(image, x)
    assert result.outputs.shape == expected.shape
    bad = np.argwhere(result.outputs != expected)
    assert bad.size == 0, (f"{len(bad)} outputs differ; first: vector {bad[0][0]}, output {bad[0][1]}: "
                           f"RTL {result.outputs[bad[0][0], bad[0][1]]}, golden {expected[bad[0][0], bad[0][1]]}")
    if image.config.busy_logs:
        assert np.array_equal(result.pe_busy, result.extra["work"]), "busy cycles differ from work_k"
    else:
        assert result.pe_busy is None
    assert np.all(result.layer_cycles >= result.ideal_cycles)


def test_random_model_with_idle_inputs_and_backpressure(suite):
    check(*suite["main"])


def test_clean_run_after_soft_reset_mid_run(suite):
    check(*suite["after_reset"])


def test_padding_and_empty_columns(suite):
    check(*suite["padding"])


def test_back_to_back_updates_of_one_row(suite):
    image, x, result = suite["same_row"]
    check(image, x, result)
    # one entry per cycle even though every entry updates the same row: no stall for forwarding
    assert image.layers[0].rows == 1


def test_saturation_and_wrapping(suite):
    image, x, result = suite["extreme"]
    check(image, x, result)
    assert saturates_both_ways(image, x)                        # both limits reached on the way


def test_cycle_model_matches_the_rtl(suite):
    # every counter the RTL reports, predicted exactly by sw.perf (the runs
    # where the input stream offers a value in every cycle and the output is
    # always ready: all but the first, which has idle inputs and backpressure)
    for name, (image, x, result) in suite.items():
        if name == "main":
            continue
        model = perf.simulate(image, x)
        for counter, rtl in result.counters().items():
            predicted = getattr(model, counter)
            bad = np.argwhere(np.asarray(rtl != predicted).reshape(len(x), -1))
            assert bad.size == 0, (f"{name}: {counter} of vector {bad[0][0]}: RTL {rtl[bad[0][0]].tolist()}, "
                                   f"model {predicted[bad[0][0]].tolist()}")
        assert np.array_equal(result.efficiency, model.efficiency, equal_nan=True)


def test_balanced_image(suite):
    check(*suite["balanced"])


def test_image_with_shortened_runs(suite):
    check(*suite["short_runs"])


def test_batched_image(suite):
    # every vector of a run gets what the model alone gives it (the last run
    # is filled with a zero vector)
    image, x, result = suite["batched"]
    check(image, x, result)
    single = BATCHED[image.config]
    vectors = sw.unstack(x, 3, 5)
    alone = sw.golden.run(sw.pack(single, image.config), vectors)
    assert np.array_equal(sw.unstack(result.outputs, 3, 5), alone)


def test_images_loaded_over_the_host_port(suite):
    # the last three cases ran images written through the host port into the
    # model built (and started) once for the first image
    for name in set(suite) - {"main", "after_reset"}:
        assert suite[name][2].build is suite["main"][2].build


def test_sim_run_api_and_rebuild_cache(tmp_path):
    config = sw.Config(n_pe=2)
    rng = np.random.default_rng(5)
    image = sw.pack(random_model(rng, config, [9, 7]), config)
    x = random_inputs(rng, 3, 9, config.act_bits)
    first = sim.run(image, x)
    assert np.array_equal(first.outputs, sw.golden.run(image, x))
    other = sw.pack(random_model(rng, config, [5, 11, 4]), config)
    x2 = random_inputs(rng, 2, 5, config.act_bits)
    second = sim.run(other, x2)
    assert second.build.cached and second.build.build_dir == first.build.build_dir
    assert np.array_equal(second.outputs, sw.golden.run(other, x2))
    assert second.efficiency.shape == (2, 2)
    with pytest.raises(TypeError, match="must be integers"):
        sim.run(image, x.astype(float))


def test_sparse_wide_layer_efficiency():
    """A layer big enough for the steady state: efficiency near 1 at 4 PEs."""
    config = sw.Config(n_pe=4)
    rng = np.random.default_rng(9)
    codes = sp.random(256, 512, density=0.2, random_state=3, data_rvs=lambda n: rng.integers(1, 16, n)).astype(np.int64)
    layer = sw.CompressedLayer(codes, np.concatenate([[0], rng.integers(-50, 50, 15)]), None, True, 4, 4, 4)
    image = sw.pack(sw.CompressedModel([layer], 4), config)
    x = random_inputs(rng, 2, 512, config.act_bits, density=0.35)
    result = sim.run(image, x)
    check(image, x, result)
    assert result.efficiency.min() > 0.9, result.efficiency


def test_prune_stale_builds(tmp_path, monkeypatch):
    """Builds of other hardware sources go; the current ones, the run
    directories and a build whose lock is held stay."""
    import importlib

    from filelock import FileLock
    build = importlib.import_module("sim.build")      # `sim.build` is also the function
    (tmp_path / "pyproject.toml").touch()
    monkeypatch.setattr(build, "_ROOT", tmp_path)
    monkeypatch.delenv("OPENEIE_BUILD_DIR", raising=False)
    root = tmp_path / "build" / "sim"
    digest = build._sources_digest()
    keep = [f"aaaa-{digest}", f"bbbb-{digest}-waves", "runs", "cccc-0123456789ab"]
    gone = ["aaaa-0123456789ab", "bbbb-0123456789ab-waves", "dddd-ba9876543210"]
    for name in keep + gone:
        (root / name / "obj").mkdir(parents=True)
    with FileLock(str(root / "cccc-0123456789ab") + ".lock"):       # a build in progress elsewhere
        removed = build.prune_stale_builds()
    assert sorted(p.name for p in removed) == sorted(gone)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(keep)

    # a build passes the sources it was made from: edited meanwhile, they do not make it delete itself
    (root / "ffff-0123456789ab" / "obj").mkdir(parents=True)
    removed = build.prune_stale_builds("0123456789ab")
    assert sorted(p.name for p in removed) == sorted([f"aaaa-{digest}", f"bbbb-{digest}-waves"])
    assert (root / "ffff-0123456789ab").is_dir() and (root / "cccc-0123456789ab").is_dir()

    monkeypatch.setenv("OPENEIE_BUILD_DIR", str(root))                # a shared cache: never pruned
    (root / "eeee-0123456789ab").mkdir()
    assert build.prune_stale_builds() == []


def test_sources_digest_is_of_the_imported_sources(monkeypatch):
    """The key of cached builds is the hardware as this process imported it:
    a source edited on disk meanwhile (during a long test run) must not key
    a build of the design in memory."""
    from pathlib import Path

    from hw import sources
    from hw.export import sources_digest
    before = sources_digest()
    assert sources.SNAPSHOT == sources.read_sources()
    hw_dir = sources.HW_DIR
    real = Path.read_bytes

    def edited(path):
        text = real(path)
        return text + b"# edited" if path.resolve().parent == hw_dir else text

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert sources.read_sources() != sources.SNAPSHOT         # the files now say something else
    assert sources_digest() == before


def test_waveform(tmp_path):
    """`waves=True` writes an FST waveform (VCD where lz4 is missing) of a
    run whose outputs are still checked."""
    import importlib
    build = importlib.import_module("sim.build")
    config = sw.Config(n_pe=1, weight_depth=256, pointer_depth=64, row_depth=16, max_layers=2)
    rng = np.random.default_rng(11)
    image = sw.pack(random_model(rng, config, [6, 5]), config)
    x = random_inputs(rng, 2, 6, config.act_bits)
    result = sim.run(image, x, waves=True, waves_path=tmp_path / "run")
    assert np.array_equal(result.outputs, sw.golden.run(image, x))
    path = result.extra["waves"]
    data = path.read_bytes()
    if build.fst_flags():
        # an FST file opens with its header block: type 0, then the block's length
        assert path.suffix == ".fst" and data[0] == 0 and int.from_bytes(data[1:9], "big") == 329
    else:
        assert path.suffix == ".vcd" and b"$enddefinitions" in data
    assert len(data) > 1000


@pytest.mark.slow
def test_ten_thousand_random_vectors_against_golden_and_cycle_model(tmp_path):
    # the opt-in campaign (make test-slow): 10,080 random vectors on three
    # configurations (one launch each), three random images per
    # configuration (loaded through the host port), every output against the
    # golden model and every counter against the cycle model
    total = 0
    for name in ("2pe-odd", "4pe-narrow", "16pe"):
        config = CONFIGS[name]
        rng = np.random.default_rng(1000 + config.n_pe)
        steps, expect = [], []
        for i in range(3):
            dims = [int(rng.integers(4, 60))] + [int(rng.integers(1, 3 * config.n_pe + 20))
                                                 for _ in range(int(rng.integers(1, 4)))]
            image = sw.pack(random_model(rng, config, dims), config, balance=bool(i % 2))
            x = random_inputs(rng, 1120, dims[0], config.act_bits, density=float(rng.uniform(0.05, 1.0)))
            x[rng.random(len(x)) < 0.05] = 0                          # some all-zero vectors
            image.save(tmp_path / f"{name}-{i}")
            path = tmp_path / f"{name}-{i}.npy"
            np.save(path, x)
            if i:
                steps.append({"op": "load", "image": str(tmp_path / f"{name}-{i}")})
            steps.append(make_run_step(image, path))
            expect.append((image, x, len(steps) - 1))
        results, info, seconds, _ = sim.run_job(expect[0][0], steps, progress=None)
        for image, x, index in expect:
            result = make_result(image, x, results, f"s{index}", info, seconds, seconds)
            check(image, x, result)
            model = perf.simulate(image, x)
            for counter, measured in result.counters().items():
                assert np.array_equal(measured, getattr(model, counter)), (name, counter)
            total += len(x)
    assert total >= 10_000
