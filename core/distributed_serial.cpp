// The transport of core/distributed.cpp for a build without MPI: one process, collectives copy.
#include <cstdlib>
#include <cstring>

#include "distributed_transport.hpp"

namespace seqgrad::dist::detail {

bool available() { return false; }
bool init(int&, char**&) { return false; }
void finalize() {}
bool initialized() { return true; }
std::int64_t world() { return 0; }
int rank(std::int64_t) { return 0; }
int size(std::int64_t) { return 1; }
int local_size(std::int64_t) { return 1; }
int local_rank(std::int64_t) { return 0; }
std::int64_t split(std::int64_t c, int colour) { return colour < 0 ? -1 : c; }
void barrier(std::int64_t) {}
void abort(int code) { std::exit(code); }

int ireduce_sum(const void* send, void* recv, std::size_t n, dtype dt, int, std::int64_t) {
    if (send != recv) std::memcpy(recv, send, n * (dt == dtype::f32 ? sizeof(float) : sizeof(double)));
    return 0;
}
int ibcast(void*, std::size_t, int, std::int64_t) { return 0; }
void wait(int) {}
void progress() {}

}  // namespace seqgrad::dist::detail
