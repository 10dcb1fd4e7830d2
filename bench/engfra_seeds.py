#!/usr/bin/python3
"""English -> French over several seeds, seqgrad's example against its PyTorch twin, paired by seed.

Runs examples/seq2seq_attention and bench/torch_seq2seq.py with the same --data and --seed (the
seed picks the test split, the initial weights and the batch order on each side), reads their
`result` lines, and prints per seed and over all of them: BLEU (beam 5 and greedy), teacher-forced
token accuracy, and teacher-forced cross-entropy per target token on the test and on the training
pairs (test_loss, train_loss: the figures with the least seed noise). The gaps are twin minus
seqgrad, paired by seed (both sides see the same split), with the paired t statistic: one seed's
BLEU moves by about 3 from seed to seed on either side, so a handful of seeds cannot tell a gap
of 1 from noise.

    bench/engfra_seeds.py --example build/seq2seq_attention --data ../shared/data/eng-fra-5k.tsv \\
        --seeds 1-3 [--jobs 2] [--logs DIR]

--jobs 2 runs the two sides of a seed at the same time (one core each; the example and the twin
are single-threaded). Logs of every run go to --logs (default: a temporary folder). Exit status 2
when torch is missing (the twin says so), 1 when a run fails.
"""
import argparse
import math
import os
import re
import statistics as st
import subprocess
import sys
import tempfile

FIGURES = ["bleu", "bleu_greedy", "token_accuracy", "test_loss", "train_loss"]


def seeds_of(text):
    """"1-3" or "1,2,5-7" -> the seeds, in order; argparse reports a malformed or empty list."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seeds as 1-3 or 1,2,5-7, not {text!r}") from None
        if last < first:
            raise argparse.ArgumentTypeError(f"empty range {part!r} in {text!r}")
        out += list(range(first, last + 1))
    return out


def results(path):
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"result engfra\.(?:torch\.)?(\w+) (\S+)", line)
            if m:
                found[m.group(1)] = float(m.group(2))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", required=True, help="the built examples/seq2seq_attention")
    ap.add_argument("--data", required=True)
    ap.add_argument("--seeds", type=seeds_of, default="1-3", help="e.g. 1-3 or 1,2,5-7")
    ap.add_argument("--jobs", type=int, choices=[1, 2], default=1)
    ap.add_argument("--logs", default="")
    args = ap.parse_args()
    if not (os.path.isfile(args.example) and os.access(args.example, os.X_OK)):
        ap.error(f"--example: {args.example} is not an executable file (build seq2seq_attention first)")
    if not os.path.isfile(args.data):
        ap.error(f"--data: no file {args.data}")
    logs = args.logs or tempfile.mkdtemp(prefix="engfra_seeds_")
    os.makedirs(logs, exist_ok=True)
    twin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_seq2seq.py")
    rows = []
    for s in args.seeds:
        ours, theirs = os.path.join(logs, f"seqgrad_{s}.log"), os.path.join(logs, f"torch_{s}.log")
        cmds = [([args.example, "--data", args.data, "--seed", str(s), "--minutes", "1000", "--out", logs], ours),
                (["/usr/bin/python3", twin, "--data", args.data, "--seed", str(s)], theirs)]
        procs = []
        for cmd, log in cmds:
            with open(log, "w") as out:  # the child keeps its own copy of the descriptor
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
            if args.jobs == 1:
                procs[-1].wait()
        codes = [p.wait() for p in procs]
        if codes[1] == 2:
            print("engfra_seeds: the twin needs torch (/usr/bin/python3 with python3-torch)")
            return 2
        if any(codes):
            print(f"engfra_seeds: seed {s} failed (exit {codes}); see {logs}")
            return 1
        a, b = results(ours), results(theirs)
        missing = [k for k in FIGURES if k not in a or k not in b]
        if missing:
            print(f"engfra_seeds: seed {s}: no {', '.join(missing)} in the logs ({logs})")
            return 1
        rows.append((s, a, b))
        print(f"seed {s}: seqgrad " + " / ".join(f"{a[k]:.4g}" for k in FIGURES) + "  twin " +
              " / ".join(f"{b[k]:.4g}" for k in FIGURES) + f"  ({' / '.join(FIGURES)})", flush=True)
    print(f"{len(rows)} seeds; logs in {logs}")
    for k in FIGURES:
        x, y = [r[1][k] for r in rows], [r[2][k] for r in rows]
        d = [q - p for p, q in zip(x, y)]
        line = (f"{k}: seqgrad mean {st.mean(x):.4g} ({min(x):.4g}-{max(x):.4g}), twin mean {st.mean(y):.4g} "
                f"({min(y):.4g}-{max(y):.4g}), twin - seqgrad {st.mean(d):+.4g}")
        if len(d) > 1 and st.stdev(d) > 0:
            line += f" (paired t {st.mean(d) / (st.stdev(d) / math.sqrt(len(d))):+.2f})"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
