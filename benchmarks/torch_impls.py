"""PyTorch baselines: the fused modules and an eager per-step loop.

Both compute exactly the function of :mod:`benchmarks.numpy_bptt` (same
parameters in the canonical layout, same loss) and return
``(loss, grads)`` with canonical names, so the harness can compare them.

* :class:`TorchFused` -- ``nn.RNN(nonlinearity="tanh")`` / ``nn.LSTM`` with
  ``batch_first=True`` and an ``nn.Linear`` readout. PyTorch has two biases,
  ``b_ih + b_hh``: ``b_ih`` carries the canonical ``b`` and ``b_hh`` is zero
  and frozen, so the gradient of ``b`` is ``b_ih.grad``.
* :class:`TorchEager` -- the loop a user writes by hand: the input projection
  of all steps hoisted into one GEMM, the four gates fused into one GEMM per
  step, the cell written in Python, autograd for the backward pass.

This module imports torch at import time; the harness imports it only when
torch is installed. Torch is never a dependency of rnngraph.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .numpy_bptt import PARAM_NAMES

_TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _t(a, dtype):
    return torch.tensor(np.asarray(a), dtype=dtype)


def _grads(named):
    """Canonical name -> numpy copy of ``.grad`` (zeros for a parameter the step did not use)."""
    out = {}
    for n in PARAM_NAMES:
        g = named[n].grad
        out[n] = np.zeros(tuple(named[n].shape)) if g is None else g.detach().numpy().copy()
    return out


class TorchFused:
    """``nn.RNN``/``nn.LSTM`` + ``nn.Linear``; ``loss_and_grad(x, y)`` on numpy arrays."""

    def __init__(self, cell, params, dtype=np.float32):
        self.cell = cell
        self.tdtype = _TORCH_DTYPE[np.dtype(dtype)]
        W_ih = np.asarray(params["W_ih"])
        H = params["W_hh"].shape[1]
        I = W_ih.shape[1]
        O = params["W_out"].shape[0]
        if cell == "rnn":
            self.rnn = torch.nn.RNN(I, H, nonlinearity="tanh", batch_first=True)
        else:
            self.rnn = torch.nn.LSTM(I, H, batch_first=True)
        self.lin = torch.nn.Linear(H, O)
        self.rnn.to(self.tdtype)
        self.lin.to(self.tdtype)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(_t(params["W_ih"], self.tdtype))
            self.rnn.weight_hh_l0.copy_(_t(params["W_hh"], self.tdtype))
            self.rnn.bias_ih_l0.copy_(_t(params["b"], self.tdtype))
            self.rnn.bias_hh_l0.zero_()
            self.lin.weight.copy_(_t(params["W_out"], self.tdtype))
            self.lin.bias.copy_(_t(params["b_out"], self.tdtype))
        self.rnn.bias_hh_l0.requires_grad_(False)
        self._named = {
            "W_ih": self.rnn.weight_ih_l0,
            "W_hh": self.rnn.weight_hh_l0,
            "b": self.rnn.bias_ih_l0,
            "W_out": self.lin.weight,
            "b_out": self.lin.bias,
        }

    def step(self, x, y):
        """One training step on torch tensors; leaves ``.grad`` on the parameters."""
        for p in self._named.values():
            p.grad = None
        out, _ = self.rnn(x)  # (B, T, H)
        loss = F.mse_loss(self.lin(out), y)
        loss.backward()
        return loss

    def loss_and_grad(self, x, y):
        loss = self.step(torch.from_numpy(np.ascontiguousarray(x)).to(self.tdtype),
                         torch.from_numpy(np.ascontiguousarray(y)).to(self.tdtype))
        return float(loss.detach()), _grads(self._named)


class TorchEager:
    """Hand-written loop: hoisted input GEMM, fused gates, autograd."""

    def __init__(self, cell, params, dtype=np.float32):
        self.cell = cell
        self.tdtype = _TORCH_DTYPE[np.dtype(dtype)]
        self.p = {n: _t(params[n], self.tdtype).requires_grad_(True) for n in PARAM_NAMES}
        self.H = params["W_hh"].shape[1]

    def step(self, x, y):
        """x (B, T, I), y (B, T, O) torch tensors; leaves ``.grad`` on the parameters."""
        p = self.p
        for v in p.values():
            v.grad = None
        B, T, I = x.shape
        H = self.H
        xt = x.transpose(0, 1)  # (T, B, I), a view
        # All steps' input projections in one GEMM: (T*B, I) @ (I, G*H).
        xw = torch.addmm(p["b"], xt.reshape(T * B, I), p["W_ih"].t()).view(T, B, -1)
        # unbind, not xw[t]: the backward of indexing builds a zero (T, B, G*H)
        # gradient per step, which makes the whole backward O(T^2).
        xw = xw.unbind(0)
        W_hhT = p["W_hh"].t()
        hs = []
        if self.cell == "rnn":
            h = torch.tanh(xw[0])
            hs.append(h)
            for t in range(1, T):
                h = torch.tanh(torch.addmm(xw[t], h, W_hhT))
                hs.append(h)
        else:
            c = None
            h = None
            for t in range(T):
                a = xw[t] if t == 0 else torch.addmm(xw[t], h, W_hhT)  # (B, 4H), fused gates
                ifo = torch.sigmoid(a[:, : 2 * H]), torch.sigmoid(a[:, 3 * H :])
                i, f = ifo[0][:, :H], ifo[0][:, H:]
                o = ifo[1]
                g = torch.tanh(a[:, 2 * H : 3 * H])
                c = i * g if t == 0 else torch.addcmul(i * g, f, c)
                h = o * torch.tanh(c)
                hs.append(h)
        hs = torch.stack(hs)  # (T, B, H)
        out = torch.addmm(p["b_out"], hs.view(T * B, H), p["W_out"].t())  # (T*B, O)
        loss = F.mse_loss(out, y.transpose(0, 1).reshape(T * B, -1))
        loss.backward()
        return loss

    def loss_and_grad(self, x, y):
        loss = self.step(torch.from_numpy(np.ascontiguousarray(x)).to(self.tdtype),
                         torch.from_numpy(np.ascontiguousarray(y)).to(self.tdtype))
        return float(loss.detach()), _grads(self.p)


def info():
    """What torch runs on: version, threads, BLAS."""
    cfg = torch.__config__.show()
    blas = "mkl" if "BLAS_INFO=mkl" in cfg else ("openblas" if "openblas" in cfg.lower() else "?")
    return {
        "version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "blas": blas,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
