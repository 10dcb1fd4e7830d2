#!/usr/bin/python3
"""PyTorch twin of examples/classify_names.cpp: surname -> language with a character RNN.

embedding(V, E) -> nn.LSTM or nn.GRU (H), last valid state per name (pack_padded_sequence) ->
linear(H, C) -> cross-entropy (mean over the batch); Adam with its learning rate times --lr-decay
after every epoch, clip_grad_norm_; the same defaults, the same held-out split (per language:
deduplicate, order by FNV-1a 64 of "<seed>:<name>", hold out the first round(fraction * n), at
least one), the same vocabulary rule (training characters, most frequent first, <unk> = 0,
<eos> = 1) and the same length-bucketed batching. One thread
(torch.set_num_threads(1), and OpenBLAS and OpenMP at one thread), as the seqgrad side. Prints
    result names.accuracy <v> fraction
    result names.balanced_accuracy <v> fraction
    result names.train_seconds <v> s            (wall clock)
    result names.train_cpu_seconds <v> s        (CPU time of this process: steadier on a busy machine)
Exits 1 when the data is missing, 2 when torch is not installed.

    /usr/bin/python3 bench/torch_classify_names.py --data ../shared/data/names
"""
import argparse
import collections
import math
import os
import random
import sys
import time


def fnv1a(data: bytes) -> int:
    h = 1469598103934665603
    for c in data:
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def load_names(folder, held_out, seed):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".txt") and os.path.isfile(os.path.join(folder, f)))
    languages, train, test = [], [], []
    salt = f"{seed}:".encode()
    for f in files:
        names, seen = [], set()
        with open(os.path.join(folder, f), "rb") as fh:
            for line in fh.read().split(b"\n"):
                n = line.strip(b" \t\r")
                if n and n not in seen:
                    seen.add(n)
                    names.append(n)
        if not names:
            continue
        label = len(languages)
        languages.append(f[: -len(".txt")])
        names.sort(key=lambda n: (fnv1a(salt + n), n))
        n_test = max(1, int(math.floor(held_out * len(names) + 0.5)))
        for i, n in enumerate(names):
            (test if i < n_test else train).append((n.decode("utf-8", errors="replace"), label))
    return languages, train, test


def make_batches(seqs, batch_size, rng):
    """Pools of 32 batches sorted by length, cut into batches, batch order shuffled (rng) or kept."""
    order = list(range(len(seqs)))
    if rng:
        rng.shuffle(order)
    pool = 32 * batch_size
    out = []
    for p in range(0, len(order), pool):
        chunk = sorted(order[p : p + pool], key=lambda i: len(seqs[i]))
        out += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if rng:
        rng.shuffle(out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/names")
    ap.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-decay", type=float, default=0.8)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--held-out", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    # torch.set_num_threads does not reach OpenBLAS, which Debian's torch calls through libblas and which
    # starts one thread per core: set its count (and OpenMP's) before torch loads it.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import torch
        from torch import nn
        from torch.nn.utils.rnn import pack_padded_sequence
    except ImportError:
        print("torch_classify_names: torch is not installed; skipping")
        return 2
    if not os.path.isdir(args.data):
        print(f"torch_classify_names: no names data at {args.data} (pass --data DIR)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    languages, train, test = load_names(args.data, args.held_out, args.seed)
    counts = collections.Counter()
    for n, _ in train:
        counts.update(n)  # Counter keeps first-seen order, so the sort below breaks ties by it
    vocab = {"<unk>": 0, "<eos>": 1}
    for c, _ in sorted(counts.items(), key=lambda kv: -kv[1]):
        vocab[c] = len(vocab)
    enc = lambda n: [vocab.get(c, 0) for c in n]
    train_x, train_y = [enc(n) for n, _ in train], [y for _, y in train]
    test_x, test_y = [enc(n) for n, _ in test], [y for _, y in test]
    C = len(languages)
    print(f"{C} languages, {len(train_x)} training and {len(test_x)} held-out names, {len(vocab)} characters;"
          f" {args.cell}, hidden {args.hidden}")

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(vocab), args.embed)
            self.rnn = (nn.LSTM if args.cell == "lstm" else nn.GRU)(args.embed, args.hidden)
            self.out = nn.Linear(args.hidden, C)

        def forward(self, rows, seqs):
            lengths = [len(seqs[i]) for i in rows]
            ids = torch.zeros(max(lengths), len(rows), dtype=torch.long)
            for b, i in enumerate(rows):
                ids[: lengths[b], b] = torch.tensor(seqs[i])
            packed = pack_padded_sequence(self.emb(ids), torch.tensor(lengths), enforce_sorted=False)
            _, h = self.rnn(packed)
            h = h[0] if args.cell == "lstm" else h
            return self.out(h[-1])

    def predict(model, seqs):
        pred = [0] * len(seqs)
        with torch.no_grad():
            for rows in make_batches(seqs, 512, None):
                for i, p in zip(rows, model(rows, seqs).argmax(1).tolist()):
                    pred[i] = p
        return pred

    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    rng = random.Random(args.seed)
    start, start_cpu = time.perf_counter(), time.process_time()
    for epoch in range(1, args.epochs + 1):
        loss_sum, correct, seen = 0.0, 0, 0
        for g in opt.param_groups:
            g["lr"] = args.lr * args.lr_decay ** (epoch - 1)
        for rows in make_batches(train_x, args.batch, rng):
            labels = torch.tensor([train_y[i] for i in rows])
            logits = model(rows, train_x)
            loss = loss_fn(logits, labels)
            opt.zero_grad()
            loss.backward()
            if args.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            loss_sum += loss.item() * len(rows)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(rows)
        pred = predict(model, test_x)
        acc = sum(p == y for p, y in zip(pred, test_y)) / len(test_y)
        print(f"epoch {epoch}/{args.epochs}  loss {loss_sum / seen:.4f}  train acc {correct / seen:.4f}"
              f"  held-out acc {acc:.4f}  ({time.perf_counter() - start:.1f} s)", flush=True)
    train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - start_cpu

    pred = predict(model, test_x)
    recall = []
    for c in range(C):
        rows = [i for i, y in enumerate(test_y) if y == c]
        recall.append(sum(pred[i] == c for i in rows) / len(rows))
    print(f"result names.accuracy {sum(p == y for p, y in zip(pred, test_y)) / len(test_y):.4f} fraction")
    print(f"result names.balanced_accuracy {sum(recall) / C:.4f} fraction")
    print(f"result names.held_out {len(test_y)} names")
    print(f"result names.train_seconds {train_seconds:.1f} s")
    print(f"result names.train_cpu_seconds {train_cpu:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
