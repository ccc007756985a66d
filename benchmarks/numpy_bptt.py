"""Hand-fused numpy BPTT for a tanh RNN and a standard LSTM: the baseline to beat.

Both cells read an input sequence ``x`` of shape ``(B, T, I)``, start from a
zero state, and have a linear readout at every step::

    RNN:   h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)
    LSTM:  [i, f, g, o] = W_ih x_t + W_hh h_{t-1} + b     (PyTorch gate order)
           i, f, o = sigmoid(.), g = tanh(.)
           c_t = f * c_{t-1} + i * g ;  h_t = o * tanh(c_t)
    both:  y_t = W_out h_t + b_out ;  loss = mean((y - target)^2)

Canonical parameter names and shapes (``G`` = 1 for the RNN, 4 for the LSTM,
gate blocks stacked in the order i, f, g, o like ``torch.nn.LSTM``)::

    W_ih (G*H, I)   W_hh (G*H, H)   b (G*H,)   W_out (O, H)   b_out (O,)

What makes it fast (this is what cuDNN does by hand, and what rnngraph's
planner is meant to find from the graph):

* the input projection of all steps is one GEMM, ``(T*B, I) @ (I, G*H)``;
* the four gate GEMMs are one, ``(B, H) @ (H, 4H)`` per step;
* the readout and its input gradient are one GEMM each over all steps;
* every elementwise derivative that does not depend on the backward carry is
  computed for all steps at once before the backward loop;
* the weight gradients are one GEMM each after the backward loop;
* arrays are time-major internally so each step's slice is contiguous, and
  all buffers are allocated once per ``(B, T)`` and reused with ``out=``.

The LSTM computes ``sigmoid(a)`` as ``0.5 * tanh(a / 2) + 0.5`` with the
``1/2`` folded into the forward copies of the sigmoid rows of ``W_ih``,
``W_hh`` and ``b``, so one ``tanh`` call covers all four gates; the
backward pass uses the unscaled weights.

Per time step the RNN makes 3 numpy calls forward and 3 backward; the LSTM
10 forward and 7 backward.
"""

from __future__ import annotations

import numpy as np

PARAM_NAMES = ("W_ih", "W_hh", "b", "W_out", "b_out")
GATES = {"rnn": 1, "lstm": 4}


def init_params(cell, input_size, hidden_size, output_size, seed=0, dtype=np.float64):
    """Random parameters in the canonical layout, drawn like PyTorch's defaults.

    Every entry is ``uniform(-k, k)`` with ``k = 1/sqrt(hidden_size)``.

    Returns
    -------
    dict name -> ndarray, see the module docstring for names and shapes.
    """
    G = GATES[cell]
    H, I, O = hidden_size, input_size, output_size
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(H)
    shapes = {"W_ih": (G * H, I), "W_hh": (G * H, H), "b": (G * H,), "W_out": (O, H), "b_out": (O,)}
    return {n: rng.uniform(-k, k, size=s).astype(dtype) for n, s in shapes.items()}


def make_data(batch, steps, input_size, output_size, seed=0, dtype=np.float64):
    """Inputs ``(B, T, I)`` and targets ``(B, T, O)``, standard normal."""
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch, steps, input_size)).astype(dtype)
    y = rng.standard_normal((batch, steps, output_size)).astype(dtype)
    return x, y


class _Base:
    """Holds the parameters (cast to ``dtype``) and a workspace per ``(B, T)``."""

    cell = ""

    def __init__(self, params, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        p = {n: np.array(params[n], dtype=self.dtype) for n in PARAM_NAMES}
        self.G = GATES[self.cell]
        self.H = p["W_hh"].shape[1]
        self.I = p["W_ih"].shape[1]
        self.O = p["W_out"].shape[0]
        assert p["W_ih"].shape == (self.G * self.H, self.I), p["W_ih"].shape
        assert p["W_hh"].shape == (self.G * self.H, self.H), p["W_hh"].shape
        assert p["b"].shape == (self.G * self.H,)
        assert p["W_out"].shape == (self.O, self.H) and p["b_out"].shape == (self.O,)
        self.p = p
        self.W_outT = np.ascontiguousarray(p["W_out"].T)  # (H, O)
        self._ws = None
        self._ws_key = None

    def _workspace(self, B, T):
        if self._ws_key != (B, T):
            self._ws = self._alloc(B, T)
            self._ws_key = (B, T)
        return self._ws

    def _readout_and_loss(self, ws, y):
        """Readout over all steps, MSE, and its gradient; returns (loss, dY 2-D)."""
        TB = ws["TB"]
        Y = ws["Y"]  # (T*B, O)
        np.matmul(ws["H2"], self.W_outT, out=Y)
        Y += self.p["b_out"]
        np.copyto(ws["yt"], y.transpose(1, 0, 2))  # (T, B, O) time-major targets
        Y -= ws["yt"].reshape(TB, self.O)  # Y now holds the residual
        n = Y.size
        loss = float(np.vdot(Y, Y)) / n
        Y *= 2.0 / n  # dL/dY
        return loss, Y

    def _readout_grads(self, ws, dY, grads):
        np.matmul(dY.T, ws["H2"], out=grads["W_out"])  # (O, H)
        np.sum(dY, axis=0, out=grads["b_out"])

    def _new_grads(self):
        return {n: np.empty_like(self.p[n]) for n in PARAM_NAMES}

    def loss_and_grad(self, x, y):
        """One training step's numbers: the loss and the gradient of every parameter.

        Parameters
        ----------
        x : ndarray (B, T, I)
        y : ndarray (B, T, O) targets

        Returns
        -------
        loss : float
        grads : dict name -> ndarray, fresh arrays (canonical names and shapes)
        """
        B, T, _ = x.shape
        ws = self._workspace(B, T)
        np.copyto(ws["xt"], x.transpose(1, 0, 2))  # (T, B, I) time-major
        self._forward(ws, T)
        loss, dY = self._readout_and_loss(ws, y)
        grads = self._new_grads()
        self._readout_grads(ws, dY, grads)
        self._backward(ws, T, dY, grads)
        return loss, grads


class RNN(_Base):
    """Tanh RNN, hand-fused BPTT. ``RNN(params).loss_and_grad(x, y)``."""

    cell = "rnn"

    def __init__(self, params, dtype=np.float32):
        super().__init__(params, dtype)
        self.W_ihT = np.ascontiguousarray(self.p["W_ih"].T)  # (I, H)
        self.W_hhT = np.ascontiguousarray(self.p["W_hh"].T)  # (H, H)

    def _alloc(self, B, T):
        H, I, O, dt = self.H, self.I, self.O, self.dtype
        ws = {"TB": T * B}
        ws["xt"] = np.empty((T, B, I), dt)
        ws["yt"] = np.empty((T, B, O), dt)
        ws["Hs"] = np.empty((T, B, H), dt)  # hidden states h_0..h_{T-1}
        ws["H2"] = ws["Hs"].reshape(T * B, H)
        ws["Y"] = np.empty((T * B, O), dt)
        ws["dA"] = np.empty((T, B, H), dt)  # dL/d(pre-activation)
        ws["D"] = np.empty((T, B, H), dt)  # tanh' = 1 - h^2
        ws["tmp"] = np.empty((B, H), dt)
        return ws

    def _forward(self, ws, T):
        Hs, tmp = ws["Hs"], ws["tmp"]
        # Hoisted input projection for all steps: (T*B, I) @ (I, H), written
        # straight into the state buffer, which then accumulates the recurrence.
        np.matmul(ws["xt"].reshape(ws["TB"], self.I), self.W_ihT, out=ws["H2"])
        ws["H2"] += self.p["b"]
        W_hhT = self.W_hhT
        np.tanh(Hs[0], out=Hs[0])  # h_{-1} = 0
        for t in range(1, T):
            ht = Hs[t]
            np.matmul(Hs[t - 1], W_hhT, out=tmp)  # (B, H)
            ht += tmp
            np.tanh(ht, out=ht)

    def _backward(self, ws, T, dY, grads):
        Hs, dA, D, tmp = ws["Hs"], ws["dA"], ws["D"], ws["tmp"]
        TB, H = ws["TB"], self.H
        # dL/dh from the readout, all steps in one GEMM: (T*B, O) @ (O, H).
        np.matmul(dY, self.p["W_out"], out=dA.reshape(TB, H))
        np.multiply(Hs, Hs, out=D)
        np.subtract(1.0, D, out=D)  # tanh' for every step at once
        W_hh = self.p["W_hh"]
        for t in range(T - 1, -1, -1):
            at = dA[t]
            if t < T - 1:
                at += tmp  # carry from step t+1
            at *= D[t]
            if t:
                np.matmul(at, W_hh, out=tmp)  # (B, H) @ (H, H)
        # Weight gradients: one GEMM each over all steps.
        dA2 = dA.reshape(TB, H)
        np.matmul(dA2.T, ws["xt"].reshape(TB, self.I), out=grads["W_ih"])
        if T > 1:
            np.matmul(dA[1:].reshape(-1, H).T, Hs[:-1].reshape(-1, H), out=grads["W_hh"])
        else:
            grads["W_hh"][...] = 0
        np.sum(dA2, axis=0, out=grads["b"])


class LSTM(_Base):
    """Standard LSTM (PyTorch semantics), hand-fused BPTT."""

    cell = "lstm"

    def __init__(self, params, dtype=np.float32):
        super().__init__(params, dtype)
        H = self.H
        # sigmoid(a) = 0.5 * tanh(a / 2) + 0.5: scale the i, f, o rows by 1/2 for
        # the forward pass, then one tanh and one affine map cover all gates.
        scale = np.ones(4 * H, self.dtype)
        scale[: 2 * H] = 0.5
        scale[3 * H :] = 0.5
        shift = np.zeros(4 * H, self.dtype)
        shift[: 2 * H] = 0.5
        shift[3 * H :] = 0.5
        self.scale, self.shift = scale, shift
        self.W_ihT_s = np.ascontiguousarray((self.p["W_ih"] * scale[:, None]).T)  # (I, 4H)
        self.W_hhT_s = np.ascontiguousarray((self.p["W_hh"] * scale[:, None]).T)  # (H, 4H)
        self.b_s = self.p["b"] * scale

    def _alloc(self, B, T):
        H, I, O, dt = self.H, self.I, self.O, self.dtype
        ws = {"TB": T * B}
        ws["xt"] = np.empty((T, B, I), dt)
        ws["yt"] = np.empty((T, B, O), dt)
        ws["Gt"] = np.empty((T, B, 4 * H), dt)  # gate values i, f, g, o
        ws["C"] = np.empty((T, B, H), dt)  # cell states
        ws["TC"] = np.empty((T, B, H), dt)  # tanh(c)
        ws["Hs"] = np.empty((T, B, H), dt)
        ws["H2"] = ws["Hs"].reshape(T * B, H)
        ws["Y"] = np.empty((T * B, O), dt)
        ws["K"] = np.empty((T, B, 4 * H), dt)  # per-step factors, see _backward
        ws["Kc"] = np.empty((T, B, H), dt)
        ws["dA"] = np.empty((T, B, 4 * H), dt)  # dL/d(gate pre-activations)
        ws["dH"] = np.empty((T, B, H), dt)
        ws["tmp4"] = np.empty((B, 4 * H), dt)
        ws["tmp"] = np.empty((B, H), dt)
        ws["dc"] = np.empty((B, H), dt)
        ws["dhrec"] = np.empty((B, H), dt)
        G4 = ws["Gt"].reshape(T, B, 4, H)
        ws["gate"] = [tuple(G4[t, :, k] for k in range(4)) for t in range(T)]  # i, f, g, o views
        dA4 = ws["dA"].reshape(T, B, 4, H)
        K4 = ws["K"].reshape(T, B, 4, H)
        ws["dA_ifg"] = [dA4[t, :, 0:3] for t in range(T)]  # (B, 3, H)
        ws["dA_o"] = [dA4[t, :, 3] for t in range(T)]
        ws["K_ifg"] = [K4[t, :, 0:3] for t in range(T)]
        ws["K_o"] = [K4[t, :, 3] for t in range(T)]
        return ws

    def _forward(self, ws, T):
        Gt, C, TC, Hs = ws["Gt"], ws["C"], ws["TC"], ws["Hs"]
        tmp4, tmp = ws["tmp4"], ws["tmp"]
        gate = ws["gate"]
        # Hoisted input projection, all steps and gates: (T*B, I) @ (I, 4H).
        np.matmul(ws["xt"].reshape(ws["TB"], self.I), self.W_ihT_s, out=Gt.reshape(ws["TB"], -1))
        Gt += self.b_s
        W_hhT_s, scale, shift = self.W_hhT_s, self.scale, self.shift
        for t in range(T):
            gt = Gt[t]
            if t:
                np.matmul(Hs[t - 1], W_hhT_s, out=tmp4)  # all four gates: (B, H) @ (H, 4H)
                gt += tmp4
            np.tanh(gt, out=gt)
            gt *= scale
            gt += shift  # i, f, o now sigmoid, g tanh
            i, f, g, o = gate[t]
            ct = C[t]
            if t:
                np.multiply(f, C[t - 1], out=ct)
                np.multiply(i, g, out=tmp)
                ct += tmp
            else:
                np.multiply(i, g, out=ct)  # c_{-1} = 0
            np.tanh(ct, out=TC[t])
            np.multiply(o, TC[t], out=Hs[t])

    def _backward(self, ws, T, dY, grads):
        H, TB = self.H, ws["TB"]
        Gt, C, TC, Hs = ws["Gt"], ws["C"], ws["TC"], ws["Hs"]
        K, Kc, dA, dH = ws["K"], ws["Kc"], ws["dA"], ws["dH"]
        tmp, dc, dhrec = ws["tmp"], ws["dc"], ws["dhrec"]
        gate, dA_ifg, dA_o, K_ifg, K_o = ws["gate"], ws["dA_ifg"], ws["dA_o"], ws["K_ifg"], ws["K_o"]

        # dL/dh from the readout, all steps in one GEMM.
        np.matmul(dY, self.p["W_out"], out=dH.reshape(TB, H))

        # Everything the backward carry multiplies, for all steps at once:
        #   da_i = dc * g i(1-i)        K[..., i]
        #   da_f = dc * c_{t-1} f(1-f)  K[..., f]
        #   da_g = dc * i (1-g^2)       K[..., g]
        #   da_o = dh * tanh(c) o(1-o)  K[..., o]
        #   dc  += dh * o (1-tanh(c)^2) Kc
        B = TB // T
        G4 = Gt.reshape(T, B, 4, H)
        K4 = K.reshape(T, B, 4, H)
        gi, gf, gg, go = (G4[:, :, k] for k in range(4))
        np.subtract(1.0, Gt, out=K)
        K *= Gt  # s(1-s) for the sigmoid gates (g's block is fixed below)
        np.multiply(gg, gg, out=K4[:, :, 2])
        np.subtract(1.0, K4[:, :, 2], out=K4[:, :, 2])
        K4[:, :, 2] *= gi
        K4[:, :, 0] *= gg
        K4[1:, :, 1] *= C[:-1]
        K4[0, :, 1] = 0.0  # c_{-1} = 0
        K4[:, :, 3] *= TC
        np.multiply(TC, TC, out=Kc)
        np.subtract(1.0, Kc, out=Kc)
        Kc *= go

        W_hh = self.p["W_hh"]
        for t in range(T - 1, -1, -1):
            dh = dH[t]
            if t < T - 1:
                dh += dhrec  # carry from step t+1 through W_hh
            np.multiply(dh, K_o[t], out=dA_o[t])
            if t < T - 1:
                np.multiply(dh, Kc[t], out=tmp)
                dc += tmp  # dc holds f_{t+1} * dc_{t+1}
            else:
                np.multiply(dh, Kc[t], out=dc)
            np.multiply(dc[:, None, :], K_ifg[t], out=dA_ifg[t])  # i, f, g at once
            if t:
                dc *= gate[t][1]  # through the forget gate to c_{t-1}
                np.matmul(dA[t], W_hh, out=dhrec)  # (B, 4H) @ (4H, H)

        dA2 = dA.reshape(TB, 4 * H)
        np.matmul(dA2.T, ws["xt"].reshape(TB, self.I), out=grads["W_ih"])
        if T > 1:
            np.matmul(dA[1:].reshape(-1, 4 * H).T, Hs[:-1].reshape(-1, H), out=grads["W_hh"])
        else:
            grads["W_hh"][...] = 0
        np.sum(dA2, axis=0, out=grads["b"])


CELLS = {"rnn": RNN, "lstm": LSTM}


def make(cell, params, dtype=np.float32):
    """``make("lstm", params, np.float32)`` -> an object with ``loss_and_grad(x, y)``."""
    return CELLS[cell](params, dtype)


def reference_loss(cell, params, x, y):
    """A plain, unfused float64 forward pass (for finite-difference tests)."""
    p = {n: np.asarray(v, np.float64) for n, v in params.items()}
    B, T, _ = x.shape
    H = p["W_hh"].shape[1]
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    total = 0.0
    for t in range(T):
        a = x[:, t] @ p["W_ih"].T + h @ p["W_hh"].T + p["b"]
        if cell == "rnn":
            h = np.tanh(a)
        else:
            i, f, g, o = np.split(a, 4, axis=1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
        out = h @ p["W_out"].T + p["b_out"]
        total += np.sum((out - y[:, t]) ** 2)
    return total / y.size
