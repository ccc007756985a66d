"""Invalid specs a user could plausibly write, and how rnngraph refuses them.

Every case is checked twice:

* through the command line: ``rnngraph check FILE`` exits 2, prints
  ``FILE:LINE:`` pointing at the mistake and the key phrase of the message,
  and never a traceback (the README's Python and command sections);
* through the Python API: ``rg.parse_spec(text, path="x.yaml")`` raises
  ``rg.SpecError`` whose ``.path``, ``.line``, ``.column`` and ``.where``
  locate the mistake.

The line a mistake is on is marked in the YAML itself with a ``# <-`` comment,
so the expected line number is read from the text, not counted by hand.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

import rnngraph as rg

MARK = "# <-"

BASE_NODES = """\
rnngraph: 1
nodes:
  x: {role: input, size: 2}
  hidden: {size: 3, activation: tanh}
  y: {role: output, size: 1}
"""
# the three base edges are edges[0..2]; the first added edge is edges[3]
BASE_EDGES = """\
edges:
  - {from: x, to: hidden}
  - {from: hidden, to: hidden, delay: 1}
  - {from: hidden, to: y}
"""


def spec(nodes="", edges="", tail=""):
    """The base Elman-like spec (valid) with extra nodes, edges and top-level keys."""
    return BASE_NODES + nodes + BASE_EDGES + edges + tail


@dataclass
class Case:
    text: str
    phrases: tuple            # each must appear in the message
    where: str | None = None  # SpecError.where (None: not checked)
    line: object = MARK       # MARK: the line holding "# <-"; an int; or None (no line)
    col_of: str | None = None  # the column is where this text starts on that line
    binary: bytes | None = None

    def expected_line(self):
        if self.line != MARK:
            return self.line
        marked = [i + 1 for i, text in enumerate(self.text.splitlines()) if MARK in text]
        assert len(marked) == 1, "a case marks exactly one line"
        return marked[0]

    def expected_column(self):
        if self.col_of is None:
            return None
        text = self.text.splitlines()[self.expected_line() - 1]
        assert self.col_of in text
        return text.index(self.col_of) + 1


def case(id, text, *phrases, marks=(), **kw):
    return pytest.param(Case(text, phrases, **kw), id=id, marks=marks)



CASES = [
    # ---------------------------------------------------------------- edges: endpoints
    case("edge-to-typo", spec(edges="  - {from: y, to: hiden, delay: 1}   # <-\n"),
         "unknown node 'hiden'", "did you mean 'hidden'", where="edges[3].to", col_of="hiden"),
    case("edge-from-list-typo", spec(edges="  - {from: [x, hiden], to: y, delay: 1}   # <-\n"),
         "unknown node 'hiden'", "did you mean 'hidden'", where="edges[3].from[1]", col_of="hiden"),
    case("edge-missing-to", spec(edges="  - {from: y, delay: 1}   # <-\n"),
         "missing `to:`", where="edges[3]"),
    case("edge-into-input", spec(edges="  - {from: y, to: x, delay: 1}   # <-\n"),
         "'x' is an input node", where="edges[3].to", col_of="x, delay"),
    case("edge-list-into-input", spec(edges="  - {from: y, to: [hidden, x], delay: 1}   # <-\n"),
         "'x' is an input node", where="edges[3].to"),
    case("edge-not-a-mapping", spec(edges="  - x -> hidden   # <-\n"),
         "an edge is a mapping", where="edges[3]"),
    case("edges-not-a-list", BASE_NODES + "edges:\n  from: x   # <-\n  to: hidden\n",
         "edges must be a list", where="edges"),
    case("edge-key-typo", spec(edges="  - {from: y, to: hidden, dealy: 1}   # <-\n"),
         "unknown edge key 'dealy'", "did you mean 'delay'", where="edges[3].dealy", col_of="dealy"),
    # ---------------------------------------------------------------- edges: delay, weight, init
    case("delay-negative", spec(edges="  - {from: y, to: hidden, delay: -1}   # <-\n"),
         "delay must be an integer >= 0", "-1", where="edges[3].delay", col_of="-1"),
    case("delay-string", spec(edges="  - {from: y, to: hidden, delay: \"1\"}   # <-\n"),
         "delay must be an integer >= 0", "'1'", where="edges[3].delay", col_of="\"1\""),
    case("delay-huge", spec(edges="  - {from: y, to: hidden, delay: 100000000}   # <-\n"),
         "delay 100000000 is larger", where="edges[3].delay"),
    case("weight-unknown", spec(edges="  - {from: y, to: hidden, delay: 1, weight: sparse}   # <-\n"),
         "weight must be", "'sparse'", where="edges[3].weight", col_of="sparse"),
    case("weight-typo", spec(edges="  - {from: y, to: hidden, delay: 1, weight: diagnal}   # <-\n"),
         "did you mean 'diagonal'", where="edges[3].weight"),
    case("diagonal-different-sizes", spec(edges="  - {from: x, to: hidden, weight: diagonal, name: d}   # <-\n"),
         "diagonal edge needs equal sizes", "'x' has size 2", "'hidden' has size 3", where="edges[3].weight"),
    case("scalar-different-sizes", spec(edges="  - {from: hidden, to: y, delay: 1, weight: scalar}   # <-\n"),
         "scalar edge needs equal sizes", where="edges[3].weight"),
    case("identity-with-init",
         spec(edges="  - {from: hidden, to: hidden, delay: 2, weight: identity, init: 0.5}   # <-\n"),
         "identity edges have no parameter", where="edges[3].init", col_of="0.5"),
    case("identity-trainable",
         spec(edges="  - {from: hidden, to: hidden, delay: 2, weight: identity, trainable: true}   # <-\n"),
         "identity edges have no parameter", "cannot be trainable", where="edges[3].trainable"),
    # numbers a float32 network cannot hold (they would become inf when cast)
    case("edge-init-too-large-for-float32", spec(edges="  - {from: y, to: hidden, delay: 1, init: 1.0e+300}   # <-\n"),
         "too large for float32", "dtype: float64", where="edges[3].init"),
    case("edge-init-uniform-too-large", spec(edges="  - {from: y, to: hidden, delay: 1, init: 'uniform(-1e39, 1)'}   # <-\n"),
         "too large for float32", where="edges[3].init"),
    case("edge-init-array-too-large",
         spec(edges="  - {from: hidden, to: hidden, delay: 2, weight: diagonal, init: [1, 2, 1.0e+40]}   # <-\n"),
         "1e+40 is too large for float32", where="edges[3].init"),
    case("node-init-too-large", spec(nodes="  s: {size: 2, init: [0, -1.0e+39]}   # <-\n"),
         "too large for float32", where="nodes.s.init"),
    case("forget-bias-too-large", spec(nodes="  m: {type: lstm, size: 2, forget_bias: 1.0e+200}   # <-\n"),
         "too large for float32", where="nodes.m.forget_bias"),
    case("bias-too-large", spec(nodes="  s: {size: 2, bias: {init: 1.0e+100}}   # <-\n"),
         "too large for float32", where="nodes.s.bias.init"),
    case("trainable-string", spec(edges="  - {from: y, to: hidden, delay: 1, trainable: \"no\"}   # <-\n"),
         "trainable must be true or false", where="edges[3].trainable"),
    case("init-uniform-reversed", spec(edges="  - {from: y, to: hidden, delay: 1, init: \"uniform(1, -1)\"}   # <-\n"),
         "uniform(a,b) with a <= b", where="edges[3].init"),
    case("init-dense-wrong-shape", spec(edges="  - {from: y, to: hidden, delay: 1, init: [[1, 2, 3]]}   # <-\n"),
         "shape (1, 3)", "needs shape (3, 1)", where="edges[3].init"),
    case("init-orthogonal-diagonal",
         spec(edges="  - {from: hidden, to: hidden, delay: 2, weight: diagonal, init: orthogonal, name: o}   # <-\n"),
         "orthogonal init needs a dense edge", where="edges[3].init"),
    case("constraint-non-square", spec(edges="  - {from: x, to: hidden, constraint: symmetric, name: c}   # <-\n"),
         "needs a square weight", where="edges[3].constraint"),
    case("constraint-unknown",
         spec(edges="  - {from: hidden, to: hidden, delay: 2, constraint: symetric, name: c}   # <-\n"),
         "unknown constraint 'symetric'", "did you mean 'symmetric'", where="edges[3].constraint"),
    # ---------------------------------------------------------------- edges: duplicates and names
    case("duplicate-edge-without-name", spec(edges="  - {from: x, to: hidden}   # <-\n"),
         "a second edge x -> hidden", "edges[0]", "name", where="edges[3]"),
    case("duplicate-names",
         spec(edges="  - {from: y, to: hidden, delay: 1, name: fb}\n"
                    "  - {from: hidden, to: y, delay: 1, name: fb}   # <-\n"),
         "edge name 'fb' is already used by edges[3]", where="edges[4]"),
    case("from-list-with-name", spec(edges="  - {from: [x, y], to: hidden, delay: 1, name: both}   # <-\n"),
         "makes 2 edges", "cannot share one name", where="edges[3].name", col_of="both"),
    case("name-empty", spec(edges="  - {from: y, to: hidden, delay: 1, name: \"\"}   # <-\n"),
         "name must be a non-empty string", where="edges[3].name"),
    # ---------------------------------------------------------------- cycles
    case("cycle-delay0-two-nodes",
         spec(nodes="  a: {size: 2}\n  b: {size: 2}\n",
              edges="  - {from: a, to: b}   # <-\n  - {from: b, to: a}\n"),
         "cycle of delay-0 edges a -> b -> a", where="edges[3]"),
    case("cycle-delay0-three-nodes",
         spec(nodes="  a: {size: 2}\n  b: {size: 2}\n  c: {size: 2}\n",
              edges="  - {from: a, to: b}   # <-\n  - {from: b, to: c}\n  - {from: c, to: a}\n"),
         "cycle of delay-0 edges a -> b -> c -> a", where="edges[3]"),
    case("self-loop-delay0", spec(edges="  - {from: y, to: y, name: self}   # <-\n"),
         "cycle of delay-0 edges y -> y", where="edges[3]"),
    # ---------------------------------------------------------------- nodes
    case("missing-size", spec(nodes="  z: {activation: tanh}   # <-\n"),
         "missing `size`", where="nodes.z"),
    case("size-zero", spec(nodes="  z: {size: 0}   # <-\n"),
         "size must be an integer >= 1", "got 0", where="nodes.z.size", col_of="0}"),
    case("size-word", spec(nodes="  z: {size: four}   # <-\n"),
         "size must be an integer >= 1", "'four'", where="nodes.z.size", col_of="four"),
    case("size-huge", spec(nodes="  z: {size: 1000000000}   # <-\n"),
         "size 1000000000 is larger", where="nodes.z.size", col_of="1000000000"),
    case("activation-typo", spec(nodes="  z: {size: 2, activation: sigmod}   # <-\n"),
         "unknown activation 'sigmod'", "did you mean 'sigmoid'", where="nodes.z.activation", col_of="sigmod"),
    case("role-typo", spec(nodes="  z: {size: 2, role: ouput}   # <-\n"),
         "did you mean 'output'", where="nodes.z.role"),
    case("node-key-typo", spec(nodes="  z: {size: 2, activaton: tanh}   # <-\n"),
         "unknown node key 'activaton'", "did you mean 'activation'", where="nodes.z.activaton",
         col_of="activaton"),
    case("duplicate-yaml-key", spec(nodes="  z: {size: 2, size: 3}   # <-\n"),
         "duplicate key 'size'", where="nodes.z.size"),
    case("node-name-digit", spec(nodes="  2nd: {size: 2}   # <-\n"),
         "invalid node name '2nd'", where="nodes.2nd", col_of="2nd"),
    case("bias-on-product", spec(nodes="  p: {size: 3, combine: product, bias: true}   # <-\n",
                                 edges="  - {from: hidden, to: p}\n"),
         "product nodes have no bias", where="nodes.p.bias", col_of="true"),
    case("bias-on-input", spec(nodes="  u: {role: input, size: 2, bias: true}   # <-\n"),
         "input nodes take their values from data", where="nodes.u.bias"),
    case("bias-word", spec(nodes="  z: {size: 2, bias: yes please}   # <-\n"),
         "bias must be true, false, a number", where="nodes.z.bias"),
    case("product-without-inputs", spec(nodes="  p: {size: 3, combine: product}   # <-\n"),
         "product node 'p' has no incoming edges", where="nodes.p"),
    case("init-list-wrong-length", spec(nodes="  z: {size: 3, init: [1, 2]}   # <-\n"),
         "init list has 2 numbers but the node has size 3", where="nodes.z.init", col_of="[1, 2]"),
    case("init-nan", spec(nodes="  z: {size: 2, init: .nan}   # <-\n"),
         "init must be a number", where="nodes.z.init"),
    case("nodes-is-a-list", "rnngraph: 1\nnodes:\n  - x: {role: input, size: 2}   # <-\n",
         "nodes must be a non-empty mapping", where="nodes"),
    # ---------------------------------------------------------------- blocks
    case("block-type-unknown", spec(nodes="  b: {type: lstn, size: 3}   # <-\n"),
         "unknown block type 'lstn'", "did you mean 'lstm'", where="nodes.b.type", col_of="lstn"),
    case("lstm-variant-unknown", spec(nodes="  b: {type: lstm, size: 3, variant: cfig}   # <-\n"),
         "unknown lstm variant 'cfig'", "did you mean 'cifg'", where="nodes.b.variant", col_of="cfig"),
    case("gru-forget-bias", spec(nodes="  b: {type: gru, size: 3, forget_bias: 1.0}   # <-\n"),
         "'forget_bias'", "gru", where="nodes.b.forget_bias", col_of="forget_bias"),
    case("cifg-forget-bias", spec(nodes="  b: {type: lstm, size: 3, variant: cifg, forget_bias: 1.0}   # <-\n"),
         "no forget-gate bias", where="nodes.b.forget_bias"),
    case("block-name-slash", spec(nodes="  b/c: {type: lstm, size: 3}   # <-\n"),
         "must not contain '/'", where="nodes.b/c", col_of="b/c"),
    case("block-role-input", spec(nodes="  b: {type: gru, size: 3, role: input}   # <-\n"),
         "a block's role is 'hidden' or 'output'", where="nodes.b.role"),
    case("edge-duplicating-block-recurrence",
         spec(nodes="  b: {type: lstm, size: 3}\n",
              edges="  - {from: x, to: b}\n  - {from: b, to: b, delay: 1}   # <-\n"),
         "defined twice", where="edges[4]"),
    # ---------------------------------------------------------------- top level
    case("unknown-top-level-key", spec(tail="trian: {loss: mse}   # <-\n"),
         "unknown key 'trian'", "did you mean 'train'", where="trian", col_of="trian"),
    case("missing-version", spec().replace("rnngraph: 1\n", ""),
         "missing `rnngraph: 1`", where="", line=1),
    case("version-2", spec().replace("rnngraph: 1\n", "rnngraph: 2   # <-\n"),
         "unsupported format version 2", where="rnngraph", col_of="2"),
    case("version-string", spec().replace("rnngraph: 1\n", "rnngraph: \"1\"   # <-\n"),
         "unsupported format version '1'", where="rnngraph"),
    case("not-a-mapping", "- rnngraph: 1   # <-\n- nodes: {}\n",
         "a spec is a mapping", where=""),
    case("empty-file", "", "empty", where="", line=1),
    case("only-a-comment", "# my network, to do\n", "empty", where="", line=1),
    case("yaml-syntax-error", spec().replace("activation: tanh}", "activation: tanh]   # <-"),
         "YAML syntax error", where="", col_of="]"),
    case("tab-indentation", "rnngraph: 1\nnodes:\n\tx: {role: input, size: 2}   # <-\n",
         "YAML syntax error", "'\\t'", where="", col_of="\t"),
    case("python-tag", spec(tail="description: !!python/object/apply:os.system ['echo hi']   # <-\n"),
         "python/object", "not allowed", where="description"),
    case("dtype-float16", spec(tail="dtype: float16   # <-\n"),
         "dtype must be 'float32' or 'float64'", "'float16'", where="dtype", col_of="float16"),
    case("seed-negative", spec(tail="seed: -1   # <-\n"),
         "seed must be a non-negative integer", where="seed", col_of="-1"),
    case("dynamics-update", spec(tail="dynamics:\n  update: parallel   # <-\n"),
         "update must be 'sync' or 'async'", where="dynamics.update"),
    # ---------------------------------------------------------------- train
    case("optimizer-unknown", spec(tail="train:\n  optimizer: {name: adamw, lr: 0.01}   # <-\n"),
         "unknown optimizer 'adamw'", where="train.optimizer.name", col_of="adamw"),
    case("lr-negative", spec(tail="train:\n  optimizer: {name: sgd, lr: -0.1}   # <-\n"),
         "lr must be a positive number", where="train.optimizer.lr", col_of="-0.1"),
    case("optimizer-wrong-option", spec(tail="train:\n  optimizer: {name: sgd, lr: 0.1, betas: [0.9, 0.99]}   # <-\n"),
         "sgd takes", "'betas'", where="train.optimizer.betas"),
    case("betas-out-of-range", spec(tail="train:\n  optimizer: {name: adam, betas: [0.9, 1.5]}   # <-\n"),
         "betas must be two numbers in [0, 1)", where="train.optimizer.betas"),
    case("loss-unknown", spec(tail="train:\n  loss: mae   # <-\n"),
         "loss must be 'mse', 'bce' or 'cross_entropy'", "'mae'", where="train.loss", col_of="mae"),
    case("train-key-typo", spec(tail="train:\n  epoch: 10   # <-\n"),
         "unknown train key 'epoch'", "did you mean 'epochs'", where="train.epoch", col_of="epoch"),
    case("method-unknown", spec(tail="train:\n  method: bptt_truncated   # <-\n"),
         "method must be", where="train.method"),
    case("epochs-word", spec(tail="train:\n  epochs: ten   # <-\n"),
         "epochs must be an integer >= 0", where="train.epochs"),
    case("clip-negative", spec(tail="train:\n  clip: -1   # <-\n"),
         "clip must be a positive number", where="train.clip"),
    case("loss-on-unknown", spec(tail="train:\n  loss_on: final   # <-\n"),
         "loss_on must be 'all', 'last' or 'mask'", where="train.loss_on"),
    # ---------------------------------------------------------------- expect, task
    case("expect-bad-threshold", spec(tail="expect:\n  train_loss: about 0.1   # <-\n"),
         "a threshold reads like", "'about 0.1'", where="expect.train_loss", col_of="about"),
    case("task-file-and-generator", spec(tail="task: {generator: adding, file: data.npz}   # <-\n"),
         "exactly one of `generator: NAME` or `file: data.npz`", where="task"),
    case("generator-unknown", spec(tail="task:\n  generator: temporal_xr   # <-\n"),
         "unknown task 'temporal_xr'", "did you mean 'temporal_xor'", where="task.generator",
         col_of="temporal_xr"),
    case("generator-bad-value", spec(tail="task:\n  generator: adding\n  T: -5   # <-\n"),
         "parameter 'T'", "adding", where="task.T"),
    case("generator-unknown-parameter", spec(tail="task:\n  generator: adding\n  length: 50   # <-\n"),
         "unknown parameter 'length'", where="task.length"),
    case("task-input-typo", spec(tail="task:\n  generator: adding\n  input: xx   # <-\n"),
         "unknown node 'xx'", where="task.input"),
    case("not-a-mapping-article", "42   # <-\n", "not an int", where=""),
    case("block-type-case", spec(nodes="  b: {type: LSTM, size: 3}   # <-\n"),
         "unknown block type 'LSTM'", "did you mean 'lstm'", where="nodes.b.type", col_of="LSTM"),
    case("identity-edge-article", spec(edges="  - {from: hidden, to: y, weight: identity}   # <-\n"),
         "an identity edge needs equal sizes", where="edges[3].weight"),
    # ---------------------------------------------------------------- numbers too large for any place
    case("int-400-digits-lr", spec(tail="train: {optimizer: {name: sgd, lr: " + "1" + "0" * 400 + "}}   # <-\n"),
         "401 digits is too large", where="train.optimizer.lr", col_of="10000"),
    case("int-400-digits-init", spec(edges="  - {from: y, to: hidden, delay: 1, init: -" + "9" * 400 + "}   # <-\n"),
         "400 digits is too large", where="edges[3].init", col_of="-999"),
    case("int-400-digits-expect", spec(tail="expect: {train_loss: " + "1" + "0" * 400 + "}   # <-\n"),
         "401 digits is too large", where="expect.train_loss"),
    case("expect-infinite-threshold", spec(tail="expect: {train_loss: \"< 1e999\"}   # <-\n"),
         "with a finite number", where="expect.train_loss"),
    case("expect-huge-threshold-in-text", spec(tail="expect: {train_loss: \"> 1" + "0" * 400 + "\"}   # <-\n"),
         "with a finite number", "...", where="expect.train_loss"),
    case("int-400-digits-task", spec(tail="task: {generator: adding, T: " + "1" + "0" * 400 + "}   # <-\n"),
         "401 digits is too large", where="task.T"),
    case("int-5000-digits", spec(tail="seed: " + "7" * 5000 + "   # <-\n"),
         "5,000 digits is too large", where="seed", col_of="777"),
    # ---------------------------------------------------------------- what a run would compute
    case("expect-metric-typo", spec(tail="task: {generator: adding}\nexpect: {acuracy: \">= 0.9\"}   # <-\n"),
         "metric 'acuracy' is not computed", "did you mean 'accuracy'", "task 'adding' gives", "mse",
         where="expect.acuracy", col_of="acuracy"),
    case("early-stopping-metric-unknown",
         spec(tail="task: {generator: adding}\ntrain:\n  early_stopping: {metric: recall, patience: 3}   # <-\n"),
         "metric 'recall' is not computed at each evaluation", where="train.early_stopping.metric",
         col_of="recall"),
    case("task-metrics-typo", spec(tail="task:\n  generator: adding\n  metrics: [mse, acuracy]   # <-\n"),
         "unknown metric 'acuracy'", "did you mean 'accuracy'", "known: mse, mae", where="task.metrics[1]",
         col_of="acuracy"),
    case("task-metrics-not-a-list", spec(tail="task: {file: d.npz, metrics: mse}   # <-\n"),
         "metrics must be a list of metric names", where="task.metrics", col_of="mse}"),
    case("task-metrics-twice", spec(tail="task: {file: d.npz, metrics: [mae, mae]}   # <-\n"),
         "metric 'mae' is listed twice", where="task.metrics[1]"),
    case("eval-split-out-of-range", spec(tail="task: {file: d.npz, eval_split: 1.5}   # <-\n"),
         "eval_split must be a number between 0 and 1", "got 1.5", where="task.eval_split", col_of="1.5"),
    case("eval-split-not-a-number", spec(tail="task: {file: d.npz, eval_split: half}   # <-\n"),
         "eval_split must be a number between 0 and 1", where="task.eval_split", col_of="half"),
    case("eval-split-with-eval-file", spec(tail="task: {file: d.npz, eval_file: e.npz, eval_split: 0.2}   # <-\n"),
         "already has an eval_file", where="task.eval_split", col_of="eval_split"),
    case("expect-metric-not-listed",
         spec(tail="task: {file: d.npz, eval_split: 0.2, metrics: [mse]}\nexpect: {accuracy: \"> 0.9\"}   # <-\n"),
         "metric 'accuracy' is not computed", "a data-file task gives", "mse",
         "add it to task.metrics", where="expect.accuracy",
         col_of="accuracy"),
    case("early-stopping-metric-not-listed",
         spec(tail="task: {file: d.npz, metrics: [mse]}\ntrain:\n  early_stopping: {metric: mae, patience: 3}   # <-\n"),
         "metric 'mae' is not computed at each evaluation", "did you mean 'mse'", where="train.early_stopping.metric",
         col_of="mae"),
    case("task-input-not-an-input",
         spec(nodes="  z: {size: 2}\n", edges="  - {from: z, to: hidden}\n",
              tail="task:\n  generator: adding\n  input: z   # <-\n"),
         "node 'z' has role 'hidden'", "add `role: input`", where="task.input", col_of="z"),
    case("bce-on-identity-output", spec(tail="task: {generator: adding}\ntrain: {loss: bce}   # <-\n"),
         "train.loss is 'bce'", "output node 'y' has activation 'identity'", "activation: sigmoid",
         where="train.loss", col_of="bce"),
    case("cross-entropy-on-sigmoid-output",
         spec(tail="task: {generator: adding}\ntrain: {loss: cross_entropy}   # <-\n").replace(
             "y: {role: output, size: 1}", "y: {role: output, size: 1, activation: sigmoid}"),
         "'cross_entropy'", "has activation 'sigmoid'", "activation: softmax", where="train.loss"),
    # ---------------------------------------------------------------- edge names
    case("edge-name-is-a-bias", spec(edges="  - {from: x, to: y, name: hidden.bias}   # <-\n"),
         "edge name 'hidden.bias' is already the bias of node 'hidden'", where="edges[3].name",
         col_of="hidden.bias"),
    case("edge-name-is-an-init", spec(edges="  - {from: y, to: hidden, delay: 1, name: hidden.init}   # <-\n"),
         "already the init of node 'hidden'", where="edges[3].name"),
    case("scalar-edge-named-its-targets-bias",
         spec(edges="  - {from: y, to: y, delay: 1, weight: scalar, name: y.bias}   # <-\n"),
         "already the bias of node 'y'", where="edges[3].name"),
    case("edge-name-is-a-block-part-bias",
         spec(nodes="  B: {type: lstm, size: 2}\n",
              edges="  - {from: x, to: B}\n  - {from: B, to: y, name: B/i.bias}   # <-\n"),
         "already the bias of node 'B/i'", where="edges[4].name"),
    case("edge-name-is-a-named-block-edge",
         spec(nodes="  B: {type: gru, size: 2}\n",
              edges="  - {from: x, to: B, name: in}\n  - {from: B, to: y, name: in/z}   # <-\n"),
         "edge name 'in/z' is already the name of edge x -> B/z", where="edges[4].name"),
    case("edge-name-nul", spec(edges="  - {from: x, to: y, name: \"a\\0b\"}   # <-\n"),
         "control character", where="edges[3].name"),
    case("edge-name-dot-dot", spec(edges="  - {from: x, to: y, name: ../../evil}   # <-\n"),
         "'..' part", where="edges[3].name"),
    case("edge-name-absolute", spec(edges="  - {from: x, to: y, name: /etc/w}   # <-\n"),
         "empty", where="edges[3].name"),
]


def write_case(tmp_path, c: Case):
    path = tmp_path / "spec.yaml"
    if c.binary is not None:
        path.write_bytes(c.binary)
    else:
        path.write_text(c.text, encoding="utf-8")
    return str(path)


def run_check(*paths, **kw):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", "check", *paths],
                          capture_output=True, text=True, timeout=60, **kw)


def assert_refused(result, path, line, phrases):
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == 2, out
    if line is not None:
        assert f"{path}:{line}:" in result.stderr, result.stderr
    else:
        assert f"{path}" in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr)


def test_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("c", CASES)
def test_cli_check_refuses(tmp_path, c: Case):
    path = write_case(tmp_path, c)
    assert_refused(run_check(path), path, c.expected_line(), c.phrases)


@pytest.mark.parametrize("c", CASES)
def test_parse_spec_locates(c: Case):
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(c.text, path="x.yaml")
    err = info.value
    # a single mistake gives a single error (SpecErrors, if any, behaves as its first)
    if isinstance(err, rg.SpecErrors):
        assert len(err.errors) == 1, str(err)
    assert err.path == "x.yaml"
    assert err.line == c.expected_line()
    if c.expected_column() is not None:
        assert err.column == c.expected_column(), str(err)
    if c.where is not None:
        assert err.where == c.where, str(err)
    for phrase in c.phrases:
        assert phrase in str(err)
    # the message reads file:line:column: where: what
    prefix = "x.yaml"
    if err.line is not None:
        prefix += f":{err.line}:{err.column}"
    assert str(err).startswith(prefix + ": ")
    if err.where:
        assert str(err).startswith(f"{prefix}: {err.where}: ")


# -------------------------------------------------------------------- the same, by hand

def test_edge_duplicating_block_recurrence_is_refused(tmp_path):
    """Refused with status 2 (only its location is wrong, see the xfail case)."""
    text = spec(nodes="  b: {type: lstm, size: 3}\n", edges="  - {from: x, to: b}\n  - {from: b, to: b, delay: 1}\n")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert_refused(run_check(str(path)), str(path), None, ("defined twice",))


def test_edge_typo_message_exactly():
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(spec(edges="  - {from: y, to: hiden, delay: 1}\n"), path="x.yaml")
    assert str(info.value) == "x.yaml:10:19: edges[3].to: unknown node 'hiden' (did you mean 'hidden'?)"
    assert (info.value.line, info.value.column, info.value.where) == (10, 19, "edges[3].to")


def test_parse_spec_without_path():
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(spec(nodes="  z: {size: 0}\n"))
    assert info.value.path is None
    assert info.value.line == 6 and info.value.where == "nodes.z.size"


# -------------------------------------------------------------------- files that are not specs

def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"rnngraph: 1\ndescription: caf\xe9\nnodes: {x: {size: 1}}\n")
    assert_refused(run_check(str(path)), str(path), 2, ("not UTF-8", "0xe9"))
    with pytest.raises(rg.SpecError, match="not UTF-8") as info:
        rg.load_spec(path)
    assert (info.value.path, info.value.line, info.value.column) == (str(path), 2, 17)


def test_directory(tmp_path):
    path = tmp_path / "specs.yaml"
    path.mkdir()
    assert_refused(run_check(str(path)), str(path), None, ("directory",))
    with pytest.raises(rg.SpecError, match="directory"):
        rg.load_spec(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert_refused(run_check(str(path)), str(path), None, ("no such file",))
    with pytest.raises(rg.SpecError, match="no such file") as info:
        rg.load_spec(path)
    assert info.value.path == str(path)


def test_check_several_files_one_bad(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(spec())
    bad.write_text(spec(nodes="  z: {size: 0}\n"))
    result = run_check(str(good), str(bad))
    assert result.returncode == 2
    assert f"{good}: ok" in result.stdout
    assert f"{bad}:6:" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_valid_base_spec_passes(tmp_path):
    """The base every case starts from is itself valid (so each case has one mistake)."""
    path = tmp_path / "base.yaml"
    path.write_text(spec())
    result = run_check(str(path))
    assert result.returncode == 0, result.stderr
    rg.build(rg.parse_spec(spec()))


# -------------------------------------------------------------------- hostile documents

def billion_laughs(levels=9):
    lines = ["rnngraph: 1", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("nodes: {x: {size: 1}}")
    return "\n".join(lines) + "\n"


def test_billion_laughs_refused_quickly(tmp_path):
    text = billion_laughs()
    start = time.perf_counter()
    with pytest.raises(rg.SpecError, match="expands to more than"):
        rg.parse_spec(text, path="x.yaml")
    assert time.perf_counter() - start < 2.0
    path = tmp_path / "lol.yaml"
    path.write_text(text)
    start = time.perf_counter()
    result = run_check(str(path))
    assert time.perf_counter() - start < 10.0     # interpreter start-up included
    assert_refused(result, str(path), None, ("expands to more than",))
    # located at a value of the key whose aliases crossed the limit
    assert re.search(r"lol\.yaml:\d+:\d+: a\d(\[\d\])+: the document expands", result.stderr), result.stderr


def _limit_memory():   # 1 GiB of address space: enough to import numpy, not to allocate a huge net
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


SMALL_ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_AS"), reason="needs RLIMIT_AS")
def test_huge_size_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(spec(nodes="  z: {size: 1000000000}\n", edges="  - {from: hidden, to: z}\n"))
    result = run_check(str(path), preexec_fn=_limit_memory, env=SMALL_ENV)
    assert_refused(result, str(path), 6, ("size 1000000000 is larger",))


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_AS"), reason="needs RLIMIT_AS")
def test_huge_parameter_total_refused_without_allocating(tmp_path):
    """Each node is allowed (10**6 units), but the dense self-edge would be 10**12 floats."""
    path = tmp_path / "huge.yaml"
    path.write_text(spec(nodes="  big: {size: 1000000}\n", edges="  - {from: big, to: big, delay: 1}\n"))
    result = run_check(str(path), preexec_fn=_limit_memory, env=SMALL_ENV)
    assert_refused(result, str(path), None, ("GiB",))



@pytest.mark.parametrize("depth", [100, 1000])
def test_deeply_nested_yaml_is_a_spec_error(depth):
    text = "rnngraph: 1\ndescription: " + "[" * depth + "]" * depth + "\nnodes: {x: {size: 1}}\n"
    with pytest.raises(rg.SpecError, match="nested more than"):
        rg.parse_spec(text, path="x.yaml")


def test_deeply_nested_yaml_cli(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("rnngraph: 1\ndescription: " + "[" * 1000 + "]" * 1000 + "\nnodes: {x: {size: 1}}\n")
    assert_refused(run_check(str(path)), str(path), None, ("nested",))


# -------------------------------------------------------------------- several mistakes at once

MANY = """\
rnngraph: 1
seed: -1
nodes:
  x: {role: input, size: 2}
  h: {size: 0}
  y: {role: output, size: 1, activation: sigmod}
edges:
  - {from: x, to: h}
trian: {}
"""


def test_several_mistakes_all_reported_api():
    with pytest.raises(rg.SpecErrors) as info:
        rg.parse_spec(MANY, path="x.yaml")
    found = {(e.line, e.where) for e in info.value.errors}
    assert found == {(2, "seed"), (5, "nodes.h.size"), (6, "nodes.y.activation"), (9, "trian")}
    assert all(e.path == "x.yaml" for e in info.value.errors)
    # SpecErrors is a SpecError, and its str() lists one per line
    assert isinstance(info.value, rg.SpecError)
    assert len(str(info.value).splitlines()) == 4


def test_several_mistakes_all_reported_cli(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(MANY)
    result = run_check(str(path))
    assert_refused(result, str(path), None, ())
    for line in (2, 5, 6, 9):
        assert f"{path}:{line}:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 4


MANY_SECTIONS = """\
rnngraph: 1
nodes:
  x: {role: input, size: 2}
  h: {size: 3}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h}
  - {from: h, to: yy}
train: {loss: mae}
"""


def test_mistakes_in_edges_and_train_both_reported():
    with pytest.raises(rg.SpecError) as info:
        rg.parse_spec(MANY_SECTIONS, path="x.yaml")
    errors = getattr(info.value, "errors", [info.value])
    assert {e.where for e in errors} == {"edges[1].to", "train.loss"}


def test_building_in_a_narrower_dtype_refuses_numbers_it_cannot_hold():
    """A float64 spec may hold 1e300; building it in float32 says which number
    does not fit instead of casting it to inf (float64 builds it as it is)."""
    text = spec(edges="  - {from: y, to: hidden, delay: 1, init: 1.0e+300}\n").replace(
        "rnngraph: 1\n", "rnngraph: 1\ndtype: float64\n")
    parsed = rg.parse_spec(text)
    assert rg.build(parsed).params["y->hidden"][0, 0] == 1e300
    with pytest.raises(rg.DataError, match=r"dtype float32: edge y->hidden\.init = 1e\+300 is too large"):
        rg.build(parsed, dtype="float32")
    lstm = rg.parse_spec("rnngraph: 1\ndtype: float64\nnodes:\n  x: {role: input, size: 1}\n"
                         "  m: {type: lstm, size: 2, forget_bias: 1.0e+200}\nedges:\n  - {from: x, to: m}\n")
    with pytest.raises(rg.DataError, match=r"nodes\.m/f\.bias\.init = 1e\+200"):
        rg.build(lstm, dtype="float32")


# -------------------------------------------------------------------- one pass finds every independent mistake

THREE_KINDS = """\
rnngraph: 1
nodes:
  x: {role: input, size: 2}
  h: {size: 3, activaton: tanh}
  y: {role: output, size: 1}
edges:
  - {from: x, to: h}
  - {from: h, to: yy}
  - {from: x, to: y, weight: diagonal}
task: {generator: parity}
"""


def test_node_edge_and_size_mistakes_reported_together(tmp_path):
    """A node key typo, an edge naming a missing node, a diagonal edge between
    different sizes and a task whose input size differs from the input node: one
    check reports all four (an edge to the mistyped node is not reported again)."""
    path = tmp_path / "three.yaml"
    path.write_text(THREE_KINDS)
    result = run_check(str(path))
    assert_refused(result, str(path), None, ())
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{path}:3:26", f"{path}:4:16", f"{path}:8:19",
                                                        f"{path}:9:30"], result.stderr
    assert "activaton" in lines[1] and "'yy'" in lines[2] and "diagonal" in lines[3] and "parity" in lines[0]


# -------------------------------------------------------------------- data-file tasks

def test_file_task_unknown_key_is_refused(tmp_path):
    np = pytest.importorskip("numpy")
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 3, 2)), y=np.zeros((2, 3, 1)))
    path = tmp_path / "f.yaml"
    path.write_text(spec(tail="task: {file: d.npz, n_eval: 5}   # <-\n"))
    result = run_check(str(path))
    assert_refused(result, str(path), 10, ("unknown key 'n_eval'", "file, eval_file", "eval_split: FRACTION"))
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_locates_a_missing_data_file_at_its_key(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(spec(tail="task:\n  file: d.npz\n  eval_file: no_such_eval.npz\n"))
    np = pytest.importorskip("numpy")
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 3, 2)), y=np.zeros((2, 3, 1)))
    result = run_check(str(path))
    assert_refused(result, str(path), 12, ("task.eval_file", "no_such_eval.npz", "not found"))


def test_check_locates_data_file_that_does_not_fit_at_its_key(tmp_path):
    np = pytest.importorskip("numpy")
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 3, 5)), y=np.zeros((2, 3, 1)))
    path = tmp_path / "f.yaml"
    path.write_text(spec(tail="task:\n  file: d.npz\n"))
    result = run_check(str(path))
    assert_refused(result, str(path), 11, ("task.file", "array 'x' has shape (2, 3, 5)"))


def test_file_task_expect_reads_only_what_it_computes():
    text = spec(tail="task: {file: specs_data.npz}\nexpect: {eval_loss: \"< 1\"}\n")
    with pytest.raises(rg.SpecError, match="metric 'eval_loss' is not computed.*a data-file task gives"):
        rg.parse_spec(text, path="x.yaml")


def test_every_task_declares_the_metrics_it_computes():
    """``metric_names`` (what check compares expect: with) is what ``metrics`` returns."""
    np = pytest.importorskip("numpy")
    from rnngraph.training.tasks import TASKS
    small = {"n_train": 3, "n_eval": 3}
    for name, task in TASKS.items():
        params = {k: v for k, v in small.items() if k in task.defaults}
        _, evald = task.generate_splits(params, 0)
        computed = task.metrics(np.zeros_like(evald.targets), evald)
        assert set(computed) == set(task.metric_names), name


# -------------------------------------------------------------------- --set values: the limits of a spec file

RUNNABLE = spec(tail="task: {generator: adding, T: 10, n_train: 4, n_eval: 2}\ntrain: {epochs: 1}\n")


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rnngraph.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def _refused_at_set(result, argument, *phrases):
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == 2, out
    assert result.stderr.startswith(f"--set {argument}"), result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr)


@pytest.mark.parametrize("setting, phrases", [
    ("train.optimizer.lr=1" + "0" * 400, ("train.optimizer.lr", "401 digits is too large")),
    ("train.epochs=" + "9" * 5000, ("train.epochs", "5,000 digits is too large")),
    ("edges.0.init=&a [*a, *a]", ("edges.0.init", "nested more than 64 levels")),
    ("train.optimizer={name: sgd, lr: 1" + "0" * 400 + "}", ("train.optimizer.lr", "too large")),
    ("train.foo=1", ("train.foo: unknown train key 'foo'",)),
    ("edges.0.to=hiden", ("edges[0].to: unknown node 'hiden'", "did you mean 'hidden'")),
    ("edges.9.delay=1", ("'9' is not an index of the list at edges",)),
    ("expect={acuracy: '> 0.5'}", ("expect.acuracy", "is not computed")),
], ids=["int-400", "int-5000", "recursive-alias", "int-400-nested", "unknown-key", "node-typo", "bad-index",
        "metric"])
def test_set_mistakes_name_the_set_argument(tmp_path, setting, phrases):
    (tmp_path / "s.yaml").write_text(RUNNABLE)
    result = run_cli("run", "s.yaml", "--quiet", "--out", "out", "--set", setting, cwd=tmp_path)
    shown = setting if len(setting) <= 60 else setting[:57] + "..."
    _refused_at_set(result, shown, *phrases)
    assert "s.yaml:" not in result.stderr      # the mistake is in the argument, not in the file
    assert not (tmp_path / "out").exists()     # refused before training


def test_set_alias_bomb_refused_quickly(tmp_path):
    (tmp_path / "s.yaml").write_text(RUNNABLE)
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    start = time.perf_counter()
    result = run_cli("run", "s.yaml", "--quiet", "--out", "out", "--set", "expect={" + ", ".join(levels) + "}",
                     cwd=tmp_path)
    assert time.perf_counter() - start < 10.0
    _refused_at_set(result, "expect=", "expands to more than")


def test_set_value_that_is_not_yaml_stays_text(tmp_path):
    """`--set description=a: b: c` is not valid YAML: it is the text itself, as before."""
    text = spec()
    from rnngraph.cli.run import parse_sets
    parsed = rg.parse_spec(text, path="x.yaml", overrides=parse_sets(["description=a: b: c"]))
    assert parsed.description == "a: b: c"


def test_an_eval_split_leaving_no_sequence_is_refused_at_its_key(tmp_path):
    np = pytest.importorskip("numpy")
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 4, 2)), y=np.zeros((3, 4, 1)))
    path = tmp_path / "f.yaml"
    path.write_text(spec(tail="task: {file: d.npz, eval_split: 0.1}   # <-\n"))
    result = run_check(str(path))
    assert_refused(result, str(path), 10, ("task.eval_split", "of its 3 sequences holds out 0"))
