// Data-parallel training across ranks (see distributed.hpp); the MPI calls are in the transport
// (distributed_mpi.cpp, or distributed_serial.cpp without MPI).
#include "distributed.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "blas.hpp"
#include "distributed_transport.hpp"
#include "errors.hpp"
#include "tape.hpp"
#include "transforms.hpp"

namespace seqgrad::dist {

bool available() { return detail::available(); }

namespace {
// Comms with a reducer's step in progress (attach() done, finish() not yet). A rank whose backward
// did not reach every parameter (no rows of its own, say) sends its buckets only in finish(): a
// collective started in between would meet another rank's buckets, and both wait for ever.
std::mutex steps_mu;
std::vector<std::int64_t> steps_in_flight;
void require_no_step(const comm& c, const std::string& who) {
    std::lock_guard<std::mutex> lock(steps_mu);
    if (std::find(steps_in_flight.begin(), steps_in_flight.end(), c.handle()) != steps_in_flight.end())
        throw value_error("dist::" + who +
                          ": called between a reducer's attach() and finish() on the same comm; call finish() "
                          "first (a rank whose backward did not reach every parameter sends its gradients only "
                          "in finish(), so the ranks would start their collectives in different orders and wait "
                          "for ever)");
}

}  // namespace

environment::environment(int& argc, char**& argv) {
    owns_ = detail::init(argc, argv);
    if (!available()) return;
    const std::size_t threads = threads_per_rank();
    set_num_threads(threads);
    if (blas_threads() > static_cast<int>(threads)) set_blas_threads(static_cast<int>(threads));
}

environment::~environment() {
    if (owns_) detail::finalize();
}

comm comm::world() { return comm(detail::world()); }
int comm::rank() const { return valid() ? detail::rank(handle_) : -1; }
int comm::size() const { return valid() ? detail::size(handle_) : 0; }
int comm::local_size() const { return valid() ? detail::local_size(handle_) : 0; }
int comm::local_rank() const { return valid() ? detail::local_rank(handle_) : -1; }
comm comm::split(int colour) const {
    if (!valid()) throw value_error("dist::comm::split: on an empty comm (a rank outside the group)");
    require_no_step(*this, "comm::split");
    return comm(detail::split(handle_, colour));
}
void comm::barrier() const {
    if (!valid()) return;
    require_no_step(*this, "comm::barrier");
    detail::barrier(handle_);
}

int guard(const std::function<int()>& body) {
    std::string what;
    try {
        return body();
    } catch (const std::exception& e) {
        if (!available()) throw;
        what = e.what();
    } catch (...) {
        if (!available()) throw;
        what = "an exception not derived from std::exception";
    }
    const comm w = comm::world();
    std::fflush(stdout);
    std::fprintf(stderr, "seqgrad: rank %d of %d failed: %s\nseqgrad: stopping every rank (MPI_Abort)\n", w.rank(),
                 w.size(), what.c_str());
    std::fflush(stderr);
    detail::abort(1);
}

std::size_t threads_per_rank() {
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    const std::size_t local = detail::initialized() ? static_cast<std::size_t>(comm::world().local_size()) : 1;
    return std::max<std::size_t>(1, cores / std::max<std::size_t>(1, local));
}

namespace {

void* storage(const parameter& p) {
    auto& d = p.data();
    return d.dt == dtype::f32 ? static_cast<void*>(d.vf.data()) : static_cast<void*>(d.vd.data());
}
const void* storage_of_grad(const parameter& p) {
    auto& d = p.data();
    return d.dt == dtype::f32 ? static_cast<const void*>(d.gf.data()) : static_cast<const void*>(d.gd.data());
}
std::size_t scalar_bytes(dtype dt) { return dt == dtype::f32 ? sizeof(float) : sizeof(double); }

void require(const comm& c, const char* who) {
    if (!c.valid()) throw value_error(std::string("dist::") + who + ": on an empty comm (a rank outside the group)");
}

std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (const unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
    return h;
}

// Collective: throws value_error on every rank unless every rank's store is rank 0's parameter for
// parameter (scalar type, count, names, shapes; with trainable_only, of the trainable ones alone)
// and every rank passed rank 0's `setting` (a reducer's bucket_bytes). The collectives move runs of
// entries: stores that differ would copy or sum unrelated entries, or fail inside MPI without a
// word about which parameter. Each rank's error names the first parameter that differs on some rank.
void require_same_layout(const parameter_store& ps, const comm& c, bool trainable_only, const std::string& who,
                         std::uint64_t setting = 0, const char* setting_name = nullptr) {
    require_no_step(c, who);
    std::vector<std::size_t> index;  // store index of each parameter described
    for (std::size_t i = 0; i < ps.size(); ++i)
        if (!trainable_only || ps[i].trainable()) index.push_back(i);
    constexpr std::size_t head = 3, fields = 2 + max_rank;  // per parameter: name, rank, every dimension (1 past it)
    std::vector<std::uint64_t> mine{static_cast<std::uint64_t>(ps.scalar_type()), index.size(), setting};
    std::string names;  // rank 0's, for the messages
    for (std::size_t i : index) {
        const seqgrad::shape& s = ps[i].shape();
        mine.push_back(fnv1a(ps[i].name()));
        mine.push_back(s.rank());
        for (std::size_t k = 0; k < max_rank; ++k) mine.push_back(k < s.rank() ? s[k] : 1);
        names += ps[i].name() + '\0';
    }
    std::uint64_t n[2] = {mine.size(), names.size()};
    detail::wait(detail::ibcast(n, sizeof n, 0, c.handle()));
    std::vector<std::uint64_t> first = c.rank() == 0 ? mine : std::vector<std::uint64_t>(n[0]);
    detail::wait(detail::ibcast(first.data(), n[0] * sizeof(std::uint64_t), 0, c.handle()));
    names.resize(n[1]);
    detail::wait(detail::ibcast(names.data(), n[1], 0, c.handle()));
    std::vector<std::string> names0;
    for (std::size_t at = 0; at < names.size();) {
        const std::size_t end = names.find('\0', at);
        names0.push_back(names.substr(at, end - at));
        at = end + 1;
    }
    const char* what = trainable_only ? " trainable parameters" : " parameters";
    // Where this rank differs first: 0 for the store as a whole, 1 + k for parameter k.
    std::size_t where = SIZE_MAX;
    std::string why;
    if (first[0] != mine[0]) {
        why = std::string("a ") + to_string(ps.scalar_type()) + " store here, a " +
              to_string(static_cast<dtype>(first[0])) + " one on rank 0";
        where = 0;
    } else if (first[2] != mine[2]) {
        why = std::string(setting_name) + " " + std::to_string(setting) + " here, " + std::to_string(first[2]) +
              " on rank 0";
        where = 0;
    } else {
        const std::size_t common = std::min<std::size_t>(first[1], index.size());
        for (std::size_t k = 0; k < common && why.empty(); ++k) {
            const std::uint64_t* a = mine.data() + head + k * fields;
            const std::uint64_t* b = first.data() + head + k * fields;
            if (std::equal(a, a + fields, b)) continue;
            const parameter& p = ps[index[k]];
            where = 1 + k;
            if (a[0] != b[0]) {
                why = "parameter " + std::to_string(k) + " of the" + what + " is '" + p.name() + "' here, '" +
                      names0[k] + "' on rank 0";
                continue;
            }
            seqgrad::shape theirs;
            for (std::size_t d = 0; d < b[1]; ++d) theirs.push_back(b[2 + d]);
            why = "parameter '" + p.name() + "' (" + std::to_string(k) + " of the" + what + ") is " + p.shape().str() +
                  " here, " + theirs.str() + " on rank 0";
        }
        if (why.empty() && first[1] != index.size()) {
            why = std::to_string(index.size()) + what + " here, " + std::to_string(first[1]) + " on rank 0";
            where = 1 + common;
        }
    }
    // Per place, how many ranks differ first there (rank 0's count of parameters + 2 places).
    std::vector<double> flags(first[1] + 2, 0.0), counts(flags.size(), 0.0);
    if (where != SIZE_MAX) flags[std::min(where, flags.size() - 1)] = 1;
    detail::wait(detail::ireduce_sum(flags.data(), counts.data(), flags.size(), dtype::f64, 0, c.handle()));
    detail::wait(detail::ibcast(counts.data(), counts.size() * sizeof(double), 0, c.handle()));
    const auto at = std::find_if(counts.begin(), counts.end(), [](double v) { return v > 0; });
    if (at == counts.end()) return;
    if (why.empty()) {
        const std::size_t place = static_cast<std::size_t>(at - counts.begin());
        const std::string ranks = std::to_string(static_cast<long>(*at)) + " rank(s)";
        if (place == 0)
            why = "the scalar type" + std::string(setting_name ? std::string(" or ") + setting_name : "") +
                  " differs from rank 0's on " + ranks;
        else if (place - 1 < names0.size())
            why = "parameter '" + names0[place - 1] + "' (" + std::to_string(place - 1) + " of the" + what +
                  ") differs from rank 0's on " + ranks;
        else why = "the count of" + std::string(what) + " differs from rank 0's on " + ranks;
    }
    throw value_error("dist::" + who + ": rank " + std::to_string(c.rank()) + " of " + std::to_string(c.size()) + ": " +
                      why + "; every rank must hold the same" + what +
                      ", in the same order, with the same names, shapes and scalar type");
}

}  // namespace

void broadcast(parameter_store& ps, const comm& c, int root) {
    require(c, "broadcast");
    if (root < 0 || root >= c.size())
        throw value_error("dist::broadcast: root " + std::to_string(root) + " of " + std::to_string(c.size()) +
                          " ranks (expected 0 <= root < ranks)");
    require_same_layout(ps, c, false, "broadcast");
    std::vector<int> reqs;
    for (const parameter& p : ps.parameters())
        reqs.push_back(detail::ibcast(storage(p), p.size() * scalar_bytes(p.scalar_type()), root, c.handle()));
    for (int r : reqs) detail::wait(r);
    if (c.rank() != root)
        for (const parameter& p : ps.parameters()) p.mark_modified();
}

double sum(double x, const comm& c) {
    require(c, "sum");
    require_no_step(c, "sum");
    double total = 0;
    detail::wait(detail::ireduce_sum(&x, &total, 1, dtype::f64, 0, c.handle()));
    detail::wait(detail::ibcast(&total, sizeof total, 0, c.handle()));
    return total;
}

bool identical(const parameter_store& ps, const comm& c) {
    require(c, "identical");
    require_no_step(c, "identical");
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a over every value's bytes, in store order
    for (const parameter& p : ps.parameters()) {
        const auto* b = static_cast<const unsigned char*>(storage(p));
        const std::size_t n = p.size() * scalar_bytes(p.scalar_type());
        for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    }
    std::uint64_t h0 = h;
    detail::wait(detail::ibcast(&h0, sizeof h0, 0, c.handle()));
    return sum(h == h0 ? 0.0 : 1.0, c) == 0.0;
}

range shard(std::size_t n, int rank, int ranks) {
    if (ranks <= 0 || rank < 0 || rank >= ranks)
        throw value_error("dist::shard: rank " + std::to_string(rank) + " of " + std::to_string(ranks) +
                          " (expected 0 <= rank < ranks)");
    const std::size_t p = static_cast<std::size_t>(ranks), r = static_cast<std::size_t>(rank);
    const std::size_t base = n / p, extra = n % p;
    const std::size_t begin = r * base + std::min(r, extra);
    return {begin, begin + base + (r < extra ? 1 : 0)};
}

sampler::sampler(std::size_t n, const comm& c, std::uint64_t seed, bool shuffle)
    : n_(n), rank_(c.rank()), ranks_(c.size()), seed_(seed), shuffle_(shuffle) {
    require(c, "sampler");
    if (n < static_cast<std::size_t>(ranks_))
        throw value_error("dist::sampler: " + std::to_string(n) + " items for " + std::to_string(ranks_) +
                          " ranks (expected at least one item per rank)");
}

std::vector<std::size_t> sampler::order(std::size_t epoch) const {
    std::vector<std::size_t> v(n_);
    for (std::size_t i = 0; i < n_; ++i) v[i] = i;
    if (!shuffle_) return v;
    // Fisher-Yates with the generator's raw output: the same permutation with every standard library.
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + epoch);
    for (std::size_t i = n_; i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
    return v;
}

std::vector<std::size_t> sampler::indices(std::size_t epoch) const {
    const std::vector<std::size_t> all = order(epoch);
    const range r = shard(n_, rank_, ranks_);
    return {all.begin() + static_cast<std::ptrdiff_t>(r.begin), all.begin() + static_cast<std::ptrdiff_t>(r.end)};
}

std::vector<int> select_streams(std::span<const int> time_major, std::size_t batch,
                                std::span<const std::size_t> streams) {
    if (batch == 0 || time_major.size() % batch != 0)
        throw value_error("dist::select_streams: " + std::to_string(time_major.size()) + " entries are not [T, " +
                          std::to_string(batch) + "]");
    const std::size_t steps = time_major.size() / batch;
    std::vector<int> out;
    out.reserve(steps * streams.size());
    for (std::size_t t = 0; t < steps; ++t)
        for (std::size_t b : streams) {
            if (b >= batch)
                throw value_error("dist::select_streams: stream " + std::to_string(b) + " of a batch of " +
                                  std::to_string(batch));
            out.push_back(time_major[t * batch + b]);
        }
    return out;
}

// ---- reducer --------------------------------------------------------------------------------------

struct reducer::impl {
    struct slot {
        parameter p;
        std::size_t offset, size, bucket;
        bool delivered;
    };
    struct bucket {
        std::size_t begin, end;  // entries of the buffers
        std::size_t params, pending;
        int reduce_req, bcast_req;
    };
    parameter_store& ps;
    comm c;
    dtype dt;
    std::size_t num_params;
    double weight;
    std::vector<slot> slots;  // trainable parameters, last in the store first
    std::unordered_map<std::uint64_t, std::size_t> by_uid;
    std::vector<bucket> buckets;
    std::vector<float> send_f, recv_f;
    std::vector<double> send_d, recv_d;
    std::size_t launched = 0;
    bool active = false;
    dtype tape_dt = dtype::f32;

    void* send() { return dt == dtype::f32 ? static_cast<void*>(send_f.data()) : send_d.data(); }
    void* recv() { return dt == dtype::f32 ? static_cast<void*>(recv_f.data()) : recv_d.data(); }

    void check_store(const char* who) const {
        if (ps.scalar_type() != dt || ps.size() != num_params)
            throw value_error(std::string("dist::reducer::") + who +
                              ": the store changed since the reducer was made "
                              "(parameters added or converted); make a new reducer");
        // The sums are read from and written to the gradients' buffers, s.size entries each.
        for (const auto& s : slots) {
            const auto& d = s.p.data();
            const std::size_t ng = d.dt == dtype::f32 ? d.gf.size() : d.gd.size();
            if (ng != s.size)
                throw shape_error(std::string("dist::reducer::") + who + ": parameter '" + d.name +
                                  "' has a gradient of " + std::to_string(ng) + " entries for a value of " +
                                  std::to_string(s.size));
        }
    }

    // A step in progress on this comm (require_no_step).
    void set_active(bool on) {
        if (on == active) return;
        active = on;
        std::lock_guard<std::mutex> lock(steps_mu);
        if (on) steps_in_flight.push_back(c.handle());
        else steps_in_flight.erase(std::find(steps_in_flight.begin(), steps_in_flight.end(), c.handle()));
    }

    void begin(const char* who) {
        check_store(who);
        if (active) throw value_error(std::string("dist::reducer::") + who + ": the previous step was not finished");
        set_active(true);
        launched = 0;
        for (auto& s : slots) s.delivered = false;
        for (auto& b : buckets) b.pending = b.params;
    }

    // Scale-and-copy of a gradient (tape or store type) into the send buffer (store type).
    template <class S, class D>
    void put(const S* src, D* dst, std::size_t n) const {
        const D w = static_cast<D>(weight);
        for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<D>(src[i]) * w;
    }
    void deliver(slot& s, const void* grad, dtype src_dt) {
        const std::size_t n = s.size;
        if (dt == dtype::f32) {
            if (src_dt == dtype::f32) put(static_cast<const float*>(grad), send_f.data() + s.offset, n);
            else put(static_cast<const double*>(grad), send_f.data() + s.offset, n);
        } else {
            if (src_dt == dtype::f32) put(static_cast<const float*>(grad), send_d.data() + s.offset, n);
            else put(static_cast<const double*>(grad), send_d.data() + s.offset, n);
        }
        s.delivered = true;
        --buckets[s.bucket].pending;
    }

    // Buckets leave strictly in order, so every rank starts the same collectives in the same order.
    std::size_t launch_ready() {
        std::size_t n = 0;
        const std::size_t es = scalar_bytes(dt);
        while (launched < buckets.size() && buckets[launched].pending == 0) {
            bucket& b = buckets[launched++];
            b.reduce_req = detail::ireduce_sum(static_cast<char*>(send()) + b.begin * es,
                                               static_cast<char*>(recv()) + b.begin * es, b.end - b.begin, dt, 0,
                                               c.handle());
            ++n;
        }
        return n;
    }

    void hook(const parameter& p, const void* grad) {
        auto it = by_uid.find(p.data().uid);
        if (it == by_uid.end())
            throw value_error("dist::reducer: the tape reads parameter '" + p.name() +
                              "', which is not a trainable parameter of the reducer's store");
        if (!active)
            throw value_error("dist::reducer: backward on a tape after finish(); call attach() again for a new step");
        slot& s = slots[it->second];
        if (s.delivered)
            throw value_error("dist::reducer: a second gradient of '" + p.name() +
                              "' in one step; one backward per attach()");
        deliver(s, grad, tape_dt);
        stats_ready += launch_ready();
        detail::progress();
    }
    std::size_t stats_ready = 0;

    // Waits for every bucket: reduce at rank 0, then rank 0's sums broadcast (bitwise the same
    // everywhere). Then the store's gradients get the result, added or assigned.
    void complete(bool assign, stats& st) {
        const auto t0 = std::chrono::steady_clock::now();
        for (auto& b : buckets) b.pending = 0;  // parameters the tape did not reach send zeros
        launch_ready();
        const std::size_t es = scalar_bytes(dt);
        for (auto& b : buckets) {
            detail::wait(b.reduce_req);
            b.bcast_req = detail::ibcast(static_cast<char*>(recv()) + b.begin * es, (b.end - b.begin) * es, 0,
                                         c.handle());
        }
        for (auto& b : buckets) detail::wait(b.bcast_req);
        st.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (const auto& s : slots) {
            auto apply = [&](auto* g, const auto* r) {
                if (assign) std::copy_n(r + s.offset, s.size, g);
                else
                    for (std::size_t i = 0; i < s.size; ++i) g[i] += r[s.offset + i];
            };
            std::lock_guard<std::mutex> lock(s.p.data().grad_mutex);
            if (dt == dtype::f32) apply(s.p.grad<float>().data(), recv_f.data());
            else apply(s.p.grad<double>().data(), recv_d.data());
        }
        set_active(false);
        ++st.steps;
        st.ready_in_backward += stats_ready;
        stats_ready = 0;
    }
};

reducer::reducer(parameter_store& ps, const comm& c, std::size_t bucket_bytes) {
    require(c, "reducer");
    if (bucket_bytes == 0) throw value_error("dist::reducer: bucket_bytes must be > 0");
    require_same_layout(ps, c, true, "reducer", bucket_bytes, "bucket_bytes");
    p_ = new impl{ps, c, ps.scalar_type(), ps.size(), 0.0, {}, {}, {}, {}, {}, {}, {}};
    impl& m = *p_;
    m.weight = 1.0 / c.size();
    const std::size_t es = scalar_bytes(m.dt);
    const auto params = ps.parameters();
    std::size_t offset = 0;
    for (auto it = params.rbegin(); it != params.rend(); ++it) {
        if (!it->trainable()) continue;
        const std::size_t n = it->size();
        // A new bucket when this one is non-empty and the parameter would overflow it.
        const bool full = !m.buckets.empty() && (offset + n - m.buckets.back().begin) * es > bucket_bytes;
        if (m.buckets.empty() || (m.buckets.back().params > 0 && full))
            m.buckets.push_back({offset, offset, 0, 0, -1, -1});
        auto& b = m.buckets.back();
        m.by_uid.emplace(it->data().uid, m.slots.size());
        m.slots.push_back({*it, offset, n, m.buckets.size() - 1, false});
        offset += n;
        b.end = offset;
        ++b.params;
    }
    if (m.dt == dtype::f32) m.send_f.assign(offset, 0.f), m.recv_f.assign(offset, 0.f);
    else m.send_d.assign(offset, 0.0), m.recv_d.assign(offset, 0.0);
    stats_.buckets = m.buckets.size();
    stats_.bytes = offset * es;
}

reducer::~reducer() {
    p_->set_active(false);  // a step abandoned (an exception in backward) no longer holds the comm
    delete p_;
}

void reducer::set_weight(double w) {
    if (!std::isfinite(w))
        throw value_error("dist::reducer::set_weight: expected a finite weight, got " + std::to_string(w));
    p_->weight = w;
}

void reducer::attach(tape& t) {
    p_->begin("attach");
    std::fill(p_->send_f.begin(), p_->send_f.end(), 0.f);
    std::fill(p_->send_d.begin(), p_->send_d.end(), 0.0);
    p_->tape_dt = t.scalar_type();
    t.set_accumulate_into_parameters(false);
    impl* m = p_;
    t.set_param_grad_hook([m](const parameter& p, const void* g) { m->hook(p, g); }, true);
}

void reducer::finish() {
    if (!p_->active) throw value_error("dist::reducer::finish: no step in progress (call attach() before backward)");
    p_->complete(false, stats_);
}

void reducer::reduce_store() {
    p_->begin("reduce_store");
    for (auto& s : p_->slots) p_->deliver(s, storage_of_grad(s.p), p_->dt);
    p_->complete(true, stats_);
}

}  // namespace seqgrad::dist
