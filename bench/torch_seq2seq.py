#!/usr/bin/python3
"""PyTorch twin of examples/seq2seq_attention.cpp on English -> French (--data eng-fra.tsv).

The same model, data and settings as the seqgrad example, so the figures compare:
  - data: "english<TAB>french<TAB>attribution" lines (only the first two columns are read);
    no-break spaces become spaces; lowercased words split as nn::words does (punctuation
    . , ! ? ; : " ( ) as tokens of their own), or characters with --level char;
  - split: English sentences whose FNV-1a 64 hash of "<seed>:<english>" is 0 mod 10 are held out;
    every French translation of a held-out sentence is a BLEU reference;
  - vocabularies from the training tokens, most frequent first (ties: first seen), <unk> = 0,
    <eos> = 1; targets end with <eos>, and the decoder starts from <eos>;
  - model: embedding(E) -> bidirectional LSTM encoder (H per direction, packed, so padding is
    skipped) -> LSTMCell decoder (Dq = 2H) with input feeding, Luong "general" attention
    (scores q . W a_s, masked softmax), h~ = tanh(W_c [c; h]), logits = W_out h~ + b;
    PyTorch default initialisation everywhere (the seqgrad modules use the same rules);
  - training: summed cross-entropy / target tokens, Adam (lr 2e-3), clip_grad_norm_(5), batches
    of 32 from pools of 16 batches sorted by source length, batch order shuffled, --epochs;
  - evaluation: corpus BLEU-4 (brevity penalty, multiple references) of greedy and beam (width 5,
    the same beam rules as nn::beam_search) outputs on each held-out English sentence once, and
    teacher-forced token accuracy (<eos> included) on the held-out pairs; teacher-forced cross-entropy
    per target token on the held-out and on the training pairs (test_loss, train_loss: low-noise figures).
--save / --load write and read the weights as .npz under seqgrad's parameter names, so the example
and this twin can decode each other's trained weights (--load W --epochs 0 decodes only); --hyps FILE
writes each test sentence's source, greedy and beam output, tab-separated, as the example does;
--batches FILE replays the training steps the example's --batches wrote (instead of --epochs; the
loss is printed per epoch's worth of steps, as the example prints it).
One thread (torch.set_num_threads(1), and OpenBLAS and OpenMP at one thread). Prints
`result engfra.torch.<name> <value> <unit>` lines.
Exits 1 when a file it is given is missing, 2 when torch is not installed.
"""
import argparse
import os
import math
import random
import sys
import time
from collections import Counter


def fnv1a(s):
    h = 1469598103934665603
    for c in s.encode("utf-8"):
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def tokenise(s, chars):
    s = s.replace("\u202f", " ").replace("\u00a0", " ")
    if chars:
        return list("".join(c.lower() if "A" <= c <= "Z" else c for c in s))
    out, cur = [], ""
    for c in s:
        if c in " \t\n\r\f\v":
            if cur:
                out.append(cur)
            cur = ""
        elif c in '.,!?;:"()':
            if cur:
                out.append(cur)
            cur = ""
            out.append(c)
        else:
            cur += c.lower() if "A" <= c <= "Z" else c
    if cur:
        out.append(cur)
    return out


def build_vocab(tokens):
    counts, first = Counter(), {}
    for i, t in enumerate(tokens):
        counts[t] += 1
        first.setdefault(t, i)
    itos = ["<unk>", "<eos>"] + sorted((t for t in counts if t not in ("<unk>", "<eos>")),
                                       key=lambda t: (-counts[t], first[t]))
    return itos, {t: i for i, t in enumerate(itos)}


def corpus_bleu(hyps, refs):
    match, total, c, r = [0] * 4, [0] * 4, 0, 0
    for h, rs in zip(hyps, refs):
        c += len(h)
        best = 0
        for ref in rs:
            dh, db = abs(len(ref) - len(h)), abs(best - len(h))
            if best == 0 or dh < db or (dh == db and len(ref) < best):
                best = len(ref)
        r += best
        for n in range(1, 5):
            grams = lambda t: Counter(tuple(t[k:k + n]) for k in range(len(t) - n + 1))
            hg, maxref = grams(h), Counter()
            for ref in rs:
                for g, k in grams(ref).items():
                    maxref[g] = max(maxref[g], k)
            for g, k in hg.items():
                match[n - 1] += min(k, maxref[g])
                total[n - 1] += k
    if min(match) == 0 or min(total) == 0:
        return 0.0
    logp = sum(math.log(m / t) for m, t in zip(match, total)) / 4
    bp = 1.0 if c >= r else math.exp(1 - r / max(c, 1))
    return 100 * bp * math.exp(logp)


def words_of(tokens, chars):
    return tokenise("".join(tokens), False) if chars else tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--level", choices=["word", "char"], default="word")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--embedding", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--load", default="", help="weights (.npz, seqgrad's names) instead of fresh ones")
    ap.add_argument("--save", default="", help="weights after training (.npz, seqgrad's names)")
    ap.add_argument("--hyps", default="", help="file for the decoded test outputs: source, greedy, beam per line")
    ap.add_argument("--batches", default="", help="replay the training steps the example's --batches wrote")
    args = ap.parse_args()
    for flag, path in (("--data", args.data), ("--load", args.load), ("--batches", args.batches)):
        if path and not os.path.isfile(path):
            print(f"torch_seq2seq: no file {path} ({flag})", file=sys.stderr)
            return 1
    # torch.set_num_threads does not reach OpenBLAS, which Debian's torch calls through libblas and which
    # starts one thread per core: set its count (and OpenMP's) before torch loads it.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import torch
        from torch import nn
    except ImportError:
        print("torch_seq2seq: torch is not installed; skipping")
        return 2
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    chars = args.level == "char"
    E = args.embedding or (32 if chars else 128)
    H = args.hidden or (64 if chars else 128)
    Dq, Dm = 2 * H, 2 * H

    train, test, refs = [], [], {}
    with open(args.data, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 2:
                continue
            en, fr = cols[0], cols[1]
            src, tgt = tokenise(en, chars), tokenise(fr, chars)
            if not src or not tgt:
                continue
            if fnv1a(f"{args.seed}:{en}") % 10 == 0:
                refs.setdefault(en, []).append(tgt)
                test.append((en, src, tgt))
            else:
                train.append((src, tgt))
    sv_itos, sv = build_vocab([t for s, _ in train for t in s])
    tv_itos, tv = build_vocab([t for _, g in train for t in g])
    enc = lambda toks, v: [v.get(t, 0) for t in toks]
    V = len(tv_itos)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_emb = nn.Embedding(len(sv_itos), E)
            self.tgt_emb = nn.Embedding(V, E)
            self.encoder = nn.LSTM(E, H, bidirectional=True)
            self.decoder = nn.LSTMCell(E + Dq, Dq)
            self.att = nn.Linear(Dm, Dq, bias=False)
            self.combine = nn.Linear(Dm + Dq, Dq, bias=False)
            self.out = nn.Linear(Dq, V)

        def encode(self, srcs):
            lengths = torch.tensor([len(s) for s in srcs])
            S = int(lengths.max())
            ids = torch.zeros(S, len(srcs), dtype=torch.long)
            for b, s in enumerate(srcs):
                ids[: len(s), b] = torch.tensor(s)
            packed = nn.utils.rnn.pack_padded_sequence(self.src_emb(ids), lengths, enforce_sorted=False)
            mem, _ = self.encoder(packed)
            mem, _ = nn.utils.rnn.pad_packed_sequence(mem, total_length=S)
            mem = mem.transpose(0, 1)  # [B, S, Dm]
            mask = torch.arange(S)[None, :] < lengths[:, None]  # [B, S]
            return mem, self.att(mem), mask

        def step(self, mem, keys, mask, tok, state, feed):
            h, c = self.decoder(torch.cat([self.tgt_emb(tok), feed], 1), state)
            e = torch.bmm(keys, h.unsqueeze(2)).squeeze(2).masked_fill(~mask, -1e9)
            alpha = torch.softmax(e, 1) * mask
            ctx = torch.bmm(alpha.unsqueeze(1), mem).squeeze(1)
            feed = torch.tanh(self.combine(torch.cat([ctx, h], 1)))
            return self.out(feed), (h, c), feed

        def forward(self, srcs, tgts):
            mem, keys, mask = self.encode(srcs)
            B, T = len(srcs), max(len(t) for t in tgts) + 1
            inp = torch.zeros(T, B, dtype=torch.long)
            gold = torch.full((T, B), -100, dtype=torch.long)
            for b, t in enumerate(tgts):
                inp[0, b] = 1
                inp[1 : len(t) + 1, b] = torch.tensor(t, dtype=torch.long) if t else inp[1:1, b]
                gold[: len(t), b] = torch.tensor(t, dtype=torch.long) if t else gold[:0, b]
                gold[len(t), b] = 1
            state = (torch.zeros(B, Dq), torch.zeros(B, Dq))
            feed = torch.zeros(B, Dq)
            logits = []
            for k in range(T):
                z, state, feed = self.step(mem, keys, mask, inp[k], state, feed)
                logits.append(z)
            return torch.stack(logits), gold

    model = Model()
    # seqgrad's parameter names (examples/seq2seq_attention.cpp, scope "s2s") for each torch one.
    names = {"src_emb.weight": "source_embedding.weight", "tgt_emb.weight": "target_embedding.weight",
             "att.weight": "attention.w", "combine.weight": "combine.weight", "out.weight": "out.weight",
             "out.bias": "out.bias"}
    for t, ours in (("weight_ih", "w_ih"), ("weight_hh", "w_hh"), ("bias_ih", "b_ih"), ("bias_hh", "b_hh")):
        names[f"encoder.{t}_l0"] = f"encoder.l0.fwd.{ours}"
        names[f"encoder.{t}_l0_reverse"] = f"encoder.l0.bwd.{ours}"
        names[f"decoder.{t}"] = f"decoder.l0.{ours}"
    if args.load:
        import numpy as np
        weights = np.load(args.load)
        with torch.no_grad():
            for t, p in model.named_parameters():
                p.copy_(torch.from_numpy(weights["s2s." + names[t]]))
    print(f"engfra (torch): vocab {len(sv_itos)} -> {V}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{len(train)} train pairs, {len(test)} test pairs", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    data = [(enc(s, sv), enc(g, tv)) for s, g in train]
    t0 = time.time()
    steps = 0
    replay = []
    if args.batches:
        with open(args.batches) as f:
            replay = [[data[int(i)] for i in line.split()] for line in f if line.strip()]
    per_epoch = -(-len(data) // args.batch)  # replayed steps are reported in epochs of this many
    for epoch in range(-(-len(replay) // per_epoch) if replay else args.epochs):
        order = data[:]
        rng.shuffle(order)
        batches = []
        pool = 16 * args.batch
        for p in range(0, len(order), pool):
            chunk = sorted(order[p : p + pool], key=lambda x: len(x[0]))
            batches += [chunk[i : i + args.batch] for i in range(0, len(chunk), args.batch)]
        rng.shuffle(batches)
        batches = replay[epoch * per_epoch : (epoch + 1) * per_epoch] if replay else batches
        total, tokens = 0.0, 0
        for batch in batches:
            logits, gold = model([s for s, _ in batch], [g for _, g in batch])
            n = int((gold >= 0).sum())
            loss = nn.functional.cross_entropy(logits.reshape(-1, V), gold.reshape(-1), ignore_index=-100, reduction="sum") / n
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += float(loss) * n
            tokens += n
            steps += 1
        print(f"epoch {epoch + 1}  {(time.time() - t0) / 60:.2f} min  loss {total / tokens:.4f}", flush=True)
    train_min = (time.time() - t0) / 60
    if args.save:
        import numpy as np
        np.savez(args.save, **{"s2s." + names[t]: p.detach().numpy() for t, p in model.named_parameters()})

    model.eval()
    with torch.no_grad():
        def teacher_forced(pairs):  # (right, counted, summed cross-entropy) over the pairs
            right = counted = 0
            nll = 0.0
            for i in range(0, len(pairs), 64):
                chunk = pairs[i : i + 64]
                logits, gold = model([s for s, _ in chunk], [g for _, g in chunk])
                ok = gold >= 0
                right += int(((logits.argmax(2) == gold) & ok).sum())
                counted += int(ok.sum())
                nll += float(nn.functional.cross_entropy(logits.reshape(-1, V).double(), gold.reshape(-1),
                                                         ignore_index=-100, reduction="sum"))
            return right, counted, nll

        right, counted, test_nll = teacher_forced([(enc(s, sv), enc(g, tv)) for _, s, g in test])
        _, train_counted, train_nll = teacher_forced(data)

        def decode(src, width):
            L = 2 * len(src) + 10
            mem, keys, mask = model.encode([src])
            live = [([], 0.0)]
            done = []
            state, feed, prev = (torch.zeros(1, Dq), torch.zeros(1, Dq)), torch.zeros(1, Dq), [1]
            for length in range(1, L + 1):
                n = len(live)
                z, state, feed = model.step(mem.expand(n, -1, -1), keys.expand(n, -1, -1), mask.expand(n, -1),
                                            torch.tensor(prev), state, feed)
                lp = torch.log_softmax(z, 1).double() + torch.tensor([s for _, s in live], dtype=torch.double)[:, None]
                flat = lp.reshape(-1)
                top = torch.topk(flat, min(flat.numel(), 2 * width))
                cand = sorted(zip(top.values.tolist(), top.indices.tolist()), key=lambda x: (-x[0], x[1]))
                nxt, parents, prev = [], [], []
                for i, (score, idx) in enumerate(cand):
                    if i >= width and len(nxt) >= width:
                        break
                    r, tok = divmod(idx, V)
                    if tok == 1 and i < width:
                        done.append((live[r][0] + [tok], score, True))
                    elif tok != 1 and len(nxt) < width:
                        nxt.append((live[r][0] + [tok], score))
                        parents.append(r)
                        prev.append(tok)
                if length == L:
                    done += [(t, s, False) for t, s in nxt]
                    break
                if not nxt:
                    break
                if len(done) >= width:
                    bar = sorted((s for _, s, _ in done), reverse=True)[width - 1]
                    if not any(s > bar for _, s in nxt):
                        break
                idx = torch.tensor(parents)
                state, feed, live = (state[0][idx], state[1][idx]), feed[idx], nxt
            best = max(done, key=lambda d: d[1])  # first of equals, as a stable sort
            out = best[0][:-1] if best[2] else best[0]
            return [tv_itos[i] for i in out]

        seen, greedy_out, beam_out, references, sources = set(), [], [], [], []
        for en, s, _ in test:
            if en in seen:
                continue
            seen.add(en)
            ids = enc(s, sv)
            greedy_out.append(words_of(decode(ids, 1), chars))
            beam_out.append(words_of(decode(ids, args.beam), chars))
            references.append([words_of(r, chars) for r in refs[en]])
            sources.append(s)
    if args.hyps:
        with open(args.hyps, "w", encoding="utf-8") as f:
            for (s, g, b) in zip(sources, greedy_out, beam_out):
                f.write(" ".join(s) + "\t" + " ".join(g) + "\t" + " ".join(b) + "\n")
    print(f"result engfra.torch.train_minutes {train_min:.3f} min")
    print(f"result engfra.torch.train_steps {steps} steps")
    print(f"result engfra.torch.bleu_greedy {corpus_bleu(greedy_out, references):.4f} bleu")
    print(f"result engfra.torch.bleu {corpus_bleu(beam_out, references):.4f} bleu")
    print(f"result engfra.torch.token_accuracy {right / counted:.6f} fraction")
    print(f"result engfra.torch.test_loss {test_nll / counted:.6f} nats")
    print(f"result engfra.torch.train_loss {train_nll / train_counted:.6f} nats")
    print(f"test sentences {len(references)}, test pairs {len(test)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
