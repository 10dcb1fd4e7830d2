"""Exports a short LSTM and GRU run from PyTorch for tests/nn/test_torch_interop.cpp.

For each of nn.LSTM and nn.GRU (1 layer, float32): weights under seqgrad's names
(<cell>.w_ih, <cell>.w_hh, <cell>.b_ih, <cell>.b_hh), the input x [T, B, I], the initial
state, every step's output h_t, and the gradients of loss = sum_t sum(h_t * r_t) with respect
to the weights, x and the initial state. Usage: torch_export.py OUT.npz
"""
import sys

import numpy as np
import torch

torch.manual_seed(3)
T, B, I, H = 5, 3, 4, 6
out = {}
x = torch.randn(T, B, I)
r = torch.randn(T, B, H)
out["x"] = x.numpy()
out["r"] = r.numpy()
for name, cls in (("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)):
    m = cls(I, H, 1)
    xi = x.clone().requires_grad_(True)
    h0 = (torch.randn(1, B, H) * 0.5).requires_grad_(True)
    if name == "lstm":
        c0 = (torch.randn(1, B, H) * 0.5).requires_grad_(True)
        y, _ = m(xi, (h0, c0))
    else:
        y, _ = m(xi, h0)
    (y * r).sum().backward()
    for torch_name, ours in (("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh"), ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")):
        p = getattr(m, torch_name)
        out[f"{name}.{ours}"] = p.detach().numpy()
        out[f"{name}.grad.{ours}"] = p.grad.numpy()
    out[f"{name}.h0"] = h0.detach()[0].numpy()
    out[f"{name}.grad.h0"] = h0.grad[0].numpy()
    if name == "lstm":
        out["lstm.c0"] = c0.detach()[0].numpy()
        out["lstm.grad.c0"] = c0.grad[0].numpy()
    out[f"{name}.y"] = y.detach().numpy()
    out[f"{name}.grad.x"] = xi.grad.numpy()
np.savez(sys.argv[1], **out)
