"""Training by gradient descent: the gradient by backpropagation through time
(``method: bptt``) or forward in time (``method: rtrl``, with ``online`` an
optimizer step after every time step); with ``teacher_forcing`` the loss is
that of ``Network.teacher_forced()``.

``Trainer`` knows nothing of terminals: it reports each epoch through a
callback and checks a ``should_stop`` function between steps, so the CLI
draws a progress bar, the TUI a live plot, and either can stop it.

The configuration is the spec's ``train:`` section with defaults resolved in
this order: the format's defaults (docs/spec-format.md, "Train"), then what the task needs
(``task.default_train``), then what the spec says.  Everything random
(shuffling) comes from one Generator whose state is part of
``Trainer.state_dict``, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .data import DEFAULT_BATCH_SIZE, Dataset
from ..engine.dropout import window as dropout_window
from ..errors import DataError, RunError
from .metrics import lower_is_better
from .optim import clip_grad_norm, make_optimizer
from .schedules import Schedule
from ..spec import parse_threshold

DEFAULTS = {"method": "bptt", "loss": "mse", "loss_on": "all", "optimizer": {"name": "adam", "lr": 0.001},
            "epochs": 100, "batch_size": 32, "truncate": 0, "clip": None, "early_stopping": None,
            "log_every": None, "schedule": None, "online": False, "teacher_forcing": False}


@dataclass
class TrainConfig:
    method: str = "bptt"
    loss: str = "mse"
    loss_on: str = "all"
    optimizer: dict = field(default_factory=lambda: {"name": "adam", "lr": 0.001})
    epochs: int = 100
    batch_size: int = DEFAULT_BATCH_SIZE
    truncate: int = 0             # 0: full BPTT; k: windows of k steps, state carried, a step per window
    clip: float | None = None     # largest joint gradient norm
    early_stopping: dict | None = None
    log_every: int | None = None  # epochs between evaluations (default: about 50 over the run)
    schedule: dict | None = None  # the learning rate per epoch (schedules.py); None: the optimizer's lr throughout
    online: bool = False          # rtrl: an optimizer step after every time step
    teacher_forcing: bool = False  # delayed edges leaving outputs read the targets while training

    @property
    def eval_every(self) -> int:
        return self.log_every or max(1, self.epochs // 50)


def resolve_config(spec, task=None, epochs: int | None = None) -> TrainConfig:
    """SPEC defaults < the task's needs < the spec's ``train:``; ``epochs`` last."""
    merged = dict(DEFAULTS)
    if task is not None:
        merged.update(task.default_train)
    merged.update(spec.train)
    if "optimizer" in spec.train:
        merged["optimizer"] = {"lr": 0.001, **spec.train["optimizer"]}
    if epochs is not None:
        merged["epochs"] = epochs
    return TrainConfig(**{k: merged[k] for k in TrainConfig.__dataclass_fields__})


def loss_masks(config: TrainConfig, data: Dataset) -> dict:
    """The ``mask`` argument of ``loss_and_grad`` for ``loss_on``."""
    if config.loss_on == "all":
        return {}
    if config.loss_on == "last":
        masks = {}
        for node, y in data.targets.items():
            m = np.zeros(y.shape[:2], dtype=y.dtype)
            m[:, -1] = 1
            masks[node] = m
        return masks
    missing = [n for n in data.targets if n not in data.masks]
    if missing:
        where = data.source or "the data"
        raise DataError(f"{where}: train.loss_on is 'mask' but there is no mask for {', '.join(missing)} "
                        f"(an array '{missing[0]}.mask' of shape (N, T))")
    return data.masks


def global_norm(grads: dict) -> float:
    return float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))


class Trainer:
    """Trains ``net`` on ``train`` data; evaluates on ``evaluation`` (or ``train``).

    Parameters
    ----------
    metrics : callable(outputs {node: (N, T, size)}, data: Dataset) -> dict, optional
        The task's metrics, computed at each evaluation.
    seed : int
        Seeds the shuffling of mini-batches.
    """

    def __init__(self, net, config: TrainConfig, train: Dataset, evaluation: Dataset | None = None,
                 metrics=None, seed: int = 0):
        self.net = net
        self.config = config
        ahead = next(((u, v, d) for u, v, d in net.graph.edges(data="delay") if d < 0), None)
        if config.truncate and ahead:
            raise DataError(f"truncate: {config.truncate} needs every delay >= 0, but edge {ahead[0]} -> {ahead[1]} "
                            f"has delay {ahead[2]} (it reads a later step, which a window cannot see); "
                            f"use truncate 0 (full BPTT)")
        self.train_data = train
        self.eval_data = evaluation
        self.metrics_fn = metrics
        self.optimizer = make_optimizer(config.optimizer)
        self.schedule = Schedule(config.schedule, self.optimizer.options["lr"], config.epochs) \
            if config.schedule else None
        self.rng = np.random.default_rng(seed)
        self.epoch = 0               # epochs completed
        self.step = 0                # optimizer steps taken
        self.history: list[dict] = []
        self.stopped: str | None = None
        self.train_masks = loss_masks(config, train)
        self.eval_masks = loss_masks(config, evaluation) if evaluation is not None else self.train_masks

    # ------------------------------------------------------------------ one step
    def _gradient_step(self, batch: Dataset, masks: dict) -> float:
        net, cfg = self.net, self.config
        trained = net.teacher_forced() if cfg.teacher_forcing else net   # what computes the training loss
        if cfg.method == "rtrl":
            return self._rtrl_step(trained, batch, masks)
        T = batch.steps
        k = cfg.truncate if cfg.truncate and cfg.truncate < T else T
        carried, losses = None, []
        # dropout: masks for the whole sequences, drawn from the run's one generator (so a
        # seed fixes them and a resumed run draws the same); a window takes its steps of them
        dropped = net.dropout_masks(batch.n, T, self.rng) if net.dropout else None
        for start in range(0, max(T, 1), max(k, 1)):
            stop = min(start + k, T)
            window = batch if k == T else batch.window(start, stop)
            wmasks = masks if k == T else {n: m[:, start:stop] for n, m in masks.items()}
            loss, grads, run = trained.train_step(window.inputs, window.targets, loss=cfg.loss,
                                                  initial=batch.initial if start == 0 else None,
                                                  mask=wmasks or None, steps=stop - start, carried=carried,
                                                  dropout_masks=dropped if k == T or dropped is None else
                                                  dropout_window(dropped, net.dropout, start, stop))
            carried = run.history
            self._apply(loss, grads)
            losses.append(loss)
        return float(np.mean(losses))

    def _rtrl_step(self, trained, batch: Dataset, masks: dict) -> float:
        """Real-time recurrent learning: one step for the batch (``online: false``, the
        same gradient as BPTT), or one after every time step (``online: true``, each
        on that step's mean loss); returns the batch's loss."""
        cfg = self.config
        if not cfg.online:
            loss, grads = trained.loss_and_grad(batch.inputs, batch.targets, loss=cfg.loss, initial=batch.initial,
                                                mask=masks or None, steps=batch.steps, method="rtrl")
            self._apply(loss, grads)
            return loss
        total, counted = 0.0, 0
        for _, loss_t, grads_t in trained.rtrl_online(batch.inputs, batch.targets, loss=cfg.loss,
                                                      initial=batch.initial, mask=masks or None, steps=batch.steps):
            self._apply(loss_t, grads_t)
            total, counted = total + loss_t, counted + 1
        return total / max(counted, 1)

    def _apply(self, loss: float, grads: dict) -> None:
        """One optimizer step on ``grads`` (after checking them and clipping)."""
        net, cfg = self.net, self.config
        flat = self.optimizer.flat_gradients(net.params, grads)   # checked and clipped in one call each
        if flat is None or not (math.isfinite(loss) and np.isfinite(flat).all()):
            self._check_finite(loss, grads)
        if cfg.clip:
            clip_grad_norm(grads, cfg.clip, flat)
        if not self.optimizer.step(net.params, grads, flat):   # it overflowed: the last good parameters are kept
            raise self.overflowed(self.optimizer.nonfinite[()])
        net.project_constraints()
        self.step += 1

    def overflowed(self, name: str) -> RunError:
        """The error of an update that made parameter ``name`` NaN or infinite."""
        return RunError(f"epoch {self.epoch + 1}, step {self.step + 1}: the update made {name!r} "
                        f"NaN or infinite (diverged); the parameters before this step are kept. "
                        f"Try a smaller learning rate or train.clip")

    def _check_finite(self, loss: float, grads: dict) -> None:
        where = f"epoch {self.epoch + 1}, step {self.step + 1}"
        if not math.isfinite(loss):
            raise RunError(f"{where}: the loss became {loss} (diverged); the parameters before this step are kept. "
                           f"Try a smaller learning rate or train.clip")
        for name, g in grads.items():
            if not np.all(np.isfinite(g)):
                raise RunError(f"{where}: the gradient of {name!r} became NaN or infinite (diverged); the "
                               f"parameters before this step are kept. Try a smaller learning rate or train.clip")

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data: Dataset | None = None, masks: dict | None = None, chunk: int = 256,
                 into: dict | None = None) -> dict:
        """Loss and task metrics on ``data`` (default: the evaluation split);
        ``into``, when given, receives every node's values {node: (N, T, size)}."""
        if data is None:
            data = self.eval_data if self.eval_data is not None else self.train_data
            masks = self.eval_masks if self.eval_data is not None else self.train_masks
        masks = masks or {}
        outputs: dict = {}
        total, count = 0.0, 0
        for start in range(0, data.n, chunk):
            part = data.subset(slice(start, start + chunk))
            pmasks = {n: m[start:start + chunk] for n, m in masks.items()}
            if part.targets:
                loss, _, run = self.net.eval_loss(part.inputs, part.targets, loss=self.config.loss,
                                                  initial=part.initial, mask=pmasks or None, steps=part.steps)
                total += loss * part.n
                count += part.n
                values = {n: v.value.transpose(1, 0, 2) for n, (a, v) in run.values.items()}
            else:
                values = self.net.forward(part.inputs, initial=part.initial, steps=part.steps)
            for n, v in values.items():
                outputs.setdefault(n, []).append(v)
        outputs = {n: np.concatenate(v, axis=0) for n, v in outputs.items()}
        for block, h in self.net.blocks.items():
            outputs[block] = outputs[h]
        if into is not None:
            into.update(outputs)
        result = {"loss": total / count} if count else {}
        if self.metrics_fn is not None:
            result.update(self.metrics_fn(outputs, data))
        return result

    def check_evaluation(self, result: dict) -> None:
        """Raise RunError when an evaluation's loss is not finite: the network
        diverged even if every training step stayed finite."""
        loss = result.get("loss")
        if loss is not None and not math.isfinite(loss):
            which = "evaluation" if self.eval_data is not None else "training-data"
            raise RunError(f"epoch {self.epoch}, after step {self.step}: the {which} loss is {loss}, not finite "
                           f"(diverged); "
                           f"the network's outputs overflow. Try a smaller learning rate or train.clip")

    # ------------------------------------------------------------------ the loop
    def run(self, callback=None, should_stop=None) -> list[dict]:
        """Train until ``config.epochs`` epochs are done, early stopping says
        so, or ``should_stop()`` returns True (checked after every step).
        ``callback(record)`` receives each epoch's record.  Returns the history.

        A KeyboardInterrupt during a step stops like ``should_stop``: the
        epoch in progress is rolled back, and calling ``run`` again goes on
        from it exactly as an uninterrupted run would have.

        Raises RunError when the loss, a gradient or an evaluation's loss stops
        being finite."""
        # overflow on the way to divergence is detected by _check_finite, not printed by numpy
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return self._run(callback, should_stop)

    def _run(self, callback, should_stop) -> list[dict]:
        cfg = self.config
        if self.stopped == "interrupted":   # a run again after an interruption goes on from it
            self.stopped = None
        data = self.train_data
        N = data.n
        bs = min(cfg.batch_size, N) if N else 1
        while self.epoch < cfg.epochs:
            # where this epoch starts: an interrupted epoch is rolled back to it, so a
            # resumed run replays it exactly as an uninterrupted run would have
            snapshot = ({k: v.copy() for k, v in self.net.params.items()}, self.state_dict())
            if self.schedule is not None:
                self.optimizer.options["lr"] = self.schedule.lr(self.epoch)
            order = self.rng.permutation(N)
            losses, weights = [], []
            try:
                for b in range(0, N, bs):
                    idx = np.sort(order[b:b + bs]) if bs < N else np.arange(N)
                    batch = data.subset(idx) if bs < N else data
                    masks = {n: m[idx] for n, m in self.train_masks.items()} if bs < N else self.train_masks
                    losses.append(self._gradient_step(batch, masks))
                    weights.append(len(idx))
                    if should_stop is not None and should_stop():
                        self.stopped = "interrupted"
                        break
            except KeyboardInterrupt:   # stopped at once, maybe mid-step: the roll-back below undoes it
                self.stopped = "interrupted"
            if self.stopped == "interrupted":
                params, state = snapshot
                for k, v in params.items():
                    self.net.params[k][...] = v
                self.load_state_dict(state)
                break
            self.epoch += 1
            if self.finish_epoch(losses, weights, callback):
                break
        return self.history

    def finish_epoch(self, losses: list, weights: list, callback=None, evaluation: dict | None = None) -> bool:
        """After the steps of epoch ``self.epoch`` (already counted): its record
        (the batches' ``losses`` averaged by ``weights``, and an evaluation when
        due: ``evaluation`` when given, as ``evaluate()`` returns it) into the
        history and to ``callback``.  Returns True when early stopping ends the
        run; raises RunError when the evaluation is not finite."""
        cfg = self.config
        record = {"epoch": self.epoch, "step": self.step,
                  "train_loss": float(np.average(losses, weights=weights)),
                  "lr": float(self.optimizer.options["lr"])}
        checked = {}
        if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
            evaluation = self.evaluate() if evaluation is None else dict(evaluation)
            checked = dict(evaluation)
            if "loss" in evaluation and self.eval_data is not None:
                record["eval_loss"] = evaluation.pop("loss")
            else:
                evaluation.pop("loss", None)
            record.update(evaluation)
        if self.schedule is not None:
            self.schedule.observe(record)
        self.history.append(record)
        if callback is not None:
            callback(record)
        self.check_evaluation(checked)   # the epoch is recorded, then a non-finite evaluation ends the run
        if self._early_stop(record):
            self.stopped = "early_stopping"
            return True
        return False

    def _early_stop(self, record: dict) -> bool:
        es = self.config.early_stopping
        if not es or es["metric"] not in record:
            return False
        value = record[es["metric"]]
        if "threshold" in es:
            op, bound = parse_threshold(es["threshold"])
            return meets(value, op, bound)
        patience = es.get("patience")
        if patience:
            series = [r[es["metric"]] for r in self.history if es["metric"] in r]
            lower_better = lower_is_better(es["metric"])
            best = min(series) if lower_better else max(series)
            best_at = max(i for i, v in enumerate(series) if v == best)
            return len(series) - 1 - best_at >= patience
        return False

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: parameters, counters,
        optimizer, RNG and history (one file: they can never disagree)."""
        import json
        return {**{f"param::{k}": v.copy() for k, v in self.net.params.items()},
                "epoch": np.asarray(self.epoch), "step": np.asarray(self.step),
                "rng": np.asarray(json.dumps(self.rng.bit_generator.state)),
                "history": np.asarray(json.dumps(self.history)),
                "run_options": np.asarray(json.dumps(getattr(self, "run_options", []))),
                # the resolved spec the run was made from, compared on resume
                **({"spec": np.asarray(self.run_spec)} if getattr(self, "run_spec", None) else {}),
                **({"schedule": np.asarray(json.dumps(self.schedule.state_dict()))} if self.schedule else {}),
                **{f"optim::{k}": v for k, v in self.optimizer.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        import json
        params = {k[len("param::"):]: v for k, v in state.items() if k.startswith("param::")}
        if params and (set(params) != set(self.net.params) or
                       any(v.shape != self.net.params[k].shape for k, v in params.items())):
            raise DataError("checkpoint: its parameters do not match this network (was it made with another spec "
                            "or other --set options?)")
        for k, v in params.items():
            self.net.params[k][...] = v
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.rng.bit_generator.state = json.loads(str(state["rng"]))
        self.history = json.loads(str(state["history"])) if "history" in state else self.history
        self.optimizer.load_state_dict({k[len("optim::"):]: v for k, v in state.items() if k.startswith("optim::")})
        if self.schedule is not None:
            if "schedule" in state:
                self.schedule.load_state_dict(json.loads(str(state["schedule"])))
            if self.epoch < self.config.epochs:
                self.optimizer.options["lr"] = self.schedule.lr(self.epoch)


def meets(value: float, op: str, bound: float) -> bool:
    return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound,
            "==": value == bound}[op]
