#!/usr/bin/python3
"""PyTorch twin of bench/lstm_lm.cpp: training throughput of an LSTM language model.

embedding(V, E) -> nn.LSTM(E, H), 1 layer -> linear(H, V) -> cross-entropy summed over T x B;
SGD lr 0.1 after clip_grad_norm_(5); random tokens; zero initial state per batch. PyTorch's own
pool at one thread (torch.set_num_threads(1), OpenMP at 1) and OpenBLAS at --blas-threads (1):
with 1, one thread as seqgrad's one-thread side; with 2, PyTorch's best use of two cores
(../shared/PEERS.md: its own pool at 2 as well oversubscribes them and runs 2-5x slower). Prints
    bench lstm_lm.<config>.torch_tokens_per_s <v> tok/s
Exits with status 2 and a message when torch is not installed.
"""
import argparse
import os
import sys
import time

CONFIGS = {
    "char_b1": dict(V=65, E=128, H=128, T=64, B=1),
    "char_b32": dict(V=65, E=128, H=128, T=64, B=32),
    "word_b20": dict(V=10000, E=256, H=256, T=35, B=20),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--seconds", type=float, default=4.0, help="timed seconds, at least one step (4)")
    ap.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads (1)")
    args = ap.parse_args()
    if not 0 < args.seconds < float("inf"):
        ap.error(f"--seconds: expected a positive number of seconds, not {args.seconds}")
    if args.blas_threads < 1:
        ap.error(f"--blas-threads: expected an integer >= 1, not {args.blas_threads}")
    # torch.set_num_threads does not reach OpenBLAS, which Debian's torch calls through libblas and which
    # starts one thread per core: set its count (and OpenMP's) before torch loads it.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.blas_threads) if var == "OPENBLAS_NUM_THREADS" else "1"
    try:
        import torch
        from torch import nn
    except ImportError:
        print("torch_lstm_lm: torch is not installed; skipping")
        return 2
    torch.set_num_threads(1)
    torch.manual_seed(1)
    c = CONFIGS[args.config]
    V, E, H, T, B = c["V"], c["E"], c["H"], c["T"], c["B"]

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H, num_layers=1)
            self.out = nn.Linear(H, V)

        def forward(self, ids, targets):
            hs, _ = self.lstm(self.emb(ids))  # zero initial state
            logits = self.out(hs.reshape(T * B, H))
            return nn.functional.cross_entropy(logits, targets.reshape(T * B), reduction="sum")

    model = LM()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [torch.randint(0, V, (T + 1, B)) for _ in range(8)]

    def step(k):
        b = batches[k % len(batches)]
        loss = model(b[:-1], b[1:])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item()

    for k in range(3):
        step(k)
    steps, start, elapsed = 0, time.perf_counter(), 0.0
    while elapsed < args.seconds:  # as bench/lstm_lm.cpp: at least one step, the clock read after each
        step(steps)
        steps += 1
        elapsed = time.perf_counter() - start
    print(f"bench lstm_lm.{args.config}.torch_tokens_per_s {steps * T * B / elapsed:.1f} tok/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
