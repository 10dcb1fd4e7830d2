#pragma once
// Data-parallel training across processes (MPI ranks), on one machine or several.
//
// One process per rank, each with its own tape(s) and its shard of every global batch. Gradients
// are summed across ranks before each update, each rank's weighted by its share of the batch, so
// every rank applies the same update and holds bitwise identical parameters after every step:
//
//     sg::dist::environment env(argc, argv);        // MPI_Init; executor threads = cores / local ranks
//     return sg::dist::guard([&] {                  // a rank that throws stops them all (MPI_Abort)
//         const sg::dist::comm world = sg::dist::comm::world();
//         sg::dist::broadcast(model.ps, world);     // rank 0's initial parameters everywhere
//         sg::dist::reducer red(model.ps, world);
//         for (...) {
//             sg::tape t;  ... loss over this rank's rows, a mean over them ...
//             red.set_weight(double(my_rows) / global_rows);
//             red.attach(t);                        // buckets leave while backward still runs
//             t.backward(loss);
//             red.finish();                         // the weighted sum, into the store's gradients
//             sg::optim::clip_global_norm(model.ps, 5);  opt.step();
//             if (world.rank() == 0) ... progress, checkpoints ...
//         }
//         return 0;
//     });
//
// The sum is an MPI reduce to rank 0 per bucket followed by a broadcast of rank 0's result, not
// an allreduce: some allreduce algorithms leave ranks with sums rounded differently, a broadcast
// cannot. The buckets (fixed runs of parameters, in reverse store order) and their order never
// change, and Open MPI picks its reduce algorithm from the message size and rank count alone, so a
// run is reproducible for a given number of ranks. Different rank counts sum in different orders:
// results then agree to rounding, not bit for bit.
//
// Built without MPI (cmake -DSEQGRAD_MPI=OFF, or MPI not found), everything here still exists for
// a single process: world() has one rank, collectives copy, guard() rethrows. available() says which.
// MPI is called from the thread that called environment's constructor only (MPI_THREAD_FUNNELED):
// attach a reducer to a tape whose backward runs on that thread (several tapes per rank, e.g.
// seqgrad::data_parallel, accumulate into the store first and then call reducer::reduce_store).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "parameter.hpp"

namespace seqgrad {
class tape;

namespace dist {

/// True when seqgrad was built with MPI.
bool available();

/// Initialises MPI (if nobody did) for its lifetime and finalises it after, and sets the executor
/// (set_num_threads) to the machine's cores divided by the ranks on this machine, at least one,
/// so that ranks x threads do not oversubscribe the cores.
class environment {
public:
    environment(int& argc, char**& argv);
    ~environment();
    environment(const environment&) = delete;
    environment& operator=(const environment&) = delete;

private:
    bool owns_ = false;
};

/// A group of ranks (an MPI communicator). A cheap handle; comm::world() is every process.
class comm {
public:
    static comm world();
    int rank() const;
    int size() const;
    /// Ranks on the same machine as this one, and this rank's index among them: found when the comm
    /// was made (environment, split), so any rank may ask alone (not a collective).
    int local_size() const;
    int local_rank() const;
    /// Collective: ranks passing the same colour >= 0 form a new comm (ordered as in this one);
    /// a rank passing a negative colour gets an empty comm (valid() false).
    comm split(int colour) const;
    bool valid() const { return handle_ >= 0; }
    void barrier() const;
    std::int64_t handle() const { return handle_; }  // the MPI_Fint of the communicator

private:
    explicit comm(std::int64_t h) : handle_(h) {}
    std::int64_t handle_ = -1;
};

/// Runs body on this rank. If it throws, prints "seqgrad: rank R of N failed: <what>" to stderr and
/// stops every rank of the job (MPI_Abort, exit code 1) instead of leaving them waiting in a
/// collective. Without MPI the exception propagates.
int guard(const std::function<int()>& body);

/// Threads per rank: the machine's cores divided by the ranks on this machine, at least one (all
/// the cores before MPI is initialised).
std::size_t threads_per_rank();

/// Collectives (broadcast, identical, sum, a reducer's constructor, comm::barrier and split) throw
/// value_error on a comm with a reducer's step in progress (between attach() and finish()): a rank
/// whose backward reached fewer parameters sends its buckets only in finish(), so the ranks would
/// start their collectives in different orders and wait for ever.
///
/// Every parameter's value (trainable or not) from rank `root` to all ranks of c. Throws value_error
/// unless 0 <= root < c.size(), and on every rank, naming the first parameter that differs, unless
/// every rank's store has rank 0's parameters (count, order, names, shapes, scalar type).
void broadcast(parameter_store& ps, const comm& c, int root = 0);
/// Whether every rank of c holds bitwise the same values as rank 0 (collective).
bool identical(const parameter_store& ps, const comm& c);
/// Sum of x over the ranks of c, the same bits on every rank (collective).
double sum(double x, const comm& c);

/// The contiguous part [begin, end) of n items that rank r of p takes: the first n % p ranks one
/// item more than the others.
struct range {
    std::size_t begin = 0, end = 0;
    std::size_t size() const { return end - begin; }
};
range shard(std::size_t n, int rank, int ranks);

/// Shards n items (sequences, or the streams of an nn::lm_batcher) over the ranks of c and, with
/// shuffle, draws a new assignment every epoch: a permutation of [0, n) that is a function of
/// (seed, epoch) alone, the same on every rank and for every rank count, cut by shard().
class sampler {
public:
    sampler(std::size_t n, const comm& c, std::uint64_t seed = 0, bool shuffle = true);
    /// The global order of epoch e (all n items).
    std::vector<std::size_t> order(std::size_t epoch) const;
    /// This rank's items in epoch e.
    std::vector<std::size_t> indices(std::size_t epoch) const;
    /// How many items this rank takes (every epoch).
    std::size_t local_size() const { return shard(n_, rank_, ranks_).size(); }
    std::size_t global_size() const { return n_; }

private:
    std::size_t n_;
    int rank_, ranks_;
    std::uint64_t seed_;
    bool shuffle_;
};

/// The columns `streams` of a time-major [T, batch] block (entry t * batch + b), in that order:
/// this rank's streams of an nn::lm_batch's inputs or targets, as [T, streams.size()].
std::vector<int> select_streams(std::span<const int> time_major, std::size_t batch,
                                std::span<const std::size_t> streams);

/// Sums the trainable parameters' gradients across the ranks of a comm, in buckets of about
/// bucket_bytes. Per step, either attach() before backward and finish() after (overlapped), or
/// reduce_store() once the store holds this rank's gradient (not overlapped).
class reducer {
public:
    struct stats {
        std::size_t buckets = 0;  // per step
        std::size_t bytes = 0;    // gradient bytes each rank sends per step
        std::size_t steps = 0;
        double wait_seconds = 0;            // blocked in finish()/reduce_store(), summed over steps
        std::size_t ready_in_backward = 0;  // buckets sent before backward ended, summed over steps
    };

    /// Collective. Throws value_error on every rank, naming the first parameter that differs, unless
    /// every rank's store has rank 0's trainable parameters (count, order, names, shapes, scalar
    /// type) and every rank passed rank 0's bucket_bytes (else the buckets' reduces would not match).
    reducer(parameter_store& ps, const comm& c, std::size_t bucket_bytes = std::size_t(256) << 10);
    ~reducer();
    reducer(const reducer&) = delete;
    reducer& operator=(const reducer&) = delete;

    /// This rank's share of the sum: its gradient is multiplied by w. The default, 1 / ranks, gives
    /// the mean; with unequal shards pass this rank's rows / the global batch's rows.
    void set_weight(double w);
    /// Starts a step on tape t: its parameter gradients go to the buckets as soon as backward has
    /// finished each (tape::set_param_grad_hook), not to the store, and a bucket is sent (MPI
    /// non-blocking reduce) as soon as it is full and every bucket before it was sent. The reducer
    /// must outlive the tape's backward. Clipping belongs to the sum: that tape's backward refuses
    /// a plan that clips (graph_error); call optim::clip_global_norm after finish().
    void attach(tape& t);
    /// Waits for every bucket and adds the weighted sum over ranks into the store's gradients
    /// (bitwise the same on every rank). Parameters the tape did not reach count as zero.
    void finish();
    /// Not overlapped: replaces the store's gradients by their weighted sum over ranks.
    /// attach() and reduce_store() throw shape_error, before sending anything, if a trainable
    /// parameter's gradient no longer has its value's size (replaced by the user).
    void reduce_store();
    const stats& statistics() const { return stats_; }
    /// Zeroes the counts and times (not buckets and bytes).
    void reset_statistics() {
        stats_.steps = stats_.ready_in_backward = 0;
        stats_.wait_seconds = 0;
    }

private:
    struct impl;
    impl* p_;
    stats stats_;
};

}  // namespace dist
}  // namespace seqgrad
