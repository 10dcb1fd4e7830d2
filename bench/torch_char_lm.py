#!/usr/bin/python3
"""PyTorch twin of examples/char_lm.cpp: the same character-level language model, data split,
batching and training recipe, so that the two validation losses can be compared.

    nn.Embedding(V, E) -> nn.LSTM(E, H, num_layers) -> nn.Linear(H, V) -> cross-entropy (mean)

- Characters are Unicode code points of the UTF-8 text (invalid bytes -> U+FFFD); the vocabulary is
  built as seqgrad's nn::vocab: ids 0 and 1 are <unk> and <eos> (never seen in the data, but part
  of the softmax, as in char_lm), then characters by count, most frequent first, ties by first
  occurrence.
- Split: the first round(0.9 N) ids train, the rest validate (nn::split_ids).
- Batching as nn::lm_batcher: B streams of L = (N - 1) // B positions, batches of T steps (the last
  one may be shorter), hidden state carried between batches (detached), reset to zeros when the
  training stream wraps around.
- Adam (lr), clip_grad_norm_(clip), one thread (torch.set_num_threads(1), and OpenBLAS and OpenMP at one
  thread; --threads N sets all three to N). PyTorch's default initialisation, which is also seqgrad's.
- Validation: mean cross-entropy per character over the whole validation stream, batched with
  min(B, N_val - 1) streams, state carried, no gradients.

Prints `result val_loss_nats <v> nats`, `result val_loss_bits <v> bits` and
`result tokens_per_s <v> tok/s` (training steps only, evaluation excluded), as char_lm does.

    /usr/bin/python3 bench/torch_char_lm.py --data ../shared/data/tinyshakespeare.txt --steps 1500

Exits 1 when the data is missing, 2 when torch is not installed.
"""
import argparse
import math
import os
import sys
import time


def build_vocab(chars):
    counts, first = {}, {}
    for i, c in enumerate(chars):
        if c not in counts:
            counts[c], first[c] = 0, i
        counts[c] += 1
    order = sorted(counts, key=lambda c: (-counts[c], first[c]))
    return ["<unk>", "<eos>"] + order


class Batcher:
    """nn::lm_batcher: time-major batches of `seq` steps over `batch` parallel streams."""

    def __init__(self, ids, batch, seq):
        self.batch, self.seq = batch, seq
        self.len = (len(ids) - 1) // batch
        if self.len == 0:
            raise ValueError(f"stream of {len(ids)} ids too short for {batch} streams")
        self.ids = ids
        self.num_batches = (self.len + seq - 1) // seq

    def get(self, k, torch):
        start = k * self.seq
        steps = min(self.seq, self.len - start)
        base = torch.arange(self.batch) * self.len + start  # [B]
        pos = torch.arange(steps)[:, None] + base[None, :]  # [T, B]
        return self.ids[pos], self.ids[pos + 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.threads < 1:
        ap.error(f"--threads: expected at least 1, not {args.threads}")
    if not os.path.isfile(args.data):
        print(f"torch_char_lm: no file {args.data} (pass --data FILE)", file=sys.stderr)
        return 1
    # torch.set_num_threads does not reach OpenBLAS, which Debian's torch calls through libblas and which
    # starts one thread per core: set its count (and OpenMP's) before torch loads it.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    try:
        import torch
        from torch import nn
    except ImportError:
        print("torch_char_lm: torch is not installed; skipping")
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    with open(args.data, "rb") as f:
        chars = list(f.read().decode("utf-8", errors="replace"))
    vocab = build_vocab(chars)
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in chars], dtype=torch.long)
    n_train = min(len(ids), int(math.floor(0.9 * len(ids) + 0.5)))
    train = Batcher(ids[:n_train], args.batch, args.seq)
    val = Batcher(ids[n_train:], min(args.batch, len(ids) - n_train - 1), args.seq)
    V, E, H, L = len(vocab), args.embed, args.hidden, args.layers
    print(f"data: {args.data}, {len(chars)} characters, vocabulary {V}, train {n_train}, "
          f"validation {len(ids) - n_train}", flush=True)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H, num_layers=L)
            self.out = nn.Linear(H, V)

        def forward(self, x, state):
            hs, state = self.lstm(self.emb(x), state)
            return self.out(hs.reshape(-1, H)), state

    model = LM()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    def zeros(b):
        return (torch.zeros(L, b, H), torch.zeros(L, b, H))

    def evaluate():
        state, total, count = zeros(val.batch), 0.0, 0
        with torch.no_grad():
            for k in range(val.num_batches):
                x, y = val.get(k, torch)
                logits, state = model(x, state)
                total += nn.functional.cross_entropy(logits, y.reshape(-1), reduction="sum").item()
                count += y.numel()
        return total / count

    state = zeros(args.batch)
    train_seconds, tokens, loss_sum, loss_count, val_loss = 0.0, 0, 0.0, 0, float("nan")
    for step in range(args.steps):
        k = step % train.num_batches
        if k == 0:
            state = zeros(args.batch)
        x, y = train.get(k, torch)
        start = time.perf_counter()
        state = tuple(s.detach() for s in state)
        logits, state = model(x, state)
        loss = nn.functional.cross_entropy(logits, y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        if args.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        loss_sum += loss.item()
        loss_count += 1
        train_seconds += time.perf_counter() - start
        tokens += y.numel()
        done = step + 1
        if args.eval_every > 0 and done % args.eval_every == 0 and done < args.steps:
            val_loss = evaluate()
            print(f"step {done}/{args.steps}  loss {loss_sum / loss_count:.3f}  val {val_loss:.4f} nats "
                  f"{val_loss / math.log(2):.4f} bits  {tokens / train_seconds:.0f} tok/s", flush=True)
            loss_sum, loss_count = 0.0, 0
    val_loss = evaluate()
    tok_s = tokens / train_seconds if train_seconds > 0 else 0.0
    print(f"step {args.steps}/{args.steps}  val {val_loss:.4f} nats")
    print(f"result val_loss_nats {val_loss:.4f} nats")
    print(f"result val_loss_bits {val_loss / math.log(2):.4f} bits")
    print(f"result tokens_per_s {tok_s:.0f} tok/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
