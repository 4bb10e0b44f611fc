"""pytest-benchmark suite: the configs of `fastrnn bench` (its default suite), one test per config and engine.

    pip install -e ".[bench]"
    pytest bench/ --benchmark-only                         # every engine that is installed
    pytest bench/ --benchmark-only -k fastrnn --benchmark-json out.json
    pytest bench/ --benchmark-only --benchmark-compare     # against the last --benchmark-autosave run

Not part of `python -m pytest` (testpaths = tests). Unlike `fastrnn bench`, pytest-benchmark times one engine
after another, not interleaved; use it to track one engine over time, `fastrnn bench` to compare engines.
Each call takes a numpy input and returns a numpy output, as in `fastrnn bench`.
"""
import os

import numpy as np
import pytest

from fastrnn.benchmark import cases, peers

THREADS = int(os.environ.get("FASTRNN_BENCH_THREADS", os.cpu_count() or 1))
CONFIGS = cases.default_suite()
ENGINES = ("fastrnn", *peers.PEERS)


def _slug(config):
    return config.label.replace(" ", "-")


@pytest.fixture(scope="module")
def weights():
    cache = {}

    def get(config):
        if config.label not in cache:
            cache[config.label] = cases.random_state_dict(config)
        return cache[config.label]

    return get


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("config", CONFIGS, ids=_slug)
def test_engine(benchmark, weights, config, engine):
    state_dict = weights(config)
    if engine == "fastrnn":
        runner = peers.make_fastrnn(config, state_dict, THREADS)
    else:
        runners, missing = peers.make_peers(config, state_dict, THREADS, [engine])
        if missing:
            pytest.skip(f"{engine}: {missing[engine]}")
        runner = runners[0]
    x = cases.make_input(config)
    benchmark.group = config.label
    benchmark.extra_info.update(config=config.label, engine=engine, steps_per_call=config.steps_per_call,
                                threads=THREADS, note=runner.note)
    out = benchmark(runner, x)
    assert np.all(np.isfinite(out))
