#pragma once
// Part of the backward engine (core/backward.cpp, the only includer): backward_engine::partitioned,
// the concurrent passes of truncated BPTT windows and of independent groups (the directions of a
// bidirectional layer); see the top of backward.cpp.

namespace seqgrad {
namespace detail {

template <class T>
template <class Policy>
bool backward_engine<T>::partitioned(std::uint32_t root, const Policy& pol, std::size_t parts) {
    auto& g = t_.grad_table_;
    // D: shared nodes downstream of a partitioned node.
    std::vector<char> in_d(root + 1, 0);
    bool separable = true;
    for (std::uint32_t i = 0; i <= root; ++i) {
        const auto& n = nodes_[i];
        const int pn = pol.part(n);
        for (std::uint32_t id : t_.inputs_of(i)) {
            const int pm = pol.part(nodes_[id]);
            if (pn < 0 && (pm >= 0 || in_d[id])) in_d[i] = 1;
            if (pn >= 0 && pm < 0 && in_d[id]) separable = false;  // a shared value between parts
            if (!pol.cuts() && pn >= 0 && pm >= 0 && pm != pn) separable = false;
        }
    }
    auto all = [](std::uint32_t, std::uint32_t) { return true; };
    if (!separable) {
        if constexpr (std::is_same_v<Policy, window_policy>) {
            if (k2_ > k1_)
                throw graph_error("truncate_bptt(" + std::to_string(k1_) + ", " + std::to_string(k2_) +
                                  "): an untimed node computed from one time step feeds a later one, so the "
                                  "windows cannot be separated; use k1 == k2 or mark that node with a time step");
            // k1 == k2 needs only the cut edges: one serial sweep.
            auto keep = [&](std::uint32_t m, std::uint32_t c) {
                const int a = nodes_[m].step, b = nodes_[c].step;
                return a < 0 || b < 0 || window_of(a) == window_of(b);
            };
            sweep_range(root, g, t_.grads_, keep);
        } else {
            sweep_range(root, g, t_.grads_, all);
        }
        return false;
    }
    // Phase D: serial, into the main table.
    for (std::uint32_t i = root + 1; i-- > 0;)
        if (pol.part(nodes_[i]) < 0 && in_d[i]) visit(i, g, t_.grads_, all);
    flush_all(g, t_.grads_);
    // One pass per part, each with its own table and arena.
    t_.folded_into_.resize(nodes_.size(), tape::not_folded);  // the passes fold concurrently
    while (t_.pass_mem_.size() < parts) t_.pass_mem_.push_back(std::make_unique<arena>());
    std::vector<std::vector<void*>> tables(parts);
    auto pass = [&](std::size_t w) {
        auto& gw = tables[w];
        gw.assign(root + 1, nullptr);
        arena& mem = *t_.pass_mem_[w];
        for (std::uint32_t i = 0; i <= root; ++i) {
            if (g[i] && pol.part(nodes_[i]) >= 0 && pol.seed(nodes_[i], w)) {
                const std::size_t sz = nodes_[i].shp.size();
                T* seed = mem.alloc_n<T>(sz);
                std::copy_n(static_cast<const T*>(g[i]), sz, seed);
                gw[i] = seed;
            }
        }
        auto keep = [&](std::uint32_t m, std::uint32_t) { return pol.keep(nodes_[m], w); };
        backward_engine<T> worker(t_, plan_);  // scratch vectors of its own
        for (std::uint32_t i = root + 1; i-- > 0;)
            if (pol.part(nodes_[i]) >= 0 && pol.sweep(nodes_[i], w)) worker.visit(i, gw, mem, keep);
        worker.flush_all(gw, mem);
    };
    const bool parallel = detail::parallel_for(parts, pass);
    // Reduce the passes' contributions to shared nodes in part order, then sweep those.
    for (std::uint32_t i = 0; i <= root; ++i) {
        if (pol.part(nodes_[i]) >= 0 || in_d[i]) continue;
        const std::size_t sz = nodes_[i].shp.size();
        for (std::size_t w = 0; w < parts; ++w) {
            const T* src = static_cast<const T*>(tables[w][i]);
            if (!src) continue;
            T* dst = static_cast<T*>(g[i]);
            if (!dst) {
                dst = t_.grads_.alloc_n<T>(sz);
                std::fill(dst, dst + sz, T(0));
                g[i] = dst;
            }
            for (std::size_t q = 0; q < sz; ++q) dst[q] += src[q];
        }
    }
    for (std::uint32_t i = root + 1; i-- > 0;)
        if (pol.part(nodes_[i]) < 0 && !in_d[i]) visit(i, g, t_.grads_, all);
    flush_all(g, t_.grads_);
    // Partitioned nodes (for inspection: tape::grad, gradient_flow) read every pass's gradient at
    // them, summed in part order: a window reaching back past its own steps (k2 > k1) adds to
    // earlier windows' nodes, and the owner's share alone under-reported them. One pass: no copy.
    for (std::uint32_t i = 0; i <= root; ++i) {
        if (pol.part(nodes_[i]) < 0) continue;
        const std::size_t sz = nodes_[i].shp.size();
        void* only = nullptr;
        T* sum = nullptr;
        for (std::size_t w = 0; w < parts; ++w) {
            const T* src = static_cast<const T*>(tables[w][i]);
            if (!src) continue;
            if (!only) {
                only = tables[w][i];
                continue;
            }
            if (!sum) sum = std::copy_n(static_cast<const T*>(only), sz, t_.grads_.alloc_n<T>(sz)) - sz;
            for (std::size_t q = 0; q < sz; ++q) sum[q] += src[q];
        }
        g[i] = sum ? sum : only;
    }
    return parallel;
}

}  // namespace detail
}  // namespace seqgrad
