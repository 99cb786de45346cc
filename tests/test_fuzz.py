"""The random campaign (`make fuzz`) on a small scale: it counts what it
checked, and it finds, reports and shrinks a mismatch planted in the
golden model."""

import json

import numpy as np

import sw
from sim import fuzz


def test_random_configurations_are_accepted_by_the_hardware():
    from hw.accelerator import queue_slack
    rng = np.random.default_rng(0)
    for _ in range(50):
        config = fuzz.random_config(rng, 16)
        assert config.n_pe <= 16 and config.fifo_depth > queue_slack(config)


def test_a_clean_campaign_and_a_planted_mismatch(tmp_path, monkeypatch):
    monkeypatch.setattr(fuzz, "OUT", tmp_path)
    config = sw.Config(n_pe=1)                          # the suite's own build
    clean = fuzz.fuzz_config(np.random.default_rng(3), config, 40, 2, tmp_path, "clean")
    assert clean["vectors"] >= 40 and clean["output_mismatches"] == 0 and clean["cycle_mismatches"] == 0
    assert clean["failures"] == []

    real = sw.golden.run

    def off_by_one(image, x, exits=False, **kw):        # the golden model disagrees on vector 2 only
        y, taken = real(image, x, exits=True, **kw)
        y = y.copy()
        if len(y) > 2:
            y[2, 0] ^= 1
        return (y, taken) if exits else y

    monkeypatch.setattr(sw.golden, "run", off_by_one)
    bad = fuzz.fuzz_config(np.random.default_rng(3), config, 40, 2, tmp_path, "bad")
    assert bad["output_mismatches"] >= 2 and bad["cycle_mismatches"] == 0      # one vector in each image
    failure = bad["failures"][0]
    assert failure["vector"] == 2
    case = tmp_path / "failures" / "bad-0"
    assert np.load(case / "x.npy").shape[0] == 1 and (case / "image" / "manifest.json").is_file()
    assert failure["passes_alone"] is True              # alone it is vector 0, which the plant leaves alone
    json.dumps(bad)                                     # the report is plain JSON


def test_a_failure_that_needs_one_input_shrinks_to_it(tmp_path, monkeypatch):
    """A planted bug that shows whenever input 3 is nonzero: the shrunk case
    keeps input 3 and nothing else, and still fails alone."""
    monkeypatch.setattr(fuzz, "OUT", tmp_path)
    config = sw.Config(n_pe=1)
    rng = np.random.default_rng(5)
    image = fuzz.random_image(rng, config)
    x = np.zeros((1, image.n_in), dtype=np.int64)
    x[0, :] = rng.integers(1, 50, image.n_in)
    real = sw.golden.run

    def wrong_on_input_3(image, x, exits=False, **kw):
        y, taken = real(image, x, exits=True, **kw)
        y = y.copy()
        y[x[:, 3] != 0, 0] ^= 1
        return (y, taken) if exits else y

    monkeypatch.setattr(sw.golden, "run", wrong_on_input_3)
    failure = fuzz._shrink(image, x, 0, tmp_path / "case")
    assert failure["passes_alone"] is False and failure["nonzeros"] == image.n_in
    kept = np.load(tmp_path / "case" / "x.npy")
    assert failure["nonzeros_minimized"] == 1 and np.flatnonzero(kept[0]).tolist() == [3]
