#!/bin/sh
# A rank that throws must stop the whole job with a clear error, not leave the others waiting:
# test_mpi --fail-rank 1 under mpirun must exit non-zero, well before the timeout, naming rank 1.
# usage: fail_rank.sh MPIEXEC "FLAGS" TEST_MPI
set -u
out=$(timeout 60 "$1" $2 -np 3 "$3" --fail-rank 1 2>&1)
rc=$?
echo "$out"
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung (killed by timeout after 60 s)"; exit 1; fi
if [ "$rc" -eq 0 ]; then echo "FAIL: exit status 0 although rank 1 threw"; exit 1; fi
echo "$out" | grep -q "seqgrad: rank 1 of 3 failed: injected failure on rank 1" ||
  { echo "FAIL: no message naming the failed rank"; exit 1; }
echo "ok: exit status $rc, rank 1 named"
