"""Replicas (engine/replicas.py): R networks of one program run as one, each
replica's loss and gradients equal to its own network's, with either engine
(the compiled loops over R * B rows, engine/compile/replica_scan.py, and the
plain loop), on every spec that runs as replicas and on random valid graphs
(dense, diagonal, scalar and identity edges, product nodes, delays)."""

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnngraph as rg
from rnngraph.engine.compile import runtime
from rnngraph.engine.gradcheck import random_problem
from rnngraph.engine.replicas import Replicas, unsupported
from test_executor import random_specs   # hypothesis strategy: random valid specs (float64)

SPECS = sorted(Path(__file__).resolve().parent.parent.joinpath("specs").glob("*.yaml"))
ENGINES = ("compiled", "simple")


def time_major(arrays: list) -> np.ndarray:
    """Each replica's (B, T, size) array as one (T, R, B, size) array."""
    return np.ascontiguousarray(np.stack([np.swapaxes(a, 0, 1) for a in arrays], axis=1))


def check_replicas(spec, R=3, T=4, B=2, seed=0) -> bool:
    """Each of R replicas (seeds seed .. seed + R - 1, each on its own random
    problem) against its own network, with both engines; False when the
    program does not run as replicas."""
    nets = [rg.build(spec, seed=seed + r, dtype="float64") for r in range(R)]
    if unsupported(nets[0]) is not None or not nets[0].output_nodes or not nets[0].trainable:
        return False
    problems = [random_problem(net, T=T, B=B, seed=seed + r) for r, net in enumerate(nets)]
    loss = problems[0][3]
    xs = {n: time_major([p[0][n] for p in problems]) for n in problems[0][0]}
    ys = {n: time_major([p[1][n] for p in problems]) for n in problems[0][1]}
    initial = {n: np.stack([p[2][n] for p in problems]) for n in problems[0][2]} or None
    wanted = [net.loss_and_grad(p[0], p[1], loss=loss, initial=p[2] or None, steps=T)
              for net, p in zip(nets, problems)]
    for engine in ENGINES:
        for repeat in range(2):   # the second call reuses the compiled loops' workspace
            replicas = Replicas(nets, engine)
            losses, grads, _ = replicas.step(xs, ys, {}, loss, T, B, initial=initial)
            for r, (want_loss, want_grads) in enumerate(wanted):
                where = f"{engine}, replica {r}, call {repeat}"
                assert losses[r] == pytest.approx(want_loss, rel=1e-10, abs=1e-12), where
                assert set(grads) == set(want_grads), where
                for name, g in want_grads.items():
                    np.testing.assert_allclose(grads[name][r].reshape(np.shape(g)), g, rtol=1e-8, atol=1e-10,
                                               err_msg=f"gradient of {name} ({where})")
    return True


def _runs_as_replicas(path) -> bool:
    """A spec whose network trains by BPTT on outputs and that ``unsupported`` allows
    (Hopfield storage, RTRL's dropout-free twin and the like are left to their own tests)."""
    spec = rg.load_spec(path)
    if spec.task and spec.task.get("generator") == "patterns":
        return False
    net = rg.build(spec)
    return unsupported(net) is None and bool(net.output_nodes) and bool(net.trainable)


REPLICA_SPECS = [p for p in SPECS if _runs_as_replicas(p)]


@pytest.mark.parametrize("layout", ["small", "large"])
@pytest.mark.parametrize("path", REPLICA_SPECS, ids=[p.stem for p in REPLICA_SPECS])
def test_every_spec_replicas_equal_their_own_networks(path, layout, monkeypatch):
    """``large``: every stage laid out for memory (derivatives per step, hoisted inputs
    as pre-activation buffers), as a sweep's batch of many replicas is."""
    if layout == "large":
        monkeypatch.setattr(runtime, "LARGE_STAGE_BYTES", 0)
    assert check_replicas(rg.load_spec(path))


def test_the_specs_checked_include_every_weight_kind_and_a_gated_cell():
    """The per-spec test above is not all skips: these run as replicas."""
    for name in ("elman_temporal_xor", "lstm_reber", "lstm_cifg_anbn", "jordan", "gru_adding"):
        assert check_replicas(rg.load_spec(SPECS[0].parent / f"{name}.yaml"), R=2, T=3, B=2), name


@settings(max_examples=int(os.environ.get("RG_RANDOM_GRAPHS", 60)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.integers(1, 5), st.integers(0, 2 ** 16), st.integers(1, 3))
def test_random_graphs_replicas_equal_their_own_networks(data, T, seed, B):
    check_replicas(rg.parse_spec(yaml.safe_dump(data, sort_keys=False)), R=3, T=T, B=B, seed=seed)
