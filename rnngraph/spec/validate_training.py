"""Checks of a spec's experiment: ``train``, ``task``, ``expect`` and ``dynamics``,
and how they fit the network they train."""

from __future__ import annotations


from ..errors import a_or_an, one_of, suggest
from .model import (DYNAMICS_KEYS, HOPFIELD_METRICS, HOPFIELD_RULES, LOSSES, LOSS_ACTIVATIONS, LOSS_NEEDS,
                    LOSS_ON, OPTIMIZERS, TRAIN_KEYS, TRAIN_METHODS, Spec)
from .schedule import schedule_problems
from .tasks import BUILTIN_METRICS, signature
from .values import parse_threshold, _is_int, _is_number, _short
from .checks import Checks


class TrainingChecks(Checks):
    """The experiment sections; ``task_signature`` is the generator's signature once
    ``task:`` is checked (what ``metrics_and_loss`` reads)."""

    # ---- experiment sections
    def section(self, raw, key) -> dict | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.fail((key,), f"{key} must be a mapping")
            return None
        return raw

    def train(self, raw) -> dict:
        raw = self.section(raw, "train") or {}
        out = dict(raw)
        for key in raw:
            if key not in TRAIN_KEYS:
                self.fail(("train", key), f"unknown train key {key!r}{suggest(key, TRAIN_KEYS)}", key=True)
        method = raw.get("method", "bptt")
        if method not in TRAIN_METHODS:
            self.fail(("train", "method"), f"method must be {one_of(TRAIN_METHODS)}, got {method!r}"
                                           f"{suggest(method, TRAIN_METHODS)}")
        loss = raw.get("loss", "mse")
        if loss not in LOSSES:
            self.fail(("train", "loss"), f"loss must be {one_of(LOSSES)}, got {loss!r}{suggest(loss, LOSSES)}")
        loss_on = raw.get("loss_on", "all")
        if loss_on not in LOSS_ON:
            self.fail(("train", "loss_on"), f"loss_on must be {one_of(LOSS_ON)}, got {loss_on!r}")
        opt = raw.get("optimizer", {"name": "adam"})
        if isinstance(opt, str):
            opt = {"name": opt}
        if not isinstance(opt, dict):
            self.fail(("train", "optimizer"), "optimizer must be a mapping such as {name: adam, lr: 0.01}")
            opt = {"name": "adam"}
        opt = dict(opt)
        oname = opt.get("name", "adam")
        if not isinstance(oname, str) or oname not in OPTIMIZERS:
            self.fail(("train", "optimizer", "name"), f"unknown optimizer {oname!r}{suggest(oname, OPTIMIZERS)}; "
                                                      f"known: {', '.join(OPTIMIZERS)}")
        else:
            for key, value in opt.items():
                w = ("train", "optimizer", key)
                if key == "name":
                    continue
                if key not in OPTIMIZERS[oname]:
                    self.fail(w, f"{oname} takes {', '.join(OPTIMIZERS[oname])}, not {key!r}"
                                 f"{suggest(key, OPTIMIZERS[oname])}", key=True)
                elif key == "nesterov":
                    if not isinstance(value, bool):
                        self.fail(w, "nesterov must be true or false")
                elif key == "betas":
                    if not (isinstance(value, list) and len(value) == 2 and all(_is_number(b) and 0 <= b < 1 for b in value)):
                        self.fail(w, f"betas must be two numbers in [0, 1), got {value!r}")
                elif not _is_number(value) or value < 0 or (key == "lr" and value == 0):
                    self.fail(w, f"{key} must be a {'positive' if key == 'lr' else 'non-negative'} number, got {value!r}")
        if "optimizer" in raw:
            opt["name"] = oname
            out["optimizer"] = opt
        for key, low in (("epochs", 0), ("batch_size", 1), ("truncate", 0), ("log_every", 1)):
            if key in raw and (not _is_int(raw[key]) or raw[key] < low):
                self.fail(("train", key), f"{key} must be an integer >= {low}, got {raw[key]!r}")
        for key in ("online", "teacher_forcing"):
            if key in raw and not isinstance(raw[key], bool):
                self.fail(("train", key), f"{key} must be true or false, got {_short(raw[key])}")
        if "clip" in raw and raw["clip"] is not None and (not _is_number(raw["clip"]) or raw["clip"] <= 0):
            self.fail(("train", "clip"), f"clip must be a positive number (the largest gradient norm), got {raw['clip']!r}")
        if "schedule" in raw:
            for where, what, key in schedule_problems(raw["schedule"]):
                self.fail(("train", "schedule") + where, what, key=key)
        es = raw.get("early_stopping")
        if es is not None:
            if not isinstance(es, dict) or not isinstance(es.get("metric"), str):
                self.fail(("train", "early_stopping"), "early_stopping must be {metric: NAME, threshold: \"< 0.1\"} "
                                                       "or {metric: NAME, patience: N}")
            else:
                for k in es:
                    if k not in ("metric", "threshold", "patience", "every"):
                        self.fail(("train", "early_stopping", k), f"unknown early_stopping key {k!r}", key=True)
                if "threshold" in es and parse_threshold(es["threshold"]) is None:
                    self.fail(("train", "early_stopping", "threshold"),
                              f"threshold must read like \"< 0.1\" or \">= 0.95\", got {es['threshold']!r}")
                for k in ("patience", "every"):
                    if k in es and (not _is_int(es[k]) or es[k] < 1):
                        self.fail(("train", "early_stopping", k), f"{k} must be an integer >= 1")
        return out

    def task(self, raw, spec: Spec) -> dict | None:
        raw = self.section(raw, "task")
        if raw is None:
            return None
        has_gen, has_file = "generator" in raw, "file" in raw
        if has_gen == has_file:
            self.fail(("task",), "task needs exactly one of `generator: NAME` or `file: data.npz`")
            return dict(raw)
        self.task_metrics(raw)
        if has_file:
            # a storage rule reads patterns from the file and makes n_eval cues from them, as the
            # patterns generator does (and reports its metrics)
            stores = spec.train.get("method") in HOPFIELD_RULES
            known = ("file", "n_eval", "metrics") if stores else ("file", "eval_file", "eval_split", "metrics")
            for key in raw:
                if stores and key in ("eval_file", "eval_split"):
                    self.fail(("task", key), "a Hopfield network reads only `file` (the patterns to store); its "
                                             f"cues are made from them, `n_eval` of them (drop {key})", key=True)
                elif key == "n_eval" and not stores:
                    self.fail(("task", key), "unknown key 'n_eval' for a data-file task (file, eval_file, "
                                             "eval_split, metrics): to hold out the file's last sequences use "
                                             "eval_split: FRACTION; n_eval (cues made from the file's patterns) "
                                             "is for a storage rule, train.method: hebbian, storkey or "
                                             "pseudoinverse", key=True)
                elif key not in known:
                    kind = "a data-file task with a storage rule" if stores else "a data-file task"
                    self.fail(("task", key), f"unknown key {key!r} for {kind} ({', '.join(known)})", key=True)
            if "n_eval" in raw and (not _is_int(raw["n_eval"]) or raw["n_eval"] < 1):
                self.fail(("task", "n_eval"), f"n_eval must be an integer >= 1, got {_short(raw['n_eval'])}")
            if "eval_split" in raw and not stores:
                split = raw["eval_split"]
                if "eval_file" in raw:
                    self.fail(("task", "eval_split"), "eval_split holds out part of `file`, but the task already "
                                                      "has an eval_file: give one or the other", key=True)
                elif not _is_number(split) or not 0 < split < 1:
                    self.fail(("task", "eval_split"), f"eval_split must be a number between 0 and 1 (the fraction "
                                                      f"of the file's sequences held out, the last ones), got "
                                                      f"{_short(split)}")
            if stores:
                self.task_signature = signature("patterns")
            for key in ("file", "eval_file"):   # whether the file exists and fits is for check and run
                if key in raw and (not isinstance(raw[key], str) or not raw[key] or "\0" in raw[key]):
                    self.fail(("task", key), f"{key} must be a path to an .npz file")
            return dict(raw)
        name = raw["generator"]
        params = {k: v for k, v in raw.items() if k not in ("generator", "input", "output", "metrics")}
        for key in ("input", "output"):
            if key in raw and not isinstance(raw[key], str):
                self.fail(("task", key), f"{key} must name a node, got {raw[key]!r}")
                return dict(raw)
            if key in raw and raw[key] not in spec.nodes:
                if raw[key] not in self.written:
                    self.fail(("task", key), f"unknown node {raw[key]!r}{suggest(raw[key], self.written)}")
            elif key in raw and spec.nodes[raw[key]].role != key:
                self.fail(("task", key), f"node {raw[key]!r} has role {spec.nodes[raw[key]].role!r}, but the task "
                                         f"feeds its {key}s to it: add `role: {key}` to node {raw[key]!r}")
        try:
            task = signature(name)
            params = task.validate(params)
        except ValueError as exc:
            where = getattr(exc, "where", "") or "task"
            path = tuple(where.split(".")) if where.split(".")[-1] in raw else ("task",)
            self.fail(path, getattr(exc, "what", str(exc)))
            return dict(raw)
        self.task_signature = task
        n_in, n_out = task.sizes(params)
        for key, role, size in (("input", "input", n_in), ("output", "output", n_out)):
            candidates = [n for n in spec.nodes.values() if n.role == role]
            node = spec.nodes.get(raw.get(key)) if key in raw else (candidates[0] if len(candidates) == 1 else None)
            if not self.complete and node is None:   # the node may be among the invalid ones
                continue
            if key not in raw and len(candidates) != 1 and not (name == "patterns"):
                self.fail(("task",), f"task {name!r} feeds one {role} node, but the network has "
                                     f"{len(candidates)}; say which with `{key}: NODE`")
            elif node is not None and node.size != size and name != "patterns":
                self.fail(("task", key) if key in raw else ("nodes", node.name, "size"),
                          f"task {name!r} with these parameters has {role}s of size {size}, but node "
                          f"{node.name!r} has size {node.size}")
        return {"generator": name, **{k: raw[k] for k in ("input", "output", "metrics") if k in raw}, **params}

    def task_metrics(self, raw: dict) -> None:
        """``task.metrics``: a list of built-in metric names (``BUILTIN_METRICS``)."""
        if "metrics" not in raw:
            return
        names = raw["metrics"]
        if not isinstance(names, list):
            self.fail(("task", "metrics"), f"metrics must be a list of metric names such as [mse, accuracy] "
                                           f"(known: {', '.join(BUILTIN_METRICS)}), got {_short(names)}")
            return
        for i, name in enumerate(names):
            if not isinstance(name, str) or name not in BUILTIN_METRICS:
                hint = suggest(name, BUILTIN_METRICS) if isinstance(name, str) else ""
                self.fail(("task", "metrics", i), f"unknown metric {_short(name)}{hint}; known: "
                                                  f"{', '.join(BUILTIN_METRICS)}")
            elif name in names[:i]:
                self.fail(("task", "metrics", i), f"metric {name!r} is listed twice")

    def training_options(self, spec: Spec, primitive: Spec) -> None:
        """``method: rtrl``, ``online`` and ``teacher_forcing`` against the network
        they train (``primitive``: blocks expanded)."""
        train = spec.train
        method = train.get("method", "bptt")
        if not isinstance(method, str):   # refused by train()
            return
        if method == "rtrl":
            if train.get("truncate"):
                self.fail(("train", "truncate"), "truncate windows BPTT; method rtrl computes the whole gradient "
                                                 "forward in time and has no windows (drop truncate, or use bptt)")
            ahead = next((e for e in primitive.edges if e.delay < 0), None)
            if ahead is not None:
                self.fail(("train", "method"), f"method rtrl needs delays >= 0, but edge {ahead.name!r} reads the "
                                               f"future (delay {ahead.delay}): its value is not known when the step "
                                               f"runs; use method bptt")
        if train.get("online") is True and method != "rtrl":
            self.fail(("train", "online"), f"online: true steps the optimizer after every time step, which needs "
                                           f"the gradient forward in time: use method: rtrl (not {method!r})")
        if train.get("teacher_forcing") is True:
            if method not in ("bptt", "rtrl"):
                self.fail(("train", "teacher_forcing"), f"teacher_forcing is for gradient training (bptt, rtrl), "
                                                        f"not method {method!r}")
            elif not any(e.delay > 0 and primitive.nodes[e.source].role == "output" for e in primitive.edges):
                self.fail(("train", "teacher_forcing"), "teacher_forcing changes nothing here: it makes delayed "
                                                        "edges leaving an output node read the target, and no "
                                                        "delayed edge leaves an output node")

    def metrics_and_loss(self, spec: Spec) -> None:
        """What a run of ``spec`` computes must be what ``expect:`` and early stopping
        read, and its loss must suit the output's activation."""
        task = self.task_signature
        settings = dict(task.default_train if task is not None else {})
        settings.update(spec.train)
        method = settings.get("method", "bptt")
        loss = settings.get("loss", "mse")
        if task is None and "generator" in spec.task:   # the generator itself was refused
            return
        if not isinstance(method, str) or not isinstance(loss, str):   # refused by train()
            return
        listed = spec.task.get("metrics")
        listed = {m for m in listed if isinstance(m, str)} if isinstance(listed, list) else set()
        if method in HOPFIELD_RULES:
            every_epoch = set(task.metric_names if task else ()) | HOPFIELD_METRICS | listed
            final = every_epoch | {"epochs", "seconds"}
        else:
            every_epoch = set(task.metric_names if task else ()) | {"train_loss"} | listed
            if task is not None or "eval_file" in spec.task or "eval_split" in spec.task:
                every_epoch.add("eval_loss")
            final = every_epoch | {"epochs", "seconds"}
            if task is not None and task.name == "linear":
                final.add("normal_equation_gap")
        source = f"task {task.name!r}" if task is not None else "a data-file task"

        def listable(name):   # a built-in metric the task could list
            return "; add it to task.metrics to compute it" if name in BUILTIN_METRICS else ""
        for name in spec.expect:
            if name not in final:
                self.fail(("expect", name), f"metric {name!r} is not computed{suggest(name, final)}: "
                                            f"{source} gives {', '.join(sorted(final))}{listable(name)}", key=True)
        es = spec.train.get("early_stopping")
        if isinstance(es, dict) and isinstance(es.get("metric"), str) and es["metric"] not in every_epoch:
            self.fail(("train", "early_stopping", "metric"),
                      f"metric {es['metric']!r} is not computed at each evaluation"
                      f"{suggest(es['metric'], every_epoch)}: {source} gives {', '.join(sorted(every_epoch))}"
                      f"{listable(es['metric'])}")
        schedule = spec.train.get("schedule")
        if isinstance(schedule, dict) and schedule.get("name") == "plateau":
            metric = schedule.get("metric", "eval_loss")
            if isinstance(metric, str) and metric not in every_epoch:
                self.fail(("train", "schedule", "metric") if "metric" in schedule else ("train", "schedule"),
                          f"the plateau schedule reads {metric!r}, which is not computed at each evaluation"
                          f"{suggest(metric, every_epoch)}: {source} gives {', '.join(sorted(every_epoch))}"
                          f"{listable(metric)}")
        if method in HOPFIELD_RULES or method == "none":
            return
        fits = LOSS_ACTIVATIONS.get(loss)
        if fits is None:
            return
        if task is not None:
            wanted = spec.task.get("output")
            outputs = [spec.nodes[wanted]] if wanted in spec.nodes else spec.outputs[:1]
        else:
            outputs = spec.outputs
        chosen = "train.loss" if "loss" in spec.train or task is None else f"task {task.name!r}'s loss"
        for node in outputs:
            if node.type or node.activation not in fits:
                what = f"is {a_or_an(node.type)} {node.type} block" if node.type else \
                    f"has activation {node.activation!r}"
                where = ("train", "loss") if "loss" in spec.train else node.where + ("activation",)
                self.fail(where, f"{chosen} is {loss!r}, which needs {LOSS_NEEDS[loss]}, but output node "
                                 f"{node.name!r} {what}, whose values are not (the loss goes negative or NaN); "
                                 f"use activation: {fits[0]} on {node.name!r}, or loss: mse")

    def expect(self, raw) -> dict:
        raw = self.section(raw, "expect") or {}
        for key, value in raw.items():
            if parse_threshold(value) is None:
                self.fail(("expect", key), f"a threshold reads like \"< 0.2\" or \">= 0.95\" with a finite "
                                           f"number, got {_short(value)}")
        return dict(raw)

    def dynamics(self, raw) -> dict:
        raw = self.section(raw, "dynamics") or {}
        out = {"update": "async", "sweeps": 100, "until_stable": True}
        for key, value in raw.items():
            w = ("dynamics", key)
            if key not in DYNAMICS_KEYS:
                self.fail(w, f"unknown dynamics key {key!r}{suggest(key, DYNAMICS_KEYS)}", key=True)
            elif key == "update" and value not in ("sync", "async"):
                self.fail(w, f"update must be 'sync' or 'async', got {value!r}")
            elif key == "sweeps" and (not _is_int(value) or not 1 <= value <= 1_000_000):
                self.fail(w, f"sweeps must be an integer from 1 to 1,000,000, got {value!r}")
            elif key == "until_stable" and not isinstance(value, bool):
                self.fail(w, "until_stable must be true or false")
            else:
                out[key] = value
        return out if raw else {}
