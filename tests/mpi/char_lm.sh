#!/bin/sh
# char_lm under mpirun: 2 and 3 ranks (uneven shares of 7 streams) print the training and validation
# loss of one process (to the decimals printed; the sums differ in rounding only), only rank 0
# prints, and a checkpoint written by 2 ranks resumes on 3 as on one process.
# usage: char_lm.sh MPIEXEC "FLAGS" CHAR_LM
set -u
mpiexec=$1 flags=$2 char_lm=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
args="--hidden 32 --embed 16 --seq 16 --batch 7 --eval-every 0 --sample 0 --dropout 0"
fail() { echo "FAIL: $*"; exit 1; }
# The losses of a run's last report (mpirun may give the ranks a terminal: lines end in \r).
val() { tr '\r' '\n' < "$1" | grep -o 'loss [0-9.]*  val [0-9.]* nats' | tail -1; }
run() {  # run OUT NP ARGS...: NP 0 runs without mpirun
    out=$1 np=$2
    shift 2
    if [ "$np" -eq 0 ]; then timeout 120 "$char_lm" $args "$@" > "$out" 2>&1
    else timeout 120 "$mpiexec" $flags -np "$np" "$char_lm" $args "$@" > "$out" 2>&1; fi
    [ $? -eq 0 ] || { cat "$out"; fail "char_lm $args $* on $np ranks failed"; }
}

run "$dir/one" 0 --steps 20
for np in 2 3; do
    f=$dir/np$np
    run "$f" "$np" --steps 20
    [ "$(grep -c '^result val_loss_nats' "$f")" -eq 1 ] || { cat "$f"; fail "$np ranks: not one result"; }
    [ "$(val "$f")" = "$(val "$dir/one")" ] || fail "$np ranks: $(val "$f"), one process: $(val "$dir/one")"
    echo "ok: $np ranks, $(val "$dir/np$np")"
done

run "$dir/save" 2 --steps 10 --checkpoint "$dir/lm.npz"
run "$dir/resume1" 0 --steps 20 --resume "$dir/lm.npz"
run "$dir/resume3" 3 --steps 20 --resume "$dir/lm.npz"
grep -q "resumed from .* at step 10" "$dir/resume3" || fail "3 ranks did not resume at step 10"
# A rank carries only its share of the streams, so the checkpoint holds no carried state: both
# resumes start it from zeros (equal to each other, not to the uninterrupted run), and say so.
grep -q "note: under mpirun the state carried between batches restarts from zeros at step 10" "$dir/resume3" ||
    fail "3 ranks resumed mid-epoch without the note that the carried state restarts from zeros"
grep -q "note: no .*lm.npz.carry: the state carried between batches restarts from zeros at step 10" "$dir/resume1" ||
    fail "one process resumed a checkpoint without PATH.carry without the note"
[ "$(val "$dir/resume3")" = "$(val "$dir/resume1")" ] ||
    fail "resumed on 3 ranks: $(val "$dir/resume3"), on one process: $(val "$dir/resume1")"
echo "ok: saved on 2 ranks, resumed on 3 as on one process, $(val "$dir/resume3")"
