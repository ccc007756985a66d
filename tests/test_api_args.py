"""Wrong arguments to the Python API raise the project's errors, never a Python error from inside.

Every public entry point (``rg.load_spec``, ``rg.parse_spec``, ``rg.build``,
``rg.expand``, ``Network.forward``, ``loss_and_grad``, ``backward_trace``,
``unroll``, ``save``, ``load``, ``store``, ``settle``, ``energy``) checks its
arguments first: a wrong type raises ``rg.ArgumentError`` (a ``DataError``,
so a ``ValueError``, and a ``TypeError``), a wrong value ``rg.DataError``;
the message names the argument and says what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnngraph as rg

ROOT = Path(__file__).resolve().parent.parent
B, T = 2, 5


@pytest.fixture(scope="module")
def spec():
    return rg.load_spec(ROOT / "specs/elman_temporal_xor.yaml")


@pytest.fixture
def net(spec):
    return rg.build(spec)


@pytest.fixture
def hop():
    return rg.build(rg.load_spec(ROOT / "specs/hopfield_discrete.yaml"))


def data(net):
    x = np.zeros((B, T, net.size("x")))
    y = np.zeros((B, T, net.size("y")))
    return {"x": x}, {"y": y}


def raises(kind, call, *phrases):
    with pytest.raises(rg.RnngraphError) as err:
        call()
    assert isinstance(err.value, kind), (type(err.value), err.value)
    for phrase in phrases:
        assert phrase in str(err.value), f"{phrase!r} not in {str(err.value)!r}"
    return err.value


# --------------------------------------------------------------------------- wrong types: ArgumentError, a TypeError

def test_parse_and_load_spec_need_text_and_a_path():
    for text in (None, 123, b"rnngraph: 1", ["rnngraph: 1"]):
        e = raises(TypeError, lambda: rg.parse_spec(text), "parse_spec", "str")
        assert isinstance(e, rg.ArgumentError) and isinstance(e, ValueError)
    for path in (None, 3, b"specs/mlp.yaml"):
        raises(TypeError, lambda: rg.load_spec(path), "load_spec", "path")
    raises(TypeError, lambda: rg.parse_spec("rnngraph: 1", overrides=["a=1"]), "overrides", "dict")
    raises(TypeError, lambda: rg.parse_spec("rnngraph: 1", overrides={1: 2}), "overrides", "dotted key")
    raises(TypeError, lambda: rg.load_spec(ROOT / "specs/mlp.yaml", overrides={("train", "epochs"): 2}), "overrides")


def test_build_and_expand_need_a_spec(spec):
    raises(TypeError, lambda: rg.build(None), "build", "Spec")
    raises(TypeError, lambda: rg.build("specs/mlp.yaml"), "build", "load_spec")
    raises(TypeError, lambda: rg.expand(None), "expand", "Spec")


@pytest.mark.parametrize("seed, kind", [(-1, rg.DataError), (1.5, TypeError), ("a", TypeError),
                                        (True, TypeError)])
def test_build_seed_is_an_integer_from_zero(spec, seed, kind):
    raises(kind, lambda: rg.build(spec, seed=seed), "seed", ">= 0")


@pytest.mark.parametrize("dtype, kind", [("int32", rg.DataError), ("foo", TypeError), (complex, rg.DataError),
                                         ("float16", rg.DataError)])
def test_build_dtype_is_float32_or_float64(spec, dtype, kind):
    raises(kind, lambda: rg.build(spec, dtype=dtype), "dtype", "float32")
    assert rg.build(spec, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("T, kind", [(-1, rg.DataError), (2.5, TypeError), ("3", TypeError), (True, TypeError)])
def test_unroll_T_is_an_integer_from_zero(net, T, kind):
    raises(kind, lambda: net.unroll(T), "unroll: T", ">= 0")


def test_unroll_initial_is_a_bool(net):
    raises(TypeError, lambda: net.unroll(3, initial="no"), "initial", "True or False")


@pytest.mark.parametrize("name, call", [
    ("inputs", lambda net, x, y: net.forward([x["x"]])),
    ("initial", lambda net, x, y: net.forward(x, initial=[1])),
    ("inputs['x']", lambda net, x, y: net.forward({"x": "abc"})),
    ("inputs['x']", lambda net, x, y: net.forward({"x": np.full((B, T, 1), None, dtype=object)})),
    ("inputs['x']", lambda net, x, y: net.forward({"x": x["x"] + 1j})),
    ("steps", lambda net, x, y: net.forward(x, steps=True)),
    ("targets", lambda net, x, y: net.loss_and_grad(x, [y["y"]])),
    ("targets['y']", lambda net, x, y: net.loss_and_grad(x, {"y": "abc"})),
    ("mask", lambda net, x, y: net.loss_and_grad(x, y, mask=[1])),
    ("loss", lambda net, x, y: net.loss_and_grad(x, y, loss=3)),
    ("loss", lambda net, x, y: net.loss_and_grad(x, y, loss=["mse"])),
    ("save: path", lambda net, x, y: net.save(None)),
    ("load: path", lambda net, x, y: net.load(3)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_wrong_types_to_the_network(net, name, call):
    x, y = data(net)
    raises(TypeError, lambda: call(net, x, y), name)


# --------------------------------------------------------------------------- wrong values: DataError

def test_unknown_keys_are_named(net):
    x, y = data(net)
    raises(rg.DataError, lambda: net.forward({1: x["x"]}), "unknown input 1", "'x'")
    raises(rg.DataError, lambda: net.forward({"x": x["x"], "y": x["x"]}), "'y'", "not an input node")
    raises(rg.DataError, lambda: net.loss_and_grad(x, {"z": y["y"]}), "targets", "'z'")
    raises(rg.DataError, lambda: net.loss_and_grad(x, y, mask={"x": np.ones((B, T))}), "mask", "'x'")
    raises(rg.DataError, lambda: net.forward(x, initial={"hiden": np.zeros((B, 4))}), "initial", "'hiden'")
    raises(rg.DataError, lambda: net.size("hiden"), "size", "'hiden'", "did you mean 'hidden'")
    raises(TypeError, lambda: net.size(None), "size", "str")
    raises(rg.DataError, lambda: net.loss_and_grad(x, None), "targets", "no targets")


def test_nan_in_net_params_is_refused_by_forward_and_loss_and_grad(net):
    x, y = data(net)
    name = next(iter(net.params))
    net.params[name][...] = np.nan
    for call in (lambda: net.forward(x), lambda: net.loss_and_grad(x, y), lambda: net.backward_trace(x, y)):
        raises(rg.DataError, call, f"net.params[{name!r}]", "NaN")


def test_infinite_param_is_refused(net):
    x, _ = data(net)
    name = list(net.params)[-1]
    net.params[name] = np.full(net.params[name].shape, np.inf, dtype=net.dtype)
    raises(rg.DataError, lambda: net.forward(x), name, "infinite")


@pytest.mark.parametrize("value, phrase", [(np.nan, "NaN"), (np.inf, "infinite"), (-1.0, "[0, 1]"),
                                           (2.0, "[0, 1]")])
def test_a_mask_must_be_finite_and_within_0_1(net, value, phrase):
    x, y = data(net)
    mask = np.ones((B, T))
    mask[1, 3] = value
    raises(rg.DataError, lambda: net.loss_and_grad(x, y, mask={"y": mask}), "mask['y']", phrase)


def test_a_one_step_target_points_at_the_mask(net):
    x, y = data(net)
    e = raises(rg.DataError, lambda: net.loss_and_grad(x, {"y": y["y"][:, :1]}), "targets['y']", f"({B}, {T}, 1)")
    assert "mask" in str(e) and "loss_on: last" in str(e)


def test_a_path_with_a_nul_character_is_refused(net):
    raises(rg.DataError, lambda: rg.load_spec("a\0b.yaml"), "load_spec: path", "NUL")
    raises(rg.DataError, lambda: net.save("a\0b.npz"), "save: path", "NUL")


def test_save_where_no_file_can_be_written(net, tmp_path):
    (tmp_path / "f").write_text("a file, not a directory")
    raises(rg.DataError, lambda: net.save(tmp_path / "f" / "p.npz"), "cannot write")


def test_save_to_a_directory_is_refused_and_writes_nothing(net, tmp_path):
    raises(rg.DataError, lambda: net.save(tmp_path), str(tmp_path), "directory", "params.npz")
    assert list(tmp_path.iterdir()) == []
    net.save(tmp_path / "p.npz")
    assert rg.build(net.spec).load(tmp_path / "p.npz").params.keys() == net.params.keys()


# --------------------------------------------------------------------------- Hopfield methods

def test_store_refuses_a_network_that_is_not_hopfield(net):
    before = {k: v.copy() for k, v in net.params.items()}
    h = net.size("hidden")
    for call in (lambda: net.store(np.ones((1, h))), lambda: net.settle(np.ones((1, h))),
                 lambda: net.energy(np.ones((1, h)))):
        raises(rg.DataError, call, "not a Hopfield-style network", "symmetric")
    for k, v in before.items():
        np.testing.assert_array_equal(net.params[k], v)


@pytest.mark.parametrize("call, kind, phrases", [
    (lambda n: n.store(np.ones((1, 100)), rule=3), TypeError, ["rule", "hebbian"]),
    (lambda n: n.store(np.ones((1, 100)), rule="hebb"), rg.DataError, ["rule", "hebbian"]),
    (lambda n: n.store(None), TypeError, ["patterns"]),
    (lambda n: n.store("abc"), TypeError, ["patterns"]),
    (lambda n: n.store(np.full((1, 100), np.nan)), rg.DataError, ["patterns", "NaN"]),
    (lambda n: n.store(np.ones((0, 100))), rg.DataError, ["patterns", "at least one"]),
    (lambda n: n.store(np.zeros((1, 100))), rg.DataError, ["patterns", "-1 or +1"]),
    (lambda n: n.settle(np.ones((1, 100)), sweeps=True), TypeError, ["sweeps"]),
    (lambda n: n.settle(np.ones((1, 100)), sweeps=0), rg.DataError, ["sweeps", ">= 1"]),
    (lambda n: n.settle(np.ones((1, 100)), seed=-1), rg.DataError, ["seed", ">= 0"]),
    (lambda n: n.settle(np.ones((1, 100)), seed="a"), TypeError, ["seed"]),
    (lambda n: n.settle(np.ones((1, 100)), update=1), TypeError, ["update", "async"]),
    (lambda n: n.settle(np.ones((1, 100)), update="asnc"), rg.DataError, ["update", "async"]),
    (lambda n: n.settle(np.ones((1, 100)), until_stable="no"), TypeError, ["until_stable"]),
    (lambda n: n.settle(np.full((1, 100), np.nan)), rg.DataError, ["cues", "NaN"]),
    (lambda n: n.settle(np.ones((1, 99))), rg.DataError, ["cues", "(B, 100)"]),
    (lambda n: n.energy("abc"), TypeError, ["states"]),
    (lambda n: n.energy(np.full((1, 100), np.inf)), rg.DataError, ["states", "infinite"]),
])
def test_hopfield_methods_check_their_arguments(hop, call, kind, phrases):
    raises(kind, lambda: call(hop), *phrases)


def test_settle_and_energy_refuse_nan_weights(hop):
    hop.params["s->s"][0, 1] = np.nan
    raises(rg.DataError, lambda: hop.energy(np.ones((1, 100))), "net.params['s->s']", "NaN")
    raises(rg.DataError, lambda: hop.settle(np.ones((1, 100))), "net.params['s->s']", "NaN")


# --------------------------------------------------------------------------- anything at all

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=5), st.binary(max_size=5), st.lists(st.integers(-2, 2), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                 st.builds(lambda s, v: np.full(s, v), st.lists(st.integers(0, 3), max_size=3).map(tuple),
                           st.sampled_from([0.0, 1.0, -1.0, np.nan, np.inf])),
                 st.just(object()), st.just(1j), st.just(np.zeros((2, 5, 1), dtype=object)))
CALLS = {
    "parse_spec": lambda net, hop, a: rg.parse_spec(a),
    "load_spec": lambda net, hop, a: rg.load_spec(a),
    "parse_spec overrides": lambda net, hop, a: rg.parse_spec(net.spec.to_yaml(), overrides=a),
    "load_spec overrides": lambda net, hop, a: rg.load_spec(ROOT / "specs/mlp.yaml", overrides={"train.epochs": a}),
    "build": lambda net, hop, a: rg.build(a),
    "build seed": lambda net, hop, a: rg.build(net.spec, seed=a),
    "build dtype": lambda net, hop, a: rg.build(net.spec, dtype=a),
    "expand": lambda net, hop, a: rg.expand(a),
    "forward": lambda net, hop, a: net.forward(a),
    "forward x": lambda net, hop, a: net.forward({"x": a}),
    "forward initial": lambda net, hop, a: net.forward(data(net)[0], initial=a),
    "forward initial h": lambda net, hop, a: net.forward(data(net)[0], initial={"hidden": a}),
    "forward steps": lambda net, hop, a: net.forward(data(net)[0], steps=a),
    "loss_and_grad targets": lambda net, hop, a: net.loss_and_grad(data(net)[0], a),
    "loss_and_grad y": lambda net, hop, a: net.loss_and_grad(data(net)[0], {"y": a}),
    "loss_and_grad loss": lambda net, hop, a: net.loss_and_grad(*data(net), loss=a),
    "loss_and_grad mask": lambda net, hop, a: net.loss_and_grad(*data(net), mask=a),
    "loss_and_grad mask y": lambda net, hop, a: net.loss_and_grad(*data(net), mask={"y": a}),
    "unroll": lambda net, hop, a: net.unroll(a),
    "size": lambda net, hop, a: net.size(a),
    "unroll initial": lambda net, hop, a: net.unroll(2, initial=a),
    "save": lambda net, hop, a: net.save(a),
    "load": lambda net, hop, a: net.load(a),
    "store": lambda net, hop, a: hop.store(a),
    "store rule": lambda net, hop, a: hop.store(np.ones((1, 100)), rule=a),
    "settle": lambda net, hop, a: hop.settle(a),
    "settle update": lambda net, hop, a: hop.settle(np.ones((1, 100)), update=a),
    "settle sweeps": lambda net, hop, a: hop.settle(np.ones((1, 100)), sweeps=a),
    "settle seed": lambda net, hop, a: hop.settle(np.ones((1, 100)), seed=a),
    "energy": lambda net, hop, a: hop.energy(a),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=st.sampled_from(sorted(CALLS)), value=JUNK)
def test_junk_arguments_raise_only_project_errors(net, hop, tmp_path, monkeypatch, call, value):
    monkeypatch.chdir(tmp_path)   # a junk path that happens to be valid is written here, not in the repo
    try:
        with np.errstate(all="ignore"):
            CALLS[call](net, hop, value)
    except rg.RnngraphError:
        pass
