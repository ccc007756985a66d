"""``Network``: a built spec with parameters, and the Python API (README, "Python").

Arrays given to and returned by the API are batch-major ``(B, T, size)``;
the executor works time-major ``(T, B, size)`` and the conversion happens
only here.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np

from .. import arguments as arg
from . import autodiff as ad
from .. import budget
from . import hopfield
from .dropout import draw_masks, dropout_edges, time_major_masks
from .program import Program
from ..errors import ArgumentError, DataError, suggest
from .executor import ENGINES, run
from .flat import lay_out
from .graph import folded_graph, unroll
from ..io import atomic_write
from .losses import LOSSES, output_loss
from .params import init_params, param_infos, project
from .plan import make_plan
from ..spec import DTYPES, LARGEST, Spec, out_of_range
from .calls import all_finite, batch_major, first_bad, prepare_inputs, prepare_targets

GRADIENT_METHODS = ("bptt", "rtrl")   # loss_and_grad's ways to the same gradient
MAX_UNROLLED = 1_000_000    # vertices + arcs of the largest networkx graph ``unroll`` builds


class Step(NamedTuple):
    """One evaluation of the loss: ``loss``, ``grads`` ({trainable parameter:
    array of its shape}, None without gradients) and the executor's ``run``
    (its values and, as ``run.history``, the state to carry into a next window)."""

    loss: float
    grads: dict | None
    run: object


class Network:
    """A network built from a spec: folded graph, plan and live parameters.

    Attributes
    ----------
    spec : Spec
        The spec as written (blocks unexpanded); ``spec.expanded()`` is the
        primitive network actually run.
    graph : networkx.MultiDiGraph
        The folded graph of primitive nodes (``graph.folded_graph``).
    params : dict[str, np.ndarray]
        Every parameter by name, frozen ones too.  Live: writing into an
        array, or assigning a new array of the same shape, changes the model.
        The parameters of a fused group (an LSTM's four gate weights) are
        row-block views of one array (``flat``), which the group reads whole.
    plan : Plan
        The schedule the fast executor follows (``print(net.plan.describe())``).
    engine : str
        How recurrent loops run, ``"compiled"`` or ``"simple"`` (see ``build``).
    """

    def __init__(self, spec: Spec, seed: int | None = None, dtype=None, engine: str = "compiled"):
        if not isinstance(spec, Spec):
            hint = ": read it with rg.load_spec(path) first" if isinstance(spec, (str, os.PathLike)) else \
                " (from rg.load_spec or rg.parse_spec)"
            raise ArgumentError(f"build: expected a Spec, got {type(spec).__name__}{hint}")
        seed = arg.seed("build: seed", seed)
        if engine not in ENGINES:
            raise DataError(f"engine: unknown engine {engine!r}{suggest(engine, ENGINES)}; known: {', '.join(ENGINES)}")
        self.engine = engine     # how recurrent loops run (executor.ENGINES); every engine computes the same
        self.spec = spec
        self.primitive = spec.expanded()
        self.dtype = _float_dtype(dtype, spec.dtype)
        if self.dtype.name != spec.dtype and self.dtype.name in LARGEST:
            bad = out_of_range(spec, self.dtype.name)
            if bad:
                where, value = bad[0]
                raise DataError(f"dtype {self.dtype.name}: {where} = {value!r} is too large for it (largest "
                                f"magnitude {LARGEST[self.dtype.name]:.4g}); build in {spec.dtype} or change the value")
        self.graph = folded_graph(self.primitive)
        self.param_info = param_infos(self.graph)
        self.params = init_params(self.graph, self.primitive, spec.seed if seed is None else seed, self.dtype)
        self.plan = make_plan(self.graph)
        self.program = Program(self.graph, self.plan)
        # fused groups' parameters as row blocks of one array each (params holds views)
        self.program.flats = lay_out(self.plan, self.graph, self.params, self.param_info,
                                     self.program.folded_biases[0])
        self.blocks = {n.name: f"{n.name}/h" for n in spec.nodes.values() if n.type}
        nodes = self.program.nodes
        self._roles = {role: tuple(n for n, d in nodes.items() if d["role"] == role)
                       for role in ("input", "hidden", "output")}
        self._trainable = tuple(name for name, info in self.param_info.items() if info.trainable)
        self.param_elements = sum(int(np.prod(info.shape)) for info in self.param_info.values())   # for budget
        self.dropout = dropout_edges(self.graph)   # edge -> (p, source size, delay) for edges with dropout
        self.memory_limit = budget.limit()      # RNNGRAPH_MEMORY_LIMIT as it was when the network was built
        self._rtrl = None                       # rtrl.Sensitivities, made when first asked for
        self._forced = None                     # forcing.TeacherForced, made when first asked for

    # ------------------------------------------------------------------ structure
    @property
    def input_nodes(self) -> list:
        return list(self._role_nodes("input"))

    @property
    def output_nodes(self) -> list:
        return list(self._role_nodes("output"))

    def _role_nodes(self, role: str) -> tuple:
        """The nodes of ``role``, in graph order."""
        return self._roles[role]

    @property
    def trainable(self) -> list:
        """Names of the parameters training changes."""
        return list(self._trainable_names())

    def _trainable_names(self) -> tuple:
        return self._trainable

    def size(self, node: str) -> int:
        """The number of units of ``node`` (a primitive node or a block)."""
        nodes = self.program.nodes
        name = self.blocks.get(node, node) if isinstance(node, str) else None
        if name not in nodes:
            if not isinstance(node, str):
                raise ArgumentError(f"size: expected a node name (str), got {type(node).__name__}")
            raise DataError(f"size: unknown node {node!r}{suggest(node, list(self.blocks) + list(nodes))}")
        return nodes[name]["size"]

    def unroll(self, T: int, initial: bool = False):
        """The time-indexed DAG over ``T`` steps (``graph.unroll``); ``T`` an int >= 0.

        Raises DataError when it would have more than ``MAX_UNROLLED`` vertices
        and arcs (a networkx graph that size takes gigabytes and minutes)."""
        T = arg.integer("unroll: T", T)
        size = self.graph.number_of_nodes() * (T + 1) + self.graph.number_of_edges() * T
        if size > MAX_UNROLLED:
            raise DataError(f"unroll(T={T}): the unrolled graph would have about {size:,} vertices and arcs "
                            f"(at most {MAX_UNROLLED:,} are built as a networkx graph); use a smaller T, or "
                            f"`rnngraph unroll SPEC -T N --format json|dot|mermaid` for a file")
        return unroll(self.graph, T, initial=arg.flag("unroll: initial", initial))

    # ------------------------------------------------------------------ running
    def forward(self, inputs: dict | None = None, initial: dict | None = None, steps: int | None = None) -> dict:
        """Every node's values over time.

        Parameters
        ----------
        inputs : {input node: array (B, T, size)}
            (an input node with ``encoding: one_hot`` also takes (B, T) integer
            tokens, made one-hot)
        initial : {node: array (B, size)}, optional
            Initial states overriding the nodes' ``init`` (required for
            nodes with ``init: input``).
        steps : int, optional
            T, where the network has no input nodes.

        Returns
        -------
        {node: array (B, T, size)} for every primitive node, and for every
        block its output ``h`` under the block's name.
        """
        xs, initial, T, B = prepare_inputs(self, inputs, initial, steps)
        result = run(self.program, self._finite_params(), xs, T, B, self.dtype, initial=initial,
                     engine=self.engine)
        return batch_major(self, {n: v for n, (a, v) in result.values.items()})

    def predict(self, inputs: dict | None = None, initial: dict | None = None, steps: int | None = None,
                nodes="outputs") -> dict:
        """``forward``'s values of the nodes a user asks for, keyed by node name.

        ``nodes`` is ``"outputs"`` (the output nodes; a block output under the
        block's name), ``"all"`` (every node ``forward`` returns) or a list of
        node or block names.  The values are ``forward``'s, ``(B, T, size)``;
        nothing that only training does (teacher forcing, dropout) applies.

        Raises DataError for an unknown node name, suggesting the closest."""
        wanted = self.prediction_nodes(nodes)
        values = self.forward(inputs, initial=initial, steps=steps)
        return {name: values[name] for name in wanted}

    def prediction_nodes(self, nodes="outputs") -> list:
        """The names ``predict(nodes=...)`` returns, in graph order (see ``predict``)."""
        by_block = {h: block for block, h in self.blocks.items()}
        known = list(self.program.nodes) + list(self.blocks)
        if isinstance(nodes, str) and nodes == "outputs":
            return [by_block.get(n, n) for n in self.output_nodes]
        if isinstance(nodes, str) and nodes == "all":
            return known
        if isinstance(nodes, str) or not all(isinstance(n, str) for n in nodes):
            raise ArgumentError(f"predict: nodes must be 'outputs', 'all' or a list of node names, got {nodes!r}")
        for name in nodes:
            if name not in known:
                raise DataError(f"predict: unknown node {name!r}{suggest(name, known)}; the nodes are "
                                f"{', '.join(known)}")
        return list(dict.fromkeys(nodes))

    def loss_and_grad(self, inputs: dict | None, targets: dict, loss: str | None = None,
                      initial: dict | None = None, mask: dict | None = None, steps: int | None = None,
                      dropout_masks: dict | None = None, method: str = "bptt"):
        """The loss on the outputs and its gradient for every trainable parameter.

        Parameters
        ----------
        targets : {output node: array (B, T, size)}
        loss : 'mse' | 'bce' | 'cross_entropy', default the spec's ``train.loss``
        mask : {output node: array (B, T)}, optional; 1 where the loss counts.
        dropout_masks : {edge name: array}, optional
            Dropout as training applies it, with these masks (``dropout_masks``
            draws them): edge ``e`` reads ``mask * v_s(t - d)``.  Without it, no
            dropout (as in evaluation).
        method : 'bptt' (default) or 'rtrl': the same gradient, computed backward
            through time or forward in time (``rtrl.py``; delays >= 0 only).

        Returns
        -------
        (loss: float, grads: {parameter: array of the parameter's shape})
        With several outputs the loss is the sum of each output's loss.

        Raises DataError (ArgumentError for a wrong type) naming the argument:
        unknown or missing nodes, wrong shapes, NaN or infinite values in the
        arrays or in ``net.params``, mask values outside [0, 1].  A loss
        that overflows with finite parameters is returned as it is (inf or nan).
        """
        if arg.choice("method", method, GRADIENT_METHODS) == "rtrl":
            if dropout_masks:
                raise DataError("method='rtrl' runs without dropout: pass no dropout_masks (or use bptt)")
            return self._rtrl_loss_and_grad(inputs, targets, loss, initial, mask, steps)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss_value, grads, _ = self._evaluate(inputs, targets, loss, initial, mask, steps,
                                                  keep_values=False, history=False, dropout_masks=dropout_masks)
        if not math.isfinite(loss_value):   # a NaN or infinite parameter makes the loss so: name it
            self._finite_params()
        return loss_value, grads

    def _rtrl_loss_and_grad(self, inputs, targets, loss, initial, mask, steps):
        from . import rtrl
        kind = self.spec.train.get("loss", "mse") if loss is None else arg.choice("loss", loss, LOSSES)
        xs, initial, T, B = prepare_inputs(self, inputs, initial, steps, targets=targets)
        ys, ws = prepare_targets(self, targets, mask, T, B)
        self._finite_params()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return rtrl.loss_and_grad(self, xs, ys, ws, initial, T, B, kind)

    def rtrl_online(self, inputs, targets, loss: str | None = None, initial: dict | None = None,
                    mask: dict | None = None, steps: int | None = None):
        """Online real-time recurrent learning (``train.online``): a generator yielding
        ``(t, loss_t, grads_t)`` after each step where the loss counts; ``loss_t`` is
        each output's mean over that step, ``grads_t`` {trainable parameter: gradient}.
        The caller may update ``params`` between steps (an optimizer step after every
        time step); the next step reads them.  Arguments as ``loss_and_grad``."""
        from . import rtrl
        kind = self.spec.train.get("loss", "mse") if loss is None else arg.choice("loss", loss, LOSSES)
        xs, initial, T, B = prepare_inputs(self, inputs, initial, steps, targets=targets)
        ys, ws = prepare_targets(self, targets, mask, T, B)
        self._finite_params()
        yield from rtrl.online(self, xs, ys, ws, initial, T, B, kind)

    def rtrl_engine(self):
        """The ``rtrl.Sensitivities`` of this network, made once."""
        if self._rtrl is None:
            from .rtrl import Sensitivities
            self._rtrl = Sensitivities(self)
        return self._rtrl

    def teacher_forced(self):
        """This network as training with ``train.teacher_forcing`` sees it
        (``forcing.TeacherForced``: delayed edges leaving outputs read the targets),
        sharing its parameters; made once."""
        if self._forced is None:
            from .forcing import TeacherForced, forced_spec
            spec, shadows = forced_spec(self.spec)
            if not shadows:
                raise DataError("teacher forcing: no delayed edge leaves an output node, so there is nothing to force")
            self._forced = TeacherForced(self, Network(spec, dtype=self.dtype, engine=self.engine), shadows)
        return self._forced

    def backward_trace(self, inputs, targets, loss: str | None = None, initial: dict | None = None,
                       mask: dict | None = None, steps: int | None = None) -> dict:
        """dL/dv_n(t): the gradient of the loss with respect to every node's
        value at every step, {node: (B, T, size)}, as BPTT computes it.

        Its norm over units shows where gradients vanish or explode.  Input
        nodes hold data, not values the network computes: their entries are
        zeros (no gradient flows into constants)."""
        self._finite_params()
        _, _, result = self._evaluate(inputs, targets, loss, initial, mask, steps, trace=True)
        tape_traced = result.traced
        out = {}
        for n, (a, v) in result.values.items():
            g = tape_traced.get(n)
            if g is None:
                g = v.grad if v.grad is not None else np.zeros_like(v.value)
            out[n] = np.ascontiguousarray(np.broadcast_to(g, v.shape).transpose(1, 0, 2))
        for block, h in self.blocks.items():
            out[block] = out[h]
        return out

    def train_step(self, inputs, targets, loss=None, initial=None, mask=None, steps=None, carried=None,
                   keep_values: bool = False, any_node: bool = False, dropout_masks: dict | None = None) -> "Step":
        """The training loop's step: the loss, its gradient for every trainable
        parameter, and the run (its ``history`` is the state to carry into a next
        window, passed back as ``carried``).

        With ``keep_values=False`` the caller is done with ``run.values`` before
        its next call: the recurrent loops then reuse their buffers between
        calls, and pre-activations no loss reads share their values' buffers.
        The gradients returned are the caller's either way.  Two threads must
        not train one network at once (they would share those buffers).
        ``any_node`` lets targets name any node, not only outputs (gradient
        checks of networks without outputs).  ``dropout_masks`` as in ``loss_and_grad``."""
        return self._evaluate(inputs, targets, loss, initial, mask, steps, carried=carried, grads=True,
                              keep_values=keep_values, any_node=any_node, dropout_masks=dropout_masks)

    def eval_loss(self, inputs, targets, loss=None, initial=None, mask=None, steps=None, carried=None,
                  any_node: bool = False, dropout_masks: dict | None = None) -> "Step":
        """The loss and the run (every value kept), without gradients: evaluation
        (``dropout_masks``, as in ``loss_and_grad``, only to check a training step's loss)."""
        return self._evaluate(inputs, targets, loss, initial, mask, steps, carried=carried, grads=False,
                              any_node=any_node, dropout_masks=dropout_masks)

    def _evaluate(self, inputs, targets, loss, initial, mask, steps, carried=None, grads=True,
                  keep_values=True, any_node=False, trace=False, history=True, dropout_masks=None) -> "Step":
        """The one path every loss goes through (``loss_and_grad``, ``train_step``,
        ``eval_loss``, ``backward_trace``).  ``trace`` records dL/dv for every
        value; ``Run.history`` is taken before the backward pass, which may
        reuse value buffers (``history=False`` skips it)."""
        kind = self.spec.train.get("loss", "mse") if loss is None else arg.choice("loss", loss, LOSSES)
        xs, initial, T, B = prepare_inputs(self, inputs, initial, steps, targets=targets)
        ys, ws = prepare_targets(self, targets, mask, T, B, any_node)
        masks = time_major_masks(dropout_masks, self.dropout, B, T, self.dtype)
        tape = ad.Tape(trace=trace) if grads else None
        reuse = not keep_values and not trace
        result = run(self.program, self._checked_params(), xs, T, B, self.dtype, tape=tape,
                     initial=initial, carried=carried, reuse=reuse,
                     lean=self._lean_nodes(tuple(ys)) if reuse else frozenset(),
                     engine=self.engine, masks=masks)
        if history:
            result.history   # noqa: B018 - made now: the backward pass may write over values
        terms = []
        for n, y in ys.items():
            a, v = result.values[n]
            term = output_loss(kind, a, v, y, ws.get(n), self.program.nodes[n]["activation"], from_values=trace)
            if term is not None:
                terms.append(term)
        if not terms:
            total = ad.const(np.zeros((), self.dtype))
        else:
            total = ad.total(terms) if len(terms) > 1 else terms[0]
        gradients = None
        if grads:
            if total.needs_grad:
                tape.backward(total)
            result.traced = tape.traced
            gradients = {}
            params, leaves, fused = self.params, result.params, result.fused_grads()
            for name in self._trainable_names():
                g = fused[name] if name in fused else leaves[name].grad
                shape = params[name].shape
                g = np.zeros_like(params[name]) if g is None else np.asarray(g, self.dtype)
                gradients[name] = g if g.shape == shape else g.reshape(shape)
        return Step(float(total.value), gradients, result)

    def dropout_masks(self, batch: int, steps: int, seed=0) -> dict:
        """Fresh dropout masks for a batch of ``batch`` sequences of ``steps`` steps,
        {edge name: (batch, steps, from.size) for a delay-0 edge, (batch, from.size)
        for a delayed one}: 0 with the edge's probability ``p``, else ``1 / (1 - p)``.
        ``seed`` is an int or a ``numpy.random.Generator`` (drawn from).  Empty when no
        edge has dropout."""
        batch = arg.integer("dropout_masks: batch", batch)
        steps = arg.integer("dropout_masks: steps", steps)
        rng = seed if isinstance(seed, np.random.Generator) else \
            np.random.default_rng(arg.seed("dropout_masks: seed", seed))
        return draw_masks(self.dropout, batch, steps, rng, self.dtype)

    def describe(self, source: bool = False, T: int = 5, batch: int = 2) -> str:
        """The schedule (``plan.describe()``); with ``source``, for each time loop also
        what the loop compiler decided and why (its layout) and the forward and
        backward loops it generated, as a training step on ``batch`` sequences of
        ``T`` steps runs them (the layout depends on their size).  Compiles on a
        network built afresh from the spec, so this one is left as it was."""
        text = [self.plan.describe()]
        if not source:
            return text[0]
        from .gradcheck import random_problem
        fresh = Network(self.spec, dtype=self.dtype)
        inputs, targets, initial, loss = random_problem(fresh, T=T, B=batch)
        cast = lambda d: {k: v.astype(self.dtype) for k, v in d.items()}   # noqa: E731
        fresh.train_step(cast(inputs), cast(targets), loss=loss, initial=cast(initial), steps=T,
                         any_node=not fresh.output_nodes)
        for k, stage in enumerate(fresh.plan.stages):
            if stage.kind != "recurrent":
                continue
            for forward, backward in fresh.program.loops(stage):
                layout = backward.report(forward) if backward is not None else forward.report()
                reversed_time = ("; backward: these loops run on reversed time, step t of the code is step "
                                 "T-1-t of the sequence, and its delays are the edges' negated") if stage.backward else ""
                text += ["", f"time loop {k} over {', '.join(stage.nodes)} (T = {T}, batch {batch}, {self.dtype}"
                             f"{reversed_time})",
                         str(layout), "", forward.forward.source]
                if backward is not None:
                    text += ["", backward.backward.source]
        return "\n".join(text)

    def _lean_nodes(self, observed: tuple) -> frozenset:
        """Nodes whose pre-activation no loss on ``observed`` reads (one frozenset
        per set of targets, so the loops' caches keyed by it hit)."""
        lean = self.program.lean
        if observed not in lean:
            lean[observed] = frozenset(self.graph.nodes) - set(observed)
        return lean[observed]

    # ------------------------------------------------------------------ Hopfield dynamics
    def store(self, patterns, rule: str = "hebbian") -> None:
        """Store ``patterns`` (P, size) of +-1 in the memory edge by ``rule``
        (``hebbian``, ``storkey`` or ``pseudoinverse``).  A DataError for a
        network without a memory edge (see ``hopfield``)."""
        hopfield.store(self, patterns, rule)

    def settle(self, cues, update: str = "async", sweeps: int = 100, seed: int = 0, until_stable: bool = True):
        """Run the dynamics from ``cues`` (B, size); returns a ``hopfield.SettleResult``."""
        return hopfield.settle(self, cues, update=update, sweeps=sweeps, seed=seed, until_stable=until_stable)

    def energy(self, states) -> np.ndarray:
        """``E = -1/2 s^T W s - b^T s`` per row of ``states`` (B, size): (B,)."""
        return hopfield.energy(self, states)

    # ------------------------------------------------------------------ parameters
    def save(self, path) -> None:
        """Write ``params`` to an ``.npz`` (atomically: the old file or the new, never half).

        Raises DataError when ``path`` is a directory or cannot be written."""
        path = arg.path("save: path", path)
        if os.path.isdir(path):
            raise DataError(f"{path}: is a directory; save needs a file name, such as "
                            f"{os.path.join(path, 'params.npz')}")

        def write(fh):
            np.savez(fh, **{name: np.asarray(v) for name, v in self.params.items()})
        try:
            atomic_write(path, write, binary=True)
        except OSError as exc:
            raise DataError(f"{path}: cannot write the parameter file ({exc.strerror or exc})") from None

    def load(self, path) -> "Network":
        """Replace the parameters with those saved at ``path``; returns self.

        Raises DataError naming the file and the parameter when a name is
        missing or unknown, a shape differs, or a value is not a finite number
        this network's dtype can hold."""
        from ..npz import read_npz
        path = arg.path("load: path", path)
        data = read_npz(path, "parameter file")
        names = set(data)
        missing = [n for n in self.params if n not in names]
        unknown = [n for n in names if n not in self.params]
        if missing or unknown:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(repr(n) for n in missing[:5]))
            if unknown:
                parts.append("unknown " + ", ".join(repr(n) + suggest(n, self.params) for n in unknown[:5]))
            raise DataError(f"{path}: parameters do not match this network: " + "; ".join(parts))
        loaded = {}
        for name in self.params:
            value = data[name]
            if value.shape != self.params[name].shape:
                raise DataError(f"{path}: parameter {name!r} has shape {value.shape}, "
                                f"this network needs {self.params[name].shape}")
            if not np.issubdtype(value.dtype, np.number):
                raise DataError(f"{path}: parameter {name!r} has dtype {value.dtype}, not numbers")
            if not np.all(np.isfinite(value)):
                raise DataError(f"{path}: parameter {name!r} holds NaN or infinite values")
            largest = np.finfo(self.dtype).max
            if value.size and np.max(np.abs(value)) > largest:
                raise DataError(f"{path}: parameter {name!r} holds {np.max(np.abs(value)):.4g}, too large for "
                                f"{self.dtype.name} (largest magnitude {largest:.4g}); build in float64 "
                                f"(dtype: float64) or use other parameters")
            loaded[name] = value
        for name, value in loaded.items():
            self.params[name][...] = value
        return self

    def project_constraints(self) -> None:
        """Put constrained weights back on their constraint set (after a user
        or an optimizer moved them off it)."""
        for name, info in self.param_info.items():
            if info.constraints:
                self.params[name][...] = project(self.params[name], info.constraints)

    # ------------------------------------------------------------------ checks
    def _finite_params(self) -> dict:
        """``_checked_params``, and every parameter finite (one pass over the
        parameters).  ``forward`` and ``backward_trace`` check first;
        ``loss_and_grad`` only when its loss is not finite (a NaN or infinite
        parameter always makes it so), which costs the training step nothing;
        the trainer, which keeps the parameters finite, calls ``evaluate``
        without it."""
        params = self._checked_params()
        for name, value in params.items():
            if not all_finite(value):
                raise DataError(f"net.params[{name!r}]: NaN or infinite value at index {first_bad(value)}; "
                                f"set it to finite numbers (or rebuild, or net.load a saved file)")
        return params

    def _checked_params(self) -> dict:
        params = self.params
        for name, info in self.param_info.items():
            value = params.get(name)
            if value is None:
                raise DataError(f"net.params is missing {name!r}")
            if not isinstance(value, np.ndarray) or value.dtype != self.dtype:
                try:
                    value = params[name] = np.array(value, dtype=self.dtype)
                except (TypeError, ValueError):
                    raise DataError(f"net.params[{name!r}] is not numeric: {value!r}") from None
            if value.shape != info.shape:
                raise DataError(f"net.params[{name!r}] has shape {value.shape}, the network needs {info.shape}")
        return params

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows the folded graph (``pictures.folded``; ``rg.draw(net, T)`` the unrolled one)."""
        from .pictures import folded
        return folded(self.graph)._repr_mimebundle_(include, exclude)

    def __repr__(self):
        return (f"Network({self.spec.name!r}: {self.graph.number_of_nodes()} nodes, "
                f"{self.graph.number_of_edges()} edges, {sum(p.size for p in self.params.values())} parameters)")


def build(spec: Spec, seed: int | None = None, dtype=None, engine: str = "compiled") -> Network:
    """Build a ``Network`` from a spec; ``seed`` (an int >= 0) overrides the
    spec's for init, ``dtype`` (``"float32"`` or ``"float64"``) its ``dtype``
    (``"float64"`` for gradient checks).  ``engine`` says how recurrent loops run:
    ``"compiled"`` (generated loops, fast) or ``"simple"`` (a plain per-step loop,
    ``engine/loop.py``, readable); both compute the same.  Raises ArgumentError
    for a wrong type, DataError for a wrong value."""
    return Network(spec, seed=seed, dtype=dtype, engine=engine)


def _float_dtype(dtype, default: str) -> np.dtype:
    """``dtype`` (None for ``default``) as one of the float dtypes networks run in."""
    if dtype is None:
        return np.dtype(default)
    try:
        found = np.dtype(dtype)
    except (TypeError, ValueError):
        raise ArgumentError(f"build: dtype: expected one of {', '.join(map(repr, DTYPES))}, got {dtype!r}") from None
    if found.name not in DTYPES:
        raise DataError(f"build: dtype: networks run in {' or '.join(DTYPES)}, got {found.name}")
    return found
