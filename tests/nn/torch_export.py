"""PyTorch side of tests/nn/test_torch_interop.cpp.

export OUT_DIR: writes OUT_DIR/state.npz, the state_dict of a module holding
    lstm   nn.LSTM(I, H)                     gru  nn.GRU(I, H)
    bilstm nn.LSTM(I, H, 2, bidirectional)   rnn  nn.RNN(I, H, 2)   (tanh)
    out    nn.Linear(2H, 3)                  emb  nn.Embedding(7, I)
under PyTorch's own names (lstm.weight_ih_l0, bilstm.bias_hh_l1_reverse, out.weight, ...), saved
with numpy.savez as a user would; and OUT_DIR/ref.npz with the input x [T, B, I], weights r,
initial states, each module's outputs, and for lstm and gru the gradients of
loss = sum_t sum(h_t * r_t) with respect to the weights (under "grad." + the torch name), x and
the initial state. All float32.

check FILE: loads FILE (written by seqgrad's save_torch_state) into a fresh module with
load_state_dict(strict=True), so every name and shape must be PyTorch's, then prints the sum of
bilstm's output on ref's x (OUT_DIR of the same export) to compare with seqgrad's.
"""
import sys

import numpy as np
import torch

T, B, I, H, V = 5, 3, 4, 6, 7


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(I, H, 1)
        self.gru = torch.nn.GRU(I, H, 1)
        self.bilstm = torch.nn.LSTM(I, H, 2, bidirectional=True)
        self.rnn = torch.nn.RNN(I, H, 2)
        self.out = torch.nn.Linear(2 * H, 3)
        self.emb = torch.nn.Embedding(V, I)


def export(out_dir):
    torch.manual_seed(3)
    m = Model()
    np.savez(f"{out_dir}/state.npz", **{k: v.detach().numpy() for k, v in m.state_dict().items()})
    ref = {}
    x = torch.randn(T, B, I)
    r = torch.randn(T, B, H)
    ref["x"] = x.numpy()
    ref["r"] = r.numpy()
    for name in ("lstm", "gru"):
        mod = getattr(m, name)
        xi = x.clone().requires_grad_(True)
        h0 = (torch.randn(1, B, H) * 0.5).requires_grad_(True)
        if name == "lstm":
            c0 = (torch.randn(1, B, H) * 0.5).requires_grad_(True)
            y, _ = mod(xi, (h0, c0))
        else:
            y, _ = mod(xi, h0)
        (y * r).sum().backward()
        for pname, p in mod.named_parameters():
            ref[f"grad.{name}.{pname}"] = p.grad.numpy()
        ref[f"{name}.h0"] = h0.detach()[0].numpy()
        ref[f"{name}.grad.h0"] = h0.grad[0].numpy()
        if name == "lstm":
            ref["lstm.c0"] = c0.detach()[0].numpy()
            ref["lstm.grad.c0"] = c0.grad[0].numpy()
        ref[f"{name}.y"] = y.detach().numpy()
        ref[f"{name}.grad.x"] = xi.grad.numpy()
    with torch.no_grad():
        ybi, _ = m.bilstm(x)
        ref["bilstm.y"] = ybi.numpy()
        ref["rnn.y"] = m.rnn(x)[0].numpy()
        ref["out.y"] = m.out(ybi).numpy()
        ids = torch.tensor([3, 0, 6, 3])
        ref["emb.ids"] = ids.numpy().astype(np.float32)
        ref["emb.y"] = m.emb(ids).numpy()
    np.savez(f"{out_dir}/ref.npz", **ref)


def check(path, out_dir):
    m = Model()
    state = {k: torch.from_numpy(v) for k, v in np.load(path).items()}
    m.load_state_dict(state, strict=True)
    x = torch.from_numpy(np.load(f"{out_dir}/ref.npz")["x"])
    with torch.no_grad():
        print(f"bilstm_sum {m.bilstm(x)[0].sum().item():.9g}")


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])
