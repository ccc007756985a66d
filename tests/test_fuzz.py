"""Fuzzing the spec parser: a mutated spec is refused clearly or it runs.

Every example starts from one of the specs in ``specs/`` and applies a few
mutations (docs/spec-format.md is the contract):

* structural, on the parsed YAML, which is then dumped back to text: delete a
  key, rename a key (a typo), retype a value (number -> string, list ->
  number, mapping -> list, ...), negative and huge numbers (``10**12``, a
  400-digit integer), break a node reference, insert a delay-0 cycle (edges
  ``a -> b`` and ``b -> a``), negate delays or make a block run backward
  (a look-ahead, a backward loop, or a cycle mixing signs), give an edge a name that collides with a
  parameter rnngraph makes (``h.bias``, ``h.init``, a block part's bias,
  another edge's name) or cannot be a file member (NUL, ``..``, an absolute
  path), a ``--set KEY=VALUE`` argument (read by ``parse_sets`` as the CLI
  does; values include huge integers and aliases: recursive, multiplying,
  undefined);
* textual, on the YAML text: delete or duplicate a character, unbalanced
  brackets, tabs, random characters (control characters included), a number
  replaced by an integer of 400 or 5000 digits, random bytes (read through
  ``rg.load_spec`` from a file, so UTF-8 decoding is fuzzed too).

The property: ``rg.parse_spec(text, path=...)`` (or ``rg.load_spec``) either

* raises ``rg.SpecError`` with a line (``.line`` is not None and the message
  starts ``path:line``), or, for the few whole-document problems that have no
  line, with an empty ``.where`` and a message starting with the path and
  saying what is wrong with the whole file: a file over the size limit,
  nesting so deep that the YAML parser's recursion overflows -- and, for a
  mistake in a ``--set`` value, at that argument (``.path`` and the message
  start with ``--set KEY=``);
* or returns a spec for which ``rg.build(spec)`` succeeds and
  ``net.forward`` runs on small random inputs (inputs for every input node,
  ``initial=`` for every ``init: input`` node, ``steps=`` without inputs);

and never raises anything else (KeyError, TypeError, RecursionError,
MemoryError, numpy errors, a YAML library exception, ...).

Each example runs in a forked child under ``RLIMIT_AS`` (its current size +
3 GiB) and a wall-clock limit, so a regression that allocates an absurd
size shows up as a MemoryError or a timeout in the report instead of taking
the machine down.  The parent (where hypothesis runs and shrinks) only
judges the outcome.

Known bugs found by this fuzzer are reproduced by exact, strict-xfail tests
at the bottom of the file; the fuzz property tolerates exactly those crash
signatures (so it stays green while they are open) and counts them with
``hypothesis.event`` (``--hypothesis-show-statistics`` prints the counts).
When a bug is fixed, its xfail test XPASSes (a failure, strict) and its
entry in ``KNOWN_CRASHES`` is to be removed.
"""

from __future__ import annotations

import copy
import os
import pickle
import re
import resource
import select
import signal
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import rnngraph as rg

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILES = sorted((ROOT / "specs").glob("*.yaml"))
TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SPEC_FILES}
DATA = {name: yaml.safe_load(text) for name, text in TEXTS.items()}

CHILD_TIMEOUT = 20.0          # seconds per example (parse + build + forward of a tiny batch)
CHILD_HEADROOM = 3 * 1024 ** 3  # bytes of address space a child may add to what it inherits

# Whole-document SpecErrors that have no line: (what the message says, why no line)
NO_LINE_OK = (
    "file is larger than",        # refused before parsing
    "nested more than",           # the YAML parser overflowed its stack: no position survives
)

# Crash signatures of bugs reported (and reproduced by the strict xfails at
# the bottom): (exception type name, text in its message or traceback) -> bug id.
KNOWN_CRASHES: dict = {}

HUGE = [-1, 0, -7, 10 ** 12, -10 ** 12, 10 ** 12 + 0.5, 2 ** 31, 2 ** 63, 1e308, -1e308, 1e-300,
        float("inf"), float("-inf"), float("nan"), 0.5, 10 ** 5, 10 ** 6, 10 ** 6 + 1, 100_001,
        10 ** 400, -10 ** 400 + 1]


# --------------------------------------------------------------------------- running one example

def _evaluate(payload, workdir: str):
    """In the child: parse (text or file bytes), build, forward.  Returns a
    picklable outcome tuple."""
    import numpy as np
    warnings.filterwarnings("error", category=RuntimeWarning, module=r"rnngraph\..*")
    from rnngraph.cli.run import parse_sets
    kind, content, sets = payload
    path = os.path.join(workdir, "fuzzed.yaml")
    stage = "parse"
    try:
        overrides = parse_sets(sets) if sets else None   # as `rnngraph run --set KEY=VALUE` reads them
        if kind == "bytes":
            with open(path, "wb") as fh:
                fh.write(content)
            spec = rg.load_spec(path, overrides=overrides)
        else:
            spec = rg.parse_spec(content, path=path, overrides=overrides)
    except rg.SpecError as exc:
        errors = exc.errors if isinstance(exc, rg.SpecErrors) else [exc]
        return ("spec_error", str(exc), [(e.line, e.column, e.where, e.what, e.format(), e.path) for e in errors])
    except BaseException as exc:   # noqa: BLE001 - anything else is what we are looking for
        return ("crash", stage, type(exc).__name__, str(exc)[:2000], traceback.format_exc()[-4000:])
    stage = "build"
    try:
        net = rg.build(spec)
        stage = "forward"
        rng = np.random.default_rng(0)
        B, T = 2, 3
        inputs = {n: rng.standard_normal((B, T, net.size(n))) for n in net.input_nodes}
        initial = {n: rng.standard_normal((B, net.graph.nodes[n]["size"])) for n in net.graph.nodes
                   if net.graph.nodes[n]["init"].kind == "input"}
        out = net.forward(inputs or None, initial=initial or None, steps=None if inputs else T)
        batch = B if inputs or initial else 1    # nothing to say the batch: one sequence
        for n in net.graph.nodes:
            assert out[n].shape == (batch, T, net.graph.nodes[n]["size"]), (n, out[n].shape)
    except BaseException as exc:   # noqa: BLE001
        return ("crash", stage, type(exc).__name__, str(exc)[:2000], traceback.format_exc()[-4000:])
    return ("ok", len(net.graph.nodes), sum(int(p.size) for p in net.params.values()))


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_isolated(payload, timeout: float = CHILD_TIMEOUT):
    """Fork; in the child cap the address space and evaluate; return
    ``(outcome, seconds)``.  A child that dies or overruns is a crash."""
    workdir = tempfile.mkdtemp(prefix="rg-fuzz-")
    rfd, wfd = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:   # child
        code = 0
        try:
            os.close(rfd)
            limit = _vm_size() + CHILD_HEADROOM
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                result = _evaluate(payload, workdir)
            except BaseException as exc:   # noqa: BLE001
                result = ("crash", "harness", type(exc).__name__, str(exc)[:2000], traceback.format_exc()[-4000:])
            try:
                data = pickle.dumps(result)
            except Exception as exc:   # noqa: BLE001
                data = pickle.dumps(("crash", "pickle", type(exc).__name__, str(exc), ""))
            with os.fdopen(wfd, "wb") as fh:
                fh.write(data)
        except BaseException:   # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    deadline = start + timeout
    timed_out = False
    with os.fdopen(rfd, "rb") as fh:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([fh], [], [], left)
            if not ready:
                continue
            chunk = os.read(fh.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - start
    _rmtree(workdir)
    if timed_out:
        return ("crash", "timeout", "Timeout", f"no answer within {timeout:.0f} s", ""), seconds
    try:
        return pickle.loads(b"".join(chunks)), seconds
    except Exception:   # noqa: BLE001
        return ("crash", "died", "ChildDied", f"child exited with status {status:#x} without an answer", ""), seconds


def _rmtree(d):
    for name in os.listdir(d):
        try:
            os.unlink(os.path.join(d, name))
        except OSError:
            pass
    try:
        os.rmdir(d)
    except OSError:
        pass


def tally(what: str) -> None:
    """``hypothesis.event`` inside a property, nothing outside one."""
    try:
        event(what)
    except InvalidArgument:
        pass


def known_crash(outcome):
    if outcome[0] != "crash":
        return None
    for (name, text), bug in KNOWN_CRASHES.items():
        if outcome[2] == name and (text in outcome[3] or text in outcome[4]):
            return bug
    return None


def judge(outcome, path_hint: str = "fuzzed.yaml", has_overrides: bool = False, expect_cycle: bool = False):
    """Assert the property on one outcome (in the parent)."""
    kind = outcome[0]
    if kind == "crash":
        bug = known_crash(outcome)
        if bug:
            tally(f"known bug tolerated: {bug}")
            return
        _, stage, name, message, tb = outcome
        pytest.fail(f"{stage}: {name}: {message}\n{tb}")
    if kind == "ok":
        tally("accepted: built and ran forward")
        assert not expect_cycle, "a delay-0 cycle was accepted"
        return
    _, text, errors = outcome
    assert "Traceback" not in text
    assert errors
    for line, column, where, what, formatted, path in errors:
        assert what and what.strip(), f"empty message: {formatted!r}"
        if path and path.startswith("--set "):
            assert has_overrides, formatted
            assert formatted.startswith(f"{path}: "), formatted
            tally("refused: SpecError at the --set argument")
        elif line is not None:
            assert isinstance(line, int) and line >= 1, formatted
            assert path and path.endswith(path_hint), formatted
            assert formatted.startswith(f"{path}:{line}"), formatted
            tally("refused: SpecError with a line")
        else:
            assert where == "", f"an error at {where!r} has no line: {formatted!r}"
            assert path and formatted.startswith(f"{path}: "), formatted
            assert any(p in what for p in NO_LINE_OK), f"a whole-document error without a line: {formatted!r}"
            tally("refused: whole-document SpecError (no line)")
    if expect_cycle:
        assert any("cycle" in e[3] for e in errors), f"the cycle is not named: {text}"


# --------------------------------------------------------------------------- mutations

def walk(obj, path=()):
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, path + (i,))


def get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def typo(draw, word: str) -> str:
    word = str(word)
    ops = ["drop", "swap", "double", "upper", "plural", "replace", "empty_or_space"]
    op = draw(st.sampled_from(ops))
    i = draw(st.integers(0, max(len(word) - 1, 0)))
    if op == "drop" and len(word) > 1:
        return word[:i] + word[i + 1:]
    if op == "swap" and len(word) > 1:
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "double" and word:
        return word[:i] + word[i] + word[i:]
    if op == "upper":
        return word.upper() if word != word.upper() else word.lower() + "x"
    if op == "replace" and word:
        return word[:i] + draw(st.sampled_from("qzx_0-/ .")) + word[i + 1:]
    if op == "empty_or_space":
        return draw(st.sampled_from(["", " ", word + " ", "-" + word]))
    return word + "s"


def m_delete_key(draw, data):
    cands = [p for p, _ in walk(data) if p and isinstance(get(data, p[:-1]), dict)]
    if not cands:
        return "delete: nothing"
    p = draw(st.sampled_from(cands))
    del get(data, p[:-1])[p[-1]]
    return f"delete {p}"


def m_rename_key(draw, data):
    cands = [p for p, _ in walk(data) if p and isinstance(get(data, p[:-1]), dict)]
    if not cands:
        return "rename: nothing"
    p = draw(st.sampled_from(cands))
    parent = get(data, p[:-1])
    new = typo(draw, p[-1])
    # keep the order of keys: rebuild the mapping
    items = [(new if k == p[-1] else k, v) for k, v in parent.items()]
    parent.clear()
    for k, v in items:
        parent[k] = v
    return f"rename {p} -> {new!r}"


def retyped(draw, value):
    if isinstance(value, bool):
        return draw(st.sampled_from(["true", 1, "yes", None, [value]]))
    if isinstance(value, (int, float)):
        return draw(st.sampled_from([str(value), "ten", [value], {"value": value}, None, True, ""]))
    if isinstance(value, str):
        return draw(st.sampled_from([3, 0, -1, 1.5, [value], {value: value}, None, True, value * 3]))
    if isinstance(value, list):
        return draw(st.sampled_from([len(value), 1, "list", {"items": value}, value[:1] * 0, None,
                                     [value], dict(enumerate(value))]))
    if isinstance(value, dict):
        return draw(st.sampled_from([list(value.values()), [[k, v] for k, v in value.items()], list(value),
                                     "mapping", 0, None, {}, [value]]))
    return draw(st.sampled_from([{}, [], 0, "x"]))


def m_retype(draw, data):
    cands = [p for p, _ in walk(data) if p]
    p = draw(st.sampled_from(cands))
    new = retyped(draw, get(data, p))
    get(data, p[:-1])[p[-1]] = new
    return f"retype {p} -> {new!r}"[:300]


def m_number(draw, data):
    nums = [p for p, v in walk(data) if p and isinstance(v, (int, float)) and not isinstance(v, bool)]
    keys = [p for p, v in walk(data) if p and isinstance(get(data, p[:-1]), dict)]
    p = draw(st.sampled_from(nums)) if nums and draw(st.booleans()) else draw(st.sampled_from(keys or nums))
    new = draw(st.sampled_from(HUGE))
    get(data, p[:-1])[p[-1]] = new
    return f"number {p} -> {new!r}"


def _node_names(data):
    nodes = data.get("nodes") if isinstance(data, dict) else None
    return list(nodes) if isinstance(nodes, dict) else []


def m_break_ref(draw, data):
    edges = data.get("edges") if isinstance(data, dict) else None
    if not isinstance(edges, list) or not edges:
        return "break_ref: no edges"
    i = draw(st.integers(0, len(edges) - 1))
    edge = edges[i]
    if not isinstance(edge, dict):
        return "break_ref: edge not a mapping"
    key = draw(st.sampled_from(["from", "to"]))
    names = _node_names(data) or ["x"]
    target = str(edge.get(key, draw(st.sampled_from(names))))
    new = draw(st.sampled_from([typo(draw, target), "nosuch", "", 5, None, [], [target, "nosuch"],
                                "a/b", f"{target}/h", "lstm/h", "gru/hn", "enc/c", "x y", "on", True,
                                {"node": target}, [[target]]]))
    edge[key] = new
    return f"break_ref edges[{i}].{key} -> {new!r}"


def m_cycle(draw, data):
    names = _node_names(data)
    nodes = data["nodes"] if names else {}
    hidden = [n for n in names if not (isinstance(nodes[n], dict) and nodes[n].get("role") == "input")]
    if not hidden:
        return "cycle: no nodes"
    a = draw(st.sampled_from(hidden))
    b = draw(st.sampled_from(hidden))
    edges = data.get("edges")
    if not isinstance(edges, list):
        edges = data["edges"] = []
    named = draw(st.booleans())
    new = [{"from": a, "to": b, "delay": 0}]
    if a != b:
        new.append({"from": b, "to": a, "delay": 0})
    if named:
        for j, e in enumerate(new):
            e["name"] = f"fuzz_cycle_{j}"
    for e in new:
        edges.insert(draw(st.integers(0, len(edges))), e)
    return f"cycle {a} <-> {b} (named={named})"


def m_reverse(draw, data):
    """Negate some edges' delays, or turn a block backward: a valid look-ahead or
    backward loop, or a cycle whose delays mix signs (refused with a line)."""
    edges = [e for e in _edges(data) if isinstance(e, dict) and isinstance(e.get("delay"), int)
             and not isinstance(e.get("delay"), bool)]
    nodes = data.get("nodes") if isinstance(data.get("nodes"), dict) else {}
    blocks = [n for n, body in nodes.items() if isinstance(body, dict) and "type" in body]
    if blocks and (not edges or draw(st.booleans())):
        b = draw(st.sampled_from(blocks))
        nodes[b]["direction"] = draw(st.sampled_from(["backward", "forward", "sideways"]))
        return f"reverse block {b} -> {nodes[b]['direction']}"
    if not edges:
        return "reverse: no delays"
    chosen = draw(st.lists(st.sampled_from(range(len(edges))), min_size=1, max_size=len(edges), unique=True))
    for i in chosen:
        edges[i]["delay"] = -edges[i]["delay"] or -1
    return f"reverse delays of {len(chosen)} edges"


BOMB = "{" + ", ".join(["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]) + "}"
SET_VALUES = [repr(v) if isinstance(v, float) else str(v) for v in HUGE] + [
    "1" + "0" * 400, "-" + "9" * 5000, "[1, " + "7" * 5000 + "]", "", "abc", "null", "[]", "{}", "[1, 2]",
    "{a: 1}", "true", ".inf", ".nan", "1e-3", "&a [*a, *a]", "&a [1, *a]", "&a {k: *a}", BOMB, "*nosuch",
    "[&a 1, *a, *a]", "{a: &x [1, 2], b: *x}", "!!python/object/apply:os.system [echo]", "a: b: c", "[" * 200]


def m_override(draw, data):
    """A ``--set KEY=VALUE`` argument (read by parse_sets), not a change of the data."""
    paths = [p for p, _ in walk(data) if p]
    base = list(draw(st.sampled_from(paths))) if paths else []
    extra = draw(st.sampled_from([[], ["x"], ["0"], ["-1"], ["99"], [""], ["a", "b"], ["9" * 30]]))
    key = ".".join(str(p) for p in base + extra)
    value = draw(st.sampled_from(SET_VALUES))
    return key, value


def _edges(data):
    edges = data.get("edges") if isinstance(data, dict) else None
    return edges if isinstance(edges, list) else []


def m_param_name(draw, data):
    """Name an edge like a parameter rnngraph makes, or like no file member can be."""
    edges = [e for e in _edges(data) if isinstance(e, dict)]
    if not edges:
        return "param_name: no edges"
    edge = draw(st.sampled_from(edges))
    nodes = data["nodes"] if _node_names(data) else {}
    names = [str(n) for n in nodes] or ["x"]
    blocks = [str(n) for n, b in nodes.items() if isinstance(b, dict) and "type" in b] or names
    other = [str(e["name"]) for e in edges if isinstance(e.get("name"), str)] + \
        [f"{e.get('from')}->{e.get('to')}" for e in edges]
    new = draw(st.sampled_from([
        f"{draw(st.sampled_from(names))}.bias", f"{draw(st.sampled_from(names))}.init",
        f"{draw(st.sampled_from(blocks))}/i.bias", f"{draw(st.sampled_from(blocks))}/h.init",
        f"{draw(st.sampled_from(blocks))}/x->i", draw(st.sampled_from(other)),
        "a\0b", "../../evil", "/etc/passwd", "a/./b", "a//b", "tab\tname", " padded ", "back\\slash",
        "n" * 300, "ok/name"]))
    edge["name"] = new
    return f"param_name -> {new!r}"


STRUCTURAL = {"delete_key": m_delete_key, "rename_key": m_rename_key, "retype": m_retype,
              "number": m_number, "break_ref": m_break_ref, "cycle": m_cycle, "param_name": m_param_name,
              "reverse": m_reverse}


def t_delete_char(draw, text):
    if not text:
        return text, "delete char: empty"
    i = draw(st.integers(0, len(text) - 1))
    return text[:i] + text[i + 1:], f"delete char {i} {text[i]!r}"


def t_duplicate_char(draw, text):
    if not text:
        return text, "dup char: empty"
    i = draw(st.integers(0, len(text) - 1))
    return text[:i] + text[i] + text[i:], f"duplicate char {i} {text[i]!r}"


def t_bracket(draw, text):
    i = draw(st.integers(0, len(text)))
    c = draw(st.sampled_from(["[", "]", "{", "}", "{[", "]]", "}}", "[{", '"', "'", ": ", "- ", "&a ", "*a",
                              "!!python/object:os.system ", "? "]))
    return text[:i] + c + text[i:], f"insert {c!r} at {i}"


def t_tab(draw, text):
    lines = text.split("\n")
    j = draw(st.integers(0, max(len(lines) - 1, 0)))
    how = draw(st.sampled_from(["indent", "insert", "replace_spaces"]))
    line = lines[j]
    if how == "indent":
        lines[j] = "\t" + line
    elif how == "insert":
        k = draw(st.integers(0, len(line)))
        lines[j] = line[:k] + "\t" + line[k:]
    else:
        stripped = line.lstrip(" ")
        lines[j] = "\t" * ((len(line) - len(stripped) + 1) // 2) + stripped
    return "\n".join(lines), f"tab ({how}) on line {j + 1}"


def t_garbage_chars(draw, text):
    i = draw(st.integers(0, len(text)))
    n = draw(st.integers(0, 12))
    # one time in ten (7, not 0: hypothesis favours the first choice) any of the 256 code points of
    # latin-1, control characters too; else printable characters from all of Unicode
    if draw(st.sampled_from(range(10))) == 7:
        junk = draw(st.binary(min_size=1, max_size=12).map(lambda b: b.decode("latin-1")))
    else:
        junk = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn")),
                            min_size=1, max_size=12))
    return text[:i] + junk + text[i + n:], f"garbage {junk!r} at {i} (replacing {n})"


def t_huge_int(draw, text):
    """A number of the text replaced by an integer of 400 or 5000 digits."""
    spans = [m.span() for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)]
    if not spans:
        return text, "huge int: no number"
    i, j = draw(st.sampled_from(spans))
    digits = draw(st.sampled_from([400, 5000]))
    sign = draw(st.sampled_from(["", "-"]))
    return text[:i] + sign + "9" * digits + text[j:], f"number at {i} -> {sign}{digits} digits"


TEXTUAL = {"delete_char": t_delete_char, "duplicate_char": t_duplicate_char, "bracket": t_bracket,
           "tab": t_tab, "garbage_chars": t_garbage_chars, "huge_int": t_huge_int}


@st.composite
def mutated_specs(draw):
    """(payload for run_isolated, description lines, expect_cycle)."""
    name = draw(st.sampled_from(sorted(TEXTS)))
    log = [f"from specs/{name}"]
    data = copy.deepcopy(DATA[name])
    structural = draw(st.lists(st.sampled_from(sorted(STRUCTURAL)), max_size=3))
    for m in structural:
        log.append(STRUCTURAL[m](draw, data))
    overrides = None
    if draw(st.sampled_from(range(10))) == 7:
        key, value = m_override(draw, data)
        overrides = [f"{key}={value}"]
        log.append(f"--set {key}={value[:200]}")
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True) if structural \
        else TEXTS[name]
    textual = draw(st.lists(st.sampled_from(sorted(TEXTUAL)), max_size=2 if structural else 3,
                            min_size=0 if structural or overrides else 1))
    for m in textual:
        text, what = TEXTUAL[m](draw, text)
        log.append(what)
    payload = ("text", text, overrides)
    mode = draw(st.sampled_from(range(20)))   # 7 and 13 rare: hypothesis favours 0 and small integers
    if mode == 7:      # random bytes spliced into the file's bytes, read by load_spec
        raw = text.encode("utf-8")
        i = draw(st.integers(0, len(raw)))
        junk = draw(st.binary(min_size=1, max_size=16))
        payload = ("bytes", raw[:i] + junk + raw[i:], overrides)
        log.append(f"bytes {junk!r} at byte {i}")
    elif mode == 13:   # a whole file of garbage
        payload = ("bytes", draw(st.binary(max_size=300)), None)
        log = ["random bytes"]
    expect_cycle = structural == ["cycle"] and not textual and payload[0] == "text" and overrides is None \
        and "named=True" in log[-1]
    return payload, log, expect_cycle


def check_payload(payload, log, expect_cycle):
    for line in log:
        note(line)
    if payload[0] == "text":
        note("text:\n" + payload[1])
    outcome, seconds = run_isolated(payload)
    note(f"outcome: {outcome[:4]!r} in {seconds:.2f} s")
    judge(outcome, has_overrides=payload[2] is not None, expect_cycle=expect_cycle)


def fuzz_settings(n):
    return settings(max_examples=n, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@fuzz_settings(300)
@given(mutated_specs())
def test_mutated_specs_are_refused_with_a_line_or_run(case):
    check_payload(*case)


@pytest.mark.slow
@fuzz_settings(5000)
@given(mutated_specs())
def test_mutated_specs_long_run(case):
    check_payload(*case)


# --------------------------------------------------------------------------- fixed cases

def test_every_original_spec_builds_and_runs():
    for name, text in TEXTS.items():
        outcome, _ = run_isolated(("text", text, None))
        assert outcome[0] == "ok", (name, outcome)


def test_the_harness_reports_a_crash_a_hang_and_a_memory_hog():
    """The isolation itself: an exception, an allocation past the limit, and a
    hang in the child all come back as crashes, and the parent survives."""
    global _evaluate
    real = _evaluate
    try:
        def hog(payload, workdir):
            import numpy as np
            return ("ok", np.ones(8 * 1024 ** 3, dtype=np.uint8).sum(), 0)
        _evaluate = hog
        outcome, seconds = run_isolated(("text", "", None))
        assert outcome[:3] == ("crash", "harness", "MemoryError"), outcome
        _evaluate = lambda payload, workdir: time.sleep(60)   # noqa: E731
        outcome, seconds = run_isolated(("text", "", None), timeout=1.0)
        assert outcome[2] == "Timeout" and seconds < 10
    finally:
        _evaluate = real


@pytest.mark.parametrize("text, where", [
    ("rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {size: 2}\n  y: {role: output, size: 1}\n"
     "edges:\n  - {from: x, to: h}\n  - {from: h, to: y}\n  - {from: y, to: h}\n", "edges[1]"),
    ("rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {size: 2}\n"
     "edges:\n  - {from: x, to: h}\n  - {from: h, to: h, name: self}\n", "edges[1]"),
    ("rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  l: {type: lstm, size: 2}\n  y: {role: output, size: 1}\n"
     "edges:\n  - {from: x, to: l}\n  - {from: l, to: y}\n  - {from: y, to: l}\n", None),
], ids=["two-nodes", "self-loop", "through-a-block"])
def test_delay0_cycles_are_named(text, where):
    outcome, _ = run_isolated(("text", text, None))
    assert outcome[0] == "spec_error", outcome
    line, column, got_where, what, formatted, path = outcome[2][0]
    assert "cycle" in what and line is not None, formatted
    if where:
        assert got_where.startswith(where), formatted


@pytest.mark.parametrize("text", [
    "rnngraph: 1\nnodes:\n  x: {role: input, size: 1000000000000}\n",
    "rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {size: 900000}\n"
    "edges:\n  - {from: x, to: h}\n  - {from: h, to: h, delay: 1}\n",
    "rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {type: lstm, size: 200000}\n"
    "edges:\n  - {from: x, to: h}\n",
    "rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {size: 2}\n"
    "edges:\n  - {from: x, to: h}\n  - {from: h, to: h, delay: 1000000000000}\n",
    "rnngraph: 1\nnodes:\n  x: {role: input, size: 1}\n  h: {size: 2}\n"
    "edges:\n  - {from: x, to: h, init: [[1.0], [2.0], [3.0]]}\n",
], ids=["size-1e12", "dense-900000", "lstm-200000", "delay-1e12", "init-list-shape"])
def test_absurd_sizes_are_refused_quickly_with_a_line(text):
    outcome, seconds = run_isolated(("text", text, None))
    assert outcome[0] == "spec_error", outcome
    assert seconds < 5, f"took {seconds:.1f} s to refuse"
    assert all(e[0] is not None for e in outcome[2]), outcome


LAUGHS = "rnngraph: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("text, line_expected", [
    ("rnngraph: 1\nnodes: " + "[" * 100_000, False),
    ("rnngraph: 1\nnodes: " + "{a: " * 5000 + "1" + "}" * 5000, False),
    (LAUGHS, True),
    ("", True),
    ("# only a comment\n", True),
    ("rnngraph: 1\n---\nrnngraph: 1\n", True),
    ("- rnngraph: 1\n", True),
], ids=["deep-brackets", "deep-braces", "billion-laughs", "empty", "comment-only", "two-documents", "a-list"])
def test_pathological_documents_are_refused_quickly(text, line_expected):
    outcome, seconds = run_isolated(("text", text, None))
    judge(outcome)
    assert outcome[0] == "spec_error", outcome
    assert (outcome[2][0][0] is not None) == line_expected, outcome[2][0][4]
    assert seconds < 10, f"{seconds:.1f} s"


# --------------------------------------------------------------------------- known bugs (strict xfails)

CONTROL_CHAR = "rnngraph: 1\nnodes:\n  x: {role: input, size: 1\x07}\n"


def test_control_character_is_a_spec_error_with_a_line():
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(CONTROL_CHAR, path="ctrl.yaml")
    assert info.value.line == 3


def test_control_character_through_the_cli(tmp_path):
    import subprocess
    import sys
    f = tmp_path / "ctrl.yaml"
    f.write_text(CONTROL_CHAR, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "rnngraph.cli", "check", str(f)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and f"{f}:3" in r.stderr, r.stderr


LINEAR = (ROOT / "specs" / "linear_regression.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["[sgd]", "{a: 1}"])
def test_unhashable_optimizer_name_is_a_spec_error(name):
    text = LINEAR.replace("optimizer: {name: sgd, lr: 0.1}", f"optimizer: {{name: {name}, lr: 0.1}}")
    assert text != LINEAR
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(text, path="lin.yaml")
    assert info.value.line is not None and info.value.where == "train.optimizer.name"


@pytest.mark.parametrize("key", ["input", "output"])
def test_unhashable_task_input_is_a_spec_error(key):
    text = LINEAR.replace("generator: linear", f"generator: linear, {key}: [x]")
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(text, path="lin.yaml")
    assert info.value.line is not None and info.value.where == f"task.{key}"


@pytest.mark.parametrize("key, value", [("loss", "[mse]"), ("method", "[bptt]"), ("loss", "{a: 1}")])
def test_unhashable_loss_or_method_is_a_spec_error(key, value):
    """Found by the fuzzer: the loss/activation check read a list as a loss name."""
    text = LINEAR.replace("loss: mse" if key == "loss" else "method: bptt", f"{key}: {value}")
    outcome, _ = run_isolated(("text", text, None))
    judge(outcome)
    assert outcome[0] == "spec_error" and f"train.{key}" in outcome[1], outcome


def test_early_stopping_metric_must_be_a_string(tmp_path):
    import subprocess
    import sys
    text = LINEAR.replace("loss: mse,", 'loss: mse, early_stopping: {metric: [mse], threshold: "< 1"},')
    assert text != LINEAR
    f = tmp_path / "es.yaml"
    f.write_text(text, encoding="utf-8")
    try:
        rg.parse_spec(text, path=str(f))
    except rg.SpecError as exc:
        assert exc.line is not None
        return
    r = subprocess.run([sys.executable, "-m", "rnngraph.cli", "run", str(f), "--out", str(tmp_path / "out"),
                        "--epochs", "1", "--quiet"], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr and r.returncode in (0, 2), r.stderr[-2000:]


@pytest.mark.parametrize("lr", ["1e-3", "1E-3", "5e-4", "1.0e9"])
def test_scientific_notation_is_a_number(lr):
    text = LINEAR.replace("lr: 0.1}", f"lr: {lr}}}")
    assert text != LINEAR
    spec = rg.parse_spec(text, path="lin.yaml")
    assert spec.train["optimizer"]["lr"] == float(lr)


def test_a_spec_at_the_size_limit_is_refused_within_seconds():
    """Time a 5,000-line slice and extrapolate to the limits the loader accepts
    (bytes and lines, whichever binds first)."""
    from rnngraph.spec.source import MAX_LINES, MAX_TEXT_BYTES
    text = "".join(f"k{i}: {i}\n" for i in range(5_000))
    start = time.perf_counter()
    with pytest.raises(rg.SpecError):
        rg.parse_spec(text, path="big.yaml")
    seconds = time.perf_counter() - start
    at_limit = seconds * min(MAX_TEXT_BYTES / len(text.encode()), MAX_LINES / 5_000)
    assert at_limit < 10, f"{len(text) / 1e3:.0f} kB took {seconds:.2f} s: about {at_limit:.0f} s at the limit"


FILE_TASK = """\
rnngraph: 1
nodes:
  x: {role: input, size: 1}
  y: {role: output, size: 1}
edges:
  - {from: x, to: y}
task: {file: d.npz, KEY: VALUE}
"""


@pytest.mark.parametrize("key, value", [
    (key, value) for key in ("eval_split", "metrics") for value in (
        "{a: 1}", "-0.5", "0", "1", ".nan", ".inf", "'0.2'", "null", "1" + "0" * 400, "[[mse]]",
        "[{a: 1}]", "[null]", "mse", "[mse, mse]", "[r3]", "true", "[]" if key == "eval_split" else "2")])
def test_odd_task_metrics_and_eval_split_are_refused_at_their_key(key, value):
    text = FILE_TASK.replace("KEY", key).replace("VALUE", value)
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(text, path="f.yaml")
    assert info.value.line == 7 and info.value.where.startswith(f"task.{key}"), str(info.value)


def test_a_file_task_with_eval_split_and_metrics_parses():
    spec = rg.parse_spec(FILE_TASK.replace("KEY: VALUE", "eval_split: 0.2, metrics: [r2, mae]"), path="f.yaml")
    assert spec.task == {"file": "d.npz", "eval_split": 0.2, "metrics": ["r2", "mae"]}


# --------------------------------------------------------------------------- --set values, every one

@pytest.mark.parametrize("value", SET_VALUES, ids=[f"v{i}" for i in range(len(SET_VALUES))])
@pytest.mark.parametrize("key", ["train.optimizer.lr", "edges.0.init", "expect", "task.n_train", "task.metrics"])
def test_every_set_value_is_refused_at_its_argument_or_runs(key, value):
    """Each ``--set`` value of the fuzzer, on keys of different kinds: a number, an
    initializer (lists allowed), a mapping, a task parameter."""
    outcome, seconds = run_isolated(("text", TEXTS["linear_regression.yaml"], [f"{key}={value}"]))
    judge(outcome, has_overrides=True)
    assert seconds < 10, f"{seconds:.1f} s"
