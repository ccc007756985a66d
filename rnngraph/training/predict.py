"""A trained network's values on data, with targets and metrics (``rnngraph predict``).

``predict(spec, params, data=None, nodes="outputs")`` returns a ``Prediction``:
one ``(N, T, size)`` array per node asked for, keyed by node name, plus
``"<output>.target"`` (and ``"<output>.mask"`` where a mask counts) for each
output the data has targets for, and the metrics the spec's run computes on
that data (``loss`` and the task's metrics).  The values are
``Network.forward``'s, computed by the trainer's evaluation, which applies
nothing that only training does.

A Hopfield net (``train.method`` a storage rule) is settled instead: its
final states ``(N, size)`` are under the state node's name, with
``"<state>.energy"`` ``(N,)`` and ``"<state>.converged"`` ``(N,)``.

``rnngraph.cli.predict`` is the command.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

@dataclass
class Prediction:
    """What ``predict`` produced.

    arrays : {name: ndarray}: values ``(N, T, size)`` by node name, and
        ``"<node>.target"``, ``"<node>.mask"`` (``(N, T)``) where the data has them
    metrics : {name: float}: ``loss`` and the task's metrics, when the data has targets
    source : str: where the data came from, in words
    """

    arrays: dict
    metrics: dict = field(default_factory=dict)
    source: str = ""

    def to_npz(self) -> dict:
        """The arrays and metrics as ``--out`` writes them."""
        return {**self.arrays, **{f"metrics.{k}": np.asarray(v, dtype=np.float64) for k, v in self.metrics.items()}}


def predict(spec, params: str, data: str | None = None, nodes="outputs") -> Prediction:
    """Run the network of ``spec`` with the parameters in ``params`` (a params.npz).

    Parameters
    ----------
    spec : Spec
    params : path of a ``params.npz`` (what ``rnngraph run`` writes)
    data : path of an ``.npz`` data file, optional
        Default: the task's evaluation data (its training data when it has none);
        required when the spec has no ``task:``.
        For a Hopfield net the file holds cues ``(N, size)`` under the state node's name.
    nodes : ``"outputs"``, ``"all"`` or a list of node names (``Network.predict``)

    Raises
    ------
    SpecError, DataError
        A spec, parameter file or data file that cannot be used; an unknown node.
    """
    from .data import load_npz
    from .train import loss_masks
    if spec.task is None:
        trainer, dataset, source = _without_task(spec, params, data)
        config = trainer.config
    else:
        from .experiment import Experiment
        experiment = Experiment(spec, init=params)
        if experiment.is_hopfield:
            return _recall(experiment, data, nodes)
        trainer, config = experiment.trainer, experiment.config
        if data is not None:
            dataset, source = load_npz(data, experiment.net), data
        elif experiment.eval_data is not None:
            dataset, source = experiment.eval_data, "the task's evaluation data"
        else:
            dataset, source = experiment.train_data, "the task's training data (it has no evaluation data)"
    net = trainer.net
    wanted = net.prediction_nodes(nodes)
    masks = loss_masks(config, dataset) if dataset.targets else {}
    values: dict = {}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        metrics = trainer.evaluate(dataset, masks, into=values)
    arrays = {name: values[name] for name in wanted}
    by_block = {h: block for block, h in net.blocks.items()}
    for node, y in dataset.targets.items():
        name = by_block.get(node, node)
        arrays[f"{name}.target"] = y
        if node in masks:
            arrays[f"{name}.mask"] = masks[node]
    return Prediction(arrays, metrics, source)


def _without_task(spec, params, data):
    """(trainer, dataset, source) for a spec with no ``task:``: the data must be given."""
    from ..engine.network import build
    from ..errors import DataError
    from .data import load_npz
    from .train import Trainer, resolve_config
    if data is None:
        raise DataError(f"{spec.path or 'the spec'}: has no `task:`, so there is no evaluation data to predict "
                        f"on; give the data with --data D.npz")
    net = build(spec).load(params)
    dataset = load_npz(data, net)
    return Trainer(net, resolve_config(spec), dataset), dataset, data


def _recall(experiment, data, nodes) -> Prediction:
    """A Hopfield net settled from the cues in ``data`` or the task's evaluation cues."""
    from ..engine.hopfield import state_node
    from ..errors import DataError
    net = experiment.net
    node = state_node(net)
    if nodes not in ("outputs", "all") and list(nodes) != [node]:
        raise DataError(f"predict: a Hopfield net gives its settled states, under {node!r}; --nodes does not "
                        f"apply (drop it)")
    task_data = None
    if data is not None:
        from ..npz import read_npz
        arrays = read_npz(data, "cue file")
        size = net.size(node)
        want = f"the cues, (N, {size}), under the state node's name {node!r}"
        if node not in arrays or sorted(arrays) != [node]:
            held = ", ".join(map(repr, sorted(arrays))) or "no arrays"
            raise DataError(f"{data}: a Hopfield net reads only {want} (the file holds {held})")
        cues = arrays[node]
        if cues.ndim != 2 or cues.shape[1] != size or cues.shape[0] == 0:
            raise DataError(f"{data}: array {node!r} has shape {cues.shape}; expected {want}")
        cues = cues.astype(np.float64)
        if not np.all(np.isfinite(cues)):
            raise DataError(f"{data}: array {node!r} holds NaN or infinite values")
        source = data
    else:
        task_data = experiment.eval_data.task_data
        cues, source = task_data.inputs[:, 0, :], "the task's evaluation cues"
    result, metrics = experiment.recall(cues, task_data)
    arrays = {node: result.states, f"{node}.energy": result.energy[:, -1], f"{node}.converged": result.converged}
    if task_data is not None:
        arrays[f"{node}.target"] = task_data.targets[:, 0, :]
    return Prediction(arrays, metrics, source)
