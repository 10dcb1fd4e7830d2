"""PyTorch side of tests/nn/test_adaptive_softmax.cpp.

OUT_DIR: writes OUT_DIR/state.npz, the state_dict of
    nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[5, 12], div_value=2.0, head_bias=True)
under PyTorch's own names (head.weight, head.bias, tail.0.0.weight, tail.0.1.weight, tail.1.0.weight,
tail.1.1.weight), and OUT_DIR/ref.npz with an input x [16, 8], targets covering the shortlist and
both clusters, the per-row log-probabilities of the targets ("output"), the mean loss, log_prob(x)
[16, 20], and the gradients of the loss with respect to x and every weight ("grad." + name).
All float32 (targets stored as float32 too).
"""
import sys

import numpy as np
import torch


def main(out_dir):
    torch.manual_seed(7)
    m = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[5, 12], div_value=2.0, head_bias=True)
    np.savez(f"{out_dir}/state.npz", **{k: v.detach().numpy() for k, v in m.state_dict().items()})
    x = torch.randn(16, 8, requires_grad=True)
    t = torch.tensor([0, 4, 5, 11, 12, 19, 3, 7, 15, 1, 2, 6, 13, 18, 0, 9])
    out = m(x, t)
    out.loss.backward()
    ref = {"x": x.detach().numpy(), "targets": t.numpy().astype(np.float32),
           "output": out.output.detach().numpy(), "loss": out.loss.detach().numpy(),
           "log_prob": m.log_prob(x).detach().numpy(), "grad.x": x.grad.numpy()}
    for name, p in m.named_parameters():
        ref["grad." + name] = p.grad.numpy()
    np.savez(f"{out_dir}/ref.npz", **ref)


if __name__ == "__main__":
    main(sys.argv[1])
