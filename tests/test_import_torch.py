"""PyTorch in: ``rnngraph import-torch`` turns an nn.LSTM/GRU/RNN state_dict into a spec
and params.npz computing the same function (checked against the module itself)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.export.torch_import import backward_blocks, from_state_dict

torch = pytest.importorskip("torch", reason="the torch extra: pip install -e '.[torch]'")

IN, H, OUT, N, T = 3, 5, 2, 4, 7


class WithReadout(torch.nn.Module):
    def __init__(self, rnn, out, bias=True):
        super().__init__()
        self.rnn = rnn
        self.head = torch.nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), out, bias=bias)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


def make(arch, layers, bias, nonlinearity="tanh"):
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[arch]
    extra = {"nonlinearity": nonlinearity} if arch == "rnn" else {}
    return cls(IN, H, num_layers=layers, bias=bias, batch_first=True, **extra).double()


def imported(tmp_path, module, *flags):
    torch.save(module.state_dict(), tmp_path / "state.pt")
    assert main(["import-torch", str(tmp_path / "state.pt"), *flags, "-o", str(tmp_path / "out")]) == 0
    net = rg.build(rg.load_spec(tmp_path / "out" / "spec.yaml")).load(tmp_path / "out" / "params.npz")
    assert net.dtype == np.float64
    return net


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_imported_recurrent_module_computes_the_same(arch, layers, bias, tmp_path):
    torch.manual_seed(layers * 10 + bias)
    module = make(arch, layers, bias)
    with torch.no_grad():          # nonzero hidden biases, so that b_ih + b_hh and GRU's b_hn matter
        for name, p in module.named_parameters():
            if "bias" in name:
                p.uniform_(-0.5, 0.5)
    net = imported(tmp_path, module, "--arch", arch, "--layers", str(layers))
    x = np.random.default_rng(0).normal(size=(N, T, IN))
    want = module(torch.tensor(x))[0].detach().numpy()
    (out,) = net.output_nodes
    np.testing.assert_allclose(net.forward({"x": x})[out], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("head_bias", [True, False])
def test_imported_module_with_linear_readout_computes_the_same(arch, head_bias, tmp_path):
    torch.manual_seed(3)
    module = WithReadout(make(arch, 2, True, "relu"), OUT, head_bias).double()
    flags = ["--arch", arch, "--readout", "linear"] + (["--nonlinearity", "relu"] if arch == "rnn" else [])
    net = imported(tmp_path, module, *flags)
    x = np.random.default_rng(1).normal(size=(N, T, IN))
    np.testing.assert_allclose(net.forward({"x": x})["y"], module(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-12)


def test_float32_module_imports_as_float32(tmp_path):
    module = torch.nn.GRU(IN, H, batch_first=True)
    torch.save(module.state_dict(), tmp_path / "s.pt")
    assert main(["import-torch", str(tmp_path / "s.pt"), "--arch", "gru", "-o", str(tmp_path / "o")]) == 0
    spec = rg.load_spec(tmp_path / "o" / "spec.yaml")
    assert spec.dtype == "float32"
    net = rg.build(spec).load(tmp_path / "o" / "params.npz")
    x = np.random.default_rng(2).normal(size=(2, 4, IN)).astype(np.float32)
    np.testing.assert_allclose(net.forward({"x": x})["gru0/h"], module(torch.tensor(x))[0].detach().numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make_state, flags, message", [
    (lambda: torch.nn.LSTM(IN, H, bidirectional=True).state_dict(), ["--arch", "lstm"],
     "reverse-direction weights.*pass --bidirectional"),
    (lambda: torch.nn.LSTM(IN, H, num_layers=2).state_dict(), ["--arch", "lstm", "--layers", "3"],
     "--layers 3: the state_dict has 2 layers"),
    (lambda: torch.nn.GRU(IN, H).state_dict(), ["--arch", "lstm"], "is --arch right"),
    (lambda: WithReadout(torch.nn.GRU(IN, H), OUT).state_dict(), ["--arch", "gru"], "pass --readout linear"),
    (lambda: torch.nn.GRU(IN, H).state_dict(), ["--arch", "gru", "--readout", "linear"], "expected one nn.Linear"),
    (lambda: torch.nn.LSTM(IN, H, proj_size=2).state_dict(), ["--arch", "lstm"], "proj_size"),
    (lambda: {"w": torch.zeros(2)}, ["--arch", "rnn"], "no weight_ih_l0"),
])
def test_mismatched_state_is_a_clear_usage_error(make_state, flags, message, tmp_path, capsys):
    torch.save(make_state(), tmp_path / "s.pt")
    assert main(["import-torch", str(tmp_path / "s.pt"), *flags, "-o", str(tmp_path / "o")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "o" / "spec.yaml").exists()


def test_not_a_state_dict_and_existing_output_are_refused(tmp_path, capsys):
    torch.save(torch.nn.RNN(IN, H), tmp_path / "module.pt")        # a pickled module, not a state_dict
    assert main(["import-torch", str(tmp_path / "module.pt"), "--arch", "rnn", "-o", str(tmp_path / "o")]) == 2
    assert "model.state_dict()" in capsys.readouterr().err
    torch.save(torch.nn.RNN(IN, H).state_dict(), tmp_path / "s.pt")
    assert main(["import-torch", str(tmp_path / "s.pt"), "--arch", "rnn", "-o", str(tmp_path / "o")]) == 0
    assert main(["import-torch", str(tmp_path / "s.pt"), "--arch", "rnn", "-o", str(tmp_path / "o")]) == 2
    assert "exists" in capsys.readouterr().err


def test_output_folder_that_cannot_be_made_is_a_usage_error(tmp_path, capsys):
    torch.save(torch.nn.RNN(IN, H).state_dict(), tmp_path / "s.pt")
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["import-torch", str(tmp_path / "s.pt"), "--arch", "rnn", "-o", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert "taken" in err and "not a folder" in err and "Traceback" not in err
    assert (tmp_path / "taken").read_text() == "a file, not a folder"


@pytest.mark.parametrize("existing_folder", [False, True])
def test_a_spec_that_cannot_be_written_leaves_no_params_behind(existing_folder, tmp_path, capsys, monkeypatch):
    """The disk fills between params.npz and spec.yaml: neither stays, nor the folder the import made."""
    import rnngraph.io

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rnngraph.io, "atomic_write_text", full_disk)
    torch.save(torch.nn.RNN(IN, H).state_dict(), tmp_path / "s.pt")
    out = tmp_path / "o"
    if existing_folder:
        out.mkdir()
        (out / "notes.txt").write_text("the user's")
    assert main(["import-torch", str(tmp_path / "s.pt"), "--arch", "rnn", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    if existing_folder:
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    else:
        assert not out.exists()


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("readout", [False, True])
def test_bidirectional_module_imports_as_forward_and_backward_blocks(arch, readout, tmp_path, capsys):
    """Two layers, each a forward block and a backward one (`direction: backward`); the layer above
    and the readout read both.  Until rnngraph has backward blocks this is refused, with the reason."""
    torch.manual_seed(5)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[arch]
    rnn = cls(IN, H, num_layers=2, batch_first=True, bidirectional=True).double()
    module = WithReadout(rnn, OUT).double() if readout else rnn
    torch.save(module.state_dict(), tmp_path / "state.pt")
    flags = ["--arch", arch, "--bidirectional"] + (["--readout", "linear"] if readout else [])
    status = main(["import-torch", str(tmp_path / "state.pt"), *flags, "-o", str(tmp_path / "out")])
    if not backward_blocks():
        assert status == 2
        assert "--bidirectional needs backward blocks" in capsys.readouterr().err
        assert not (tmp_path / "out").exists()
        return
    assert status == 0
    net = rg.build(rg.load_spec(tmp_path / "out" / "spec.yaml")).load(tmp_path / "out" / "params.npz")
    x = np.random.default_rng(4).normal(size=(N, T, IN))
    out = net.forward({"x": x})
    want = module(torch.tensor(x))
    if readout:
        np.testing.assert_allclose(out["y"], want.detach().numpy(), rtol=1e-12, atol=1e-12)
    else:
        got = np.concatenate([out[f"{arch}1"], out[f"{arch}1_reverse"]], axis=-1)
        np.testing.assert_allclose(got, want[0].detach().numpy(), rtol=1e-12, atol=1e-12)


def test_bidirectional_mapping_splits_the_columns_between_directions():
    """The spec text and parameter split for a 2-layer bidirectional LSTM, whatever the engine supports."""
    module = torch.nn.LSTM(IN, H, num_layers=2, bidirectional=True).double()
    text, params = from_state_dict(module.state_dict(), "lstm", bidirectional=True) if backward_blocks() else \
        _mapping_without_engine(module)
    assert "lstm0_reverse: {type: lstm, size: 5, direction: backward}" in text
    assert "- {from: [lstm0, lstm0_reverse], to: lstm1_reverse}" in text
    w = module.weight_ih_l1_reverse.detach().numpy()          # rows i, f, g, o; columns [forward, reverse]
    np.testing.assert_array_equal(params["lstm0/h->lstm1_reverse/g"], w[2 * H:3 * H, :H])
    np.testing.assert_array_equal(params["lstm0_reverse/h->lstm1_reverse/g"], w[2 * H:3 * H, H:])


def _mapping_without_engine(module):
    import rnngraph.export.torch_import as ti
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ti, "backward_blocks", lambda: True)
        return from_state_dict(module.state_dict(), "lstm", bidirectional=True)
