#pragma once
// What core/distributed.cpp needs from MPI, behind plain types: distributed_mpi.cpp implements it
// over MPI's C API, distributed_serial.cpp for a single process (built without MPI). Communicators
// travel as their MPI_Fint; MPI is called from one thread only.
#include <cstddef>
#include <cstdint>

#include "shape.hpp"

namespace seqgrad::dist::detail {

bool available();
/// Initialises MPI unless already done; true if this call did (then finalize() undoes it).
bool init(int& argc, char**& argv);
void finalize();
/// Whether MPI is initialised (and not finalised).
bool initialized();
std::int64_t world();
int rank(std::int64_t c);
int size(std::int64_t c);
/// Ranks of c on this machine, and this rank's index among them.
int local_size(std::int64_t c);
int local_rank(std::int64_t c);
std::int64_t split(std::int64_t c, int colour);
void barrier(std::int64_t c);
[[noreturn]] void abort(int code);

/// Non-blocking sum of n entries of type dt into recv on rank root (recv unused elsewhere); the
/// returned request number is given to wait().
int ireduce_sum(const void* send, void* recv, std::size_t n, dtype dt, int root, std::int64_t c);
/// Non-blocking broadcast of n bytes from root.
int ibcast(void* buf, std::size_t bytes, int root, std::int64_t c);
void wait(int request);
/// Lets MPI move requests on (it progresses them only inside its calls).
void progress();

}  // namespace seqgrad::dist::detail
