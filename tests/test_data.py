"""The generated data (data.py): determinism across runs and machines, seed/step/eval stream
separation, the Markov chain's entropy rate, and the statistics each workload's data promises."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from transferbench.workloads.llama.data import MarkovTokens
from transferbench.workloads.mlp.data import TeacherRegression
from transferbench.workloads.resnet.data import TemplateImages


@pytest.fixture(scope="module")
def markov() -> MarkovTokens:
    return MarkovTokens(64, 32, 8, order=2, branching=6, zipf_exponent=1.0, data_seed=3)


def sources() -> list:
    return [
        MarkovTokens(32, 16, 4, order=2, branching=4, data_seed=7),
        TemplateImages(8, 10, 4, data_seed=7),
        TeacherRegression(16, 8, 4, data_seed=7),
    ]


def test_data_module_does_not_import_torch():
    code = ("import sys, transferbench.data, transferbench.data.kinds, transferbench.workloads.llama.data, "
            "transferbench.workloads.resnet.data, transferbench.workloads.mlp.data; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("index", range(3))
def test_same_seed_same_batch_different_seed_or_step_different(index):
    a, b = sources()[index], sources()[index]  # two independent constructions of the same task
    for seed, step in ((0, 0), (1, 5)):
        for u, v in zip(a.train_batch(seed, step), b.train_batch(seed, step), strict=True):
            assert np.array_equal(u, v)
    x0 = a.train_batch(0, 3)[0]
    assert not np.array_equal(x0, a.train_batch(1, 3)[0])  # other seed
    assert not np.array_equal(x0, a.train_batch(0, 4)[0])  # other step
    e0 = a.eval_batch(0)[0]
    assert np.array_equal(e0, b.eval_batch(0)[0])
    assert not np.array_equal(e0, a.eval_batch(1)[0])
    assert not any(np.array_equal(e0, a.train_batch(s, t)[0]) for s in range(3) for t in range(3))


def test_pinned_checksums():
    """Pins the generators bit for bit (derived once, on the machine that wrote them). If this fails,
    the data changed: every stored result was made with different data. Change it only on purpose.
    Floats are compared to 1e-5 relative, so last-ulp libm/BLAS differences across machines pass."""
    m, img, reg = sources()
    x, y = m.train_batch(seed=1, step=2)
    tokens = np.ascontiguousarray(np.concatenate([x, y[:, -1:]], axis=1), dtype="<i8")
    assert hashlib.sha256(tokens.tobytes()).hexdigest() == (
        "9bbfaca951bf66f29c3b90751ff5a7267cf53ef75204abe1cdb30d8470105417"
    )
    assert x[0].tolist() == [30, 18, 25, 10, 9, 13, 31, 10, 14, 4, 14, 30, 10, 14, 4, 14]
    assert m.entropy_rate == pytest.approx(0.8446054130107321, rel=1e-9)
    x, y = img.train_batch(seed=1, step=2)
    assert y.tolist() == [7, 9, 0, 4]
    assert float(x.astype(np.float64).sum()) == pytest.approx(-58.58573221229017, rel=1e-5)
    assert float(np.abs(x).astype(np.float64).sum()) == pytest.approx(1287.7334805168211, rel=1e-5)
    first = [6.25566291809082, 4.070312976837158, 3.766326904296875]
    assert x[0, 0, 0, :3].tolist() == pytest.approx(first, rel=1e-5)
    x, y = reg.train_batch(seed=1, step=2)
    assert float(x.astype(np.float64).sum()) == pytest.approx(7.442953132092953, rel=1e-5)
    assert y[0, :3].tolist() == pytest.approx([1.1563462018966675, 0.17930865287780762, 1.124371886253357],
                                              rel=1e-5)


def test_task_depends_only_on_data_seed():
    a = MarkovTokens(32, 16, 4, data_seed=1)
    assert np.array_equal(a.succ, MarkovTokens(32, 16, 8, data_seed=1).succ)  # batch size is not the task
    assert not np.array_equal(a.succ, MarkovTokens(32, 16, 4, data_seed=2).succ)
    assert not np.array_equal(TemplateImages(8, 10, 4, data_seed=1).templates,
                              TemplateImages(8, 10, 4, data_seed=2).templates)
    assert not np.array_equal(TeacherRegression(16, 8, 4, data_seed=1).weights[0],
                              TeacherRegression(16, 8, 4, data_seed=2).weights[0])


@pytest.mark.parametrize("index", range(3))
def test_info_is_json(index):
    info = sources()[index].info()
    assert json.loads(json.dumps(info)) == info
    assert info["kind"]


# -- Markov tokens ----------------------------------------------------------------------------------


def test_markov_batches(markov):
    x, y = markov.train_batch(0, 0)
    assert x.shape == y.shape == (8, 32) and x.dtype == np.int64
    assert np.array_equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    assert x.min() >= 0 and max(x.max(), y.max()) < 64
    assert np.isfinite(markov.nll(np.concatenate([x, y[:, -1:]], axis=1))).all()  # only allowed moves


def test_markov_chain_is_sparse_and_stationary(markov):
    assert ((markov.prob > 0).sum(axis=1) <= 6).all()
    np.testing.assert_allclose(markov.prob.sum(axis=1), 1.0, rtol=1e-12)
    pi = markov.stationary
    moved = np.bincount(markov.next_state.ravel(), weights=(pi[:, None] * markov.prob).ravel(),
                        minlength=markov.n_states)
    assert np.abs(moved - pi).sum() < 1e-9
    assert pi.sum() == pytest.approx(1.0)


def test_markov_entropy_rate_matches_a_long_sample(markov):
    from transferbench.data import rng

    tokens = markov.sample_tokens(rng(99, 99), 64, 2048)  # 130k transitions from stationary starts
    empirical = float(markov.nll(tokens).mean())
    assert empirical == pytest.approx(markov.entropy_rate, abs=0.02)
    assert 0.1 < markov.entropy_rate < markov.unigram_entropy() < math.log(64)
    info = markov.info()
    assert info["entropy_rate"] <= info["optimal_loss"] < info["uniform_loss"]


def test_markov_marginals_are_zipf_like(markov):
    from transferbench.data import rng

    counts = np.sort(np.bincount(markov.sample_tokens(rng(5), 64, 512).ravel(), minlength=64))[::-1]
    assert counts[0] > 4 * np.median(counts)  # a few tokens dominate, as with Zipfian popularity


def test_markov_default_size_is_fast():
    start = time.perf_counter()
    m = MarkovTokens(256, 128, 16, order=2, branching=8, data_seed=0)
    build = time.perf_counter() - start
    start = time.perf_counter()
    for step in range(20):
        m.train_batch(0, step)
    per_batch = (time.perf_counter() - start) / 20
    assert build < 3.0 and per_batch < 0.02  # ~0.3 s and ~1 ms unloaded; loose bounds for busy CI
    assert m.entropy_rate < math.log(256)


# -- images and teacher regression ----------------------------------------------------------------------


def test_images_cover_all_classes():
    src = TemplateImages(16, 10, 256, data_seed=0)
    x, y = src.eval_batch(0)
    assert x.shape == (256, 3, 16, 16) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(y).tolist()) == set(range(10))
    assert np.isfinite(x).all() and 0.5 < x.std() < 5.0


def test_teacher_targets_have_unit_variance_and_the_stated_noise():
    src = TeacherRegression(16, 8, 512, label_noise=0.1, data_seed=0)
    xs, ys = zip(*(src.train_batch(0, t) for t in range(16)), strict=True)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (8192, 16) and y.shape == (8192, 8)
    assert y.var(axis=0).mean() == pytest.approx(1.0 + 0.1**2, abs=0.05)
    assert abs(y.mean()) < 0.05
    residual = y - src.teacher(x.astype(np.float64))
    assert residual.std() == pytest.approx(0.1, rel=0.05)
    assert src.info()["noise_floor"] == pytest.approx(0.01)
