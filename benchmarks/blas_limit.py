"""The BLAS-bound limit of one training step: its GEMMs and nothing else.

:func:`gemm_plan` lists the matrix products that :mod:`benchmarks.numpy_bptt`
makes in one step, with the operand layouts it uses (a transposed operand is
a transposed view, passed to BLAS as a flag, never copied), and how many
times each runs. :class:`BlasLimit` allocates those operands once and its
``run()`` calls exactly those GEMMs with ``out=``: the time of a step whose
elementwise work and Python bookkeeping cost nothing. No implementation that
keeps these GEMMs can beat it; only fewer or larger GEMMs could.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .numpy_bptt import GATES


@dataclass(frozen=True)
class Gemm:
    name: str  # what it computes
    m: int  # out rows
    k: int  # contraction
    n: int  # out cols
    count: int  # calls per step
    trans_a: bool = False  # A is a transposed view (m, k) of a (k, m) C array
    phase: str = "forward"

    @property
    def flops(self):
        return 2 * self.m * self.k * self.n * self.count


def gemm_plan(cell, input_size, hidden_size, output_size, batch, steps):
    """The GEMMs of one step of the hand-fused numpy BPTT, in call order."""
    G = GATES[cell]
    I, H, O, B, T = input_size, hidden_size, output_size, batch, steps
    TB = T * B
    rec = max(T - 1, 0)  # h_{-1} = 0: no recurrent product at t = 0 (forward or backward)
    return [
        Gemm("input projection  X W_ih^T", TB, I, G * H, 1),
        Gemm("recurrence  h W_hh^T", B, H, G * H, rec),
        Gemm("readout  H W_out^T", TB, H, O, 1),
        Gemm("dL/dh  dY W_out", TB, O, H, 1, phase="backward"),
        Gemm("dW_out  dY^T H", O, TB, H, 1, trans_a=True, phase="backward"),
        Gemm("recurrence  da W_hh", B, G * H, H, rec, phase="backward"),
        Gemm("dW_ih  dA^T X", G * H, TB, I, 1, trans_a=True, phase="backward"),
        Gemm("dW_hh  dA^T H", G * H, (T - 1) * B, H, 1 if T > 1 else 0, trans_a=True, phase="backward"),
    ]


class BlasLimit:
    """``BlasLimit(plan, dtype).run()`` calls every GEMM of the plan, ``count`` times."""

    def __init__(self, plan, dtype=np.float32, seed=0):
        rng = np.random.default_rng(seed)
        self.plan = [g for g in plan if g.count > 0]
        self.ops = []
        for g in self.plan:
            if g.trans_a:
                a = rng.standard_normal((g.k, g.m)).astype(dtype).T  # F-ordered view
            else:
                a = rng.standard_normal((g.m, g.k)).astype(dtype)
            b = rng.standard_normal((g.k, g.n)).astype(dtype)
            out = np.empty((g.m, g.n), dtype)
            self.ops.append((a, b, out, g.count))

    @property
    def flops(self):
        return sum(g.flops for g in self.plan)

    def run(self):
        matmul = np.matmul
        for a, b, out, count in self.ops:
            for _ in range(count):
                matmul(a, b, out=out)

    def run_one(self, index):
        """Only the ``index``-th GEMM of the plan, ``count`` times (for the breakdown)."""
        a, b, out, count = self.ops[index]
        for _ in range(count):
            np.matmul(a, b, out=out)
