"""Training several runs of one program as one: each run a replica of
``engine.replicas.Replicas`` (docs/sweeps.md, "Batched replicas").

``train_together(trainers)`` trains the ``Trainer`` of each run as that
trainer's own ``run()`` would, but every gradient step of all of them is one
program over a leading replica axis.  Each replica keeps everything of its
own: parameters (from its own seed), data and shuffling (its own generator,
drawn as its run draws it), optimizer state and options, learning-rate
schedule, clipping, evaluations, early stopping and divergence.  A replica
that stops (its epochs done, early stopping, divergence) keeps its
parameters and stops changing; the others go on.  Afterwards each trainer
holds what its own run would have left: parameters, history, counters,
generator and optimizer state, so its ``Experiment`` evaluates and writes
its results as ``rnngraph run`` does.

``batch_problem(experiments)`` says why runs cannot train together (None
when they can).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..tokens import one_hot
from ..engine.replicas import Replicas, unsupported
from ..errors import RunError

# train: options that are per replica here (everything else must be the same for all)
PER_REPLICA_TRAIN = ("optimizer", "epochs", "clip", "early_stopping", "log_every", "schedule")


def batch_problem(experiments: list) -> str | None:
    """Why these experiments cannot train as replicas of one program, or None.

    They must train by BPTT (no RTRL, teacher forcing or Hopfield rule), on a
    program ``engine.replicas`` runs (``unsupported``), built alike (dtype,
    parameter shapes), with the same optimizer kind, loss, ``loss_on``,
    batch size and truncation, and data of the same shape: the same number
    of training and evaluation sequences, and the same length unless the loss
    is masked (``loss_on: mask``; shorter ones are padded, the padding not
    counted) and there is no truncation."""
    first = experiments[0]
    for e in experiments:
        cfg = e.config
        if e.is_hopfield or cfg.method != "bptt":
            return f"train.method is {cfg.method}"
        if cfg.teacher_forcing:
            return "train.teacher_forcing"
        why = unsupported(e.net)
        if why:
            return why
    c0 = first.config
    for e in experiments[1:]:
        c = e.config
        if e.net.dtype != first.net.dtype:
            return "the runs' dtypes differ"
        if {k: i.shape for k, i in e.net.param_info.items()} != {k: i.shape for k, i in first.net.param_info.items()}:
            return "the runs' parameters differ"
        if (c.optimizer.get("name", "adam"), c.loss, c.loss_on, c.batch_size, c.truncate, bool(c.optimizer.get("nesterov"))) != \
                (c0.optimizer.get("name", "adam"), c0.loss, c0.loss_on, c0.batch_size, c0.truncate,
                 bool(c0.optimizer.get("nesterov"))):
            return "the runs' train options differ"
    for split in ("train_data", "eval_data"):
        sets = [getattr(e, split) for e in experiments]
        if any(s is None for s in sets):
            if not all(s is None for s in sets):
                return "some runs have evaluation data and some not"
            continue
        if len({s.n for s in sets}) > 1:
            return f"the runs' {split.replace('_', ' ')} have different sizes"
        if len({s.steps for s in sets}) > 1 and (c0.loss_on != "mask" or c0.truncate):
            return f"the runs' {split.replace('_', ' ')} have different lengths"
        if len({tuple(sorted(s.inputs)) + tuple(sorted(s.targets)) + tuple(sorted(s.initial)) for s in sets}) > 1:
            return "the runs' data have different arrays"
    return None


class _Stacked:
    """The datasets of every replica as time-major arrays with a replica axis:
    inputs and targets (T, R, N, size), loss weights (T, R, N), initial
    states (R, N, size); shorter sequences padded with zeros (weight 0)."""

    def __init__(self, net, sets: list, masks: list):
        self.T = max(s.steps for s in sets)
        self.n = sets[0].n
        dtype = net.dtype

        def stack(arrays, node, tokens):
            out = []
            for a in arrays:
                a = np.asarray(a)
                if tokens and a.ndim == 2 and np.issubdtype(a.dtype, np.integer):   # tokens, as prepare_inputs reads them
                    a = one_hot("inputs", node, a, net.size(node), dtype)
                a = np.asarray(a, dtype=dtype)
                pad = self.T - a.shape[1]
                if pad:
                    a = np.concatenate([a, np.zeros((a.shape[0], pad, *a.shape[2:]), dtype)], axis=1)
                out.append(np.swapaxes(a, 0, 1))
            return np.ascontiguousarray(np.stack(out, axis=1))
        self.inputs = {n: stack([s.inputs[n] for s in sets], n, True) for n in sets[0].inputs}
        self.targets = {n: stack([s.targets[n] for s in sets], n, False) for n in sets[0].targets}
        self.weights = {}
        for n in self.targets:
            if not masks[0] and all(s.steps == self.T for s in sets):
                continue
            full = [m.get(n) if m.get(n) is not None else np.ones((s.n, s.steps)) for s, m in zip(sets, masks)]
            self.weights[n] = stack(full, n, False)
        self.initial = {n: np.stack([np.asarray(s.initial[n], dtype=dtype) for s in sets]) for n in sets[0].initial}

    def batch(self, index: np.ndarray | None):
        """The arrays of samples ``index`` (R, b) per replica (None: all)."""
        if index is None:
            return self.inputs, self.targets, self.weights, self.initial
        R, b = index.shape
        flat = (np.arange(R)[:, None] * self.n + index).reshape(-1)   # into the (R * N) samples

        def pick(d: dict, lead: int) -> dict:   # one take along the sample axis (a fancy index is slower)
            return {n: np.take(a.reshape(*a.shape[:lead], R * self.n, *a.shape[lead + 2:]), flat, axis=lead)
                    .reshape(*a.shape[:lead], R, b, *a.shape[lead + 2:]) for n, a in d.items()}
        return pick(self.inputs, 1), pick(self.targets, 1), pick(self.weights, 1), pick(self.initial, 0)


class _ReplicaOutputs(Mapping):
    """Replica ``r``'s values of every node, (N, steps, size), as its own
    ``Trainer.evaluate`` hands them to the task's metrics (a block's name
    reads its output node's); each made when a metric first reads it, from
    the evaluation's chunks of every replica's values, ``outputs`` {node: [(T,
    R, n, size), ...]} (the nodes no metric reads are never put together)."""

    def __init__(self, outputs: dict, r: int, steps: int, blocks: dict):
        self.outputs, self.r, self.steps = outputs, r, steps
        self.names = {**{n: n for n in outputs}, **blocks}
        self.made: dict = {}

    def __getitem__(self, name):
        node = self.names[name]
        found = self.made.get(node)
        if found is None:
            parts = [part[:self.steps, self.r] for part in self.outputs[node]]   # (steps, n, size) each
            found = self.made[node] = np.ascontiguousarray(
                (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)).transpose(1, 0, 2))
        return found

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class _Optimizer:
    """The optimizers of every replica as one: their update rules (optim.py)
    on stacked parameters, each replica with its own options and step count.
    Replicas not ``active`` take no step."""

    def __init__(self, optimizers: list, replicas: Replicas):
        self.optimizers = optimizers
        self.name = optimizers[0].name
        self.replicas = replicas
        self.steps = np.array([o.steps for o in optimizers], dtype=np.int64)
        # the update rule, run on the stacked parameters and buffers
        self.rule = type(optimizers[0])(**optimizers[0].options)
        self._options: dict = {}
        self.state: dict = {}
        for name in replicas.trainable:
            bufs = {}
            for key in _BUFFERS[self.name]:
                stacked = np.zeros_like(replicas.params[name])
                for r, o in enumerate(optimizers):
                    held = o.state.get(name, {}).get(key)
                    if held is not None:
                        stacked[r] = np.asarray(held).reshape(stacked.shape[1:])
                bufs[key] = stacked
            self.state[name] = bufs
        self.rule.state = self.state

    def option(self, key: str) -> np.ndarray:
        """Every replica's option ``key`` (float64), shaped (R, 1) against the rule's flat
        (R, N) vectors; only the learning rate changes during a run (its schedule),
        so the others are read once."""
        found = self._options.get(key) if key != "lr" else None
        if found is None:
            if key in ("beta1", "beta2"):
                values = [float(o.options["betas"][key == "beta2"]) for o in self.optimizers]
            else:
                values = [float(o.options[key]) for o in self.optimizers]
            found = self._options[key] = np.array(values).reshape(-1, 1)
        return found

    def step(self, params: dict, grads: dict, active: np.ndarray, flat: np.ndarray | None = None) -> np.ndarray:
        """One step of every ``active`` replica: optim.py's own rule, given each
        replica's options as (R, 1) arrays (an inactive replica's learning rate is 0).
        ``flat``: the rule's ``flat_gradients(params, grads, lead=1)``, used instead of
        ``grads``.  Returns whether each replica's update is finite (one that is not is
        not written)."""
        self.steps += active
        rule = self.rule
        for key in self.optimizers[0].options:
            if key == "betas":
                rule.options[key] = (self.option("beta1"), self.option("beta2"))
            elif key != "nesterov":   # the same for all (batch_problem)
                rule.options[key] = self.option(key)
        rule.options["lr"] = self.option("lr") * active.reshape(-1, 1)
        rule.steps = np.maximum(self.steps, 1).reshape(-1, 1)
        return rule.apply(params, grads, lead=1, flat=flat)

    def give(self, r: int) -> None:
        """Put replica ``r``'s step count and buffers into its own optimizer, as its
        run would hold them (a buffer its options never make is left out)."""
        o = self.optimizers[r]
        o.steps = int(self.steps[r])
        if not o.steps:
            return
        info = self.replicas.info
        keep = [k for k in _BUFFERS[self.name]
                if not (k == "velocity" and not o.options["momentum"])
                and not (k == "buffer" and not o.options["momentum"])]
        o.state = {name: {k: np.array(bufs[k][r].reshape(info[name].shape)) for k in keep}
                   for name, bufs in self.state.items()}


_BUFFERS = {"sgd": ("velocity",), "adam": ("m", "s"), "rmsprop": ("s", "buffer"), "adagrad": ("sum",)}


def train_together(trainers: list, should_stop=None) -> list:
    """Train every trainer (see the module's docstring).  Returns, per trainer,
    None or the RunError that ended it (as its own ``run()`` would have raised).
    A KeyboardInterrupt leaves the trainers in no defined state: their runs
    are to be done again.  ``should_stop()`` is checked after every step; when
    it returns True a KeyboardInterrupt is raised."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _Together(trainers).run(should_stop)


class _Together:
    def __init__(self, trainers: list):
        self.trainers = trainers
        self.R = len(trainers)
        self.replicas = Replicas([t.net for t in trainers])
        self.optimizer = _Optimizer([t.optimizer for t in trainers], self.replicas)
        first = trainers[0]
        self.cfg = first.config
        self.data = _Stacked(first.net, [t.train_data for t in trainers], [t.train_masks for t in trainers])
        self.clip = np.array([t.config.clip or np.inf for t in trainers]).reshape(-1, 1)   # against (R, N)
        self.errors: list = [None] * self.R
        self.eval_data = self.eval_sets = None     # _Stacked evaluation data, made when first needed
        self.active = np.array([t.epoch < t.config.epochs for t in trainers])

    def stop(self, r: int, error: RunError | None = None) -> None:
        """Replica ``r`` changes no more: its parameters and optimizer go back to its trainer."""
        self.active[r] = False
        self.errors[r] = error
        self.replicas.give(r)
        self.optimizer.give(r)

    def run(self, should_stop) -> list:
        N, R = self.data.n, self.R
        bs = min(self.cfg.batch_size, N) if N else 1
        while self.active.any():
            orders = np.tile(np.arange(N), (R, 1))
            for r in np.flatnonzero(self.active):
                t = self.trainers[r]
                if t.schedule is not None:
                    t.optimizer.options["lr"] = t.schedule.lr(t.epoch)
                orders[r] = t.rng.permutation(N)
            losses, weights = [], []
            for b in range(0, N, bs):
                index = None if bs >= N else np.sort(orders[:, b:b + bs], axis=1)
                losses.append(self._gradient_step(index))
                weights.append(bs if index is None else index.shape[1])
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                if not self.active.any():
                    break
            for r in np.flatnonzero(self.active):
                self.trainers[r].epoch += 1
            due = [t.epoch % t.config.eval_every == 0 or t.epoch == t.config.epochs for t in self.trainers]
            evaluations = self._evaluate() if any(d and a for d, a in zip(due, self.active)) else None
            for r in np.flatnonzero(self.active):
                t = self.trainers[r]
                self.replicas.give(r)
                try:
                    stopped = t.finish_epoch([float(x[r]) for x in losses], weights,
                                             evaluation=evaluations[r] if evaluations and due[r] else None)
                except RunError as exc:
                    self.stop(r, exc)
                    continue
                if stopped or t.epoch >= t.config.epochs:
                    self.stop(r)
        return self.errors

    def _evaluate(self, chunk: int = 256) -> list | None:
        """``Trainer.evaluate()`` of every replica, computed together (the same
        chunks, loss and outputs; each replica's metrics from its own outputs).
        None when the evaluation data have no targets (each trainer evaluates alone)."""
        trainers = self.trainers
        if self.eval_data is None:
            sets = [t.eval_data if t.eval_data is not None else t.train_data for t in trainers]
            masks = [t.eval_masks if t.eval_data is not None else t.train_masks for t in trainers]
            if not sets[0].targets:
                return None
            self.eval_sets, self.eval_data = sets, _Stacked(trainers[0].net, sets, masks)
        data, sets = self.eval_data, self.eval_sets
        outputs: dict = {}
        total, count = np.zeros(self.R), 0
        for start in range(0, data.n, chunk):
            index = np.tile(np.arange(start, min(start + chunk, data.n)), (self.R, 1))
            xs, ys, ws, initial = data.batch(index) if data.n > chunk else data.batch(None)
            n = index.shape[1]
            losses, _, run = self.replicas.step(xs, ys, ws, self.cfg.loss, data.T, n, initial=initial, grads=False)
            total += losses * n
            count += n
            for node, (_, v) in run.values.items():
                outputs.setdefault(node, []).append(v.value)
        results = []
        for r, (t, own) in enumerate(zip(trainers, sets)):
            mine = _ReplicaOutputs(outputs, r, own.steps, t.net.blocks)
            result = {"loss": float(total[r] / count)} if count else {}
            if t.metrics_fn is not None:
                result.update(t.metrics_fn(mine, own))
            results.append(result)
        return results

    def _gradient_step(self, index) -> np.ndarray:
        """One batch for every replica (``index`` (R, b) its samples, None: all);
        returns each replica's loss, the mean over windows as ``Trainer._gradient_step``."""
        cfg, data = self.cfg, self.data
        xs, ys, ws, initial = data.batch(index)
        T = data.T
        B = data.n if index is None else index.shape[1]
        k = cfg.truncate if cfg.truncate and cfg.truncate < T else T
        carried, losses = None, []
        for start in range(0, max(T, 1), max(k, 1)):
            stop = min(start + k, T)
            cut = (lambda d: d) if k == T else (lambda d: {n: a[start:stop] for n, a in d.items()})
            loss, grads, run = self.replicas.step(cut(xs), cut(ys), cut(ws), cfg.loss, stop - start, B,
                                                  initial=initial if start == 0 else None, carried=carried)
            carried = run.history
            self._apply(loss, grads)
            losses.append(loss)
        return np.mean(losses, axis=0)

    def _apply(self, loss: np.ndarray, grads: dict) -> None:
        """The step of every active replica, each checked, clipped and updated as ``Trainer._apply``."""
        R = self.R
        # every replica's gradients as one (R, N) vector (the stacked parameters and their
        # gradients share the network's dtype): checked, zeroed and scaled in one call each
        flat = self.optimizer.rule.flat_gradients(self.replicas.params, grads, lead=1)
        if flat is None:   # nothing trainable
            flat = np.zeros((R, 0), self.replicas.dtype)
        finite = np.isfinite(loss) & np.isfinite(flat).all(axis=1)
        for r in np.flatnonzero(self.active & ~finite):
            t = self.trainers[r]
            try:
                t._check_finite(float(loss[r]), {name: g[r] for name, g in grads.items()})
            except RunError as exc:
                self.stop(r, exc)
        active = self.active.copy()
        if not active.any():
            return
        if not active.all():
            flat[~active] = 0
        if np.isfinite(self.clip).any():
            # the norm of each replica's own gradients, summed as Trainer's clip_grad_norm sums them
            norm = np.sqrt(sum(np.einsum("ri,ri->r", g.reshape(R, -1), g.reshape(R, -1)).astype(np.float64)
                               for g in grads.values())).reshape(-1, 1)
            scale = np.where(norm > self.clip, self.clip / (norm + 1e-12), 1.0)
            if (scale != 1.0).any():
                flat *= scale.astype(flat.dtype)
        # a replica's overflow is not written
        finite = self.optimizer.step(self.replicas.params, grads, active, flat=flat)
        for r in np.flatnonzero(active):
            if not finite[r]:
                self.stop(r, self.trainers[r].overflowed(self.optimizer.rule.nonfinite[r]))
                continue
            self.trainers[r].step += 1
