// The transport of core/distributed.cpp over MPI's C API (Open MPI, MPICH).
#include <mpi.h>

#include <climits>
#include <string>
#include <vector>

#include "distributed_transport.hpp"
#include "errors.hpp"

namespace seqgrad::dist::detail {
namespace {

MPI_Comm to_mpi(std::int64_t c) { return MPI_Comm_f2c(static_cast<MPI_Fint>(c)); }

// Requests in flight. MPI is called from one thread (MPI_THREAD_FUNNELED), so no lock.
std::vector<MPI_Request> requests;
std::size_t finished = 0;

int count(std::size_t n, const char* who) {
    if (n > static_cast<std::size_t>(INT_MAX))
        throw value_error(std::string("dist: ") + who + " of " + std::to_string(n) +
                          " entries; MPI counts are ints (at most " + std::to_string(INT_MAX) + ")");
    return static_cast<int>(n);
}

int track(MPI_Request r) {
    requests.push_back(r);
    return static_cast<int>(requests.size() - 1);
}

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw value_error(std::string("dist: ") + what + " failed: " + std::string(msg, len));
}

// Per communicator: the ranks on this machine and this rank's index among them. Finding them is a
// collective (MPI_Comm_split_type), so it is done where every rank takes part anyway: at init() for
// the world and at split() for a new communicator. Asking later is then local: one rank alone may
// ask (rank 0 printing it) without the others being in the same call.
struct node_info {
    std::int64_t comm;
    int size, rank;
};
std::vector<node_info> nodes;

const node_info& learn_node(std::int64_t c) {
    for (const node_info& n : nodes)
        if (n.comm == c) return n;
    MPI_Comm local;
    check(MPI_Comm_split_type(to_mpi(c), MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    node_info n{c, 0, 0};
    MPI_Comm_size(local, &n.size);
    MPI_Comm_rank(local, &n.rank);
    MPI_Comm_free(&local);
    nodes.push_back(n);
    return nodes.back();
}

}  // namespace

bool available() { return true; }

bool init(int& argc, char**& argv) {
    int done = 0;
    MPI_Initialized(&done);
    if (!done) {
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    }
    learn_node(world());
    return !done;
}

void finalize() {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

bool initialized() {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

std::int64_t world() {
    int done = 0;
    MPI_Initialized(&done);
    if (!done) throw value_error("dist: MPI is not initialised; create a seqgrad::dist::environment first");
    return MPI_Comm_c2f(MPI_COMM_WORLD);
}

int rank(std::int64_t c) {
    int r = 0;
    MPI_Comm_rank(to_mpi(c), &r);
    return r;
}

int size(std::int64_t c) {
    int s = 0;
    MPI_Comm_size(to_mpi(c), &s);
    return s;
}

// Known since init() or split(); a communicator seqgrad did not make is learnt here (a collective).
int local_size(std::int64_t c) { return learn_node(c).size; }

int local_rank(std::int64_t c) { return learn_node(c).rank; }

std::int64_t split(std::int64_t c, int colour) {
    MPI_Comm out;
    check(MPI_Comm_split(to_mpi(c), colour < 0 ? MPI_UNDEFINED : colour, 0, &out), "MPI_Comm_split");
    if (out == MPI_COMM_NULL) return -1;
    return learn_node(MPI_Comm_c2f(out)).comm;
}

void barrier(std::int64_t c) { check(MPI_Barrier(to_mpi(c)), "MPI_Barrier"); }

void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

int ireduce_sum(const void* send, void* recv, std::size_t n, dtype dt, int root, std::int64_t c) {
    MPI_Request r;
    check(MPI_Ireduce(send, recv, count(n, "reduce"), dt == dtype::f32 ? MPI_FLOAT : MPI_DOUBLE, MPI_SUM, root,
                      to_mpi(c), &r),
          "MPI_Ireduce");
    return track(r);
}

int ibcast(void* buf, std::size_t bytes, int root, std::int64_t c) {
    MPI_Request r;
    check(MPI_Ibcast(buf, count(bytes, "broadcast"), MPI_BYTE, root, to_mpi(c), &r), "MPI_Ibcast");
    return track(r);
}

void wait(int request) {
    MPI_Request& r = requests.at(static_cast<std::size_t>(request));
    if (r != MPI_REQUEST_NULL) check(MPI_Wait(&r, MPI_STATUS_IGNORE), "MPI_Wait");
    if (++finished == requests.size()) {
        requests.clear();
        finished = 0;
    }
}

void progress() {
    if (requests.empty()) return;
    int flag = 0;
    MPI_Testall(static_cast<int>(requests.size()), requests.data(), &flag, MPI_STATUSES_IGNORE);
}

}  // namespace seqgrad::dist::detail
