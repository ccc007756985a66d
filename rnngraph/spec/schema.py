"""The spec format as a JSON Schema (draft 2020-12), for editors and other tools.

``spec_schema()`` builds it from the validator's own tables (``rnngraph.spec.model``'s
key lists and enums, the activations, ``rnngraph.spec.tasks``' task signatures): a key
or a choice added there appears here.  Each key listed in a table needs an
entry in ``_NODE``, ``_EDGE``, ... below (its type and a line of help for
hover); a table key without one fails the build, so the two cannot drift.

The schema checks what can be checked key by key (names, types, enums,
ranges); what needs the whole network (sizes that fit, cycles, a loss that
suits the output) stays with ``rnngraph check``.  Every valid spec validates.
``rnngraph schema`` prints it; docs/rnngraph.schema.json is a copy.
"""

from __future__ import annotations

import json
import re

SCHEMA_ID = "https://rnngraph.dev/schema/spec-v1.json"


def _enum(values, description: str) -> dict:
    return {"enum": list(values), "description": description}


def _integer(low, description: str, high=None) -> dict:
    out = {"type": "integer", "minimum": low, "description": description}
    if high is not None:
        out["maximum"] = high
    return out


NUMBER = {"type": "number"}
NUMBERS = {"type": "array", "items": NUMBER}


def _js_regex(pattern: str) -> str:
    """A Python regex as ECMAScript (what editors run): named groups become plain groups."""
    return re.sub(r"\(\?P<\w+>", "(", pattern)


def _tables() -> dict:
    from ..activations import ACTIVATIONS
    from .model import (BLOCK_TYPES, COMBINES, CONSTRAINTS, DTYPES, EXPECT_RE, GRU_VARIANTS, LOSS_ON,
                             LOSSES, LSTM_VARIANTS, MAX_DELAY, MAX_NODE_SIZE, OPTIMIZERS, ROLES, TRAIN_METHODS,
                             WEIGHTS, ENCODINGS)
    from .schedule import SCHEDULES
    from .values import INIT_FORMS
    threshold = {"type": "string", "pattern": _js_regex(EXPECT_RE.pattern),
                 "description": 'a comparison with a number, such as "< 0.2" or ">= 0.95"'}
    node_init = {"description": "the node's value before t = 0 (read by delayed edges): a number, a list of "
                                "size numbers, `input` (given per sample), or {value, trainable: true}",
                 "anyOf": [NUMBER, NUMBERS, {"const": "input"},
                           {"type": "object", "required": ["value"], "additionalProperties": False,
                            "properties": {"value": {"anyOf": [NUMBER, NUMBERS]}, "trainable": {"type": "boolean"}}}]}
    size = _integer(1, "number of units", MAX_NODE_SIZE)
    node = {
        "size": size,
        "role": _enum(ROLES, "input nodes are fed from data; outputs are what losses and metrics read"),
        "activation": _enum(ACTIVATIONS, "applied after combining the incoming edges"),
        "combine": _enum(COMBINES, "how the contributions of incoming edges are combined"),
        "bias": {"description": "true, false, a number (trainable, starting there) or {init, trainable}; "
                                "default: true for sum nodes with a dense incoming edge",
                 "anyOf": [{"type": "boolean"}, NUMBER,
                           {"type": "object", "additionalProperties": False,
                            "properties": {"init": NUMBER, "trainable": {"type": "boolean"}}}]},
        "init": node_init,
        "type": _enum(BLOCK_TYPES, "a block: expands into primitive nodes"),
        "encoding": _enum(ENCODINGS, "input nodes: the data holds (N, T) integer tokens, fed one-hot"),
    }
    block = {
        "type": node["type"],
        "size": size,
        "role": _enum([r for r in ROLES if r != "input"], "a block's h is the output when role is output"),
        "variant": _enum(LSTM_VARIANTS + GRU_VARIANTS, f"lstm: {', '.join(LSTM_VARIANTS)}; "
                                                       f"gru: {', '.join(GRU_VARIANTS)}"),
        "peepholes": {"type": "boolean", "description": "lstm: diagonal edges c -> i, f, o"},
        "forget_bias": {"type": "number", "description": "lstm: the initial value of the forget gate's bias (1.0)"},
        "init": node_init,
        # taken only once BLOCK_KEYS lists it (backward blocks, SPEC 6.1)
        "direction": _enum(("forward", "backward"), "backward: the block's own recurrence reads t + 1"),
    }
    names = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
    edge = {
        "from": {**names, "description": "a node name or a list of names (one edge per pair)"},
        "to": {**names, "description": "a node name or a list of names (one edge per pair)"},
        "delay": _integer(0, "the edge reads its source at time t - delay", MAX_DELAY),
        "weight": _enum(WEIGHTS, "dense (a matrix), diagonal, scalar, or identity (no parameter)"),
        "init": {"description": "a number, uniform(a,b), normal(std), xavier, orthogonal, zeros, or a "
                                "list; default uniform(-k, k), k = 1/sqrt(from.size)",
                 "anyOf": [NUMBER, {"type": "string", "pattern": _js_regex(INIT_FORMS.pattern)},
                           {"type": "array"}]},
        "trainable": {"type": "boolean", "description": "frozen edges keep their init"},
        "constraint": {"description": "for square dense edges (Hopfield)",
                       "anyOf": [{"enum": list(CONSTRAINTS)},
                                 {"type": "array", "items": {"enum": list(CONSTRAINTS)}}]},
        "name": {"type": "string", "description": 'the parameter\'s name (default "{from}->{to}")'},
        "dropout": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                    "description": "training drops each unit the edge reads with this probability"},
    }
    optimizer_names = list(OPTIMIZERS)
    optimizer_keys = {"lr": {"type": "number", "exclusiveMinimum": 0, "description": "learning rate"},
                      "momentum": {"type": "number", "minimum": 0}, "nesterov": {"type": "boolean"},
                      "weight_decay": {"type": "number", "minimum": 0}, "eps": {"type": "number", "minimum": 0},
                      "alpha": {"type": "number", "minimum": 0},
                      "betas": {"type": "array", "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                                "minItems": 2, "maxItems": 2}}
    optimizer = {"description": "a name, or {name, lr, ...}",
                 "if": {"type": "string"}, "then": {"enum": optimizer_names},
                 "else": {"type": "object", "properties": {"name": {"enum": optimizer_names}},
                          # without a name the optimizer is adam (the validator's default)
                          "allOf": [{"if": {"properties": {"name": {"const": name}},
                                            **({} if name == "adam" else {"required": ["name"]})},
                                     "then": {"properties": {"name": True, **{k: optimizer_keys[k] for k in keys}},
                                              "additionalProperties": False}}
                                    for name, keys in OPTIMIZERS.items()]}}
    schedule_keys = {"every": _integer(1, "epochs between cuts"),
                     "gamma": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                     "warmup": _integer(0, "epochs of linear warm-up"),
                     "min_lr": {"type": "number", "minimum": 0},
                     "metric": {"type": "string"},
                     "patience": _integer(1, "evaluations without improvement before a cut"),
                     "factor": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}
    train = {
        "method": _enum(TRAIN_METHODS, "bptt, a Hopfield storage rule, or none"),
        "loss": _enum(LOSSES, "the loss on the output nodes"),
        "optimizer": optimizer,
        "epochs": _integer(0, "passes over the training data"),
        "batch_size": _integer(1, "sequences per step"),
        "truncate": _integer(0, "truncated BPTT window (0: full BPTT)"),
        "clip": {"description": "the largest gradient norm (or null)",
                 "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}]},
        "loss_on": _enum(LOSS_ON, "which time steps the loss counts"),
        "early_stopping": {"type": "object", "required": ["metric"], "additionalProperties": False,
                           "description": "{metric, threshold} or {metric, patience}",
                           "properties": {"metric": {"type": "string"}, "threshold": threshold,
                                          "patience": _integer(1, "epochs without improvement"),
                                          "every": _integer(1, "epochs between checks")}},
        "log_every": _integer(1, "epochs between history rows"),
        "schedule": {"description": "the learning rate per epoch: {name: step, every, gamma}, "
                                    "{name: cosine, warmup, min_lr} or {name: plateau, metric, patience, factor, min_lr}",
                     "type": "object", "required": ["name"], "properties": {"name": {"enum": list(SCHEDULES)}},
                     "allOf": [{"if": {"properties": {"name": {"const": name}}},
                                "then": {"properties": {"name": True, **{k: schedule_keys[k] for k in keys}},
                                         "additionalProperties": False,
                                         **({"required": ["name", "every"]} if name == "step" else {})}}
                               for name, keys in SCHEDULES.items()]},
    }
    dynamics = {"update": _enum(("sync", "async"), "how a settling network updates its units"),
                "sweeps": _integer(1, "the most sweeps of settling", 1_000_000),
                "until_stable": {"type": "boolean", "description": "stop at a fixed point"}}
    top = {"rnngraph": {"const": 1, "description": "the format version"},
           "name": {"type": "string", "minLength": 1, "description": "default: the file's stem"},
           "description": {"type": "string"},
           "seed": _integer(0, "seeds parameter init and generated data"),
           "dtype": _enum(DTYPES, "the network's floating-point type"),
           "nodes": None, "edges": None, "task": None, "train": None,
           "expect": {"type": "object", "additionalProperties": threshold,
                      "description": "metric: threshold; `run` exits 1 when one misses"},
           "dynamics": None}
    return {"node": node, "block": block, "edge": edge, "train": train, "dynamics": dynamics, "top": top,
            "threshold": threshold}


def _closed(properties: dict, keys, required=()) -> dict:
    """An object schema taking exactly ``keys`` (a validator table), each typed by ``properties``."""
    missing = [k for k in keys if k not in properties]
    if missing:
        raise KeyError(f"the schema has no entry for the spec key(s) {missing}: add them in rnngraph/spec/schema.py")
    out = {"type": "object", "properties": {k: properties[k] for k in keys}, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def _task_schema() -> dict:
    from .tasks import SIGNATURES as TASKS
    kinds = {"int": "integer", "float": "number"}
    branches = []
    for name, task in TASKS.items():
        props = {"generator": {"const": name}, "input": {"type": "string"}, "output": {"type": "string"}}
        for p in task.params:
            prop = {"description": p.doc}
            if p.kind == "choice":
                prop["enum"] = list(p.choices)
            else:
                prop["type"] = kinds[p.kind]
                if p.low is not None:
                    prop["exclusiveMinimum" if p.low_open else "minimum"] = p.low
                if p.high is not None:
                    prop["maximum"] = p.high
            if p.optional:
                prop = {"anyOf": [prop, {"type": "null"}], "description": p.doc}
            props[p.name] = prop
        branches.append({"if": {"required": ["generator"], "properties": {"generator": {"const": name}}},
                         "then": {"properties": props, "additionalProperties": False}})
    path = {"type": "string", "minLength": 1}
    branches.append({"if": {"required": ["file"]},
                     "then": {"properties": {"file": path, "eval_file": path,
                                             "n_eval": _integer(1, "cues made from the patterns (storage rules)")},
                              "additionalProperties": False}})
    return {"type": "object", "description": "{generator: NAME, ...parameters} or {file: data.npz, ...}",
            "properties": {"generator": {"enum": list(TASKS), "description": "a built-in data generator"},
                           "file": {"type": "string", "description": "an .npz data file, relative to the spec"}},
            "oneOf": [{"required": ["generator"]}, {"required": ["file"]}],
            "allOf": branches}


def spec_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a spec file, as a dict."""
    from .model import (BLOCK_KEYS, DYNAMICS_KEYS, EDGE_KEYS, EXPANDED_NAME_RE, NAME_RE, NODE_KEYS,
                             TOP_KEYS, TRAIN_KEYS)
    t = _tables()
    node = _closed(t["node"], [k for k in NODE_KEYS if k != "type"], required=["size"])
    block = _closed(t["block"], BLOCK_KEYS, required=["type", "size"])
    name = f"{NAME_RE.pattern}|{EXPANDED_NAME_RE.pattern}"
    top = dict(t["top"])
    top["nodes"] = {"type": "object", "description": "name -> node (or block)", "minProperties": 1,
                    "propertyNames": {"pattern": name},
                    "additionalProperties": {"if": {"type": "object", "required": ["type"]},
                                             "then": {"$ref": "#/$defs/block"}, "else": {"$ref": "#/$defs/node"}}}
    top["edges"] = {"type": "array", "items": {"$ref": "#/$defs/edge"}}
    top["task"] = {"$ref": "#/$defs/task"}
    top["train"] = {"$ref": "#/$defs/train"}
    top["dynamics"] = {"$ref": "#/$defs/dynamics"}
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
              "title": "rnngraph spec, format version 1",
              "description": "A recurrent network as a YAML graph, and its experiment (docs/spec-format.md).",
              **_closed(top, TOP_KEYS, required=["rnngraph", "nodes"]),
              "$defs": {"node": node, "block": block,
                        "edge": _closed(t["edge"], EDGE_KEYS, required=["from", "to"]),
                        "train": _closed(t["train"], TRAIN_KEYS),
                        "dynamics": _closed(t["dynamics"], DYNAMICS_KEYS),
                        "task": _task_schema()}}
    return schema


def schema_text() -> str:
    """The schema as the JSON text ``rnngraph schema`` prints (and docs/ keeps)."""
    return json.dumps(spec_schema(), indent=2) + "\n"
