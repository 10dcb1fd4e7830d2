#pragma once
// Part of the backward engine (core/backward.cpp, the only includer): the batched products.
// The weight gradients of all time steps' products into one untimed b become one GEMM over all
// their rows (flush), the input-side gradients of row blocks of one sequence likewise (flush_rows),
// and the products' own gradients get one contiguous home per b so neither has to gather them;
// and gradients handed over as blocks (hands_over); and checkpoint segments recomputed and
// released as the sweep meets them (enter_segment).
// Defined out of the class to keep the sweep itself readable in one file.

namespace seqgrad {
namespace detail {

// An input whose gradient is a block of node i's gradient (op_def::gradient_block: reshape, a
// concat of steps) and that nothing else reads gets that block as its gradient: no copy, and its
// gradient is still its own.
template <class T>
bool backward_engine<T>::hands_over(std::uint32_t i, std::size_t j, std::vector<void*>& g) {
    const detail::node& n = nodes_[i];
    const std::uint32_t* ins = t_.input_ids_.data() + n.first_input;
    const detail::node& m = nodes_[ins[j]];
    // Not a parameter leaf: clipping, hooks and reducers edit its gradient in place.
    if (!t_.optimize_ || t_.ckpt_ || m.shared || g[ins[j]] || m.kind == node_kind::parameter || clips(m, n))
        return false;
    if (shapes_of_ != i) {  // once per node, not per input (a concat of T steps)
        shapes_ = input_shapes(n, ins);
        shapes_of_ = i;
    }
    const std::size_t off = n.op->gradient_block(shapes_, *n.at, j);
    if (off == op_def::no_view) return false;
    if (off > n.shp.size() || m.shp.size() > n.shp.size() - off)  // a declaration past the output's gradient
        throw op_error(n.op->name + ": its gradient block " + std::to_string(off) + " for input " + std::to_string(j) +
                       " of shape " + m.shp.str() + " points past the output's gradient of shape " + n.shp.str() +
                       " (expected offset + input size <= " + std::to_string(n.shp.size()) + ")");
    T* block = static_cast<T*>(g[i]) + off;
    // An input with a home of its own keeps it (the batched GEMMs read it there), unless the
    // block is that home (plan_homes forwarded it).
    if (T* h = home(ins[j], g); h && h != block) return false;
    g[ins[j]] = block;
    return true;
}

template <class T>
void backward_engine<T>::flush_rows(std::vector<void*>& g, arena& mem) {
    while (!deferred_rows_.empty()) {
        const std::uint32_t b = deferred_rows_.front().b;
        const bool tb = deferred_rows_.front().trans_b;
        const detail::node& w = nodes_[b];
        const std::size_t k = tb ? w.shp[1] : w.shp[0], nn = tb ? w.shp[0] : w.shp[1];
        std::size_t rows = 0;
        for (const auto& d : deferred_rows_)
            if (d.b == b && d.trans_b == tb) rows += d.rows;
        // The kept blocks in list order (the reverse of tape order); gradients adjacent in memory
        // in that order (in their home) are read in place.
        auto select = [&](const deferred_rows& d) { return d.b == b && d.trans_b == tb; };
        const bool cg = adjacent(deferred_rows_, select, &deferred_rows::g, nn);
        T* pg = nullptr;
        if (cg) {
            for (const auto& d : deferred_rows_)
                if (select(d)) pg = const_cast<T*>(d.g);
        } else {
            pg = scratch_.alloc_n<T>(rows * nn);
            std::size_t r = rows;
            for (const auto& d : deferred_rows_)
                if (select(d)) {
                    r -= d.rows;
                    std::copy_n(d.g, d.rows * nn, pg + r * nn);
                }
        }
        // When no block's rows have a gradient yet, the product is written straight into the
        // gradient arena and each block's rows are its gradient: no copy (a serial pass over
        // T*B rows; char_b32's LM on one thread +1.9%, median of 8 alternating pairs, on two
        // within noise). Not under checkpointing, whose segments keep gradients in arenas of
        // their own.
        bool fresh = !t_.ckpt_;
        for (const auto& d : deferred_rows_) fresh = fresh && !(select(d) && g[d.a]);
        T* pd = fresh ? mem.alloc_n<T>(rows * k) : scratch_.alloc_n<T>(rows * k);
        // d(rows of a) = g op(b)^T: b stored [k, n] gives g b^T; transposed ([n, k]), g b.
        detail::gemm(false, !tb, rows, k, nn, T(1), pg, static_cast<const T*>(w.value), T(0), pd);
        std::size_t r = rows;
        for (const auto& d : deferred_rows_) {
            if (d.b != b || d.trans_b != tb) continue;
            r -= d.rows;
            T* src = pd + r * k;
            deferred_flag_[d.a] &= ~2;
            const std::size_t sz = d.rows * k;
            if (!g[d.a] && fresh) {
                g[d.a] = src;
            } else if (!g[d.a]) {
                T* dst = t_.grad_alloc<T>(d.a, mem, sz);
                std::copy_n(src, sz, dst);
                g[d.a] = dst;
            } else {
                T* dst = static_cast<T*>(g[d.a]);
                for (std::size_t q = 0; q < sz; ++q) dst[q] += src[q];
            }
        }
        std::erase_if(deferred_rows_, [b, tb](const deferred_rows& d) { return d.b == b && d.trans_b == tb; });
        scratch_.reset();
    }
}

template <class T>
void backward_engine<T>::plan_homes(std::uint32_t root) {
    auto& home = t_.grad_home_;
    home.clear();
    t_.opt_counts_.gradient_homes = 0;
    t_.opt_counts_.gradients_transposed = 0;
    t_.opt_counts_.activations_folded = 0;
    t_.opt_counts_.steps_chained = 0;
    t_.opt_counts_.handed_over = 0;
    t_.folded_into_.clear();
    if (!t_.optimize_ || t_.ckpt_ || t_.check_finite_ || t_.products_.size() < 2) return;
    struct group {
        std::uint32_t b;
        std::int64_t tb;
        std::size_t cols, rows = 0, count = 0;
        T* block = nullptr;
    };
    std::vector<group> groups;
    auto find = [&](const detail::node& n) -> group* {
        const std::uint32_t b = t_.input_ids_[n.first_input + n.op->product_b];
        for (auto& gr : groups)
            if (gr.b == b && gr.tb == n.at->i[1] && gr.cols == n.shp[1]) return &gr;
        return nullptr;
    };
    // Not a product served from a lookup table: its gradient goes to the table's summed rows
    // (flush_tables), which reads it wherever it is.
    auto eligible = [&](std::uint32_t id) {
        const detail::node& n = nodes_[id];
        return id <= root && n.requires_grad && n.shp.rank() == 2 && n.at->i[0] == 0 &&
               !(n.memo_served && t_.table_memo(id));
    };
    for (std::uint32_t id : t_.products_) {
        if (!eligible(id)) continue;
        const detail::node& n = nodes_[id];
        group* gr = find(n);
        if (!gr) {
            groups.push_back({t_.input_ids_[n.first_input + n.op->product_b], n.at->i[1], n.shp[1]});
            gr = &groups.back();
        }
        gr->rows += n.shp[0];
        ++gr->count;
    }
    bool any = false;
    for (auto& gr : groups)
        if (gr.count > 1) {
            gr.block = t_.grads_.alloc_n<T>(gr.rows * gr.cols);
            any = true;
        }
    if (!any) return;
    home.assign(nodes_.size(), nullptr);
    for (std::uint32_t id : t_.products_) {
        if (!eligible(id)) continue;
        group* gr = find(nodes_[id]);
        if (!gr->block) continue;
        home[id] = gr->block;
        gr->block += nodes_[id].shp.size();
        ++t_.opt_counts_.gradient_homes;
    }
    // A node that will hand its whole gradient to a product with a home (a cell's gate sum
    // x W + h U + b, through each of its sums) gets that home as well, so the gradient is written
    // there once instead of being copied in (hands_over). Readers come after what they read, so
    // one pass in tape order follows a chain of sums. Only one home per node: x W + h U with both
    // products homed forwards the first and copies into the other.
    for (std::uint32_t r = 0; r < root; ++r) {
        const detail::node& n = nodes_[r];
        if (!n.op || !n.op->gradient_block || !n.requires_grad || home[r]) continue;
        const std::uint32_t* ins = t_.input_ids_.data() + n.first_input;
        for (std::size_t j = 0; j < n.num_inputs && !home[r]; ++j) {
            const detail::node& m = nodes_[ins[j]];
            if (!home[ins[j]] || m.shared || m.kind == node_kind::parameter || m.shp.size() != n.shp.size() ||
                clips(m, n))
                continue;
            shapes_ = input_shapes(n, ins);
            if (n.op->gradient_block(shapes_, *n.at, j) == 0) home[r] = home[ins[j]];
        }
    }
    shapes_of_ = UINT32_MAX;
}

// The input-side gradient G W^T of a product x W of a few rows by an untimed weight stored
// [k, n] (a cell's weights in a user's layout, [in, out]) reads one packed transposed copy of W
// per tape on the own small-product kernel, where OpenBLAS would pack W at every step. Only in the serial
// sweep of the tape's own table (the copy is made on first use).
template <class T>
const T* backward_engine<T>::weight_transposed(const detail::node& n, std::uint32_t b, const std::vector<void*>& g) {
    const detail::node& w = nodes_[b];
    if (!t_.optimize_ || t_.ckpt_ || &g != &t_.grad_table_ || n.at->i[0] != 0 || n.at->i[1] != 0 || w.step >= 0 ||
        !w.value || w.shp.rank() != 2 || n.shp.rank() != 2 || !detail::small_gemm_kernels())
        return nullptr;
    const std::size_t rows = n.shp[0], k = w.shp[0];
    if (rows < 2 || rows > 64 || k % (64 / sizeof(T)) != 0) return nullptr;
    ++t_.opt_counts_.gradients_transposed;
    return t_.packed_transpose<T>(b);
}

template <class T>
void backward_engine<T>::flush(std::uint32_t b, std::vector<void*>& g, arena& mem) {
    deferred_flag_[b] &= ~1;
    const detail::node& w = nodes_[b];
    for (int tb = 0; tb < 2; ++tb) {
        std::size_t rows = 0, count = 0;
        const deferred* one = nullptr;
        for (const auto& d : deferred_)
            if (d.b == b && d.trans_b == (tb != 0)) {
                rows += d.rows;
                ++count;
                one = &d;
            }
        if (!count) continue;
        // Stored b is [k, n] (or [n, k] transposed); a rows have k entries, g rows n.
        const std::size_t k = tb ? w.shp[1] : w.shp[0], nn = tb ? w.shp[0] : w.shp[1];
        const T* a = one->a;
        const T* gy = one->g;
        if (count > 1) {
            // In tape order (the list is in reverse), so the sum's order reads naturally. Blocks
            // already adjacent in memory in that order (views of one sequence, gradients in their
            // home) are read in place; the others are gathered.
            auto select = [&](const deferred& d) { return d.b == b && d.trans_b == (tb != 0); };
            const bool ca = adjacent(deferred_, select, &deferred::a, k),
                       cg = adjacent(deferred_, select, &deferred::g, nn);
            T* pa = ca ? nullptr : scratch_.alloc_n<T>(rows * k);
            T* pg = cg ? nullptr : scratch_.alloc_n<T>(rows * nn);
            std::size_t r = rows;
            for (const auto& d : deferred_)
                if (select(d)) {
                    r -= d.rows;
                    if (ca) a = d.a;
                    else std::copy_n(d.a, d.rows * k, pa + r * k);
                    if (cg) gy = d.g;
                    else std::copy_n(d.g, d.rows * nn, pg + r * nn);
                }
            if (!ca) a = pa;
            if (!cg) gy = pg;
        }
        T beta;
        T* db = gemm_target(b, g, mem, beta);
        if (!tb) detail::gemm(true, false, k, nn, rows, T(1), a, gy, beta, db);
        else detail::gemm(true, false, nn, k, rows, T(1), gy, a, beta, db);
        scratch_.reset();
    }
    std::erase_if(deferred_, [b](const deferred& d) { return d.b == b; });
}

// Work handed to another thread (chain_ctx::hand_over: lstm_step's dW_hh at small batches) writes
// only a parameter leaf's gradient, which nothing reads before the sweep ends but the hook, which
// waits for it. One piece of work at a time: the sweep after a recurrence holds little more than
// one weight gradient's worth of work for this thread, and work queued behind it would keep this
// one waiting.
template <class T>
bool backward_engine<T>::handing(const std::vector<void*>& g) const {
    return gradient_overlap() && t_.optimize_ && !t_.ckpt_ && &g == &t_.grad_table_ && split_ways() > 1 &&
           executor_threads_blas();
}

template <class T>
bool backward_engine<T>::hand_over(std::uint32_t id, std::function<void()> f) {
    if (!overlap_.run(std::move(f))) return false;
    handed_.push_back(id);
    ++t_.opt_counts_.handed_over;
    return true;
}

// Before anything else reads or adds into id's gradient.
template <class T>
void backward_engine<T>::settle(std::uint32_t id) {
    if (std::find(handed_.begin(), handed_.end(), id) == handed_.end()) return;
    settle_all();
}

template <class T>
void backward_engine<T>::settle_all() {
    handed_.clear();
    overlap_.wait();
}

template <class T>
bool backward_engine<T>::table_defers(std::uint32_t i, const detail::node& n, const std::uint32_t* ins, std::size_t k,
                                      const void* g, bool bias) {
    if (!t_.optimize_ || t_.check_finite_ || !g) return false;
    const op_def& op = *n.op;
    const std::uint32_t a = ins[op.product_a], b = ins[op.product_b];
    for (std::size_t q = 0; q < k; ++q)
        if (static_cast<int>(q) != op.product_a && static_cast<int>(q) != op.product_b && (ins[q] == a || ins[q] == b))
            return false;
    if (a == b || clips(nodes_[a], n)) return false;
    const tape::product_memo* memo = t_.table_memo(i);
    if (!memo) return false;
    // The product's rows of the lookup: a is a view of the gathered rows.
    const std::size_t k_in = nodes_[a].shp[1];
    const auto off = static_cast<std::size_t>(static_cast<const T*>(nodes_[a].value) -
                                              static_cast<const T*>(nodes_[memo->base].value));
    if (deferred_flag_.empty()) deferred_flag_.assign(nodes_.size(), 0);
    deferred_flag_[memo->b] |= 4;
    deferred_flag_[memo->table] |= 4;
    // A row bias: its gradient, the column sums of g, is that of the table's summed rows.
    std::uint32_t c = deferred_table::no_bias;
    if (bias) {
        const detail::node& cn = nodes_[ins[op.product_c]];
        if (cn.shp.size() == n.shp[1] && cn.shp.size() != n.shp.size() && !clips(cn, n)) {
            c = ins[op.product_c];
            deferred_flag_[c] |= 4;
        }
    }
    deferred_tables_.push_back({memo, static_cast<const T*>(g), off / k_in, n.shp[0], c});
    // The product's rows of the lookup, and the views in between, get no gradient from it
    // (dE is formed from the table's summed rows): tape::grad refuses them instead of showing
    // what other readers wrote.
    for (std::uint32_t v = a; v < t_.table_bypassed_.size(); v = t_.input_ids_[nodes_[v].first_input]) {
        std::atomic_ref<char>(t_.table_bypassed_[v]).store(1, std::memory_order_relaxed);
        if (v == memo->base || !nodes_[v].view || nodes_[v].num_inputs == 0) break;
    }
    return true;
}

template <class T>
void backward_engine<T>::flush_tables(std::vector<void*>& g, arena& mem) {
    while (!deferred_tables_.empty()) {
        const tape::product_memo* memo = deferred_tables_.front().memo;
        const detail::node &tab = nodes_[memo->table], &w = nodes_[memo->b];
        const std::span<const int> ids = nodes_[memo->base].at->ints;
        const std::size_t v = tab.shp[0], k = tab.shp[1], cols = memo->trans_b ? w.shp[0] : w.shp[1];
        T* dp = scratch_.alloc_n<T>(v * cols);
        // Each id's rows are summed in tape order (the list is in reverse), so the sums do not
        // depend on the sweep. Split across threads by ranges of ids, each range's rows summed by
        // one thread in that order: the same sums on any number of threads (char_b32 LM on 2
        // threads: +1.5% tokens/s, median of 10 alternating pairs, with the products below). Split
        // by columns instead, each thread read half of every gradient row and 2 threads took longer.
        std::size_t total = 0;
        std::vector<std::size_t> bound(1, 0);
        for (const auto& d : deferred_tables_)
            if (d.memo == memo) total += d.rows;
        const std::size_t parts = total * cols >= min_split_entries ? std::min<std::size_t>(split_ways(), v) : 1;
        if (parts > 1) {  // ranges of about equal rows
            std::vector<std::size_t> count(v, 0);
            for (const auto& d : deferred_tables_)
                if (d.memo == memo)
                    for (std::size_t r = 0; r < d.rows; ++r) ++count[static_cast<std::size_t>(ids[d.first + r])];
            for (std::size_t id = 0, seen = 0; id < v && bound.size() < parts; ++id) {
                seen += count[id];
                if (seen * parts >= total * bound.size()) bound.push_back(id + 1);
            }
        }
        bound.push_back(v);
        parallel_for(bound.size() - 1, [&](std::size_t p) {
            const std::size_t lo = bound[p], hi = bound[p + 1];
            std::fill(dp + lo * cols, dp + hi * cols, T(0));
            for (auto it = deferred_tables_.rbegin(); it != deferred_tables_.rend(); ++it) {
                if (it->memo != memo) continue;
                for (std::size_t r = 0; r < it->rows; ++r) {
                    const auto id = static_cast<std::size_t>(ids[it->first + r]);
                    if (id < lo || id >= hi) continue;
                    T* dst = dp + id * cols;
                    const T* src = it->g + r * cols;
                    for (std::size_t j = 0; j < cols; ++j) dst[j] += src[j];
                }
            }
        });
        // Row biases: one for every product of this table gets the column sums of dP (V rows, not
        // the T*B rows of the products' gradients); otherwise each bias its product's sums.
        const std::uint32_t c0 = deferred_tables_.front().c;
        bool one = c0 != deferred_table::no_bias;
        for (const auto& d : deferred_tables_) one = one && (d.memo != memo || d.c == c0);
        auto add_sums = [&](std::uint32_t c, const T* rows, std::size_t n) {
            T b;
            T* dc = gemm_target(c, g, mem, b);
            if (b == T(0)) std::fill(dc, dc + cols, T(0));
            for (std::size_t r = 0; r < n; ++r)
                for (std::size_t j = 0; j < cols; ++j) dc[j] += rows[r * cols + j];
        };
        if (one) add_sums(c0, dp, v);
        else
            for (auto it = deferred_tables_.rbegin(); it != deferred_tables_.rend(); ++it)
                if (it->memo == memo && it->c != deferred_table::no_bias) add_sums(it->c, it->g, it->rows);
        const T* e = static_cast<const T*>(tab.value);
        const T* wv = static_cast<const T*>(w.value);
        T beta_w = 0, beta_e = 0;
        T* dw = w.requires_grad ? gemm_target(memo->b, g, mem, beta_w) : nullptr;
        T* de = tab.requires_grad ? gemm_target(memo->table, g, mem, beta_e) : nullptr;
        // y = E op(b): b stored [k, cols] gets E^T dP; transposed ([cols, k]), dP^T E.
        auto gemm_w = [&] {
            if (!memo->trans_b) detail::gemm(true, false, k, cols, v, T(1), e, dp, beta_w, dw);
            else detail::gemm(true, false, cols, k, v, T(1), dp, e, beta_w, dw);
        };
        auto gemm_e = [&] { detail::gemm(false, !memo->trans_b, v, k, cols, T(1), dp, wv, beta_e, de); };
        // Two products too small to split (V rows inner: 8.5 MFLOP each at char_b32) run side by
        // side, one thread each, when together they are worth a region.
        if (dw && de && split_ways() > 1 && 4.0 * double(v) * double(k) * double(cols) >= split_min_flops)
            parallel_for(2, [&](std::size_t p) { p ? gemm_e() : gemm_w(); });
        else {
            if (dw) gemm_w();
            if (de) gemm_e();
        }
        std::erase_if(deferred_tables_, [memo](const deferred_table& d) { return d.memo == memo; });
        scratch_.reset();
    }
}

// Checkpointing (checkpoint_bptt).
//
// The sweep meets each segment's nodes last to first. At the first node whose value was
// released, the segment's values are recomputed (tape::recompute_segment); once the sweep has
// passed a segment's first node, the kept products are done and the segment's values and
// gradients released.

template <class T>
void backward_engine<T>::enter_segment(std::uint32_t i, std::vector<void*>& g, arena& mem) {
    if (release_order_.empty() && release_pos_ == 0) {
        // Segments by their first node, last first: the sweep is done with a segment once it
        // passes that node (a segment's nodes need not be contiguous on the tape: per-step
        // losses recorded after the whole unroll revisit every segment).
        const auto& segs = t_.segments_;
        main_end_.assign(segs.size(), 0);
        for (std::size_t s = 0; s < segs.size(); ++s) {
            if (segs[s].nodes.empty()) continue;
            release_order_.push_back({segs[s].nodes.front(), static_cast<int>(s)});
            // Its nodes recorded after the next segment began (per-step losses summed after the
            // whole unroll): the sweep meets them long before the rest, and recomputes the segment
            // for them. Once it has passed the lowest of them, the values go again (recomputed once
            // more when the sweep reaches the segment itself); kept, every segment's values stayed
            // at once, more memory than plain BPTT's.
            std::uint32_t next = UINT32_MAX;
            for (std::size_t r = s + 1; r < segs.size() && next == UINT32_MAX; ++r)
                if (!segs[r].nodes.empty()) next = segs[r].nodes.front();
            const auto late = std::upper_bound(segs[s].nodes.begin(), segs[s].nodes.end(), next);
            if (late == segs[s].nodes.end()) continue;
            main_end_[s] = late == segs[s].nodes.begin() ? 0 : *(late - 1);
            late_order_.push_back({*late, static_cast<int>(s)});
        }
        std::sort(release_order_.begin(), release_order_.end(), std::greater<>());
        std::sort(late_order_.begin(), late_order_.end(), std::greater<>());
    }
    bool flushed = false;
    for (; late_pos_ < late_order_.size() && late_order_[late_pos_].first > i; ++late_pos_) {
        const int s = late_order_[late_pos_].second;
        if (i <= main_end_[s] || !t_.segments_[s].values) continue;  // reached the segment itself, or nothing kept
        if (!flushed) {
            flush_all(g, mem);  // kept products point into the values released here
            flushed = true;
        }
        t_.release_segment(s, false);  // its gradients so far stay: the segment's own nodes read them
    }
    for (; release_pos_ < release_order_.size() && release_order_[release_pos_].first > i; ++release_pos_) {
        if (!flushed) {
            flush_all(g, mem);  // kept products point into the values and gradients released here
            flushed = true;
        }
        t_.release_segment(release_order_[release_pos_].second);
    }
    // Its value and its inputs' (a value kept out of its segment still reads released inputs).
    t_.ensure_value(i);
    for (std::uint32_t in : t_.inputs_of(i)) t_.ensure_value(in);
}

}  // namespace detail
}  // namespace seqgrad
