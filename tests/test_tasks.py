"""The built-in data generators: construction, determinism, validation, metrics.

Each construction is checked on generated data against an independent
reading of its definition (a grammar written here as a regex and a separate
automaton, formulas recomputed from ``extra``), and each metric against a
perfect predictor built from the data and a baseline whose score is known.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys

import numpy as np
import pytest

from rnngraph.training.tasks import TASKS, TaskData, get_task, normal_equation

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC_TASKS = ["temporal_xor", "adding", "embedded_reber", "copy", "parity", "sine", "anbn",
              "patterns", "linear", "marker_ahead"]

# Small settings per task so every generic test is quick.
SMALL = {
    "temporal_xor": {"length": 300, "n_train": 2, "n_eval": 3},
    "adding": {"T": 20, "n_train": 40, "n_eval": 30},
    "embedded_reber": {"n_train": 30, "n_eval": 20},
    "copy": {"length": 3, "delay": 4, "symbols": 5, "n_train": 30, "n_eval": 20},
    "parity": {"length": 6, "n_train": 30, "n_eval": 20},
    "sine": {"length": 30, "n_train": 30, "n_eval": 20},
    "anbn": {"n_max": 4, "n_eval_max": 7, "n_train": 30, "n_eval": 20},
    "patterns": {"count": 4, "size": 50, "n_train": 30, "n_eval": 20},
    "linear": {"features": 4, "n_train": 30, "n_eval": 20},
    "marker_ahead": {"length": 6, "n_train": 30, "n_eval": 20},
}


def gen(name, seed=0, split="train", **params):
    task = get_task(name)
    return task.generate({**SMALL[name], **params}, np.random.default_rng(seed), split)


# --------------------------------------------------------------------------- registry


def test_registry_holds_exactly_the_spec_generators():
    assert list(TASKS) == SPEC_TASKS
    for name in SPEC_TASKS:
        assert get_task(name) is TASKS[name]
        assert TASKS[name].name == name


def test_unknown_task_is_a_value_error_with_a_suggestion():
    with pytest.raises(ValueError) as err:
        get_task("addng")
    assert not isinstance(err.value, KeyError)
    assert str(err.value) == "unknown task 'addng' (did you mean 'adding'?)"
    with pytest.raises(ValueError, match=r"unknown task 'zzz' \(known: temporal_xor, adding"):
        get_task("zzz")
    with pytest.raises(ValueError, match="must be a string"):
        get_task(3)


def test_task_errors_are_spec_errors_carrying_the_key_path():
    errors = pytest.importorskip("rnngraph.errors")
    with pytest.raises(errors.SpecError) as err:
        get_task("adding").validate({"T": 5})
    assert err.value.where == "task.T"
    with pytest.raises(errors.SpecError) as err:
        get_task("addng")
    assert err.value.where == "task.generator"


@pytest.mark.parametrize("name", SPEC_TASKS)
def test_docstring_documents_every_parameter_source_and_metric(name):
    task = get_task(name)
    doc = type(task).__doc__
    for section in ("Source", "Construction", "Parameters", "Metrics"):
        assert section in doc, section
    for p in task.params:
        assert re.search(rf"\b{p.name}\b", doc), p.name
    data = task.generate(SMALL[name], 0)
    for metric in task.metrics(data.targets, data):
        assert metric in doc, metric


@pytest.mark.parametrize("name", SPEC_TASKS)
def test_docs_table_lists_every_task_parameter_and_metric(name):
    text = (ROOT / "docs" / "tasks.md").read_text()
    task = get_task(name)
    row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), None)
    assert row is not None, f"docs/tasks.md has no table row for {name}"
    for p in task.params:
        assert f"`{p.name}`" in row, p.name
    data = task.generate(SMALL[name], 0)
    for metric in task.metrics(data.targets, data):
        assert f"`{metric}`" in row, metric


def test_subpackage_imports_only_numpy_stdlib_and_rnngraph_errors():
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    for path in (ROOT / "rnngraph" / "tasks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    continue
                names = [node.module]
            else:
                continue
            for mod in names:
                assert mod.split(".")[0] in allowed or mod == "rnngraph.errors", f"{path.name}: {mod}"


# --------------------------------------------------------------------------- generic behaviour


@pytest.mark.parametrize("name", SPEC_TASKS)
def test_shapes_dtypes_and_sizes(name):
    task = get_task(name)
    params = task.validate(SMALL[name])
    in_size, out_size = task.sizes(params)
    for split, n in (("train", params["n_train"]), ("eval", params["n_eval"])):
        data = task.generate(params, np.random.default_rng(1), split)
        assert isinstance(data, TaskData)
        N, T, I = data.inputs.shape
        assert (I, data.targets.shape) == (in_size, (N, T, out_size))
        if name != "temporal_xor" or split == "train":
            assert N == n
        for a in (data.inputs, data.targets) + ((data.mask,) if data.mask is not None else ()):
            assert a.dtype == np.float64 and np.all(np.isfinite(a))
        if data.mask is not None:
            assert data.mask.shape == (N, T)
            assert set(np.unique(data.mask)) <= {0.0, 1.0}
        assert data.extra["task"] == name and data.extra["split"] == split


@pytest.mark.parametrize("name", SPEC_TASKS)
def test_deterministic_for_a_seed_and_different_across_seeds_and_splits(name):
    a, b, c = gen(name, 7), gen(name, 7), gen(name, 8)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not (a.inputs.shape == c.inputs.shape and np.array_equal(a.inputs, c.inputs))
    ev = gen(name, 7, "eval")
    assert not (a.inputs.shape == ev.inputs.shape and np.array_equal(a.inputs, ev.inputs))
    # an int seed means default_rng(seed); generate_splits == generate twice
    task = get_task(name)
    np.testing.assert_array_equal(task.generate(SMALL[name], 7).inputs, a.inputs)
    tr, ev2 = task.generate_splits(SMALL[name], np.random.default_rng(7))
    np.testing.assert_array_equal(tr.inputs, a.inputs)
    np.testing.assert_array_equal(ev2.inputs, ev.inputs)


@pytest.mark.parametrize("name", SPEC_TASKS)
def test_perfect_predictor_scores_perfectly(name):
    data = gen(name, 3, "eval")
    task = get_task(name)
    perfect = data.targets.copy()
    if data.mask is not None:  # whatever the net says on padding must not matter
        perfect[data.mask == 0] = 0.77
    m = task.metrics(perfect.astype(np.float32), data)
    best = {"third_bit_error": 0.0, "rms_error": 0.0, "mse": 0.0, "bit_error": 0.0,
            "max_correct_n": float(data.extra["n"].max()) if name == "anbn" else None}
    for key, value in m.items():
        if key in ("other_bit_error", "causal_bound"):   # properties of the data, not of the outputs
            continue
        assert isinstance(value, float)
        assert value == pytest.approx(best.get(key, 1.0)), key


@pytest.mark.parametrize("name", SPEC_TASKS)
def test_metrics_reject_outputs_of_the_wrong_shape(name):
    data = gen(name)
    bad = np.zeros(data.targets.shape[:-1] + (data.targets.shape[-1] + 1,))
    with pytest.raises(ValueError, match="shape"):
        get_task(name).metrics(bad, data)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name, params, named", [
    ("adding", {"T": 5}, "T"),
    ("adding", {"T": "50"}, "T"),
    ("adding", {"T": True}, "T"),
    ("adding", {"T": 50.5}, "T"),
    ("adding", {"n_train": 0}, "n_train"),
    ("adding", {"n_eval": -1}, "n_eval"),
    ("temporal_xor", {"length": 2}, "length"),
    ("copy", {"symbols": 1}, "symbols"),
    ("copy", {"delay": -1}, "delay"),
    ("copy", {"length": None}, "length"),
    ("parity", {"length": 0}, "length"),
    ("marker_ahead", {"length": 1}, "length"),
    ("marker_ahead", {"p_marker": 1.5}, "p_marker"),
    ("sine", {"mode": "next"}, "mode"),
    ("sine", {"freq_max": 0.7}, "freq_max"),
    ("sine", {"freq_min": 0.3, "freq_max": 0.2}, "freq_min"),
    ("sine", {"freq_min": float("nan")}, "freq_min"),
    ("anbn", {"n_max": 0}, "n_max"),
    ("anbn", {"n_eval_max": 1.5}, "n_eval_max"),
    ("patterns", {"kind": "letters", "size": 100}, "size"),
    ("patterns", {"kind": "letters", "count": 27}, "count"),
    ("patterns", {"noise": 1.5}, "noise"),
    ("patterns", {"kind": "letter"}, "kind"),
    ("linear", {"noise": -0.1}, "noise"),
    ("linear", {"features": 0}, "features"),
])
def test_validation_errors_name_the_parameter(name, params, named):
    with pytest.raises(ValueError) as err:
        get_task(name).validate(params)
    message = str(err.value)
    assert f"'{named}'" in message and name in message
    assert "expected" in message or "needs" in message or "has" in message


def test_validation_messages_say_what_was_expected():
    with pytest.raises(ValueError) as err:
        get_task("adding").validate({"T": 5})
    assert str(err.value) == "parameter 'T' of task 'adding': expected an integer >= 10, got 5"
    with pytest.raises(ValueError, match=r"did you mean 'next_step'\?"):
        get_task("sine").validate({"mode": "next"})


def test_unknown_parameter_is_rejected_with_a_suggestion():
    with pytest.raises(ValueError, match=r"unknown parameter 'lenght' for task 'parity' \(did you mean 'length'\?\)"):
        get_task("parity").validate({"lenght": 8})
    with pytest.raises(ValueError, match=r"unknown parameter 'zzz' for task 'parity' \(known: length, n_train, n_eval\)"):
        get_task("parity").validate({"zzz": 8})
    with pytest.raises(ValueError, match="mapping"):
        get_task("parity").validate([("length", 8)])


@pytest.mark.parametrize("name", SPEC_TASKS)
def test_validate_fills_defaults_and_is_idempotent(name):
    task = get_task(name)
    params = task.validate({"generator": name})          # the spec's key is tolerated
    assert "generator" not in params
    assert set(params) == {p.name for p in task.params}
    for p in task.params:
        if p.default is not None:
            assert params[p.name] == p.default
    assert task.validate(params) == params
    assert task.validate(None) == params


def test_validate_converts_integral_floats_and_keeps_types():
    params = get_task("adding").validate({"T": 60.0, "n_train": np.int64(5)})
    assert params["T"] == 60 and type(params["T"]) is int and type(params["n_train"]) is int
    assert type(get_task("linear").validate({"noise": 1})["noise"]) is float


def test_defaults_named_in_the_brief():
    assert get_task("temporal_xor").defaults["length"] == 3000
    assert get_task("adding").defaults["T"] == 50
    assert {k: get_task("copy").defaults[k] for k in ("length", "delay", "symbols")} == \
        {"length": 5, "delay": 10, "symbols": 4}
    assert get_task("parity").defaults["length"] == 8
    assert get_task("sine").validate({})["mode"] == "next_step"
    assert get_task("sine").defaults["length"] == 50
    assert (get_task("anbn").defaults["n_max"], get_task("anbn").defaults["n_eval_max"]) == (10, 20)
    p = get_task("patterns").validate({})
    assert (p["count"], p["size"], p["kind"], p["noise"]) == (10, 100, "random", 0.1)
    assert get_task("linear").validate({})["features"] == 3


def test_default_train_is_what_each_task_needs_and_a_copy():
    expect = {"temporal_xor": ("bce", "all"), "adding": ("mse", "mask"),
              "embedded_reber": ("bce", "mask"), "copy": ("cross_entropy", "mask"),
              "parity": ("bce", "last"), "sine": ("mse", "all"), "anbn": ("bce", "mask"),
              "linear": ("mse", "all"), "marker_ahead": ("bce", "all")}
    for name, (loss, on) in expect.items():
        d = get_task(name).default_train
        assert (d["loss"], d["loss_on"]) == (loss, on), name
    assert get_task("patterns").default_train == {"method": "hebbian"}
    get_task("adding").default_train["loss"] = "bce"
    assert get_task("adding").default_train["loss"] == "mse"


def test_split_must_be_train_or_eval_and_rng_a_generator():
    with pytest.raises(ValueError, match="split"):
        gen("parity", split="test")
    with pytest.raises(TypeError, match="rng"):
        get_task("parity").generate({}, "seed")


# --------------------------------------------------------------------------- temporal_xor


def test_temporal_xor_stream_and_targets():
    data = gen("temporal_xor", length=301)                   # not a multiple of 3
    bits = data.extra["bits"]
    assert bits.shape == (2, 301) and set(np.unique(bits)) == {0, 1}
    full = bits[:, :300].reshape(2, 100, 3)
    np.testing.assert_array_equal(full[:, :, 2], full[:, :, 0] ^ full[:, :, 1])
    np.testing.assert_array_equal(data.inputs[:, :, 0], bits[:, :-1])
    np.testing.assert_array_equal(data.targets[:, :, 0], bits[:, 1:])
    assert data.inputs.shape == (2, 300, 1) and data.mask is None
    # predictable targets are exactly the XOR bits (index 2 mod 3 in the stream)
    pred = data.extra["predictable"]
    np.testing.assert_array_equal(pred[0], (np.arange(1, 301) % 3) == 2)
    # eval is a fresh stream
    assert not np.array_equal(gen("temporal_xor", split="eval").extra["bits"][0], bits[0])


def test_temporal_xor_metrics():
    task = get_task("temporal_xor")
    data = gen("temporal_xor", n_train=1, length=3000)
    half = np.full_like(data.targets, 0.5)
    m = task.metrics(half, data)
    assert m["third_bit_error"] == pytest.approx(0.5) and m["other_bit_error"] == pytest.approx(0.5)
    # knows the XOR bits, says 0.5 on the coin flips: the best any net can do
    oracle = np.where(data.extra["predictable"][..., None], data.targets, 0.5)
    m = task.metrics(oracle, data)
    assert m["third_bit_error"] == 0.0 and m["other_bit_error"] == pytest.approx(0.5)
    # a net that just repeats its input is right half the time on the XOR bits
    m = task.metrics(data.inputs, data)
    assert 0.6 < m["third_bit_error"] < 0.8


# --------------------------------------------------------------------------- adding


def test_adding_construction_follows_the_paper():
    T = 30
    data = gen("adding", T=T, n_train=3000)
    lengths = data.extra["lengths"]
    assert data.inputs.shape == (3000, T + T // 10, 2)
    assert lengths.min() == T and lengths.max() == T + T // 10     # both ends occur
    seen_first_marked = 0
    for i in range(3000):
        L = lengths[i]
        v, m = data.inputs[i, :, 0], data.inputs[i, :, 1]
        assert np.all(v[L:] == 0) and np.all(m[L:] == 0)            # zero padding at the end
        assert np.all(np.abs(v[:L]) <= 1)
        marked = np.flatnonzero(m == 1)
        assert len(marked) == 2
        i1, i2 = data.extra["marked"][i]
        assert set(marked) == {i1, i2} and i1 < 10 and i2 < T // 2 - 1
        others = np.setdiff1d(np.arange(L), marked)
        expect = np.zeros(L)
        expect[[0, L - 1]] = -1
        np.testing.assert_array_equal(m[others], expect[others])   # -1 first/last, else 0
        if 0 in marked:
            assert v[0] == 0
            seen_first_marked += 1
        assert data.targets[i, L - 1, 0] == pytest.approx(0.5 + (v[i1] + v[i2]) / 4)
        assert np.count_nonzero(data.targets[i]) <= 1
        np.testing.assert_array_equal(data.mask[i], np.arange(T + T // 10) == L - 1)
    assert seen_first_marked > 100                                  # about 10% + a bit
    # X1 ranges over the first ten pairs, X2 over the first T/2 - 1
    assert set(data.extra["marked"][:, 0]) == set(range(10))
    assert set(data.extra["marked"][:, 1]) == set(range(T // 2 - 1))


def test_adding_metrics():
    task = get_task("adding")
    data = gen("adding", T=50, n_train=20000)
    last = data.extra["lengths"] - 1
    rows = np.arange(data.n)
    y = data.targets[rows, last, 0]
    m = task.metrics(np.full_like(data.targets, 0.5), data)
    assert m["accuracy"] == pytest.approx(np.mean(np.abs(y - 0.5) < 0.04))
    assert m["accuracy"] == pytest.approx(0.1536, abs=0.01)         # P(|X1+X2| < 0.16)
    # E[((X1+X2)/4)^2] = (2/3)/16, or (1/3)/16 when pair 0 is marked (its value is 0),
    # which happens with probability 1/10 + 9/10 * 1/(T/2 - 2)
    p0 = 0.1 + 0.9 / (50 // 2 - 2)
    assert m["mse"] == pytest.approx(((1 - p0) * 2 / 3 + p0 / 3) / 16, rel=0.03)
    off = data.targets.copy()
    off[rows, last, 0] += 0.05
    assert task.metrics(off, data)["accuracy"] == 0.0
    off[rows, last, 0] -= 0.02
    m = task.metrics(off, data)
    assert m["accuracy"] == 1.0 and m["mse"] == pytest.approx(0.03 ** 2)


# --------------------------------------------------------------------------- embedded_reber

# An independent reading of the grammar: the Reber language as a regex ...
_L2 = "(?:T*VPX)*T*V(?:V|PS)"
REBER_RE = re.compile(rf"B(?:TS*X(?:S|X{_L2})|P{_L2})E")
EMBEDDED_RE = re.compile(rf"B(?:T{REBER_RE.pattern}T|P{REBER_RE.pattern}P)E")

# ... and the embedded grammar as an automaton drawn from the usual figure
# (state, symbol) -> state; legal next symbols are the labels leaving a state.
_REBER_EDGES = [("b", "B", "r0"), ("r0", "T", "r1"), ("r0", "P", "r2"), ("r1", "S", "r1"),
                ("r1", "X", "r3"), ("r2", "T", "r2"), ("r2", "V", "r4"), ("r3", "X", "r2"),
                ("r3", "S", "r5"), ("r4", "P", "r3"), ("r4", "V", "r5"), ("r5", "E", "e")]


def _embedded_automaton():
    edges = [("start", "B", "o"), ("o", "T", "uT:b"), ("o", "P", "uP:b")]
    for side in "TP":
        for a, sym, b in _REBER_EDGES:
            edges.append((f"u{side}:{a}", sym, f"u{side}:{b}"))
        edges.append((f"u{side}:e", side, "last"))
    return edges + [("last", "E", "end")]


def _legal_next(string):
    edges = _embedded_automaton()
    state, out = "start", []
    for c in string:
        nxt = [b for a, s, b in edges if a == state and s == c]
        assert len(nxt) == 1, (string, c)
        state = nxt[0]
        out.append({s for a, s, _ in edges if a == state})
    return out


def test_reber_checker_itself():
    for good in ("BTSSXXTVVE", "BPVVE", "BTXXVPSE", "BPVPXVPXVPXVVE", "BTSXXVPSE"):
        assert REBER_RE.fullmatch(good), good
    for bad in ("BTSSPXSE", "BPTVVB", "BTXXVVSE", "BPVSPSE", "BTSSSE"):
        assert not REBER_RE.fullmatch(bad), bad
    assert EMBEDDED_RE.fullmatch("BTBPVVETE") and not EMBEDDED_RE.fullmatch("BTBPVVEPE")


def test_embedded_reber_strings_are_in_the_grammar_and_targets_are_the_legal_sets():
    data = gen("embedded_reber", n_train=400)
    symbols = "BTPSXVE"
    outer = []
    for i, s in enumerate(data.extra["strings"]):
        assert EMBEDDED_RE.fullmatch(s), s
        steps = len(s) - 1
        assert data.extra["lengths"][i] == steps
        decoded = "".join(symbols[k] for k in data.inputs[i, :steps].argmax(axis=1))
        assert decoded == s[:-1]
        assert np.all(data.inputs[i, :steps].sum(axis=1) == 1) and np.all(data.inputs[i, steps:] == 0)
        legal = _legal_next(s)
        for t in range(steps):
            assert {symbols[k] for k in np.flatnonzero(data.targets[i, t])} == legal[t], (s, t)
        assert np.all(data.targets[i, steps:] == 0)
        np.testing.assert_array_equal(data.mask[i], np.arange(data.steps) < steps)
        pen = data.extra["penultimate"][i]
        assert np.flatnonzero(data.targets[i, pen]).tolist() == [symbols.index(s[1])]
        outer.append(s[1])
    assert 150 < outer.count("T") < 250                             # a fair coin


def test_embedded_reber_metrics():
    task = get_task("embedded_reber")
    data = gen("embedded_reber", n_train=500)
    rows = np.arange(data.n)
    pen = data.extra["penultimate"]
    is_t = np.array([s[1] == "T" for s in data.extra["strings"]])
    # knows the inner grammar but always answers T before the final E
    markov = data.targets.copy()
    markov[rows, pen] = 0.0
    markov[rows, pen, 1] = 1.0
    m = task.metrics(markov, data)
    assert m["penultimate_accuracy"] == pytest.approx(is_t.mean())
    assert m["accuracy"] == pytest.approx(is_t.mean())
    assert m["step_accuracy"] == pytest.approx(1 - (~is_t).sum() / data.mask.sum())
    # hedges between T and P: wrong by the 0.5 threshold and by ranking
    hedge = data.targets.copy()
    hedge[rows, pen, 1:3] = 0.6
    m = task.metrics(hedge, data)
    assert m["penultimate_accuracy"] == 0.0 and m["topk_accuracy"] == 0.0
    # ranking right but everything below 0.5: topk accepts, the threshold does not
    low = 0.1 + 0.3 * data.targets
    m = task.metrics(low, data)
    assert m["topk_accuracy"] == 1.0 and m["accuracy"] == 0.0
    # a constant output can never be right: no step allows all 7 symbols, or none
    for c in (0.0, 1.0):
        assert task.metrics(np.full_like(data.targets, c), data)["step_accuracy"] == 0.0


# --------------------------------------------------------------------------- copy


def test_copy_layout():
    L, D, K = 3, 4, 5
    data = gen("copy", length=L, delay=D, symbols=K)
    assert data.inputs.shape[1] == 2 * L + D + 1
    codes = data.inputs.argmax(axis=2)
    assert np.all(data.inputs.sum(axis=2) == 1)                     # one channel on per step
    seq = data.extra["symbols"]
    np.testing.assert_array_equal(codes[:, :L], seq)
    assert np.all(codes[:, L:L + D] == K)                            # blanks
    assert np.all(codes[:, L + D] == K + 1)                          # go
    assert np.all(codes[:, L + D + 1:] == K)                         # blank while recalling
    recall = np.arange(L + D + 1, 2 * L + D + 1)
    np.testing.assert_array_equal(data.targets[:, recall].argmax(axis=2), seq)
    assert np.all(data.targets.sum(axis=2) == data.mask)
    np.testing.assert_array_equal(data.mask[0], np.isin(np.arange(2 * L + D + 1), recall))
    assert get_task("copy").sizes({"symbols": K}) == (K + 2, K)
    # delay 0: the go marker follows the last symbol directly
    d0 = gen("copy", delay=0)
    assert np.all(d0.inputs[:, 3].argmax(axis=1) == 6)


def test_copy_metrics():
    task = get_task("copy")
    data = gen("copy", n_train=2000)
    seq = data.extra["symbols"]
    m = task.metrics(np.zeros_like(data.targets), data)             # argmax of a constant: symbol 0
    assert m["accuracy"] == pytest.approx(np.mean(seq == 0))
    assert m["accuracy"] == pytest.approx(1 / 5, abs=0.02)
    shifted = np.roll(data.targets, 1, axis=2)                       # every recalled symbol wrong
    assert task.metrics(shifted, data) == {"accuracy": 0.0, "sequence_accuracy": 0.0}
    one_wrong = data.targets.copy()
    one_wrong[:, data.extra["recall"][0]] = np.roll(one_wrong[:, data.extra["recall"][0]], 1, axis=1)
    m = task.metrics(one_wrong, data)
    assert m["accuracy"] == pytest.approx(2 / 3) and m["sequence_accuracy"] == 0.0


# --------------------------------------------------------------------------- parity


def test_parity_targets_and_metrics():
    task = get_task("parity")
    data = gen("parity", length=7, n_train=1000)
    bits = data.inputs[:, :, 0].astype(int)
    assert set(np.unique(bits)) == {0, 1}
    parity = np.bitwise_xor.reduce(bits, axis=1)
    np.testing.assert_array_equal(data.targets[:, -1, 0], parity)
    assert np.all(data.targets[:, :-1] == 0)
    np.testing.assert_array_equal(data.mask, np.tile(np.arange(7) == 6, (1000, 1)))
    m = task.metrics(np.zeros_like(data.targets), data)
    assert m["accuracy"] == pytest.approx(np.mean(parity == 0))
    assert m["accuracy"] == pytest.approx(0.5, abs=0.05)
    assert task.metrics(1 - data.targets, data)["accuracy"] == 0.0
    # only the last step counts
    noisy = data.targets.copy()
    noisy[:, :-1] = 1 - noisy[:, :-1]
    assert task.metrics(noisy, data)["accuracy"] == 1.0


# --------------------------------------------------------------------------- sine


def test_sine_next_step():
    data = gen("sine", n_train=200, freq_min=0.05, freq_max=0.08)
    x, y = data.inputs[:, :, 0], data.targets[:, :, 0]
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    f, phi = data.extra["freq"], data.extra["phase"]
    assert np.all((f >= 0.05) & (f <= 0.08)) and np.all((phi >= 0) & (phi < 2 * np.pi))
    t = np.arange(31)
    wave = np.sin(2 * np.pi * f[:, None] * t + phi[:, None])
    np.testing.assert_allclose(x, wave[:, :-1], atol=1e-12)
    np.testing.assert_allclose(y, wave[:, 1:], atol=1e-12)
    m = get_task("sine").metrics(np.zeros_like(data.targets), data)
    assert m["mse"] == pytest.approx(np.mean(y ** 2)) and 0.35 < m["mse"] < 0.65


def test_sine_one_to_many():
    task = get_task("sine")
    params = {"mode": "one_to_many", "length": 40}
    assert task.sizes(params) == (2, 1)
    assert task.sizes({"mode": "next_step"}) == (1, 1)
    data = gen("sine", **params)
    assert data.inputs.shape == (30, 40, 2)
    assert np.all(data.inputs[:, 1:] == 0)
    f, phi = data.extra["freq"], data.extra["phase"]
    np.testing.assert_allclose(data.inputs[:, 0, 0], f / 0.1)
    np.testing.assert_allclose(data.inputs[:, 0, 1], phi / (2 * np.pi))
    wave = np.sin(2 * np.pi * f[:, None] * np.arange(40) + phi[:, None])
    np.testing.assert_allclose(data.targets[:, :, 0], wave, atol=1e-12)
    assert len(np.unique(data.inputs[:, 0, 0])) == 30              # one frequency per sequence


# --------------------------------------------------------------------------- anbn


def _anbn_legal(n):
    """Legal next symbols after each prefix of S a^n b^n, from the language's definition."""
    out = []
    for t in range(2 * n + 1):
        prefix = "S" + "a" * min(t, n) + "b" * max(0, t - n)
        prefix = prefix[:t + 1]
        legal = set()
        for m in range(1, 3 * n + 3):                               # any n' that continues it
            word = "S" + "a" * m + "b" * m + "T"
            if word.startswith(prefix) and len(word) > len(prefix):
                legal.add(word[len(prefix)])
        out.append(legal)
    return out


def test_anbn_strings_and_targets():
    data = gen("anbn", n_max=5, n_train=200)
    sym = "SabT"
    assert set(data.extra["n"]) == set(range(1, 6))
    assert data.inputs.shape == (200, 11, 4)
    for i, n in enumerate(data.extra["n"]):
        steps = 2 * n + 1
        decoded = "".join(sym[k] for k in data.inputs[i, :steps].argmax(axis=1))
        assert decoded == "S" + "a" * n + "b" * n
        assert np.all(data.inputs[i, steps:] == 0) and np.all(data.targets[i, steps:] == 0)
        legal = _anbn_legal(n)
        for t in range(steps):
            assert {sym[k] for k in np.flatnonzero(data.targets[i, t])} == legal[t]
        np.testing.assert_array_equal(data.mask[i], np.arange(11) < steps)
        det = data.extra["deterministic"][i]
        np.testing.assert_array_equal(np.flatnonzero(det), np.arange(n + 1, 2 * n + 1))
        assert all(len(legal[t]) == 1 for t in np.flatnonzero(det))


def test_anbn_eval_covers_every_n_up_to_n_eval_max():
    data = gen("anbn", 0, "eval", n_eval_max=7, n_eval=20)
    assert sorted(set(data.extra["n"])) == list(range(1, 8))
    assert data.inputs.shape[1] == 15
    few = gen("anbn", 0, "eval", n_eval_max=30, n_eval=4)
    assert sorted(few.extra["n"]) == [1, 11, 20, 30]


def test_anbn_metrics():
    task = get_task("anbn")
    data = gen("anbn", 0, "eval", n_eval_max=12, n_eval=24)
    ns = data.extra["n"]
    good_upto = data.targets.copy()
    det = data.extra["deterministic"]
    bad = ns > 5
    # a counter that overflows above 5: says {b, T} at every deterministic step
    good_upto[bad[:, None] & det, 2] = 1.0
    good_upto[bad[:, None] & det, 3] = 1.0
    m = task.metrics(good_upto, data)
    assert m["max_correct_n"] == 5.0
    assert m["accuracy"] == pytest.approx(np.mean(ns <= 5)) == m["full_accuracy"]
    # wrong only where the next symbol is uncertain (after an a): accepted by `accuracy`
    unsure = data.targets.copy()
    unsure[:, 1, 1] = 0.0
    m = task.metrics(unsure, data)
    assert m["accuracy"] == 1.0 and m["full_accuracy"] == 0.0 and m["max_correct_n"] == 12.0
    assert task.metrics(np.zeros_like(data.targets), data)["max_correct_n"] == 0.0


# --------------------------------------------------------------------------- patterns


def test_patterns_random_cues():
    data = gen("patterns", count=4, size=50, noise=0.1, n_train=30)
    P = data.extra["patterns"]
    assert P.shape == (4, 50) and set(np.unique(P)) == {-1.0, 1.0}
    which = data.extra["cue_pattern"]
    np.testing.assert_array_equal(which, np.arange(30) % 4)
    np.testing.assert_array_equal(data.targets[:, 0], P[which])
    flipped = np.sum(data.inputs[:, 0] != data.targets[:, 0], axis=1)
    assert np.all(flipped == 5)                                     # exactly round(0.1 * 50)
    assert data.inputs.shape == (30, 1, 50) and data.mask is None


def test_patterns_are_shared_by_both_splits_and_cues_are_not():
    task = get_task("patterns")
    tr, ev = task.generate_splits({"count": 3, "size": 40}, np.random.default_rng(5))
    np.testing.assert_array_equal(tr.extra["patterns"], ev.extra["patterns"])
    assert not np.array_equal(tr.inputs[:3], ev.inputs[:3])
    ev2 = task.generate({"count": 3, "size": 40}, np.random.default_rng(5), "eval")
    np.testing.assert_array_equal(ev2.inputs, ev.inputs)
    other = task.generate({"count": 3, "size": 40}, np.random.default_rng(6), "eval")
    assert not np.array_equal(other.extra["patterns"], ev.extra["patterns"])
    assert task.generate({"n_cues": 7}, 0, "eval").n == 7


def test_patterns_letters():
    task = get_task("patterns")
    p = task.validate({"kind": "letters", "count": 26})
    assert p["size"] == 35 and task.sizes(p) == (35, 35)
    data = task.generate(p, 0)
    P = data.extra["patterns"]
    assert data.extra["shape"] == (7, 5) and data.extra["names"][:3] == ["A", "B", "C"]
    assert len({tuple(r) for r in P}) == 26                        # all letters differ
    glyphs = P.reshape(26, 7, 5)
    for letter in "AHIMOTUVWXY":                                    # mirror-symmetric letters
        g = glyphs["ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(letter)]
        np.testing.assert_array_equal(g, g[:, ::-1], err_msg=letter)
    assert np.all(glyphs[7][3] == 1)                                # H's crossbar
    assert np.all(glyphs[11][:, 0] == 1) and np.all(glyphs[11][-1] == 1)   # L
    big = task.generate({"kind": "letters", "count": 3, "size": 140}, 0)
    bp = big.extra["patterns"].reshape(3, 14, 10)
    np.testing.assert_array_equal(bp[:, ::2, ::2], glyphs[:3])    # each dot a 2x2 block
    np.testing.assert_array_equal(bp[:, 1::2, 1::2], glyphs[:3])
    assert big.extra["shape"] == (14, 10)


def test_patterns_metrics():
    task = get_task("patterns")
    data = gen("patterns", count=4, size=50, noise=0.2, n_train=40)
    m = task.metrics(-data.targets, data)                           # the negation
    assert m["recall"] == 0.0 and m["overlap"] == 1.0 and m["bit_error"] == 1.0
    m = task.metrics(data.inputs[:, 0, :], data)                    # the cues themselves, 2-D
    assert m["recall"] == 0.0
    assert m["overlap"] == pytest.approx(1 - 2 * 10 / 50)
    assert m["bit_error"] == pytest.approx(10 / 50)
    half = data.targets.copy()
    half[::2] = data.inputs[::2]
    assert task.metrics(half, data)["recall"] == 0.5
    assert task.metrics(0.9 * data.targets, data)["recall"] == 1.0  # thresholded by sign
    assert task.metrics(np.zeros_like(data.targets), data)["recall"] == 0.0


# --------------------------------------------------------------------------- linear


def test_linear_data_and_normal_equation():
    task = get_task("linear")
    tr, ev = task.generate_splits({"features": 4, "noise": 0.1, "n_train": 2000}, 2)
    theta, b = tr.extra["theta"], tr.extra["bias"]
    np.testing.assert_array_equal(ev.extra["theta"], theta)        # one world, two samples
    assert ev.extra["bias"] == b
    X, y = tr.inputs[:, 0], tr.targets[:, 0, 0]
    resid = y - X @ theta - b
    assert np.std(resid) == pytest.approx(0.1, rel=0.1) and abs(np.mean(resid)) < 0.01
    W, c = normal_equation(tr.inputs, tr.targets)
    assert W.shape == (1, 4) and c.shape == (1,)
    np.testing.assert_allclose(W[0], theta, atol=0.01)
    np.testing.assert_allclose(c[0], b, atol=0.01)
    # noise-free data: exact; 2-D and 1-D forms accepted
    clean = task.generate({"features": 2, "noise": 0.0, "n_train": 10}, 3)
    W, c = normal_equation(clean.inputs[:, 0], clean.targets[:, 0, 0])
    np.testing.assert_allclose(W[0], clean.extra["theta"], atol=1e-10)
    np.testing.assert_allclose(c[0], clean.extra["bias"], atol=1e-10)
    # the fitted line scores about noise**2 on fresh data
    W, c = normal_equation(tr.inputs, tr.targets)
    pred = ev.inputs @ W.T + c                                      # (N, 1, 1)
    assert task.metrics(pred, ev)["mse"] == pytest.approx(0.01, rel=0.3)
    assert task.metrics(np.zeros_like(ev.targets), ev)["mse"] == pytest.approx(np.mean(ev.targets ** 2))
    with pytest.raises(ValueError, match="y must have shape"):
        normal_equation(tr.inputs, tr.targets[:5])


def test_marker_ahead_targets_and_the_causal_bound():
    task = get_task("marker_ahead")
    data = task.generate({"length": 5, "n_train": 400, "n_eval": 10}, np.random.default_rng(0), "train")
    marker = data.extra["marker"]
    assert set(np.unique(marker)) <= set(range(-1, 5)) and (marker == -1).any() and (marker >= 0).any()
    for x, y, m in zip(data.inputs[..., 0], data.targets[..., 0], marker):
        assert x.tolist() == [float(t == m) for t in range(5)]
        assert y.tolist() == [float(m > t) for t in range(5)]
    # with p_marker 0.5 and length 5, "a marker is still to come" is below 1/2 at every step: the best
    # answer from the past is 0 everywhere, so the bound is the fraction of zero targets
    zeros = task.metrics(np.zeros_like(data.targets), data)
    assert zeros["causal_bound"] == pytest.approx(zeros["accuracy"])
    assert zeros["causal_bound"] == pytest.approx(1 - data.targets.mean())
    # always a marker: until it is seen it is certainly still to come, which the past tells exactly
    sure = task.generate({"length": 5, "p_marker": 1.0, "n_train": 50, "n_eval": 10}, 0, "train")
    assert task.metrics(sure.targets, sure)["causal_bound"] == 1.0
    # rarer markers: the bound is the fraction of zeros again
    rare = task.generate({"length": 20, "p_marker": 0.3, "n_train": 2000, "n_eval": 10}, 0, "train")
    bound = task.metrics(rare.targets, rare)["causal_bound"]
    assert bound == pytest.approx(1 - rare.targets.mean())
