"""LSTM and GRU blocks: the expansion computes the published equations.

Each variant is checked against the equations written out directly in numpy
(always), and the standard LSTM and both GRUs against PyTorch (where torch is
installed: it is a cross-check, never a dependency).
"""

import numpy as np
import pytest

import rnngraph as rg

IN, H, B, T = 3, 4, 2, 5


def sig(a):
    return 1 / (1 + np.exp(-a))


def block_net(kind, **options):
    opts = ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items())
    spec = rg.parse_spec(f"""
rnngraph: 1
nodes:
  x: {{role: input, size: {IN}}}
  B: {{type: {kind}, size: {H}{', ' + opts if opts else ''}}}
edges:
  - {{from: x, to: B}}
""")
    net = rg.build(spec, dtype="float64", seed=3)
    for name, p in net.params.items():   # non-trivial biases too
        p[...] = np.random.default_rng(abs(hash(name)) % 2 ** 32).uniform(-0.7, 0.7, p.shape)
    return net


def lstm_by_equations(P, x, variant="standard", peepholes=False):
    """Greff et al. (2017) equations, one variant at a time.  x (B, T, IN)."""
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    hs = []

    def pre(gate):
        a = x_t @ P[f"x->B/{gate}"].T + h @ P[f"B/h->B/{gate}"].T + P[f"B/{gate}.bias"]
        if variant == "fgr" and gate in "ifo":
            for src in ("i", "f", "o"):
                if src in prev:
                    a = a + prev[src] @ P[f"B/{src}->B/{gate}"].T
        return a
    prev = {g: np.zeros((B, H)) for g in ("i", "f", "o")}
    for t in range(T):
        x_t = x[:, t]
        cur = {}
        if variant != "nig":
            a = pre("i") + (c * P["B/c->B/i"] if peepholes else 0)
            cur["i"] = sig(a)
        if variant not in ("nfg", "cifg"):
            a = pre("f") + (c * P["B/c->B/f"] if peepholes else 0)
            cur["f"] = sig(a)
        if variant == "cifg":
            cur["f"] = 1 - cur["i"]
        g = pre("g")
        g = g if variant == "niaf" else np.tanh(g)
        i = cur.get("i", 1.0)
        f = cur.get("f", 1.0)
        c = f * c + i * g
        if variant != "nog":
            a = pre("o") + (c * P["B/c->B/o"] if peepholes else 0)
            cur["o"] = sig(a)
        o = cur.get("o", 1.0)
        h = o * (c if variant == "noaf" else np.tanh(c))
        prev = {k: cur.get(k, np.zeros((B, H))) for k in ("i", "f", "o")}
        hs.append(h)
    return np.stack(hs, axis=1)


VARIANTS = ["standard", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]


@pytest.mark.parametrize("peepholes", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
def test_lstm_variant_matches_its_equations(variant, peepholes):
    net = block_net("lstm", variant=variant, peepholes=peepholes)
    x = np.random.default_rng(0).normal(size=(B, T, IN))
    out = net.forward({"x": x})
    np.testing.assert_allclose(out["B"], lstm_by_equations(net.params, x, variant, peepholes), atol=1e-12)


def test_lstm_parameter_names_follow_the_spec():
    names = set(block_net("lstm", peepholes=True).params)
    expected = {f"x->B/{g}" for g in "ifog"} | {f"B/h->B/{g}" for g in "ifog"} | \
               {f"B/{g}.bias" for g in "ifog"} | {"B/c->B/i", "B/c->B/f", "B/c->B/o"}
    assert names == expected
    assert "B/f.bias" not in block_net("lstm", variant="cifg").params      # a dropped gate drops its parameters
    assert "x->B/i" not in block_net("lstm", variant="nig").params
    fgr = set(block_net("lstm", variant="fgr").params)
    assert {f"B/{a}->B/{b}" for a in "ifo" for b in "ifo"} <= fgr


def test_forget_bias_default_and_option():
    spec = rg.parse_spec("""
rnngraph: 1
nodes:
  x: {role: input, size: 1}
  A: {type: lstm, size: 2}
  C: {type: lstm, size: 2, forget_bias: 0.25}
edges:
  - {from: x, to: [A, C]}
""")
    net = rg.build(spec)
    np.testing.assert_array_equal(net.params["A/f.bias"], [1.0, 1.0])
    np.testing.assert_array_equal(net.params["C/f.bias"], [0.25, 0.25])


def gru_by_equations(P, x, variant):
    h = np.zeros((B, H))
    hs = []
    for t in range(T):
        x_t = x[:, t]
        r = sig(x_t @ P["x->B/r"].T + h @ P["B/h->B/r"].T + P["B/r.bias"])
        z = sig(x_t @ P["x->B/z"].T + h @ P["B/h->B/z"].T + P["B/z.bias"])
        if variant == "reset_after":
            n = np.tanh(x_t @ P["x->B/n"].T + P["B/n.bias"] + r * (h @ P["B/h->B/hn"].T + P["B/hn.bias"]))
        else:
            n = np.tanh(x_t @ P["x->B/n"].T + (r * h) @ P["B/rh->B/n"].T + P["B/n.bias"])
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs, axis=1)


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
def test_gru_variant_matches_its_equations(variant):
    net = block_net("gru", variant=variant)
    x = np.random.default_rng(1).normal(size=(B, T, IN))
    np.testing.assert_allclose(net.forward({"x": x})["B"], gru_by_equations(net.params, x, variant), atol=1e-12)
    expected = {f"x->B/{g}" for g in "rzn"} | {"B/h->B/r", "B/h->B/z", "B/r.bias", "B/z.bias", "B/n.bias"}
    expected |= {"B/h->B/hn", "B/hn.bias"} if variant == "reset_after" else {"B/rh->B/n"}
    assert set(net.params) == expected


def test_standard_lstm_is_torch_nn_lstm():
    torch = pytest.importorskip("torch", reason="torch is an optional cross-check (pip install torch==2.13.0)")
    net = block_net("lstm")
    lstm = torch.nn.LSTM(IN, H, batch_first=True).double()
    P = net.params
    order = "ifgo"   # PyTorch's gate order
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(np.concatenate([P[f"x->B/{g}"] for g in order])))
        lstm.weight_hh_l0.copy_(torch.tensor(np.concatenate([P[f"B/h->B/{g}"] for g in order])))
        lstm.bias_ih_l0.copy_(torch.tensor(np.concatenate([P[f"B/{g}.bias"] for g in order])))
        lstm.bias_hh_l0.zero_()
    x = np.random.default_rng(2).normal(size=(B, T, IN))
    expected, _ = lstm(torch.tensor(x))
    np.testing.assert_allclose(net.forward({"x": x})["B"], expected.detach().numpy(), atol=1e-12)


def test_reset_after_gru_is_torch_nn_gru():
    torch = pytest.importorskip("torch", reason="torch is an optional cross-check (pip install torch==2.13.0)")
    net = block_net("gru")
    gru = torch.nn.GRU(IN, H, batch_first=True).double()
    P = net.params
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.tensor(np.concatenate([P[f"x->B/{g}"] for g in "rzn"])))
        gru.weight_hh_l0.copy_(torch.tensor(np.concatenate([P["B/h->B/r"], P["B/h->B/z"], P["B/h->B/hn"]])))
        gru.bias_ih_l0.copy_(torch.tensor(np.concatenate([P["B/r.bias"], P["B/z.bias"], P["B/n.bias"]])))
        gru.bias_hh_l0.copy_(torch.tensor(np.concatenate([np.zeros(H), np.zeros(H), P["B/hn.bias"]])))
    x = np.random.default_rng(3).normal(size=(B, T, IN))
    expected, _ = gru(torch.tensor(x))
    np.testing.assert_allclose(net.forward({"x": x})["B"], expected.detach().numpy(), atol=1e-12)


def test_torch_gradients_match_for_lstm():
    torch = pytest.importorskip("torch", reason="torch is an optional cross-check (pip install torch==2.13.0)")
    spec = rg.parse_spec(f"""
rnngraph: 1
nodes:
  x: {{role: input, size: {IN}}}
  B: {{type: lstm, size: {H}}}
  y: {{role: output, size: 1}}
edges:
  - {{from: x, to: B}}
  - {{from: B, to: y}}
""")
    net = rg.build(spec, dtype="float64")
    P = net.params
    lstm = torch.nn.LSTM(IN, H, batch_first=True).double()
    head = torch.nn.Linear(H, 1).double()
    order = "ifgo"
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(np.concatenate([P[f"x->B/{g}"] for g in order])))
        lstm.weight_hh_l0.copy_(torch.tensor(np.concatenate([P[f"B/h->B/{g}"] for g in order])))
        lstm.bias_ih_l0.copy_(torch.tensor(np.concatenate([P[f"B/{g}.bias"] for g in order])))
        lstm.bias_hh_l0.zero_()
        head.weight.copy_(torch.tensor(P["B/h->y"]))
        head.bias.copy_(torch.tensor(P["y.bias"]))
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(B, T, IN)), rng.normal(size=(B, T, 1))
    out, _ = lstm(torch.tensor(x))
    loss_t = ((head(out) - torch.tensor(y)) ** 2).mean()
    loss_t.backward()
    loss, grads = net.loss_and_grad({"x": x}, {"y": y}, loss="mse")
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    wih = lstm.weight_ih_l0.grad.numpy()
    for k, g in enumerate(order):
        np.testing.assert_allclose(grads[f"x->B/{g}"], wih[k * H:(k + 1) * H], atol=1e-12)
    np.testing.assert_allclose(grads["B/h->y"], head.weight.grad.numpy(), atol=1e-12)
