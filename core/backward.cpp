// The backward engine: one reverse loop over the tape, plus the transforms of a backward_plan.
//
// Truncated BPTT cuts every edge between time steps in different windows. The graph then falls
// into three parts: D, untimed nodes computed from timed ones (the total loss, a projection over
// all steps); the windows' timed nodes; U, untimed nodes the windows read (parameters, a hoisted
// input projection). D is swept first, serially; then each window in a pass of its own, with its
// own gradient table and arena, in parallel; the passes' contributions to U are summed in window
// order (so the result does not depend on scheduling or thread count); then U is swept.
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>

#include "blas.hpp"
#include "broadcast.hpp"
#include "tape.hpp"

namespace seqgrad {
namespace detail {

template <class T>
class backward_engine {
public:
    backward_engine(tape& t, const backward_plan& plan) : t_(t), plan_(plan), nodes_(t.nodes_) {
        for (const auto& x : plan.transforms()) {
            const auto [k1, k2] = x->windows();
            if (k1) {
                if (k2 && k2 < k1)  // truncate_bptt refuses these; a user's transform may return them
                    throw value_error("backward: " + x->name() + " partitions into windows of " + std::to_string(k1) +
                                      " steps sending gradients back " + std::to_string(k2) +
                                      " steps (expected k2 >= k1, or 0 for k2 = k1)");
                k1_ = k1;
                k2_ = std::max(k1, k2);
            }
            if (x->edits_state_edges()) edge_transforms_.push_back(x.get());
        }
    }

    template <class S>
    backward_stats run(std::uint32_t root, const S* seed) {
        backward_stats st;
        const std::size_t n = nodes_.size();
        auto& g = t_.grad_table_;
        g.assign(n, nullptr);
        t_.grads_.reset();
        for (auto& m : t_.pass_mem_) m->reset();
        plan_homes(root);
        detail::node& r = nodes_[root];
        if (r.requires_grad) {
            T* s = t_.grads_.alloc_n<T>(r.shp.size());
            std::copy(seed, seed + r.shp.size(), s);  // converted where the seed's type is not T
            // Named here, or the first op's backward would be blamed for the seed's NaN.
            if (t_.check_finite_) t_.check_values(root, s, r.shp.size(), "seed gradient (given to backward)");
            g[root] = s;
            const int steps = k1_ ? num_steps(root) : 0;
            if (k1_ && r.step >= 0)
                throw graph_error("truncate_bptt: the loss " + t_.describe(root) + " belongs to time step " +
                                  std::to_string(r.step) +
                                  "; truncation cuts every edge between windows of steps, "
                                  "so sum per-step losses outside the step scopes (an untimed total)");
            if (t_.ckpt_ && k1_)
                throw graph_error(
                    "backward: checkpoint_bptt does not combine with truncate_bptt (truncated windows "
                    "already bound the memory a backward needs)");
            // Full BPTT where every window reaches step 0 (window_lo): k2 >= the steps rounded up
            // to whole windows, so a shorter last window is cut the same for every k2.
            const std::size_t windows = k1_ ? (static_cast<std::size_t>(steps) + k1_ - 1) / k1_ : 0;
            if (k1_ == 0 || k2_ >= windows * k1_ || steps <= static_cast<int>(k1_)) {
                // Checkpointed tapes sweep once, segment after segment (groups run in that sweep).
                if (t_.ckpt_ || !grouped(root, st))
                    sweep_range(
                        root, g, t_.grads_, [](std::uint32_t, std::uint32_t) { return true; }, true);
            } else {
                st.windows = windows;
                st.parallel = truncated(root, st.windows);
            }
        }
        // Other nodes' gradients are read from the table (tape::grad); a pass over every node here
        // would cost as much as a cheap node's backward.
        if (t_.ckpt_)  // what is left of the segments' gradients goes too (see checkpoint_bptt)
            for (std::size_t s = 0; s < t_.segments_.size(); ++s)
                if (t_.segments_[s].grads) t_.release_segment(static_cast<int>(s));
        for (std::uint32_t id : t_.param_ids_) nodes_[id].grad = g[id];
        for (const auto& x : plan_.transforms()) x->after_sweep(t_);
        finish_parameters(st);
        return st;
    }

private:
    int num_steps(std::uint32_t root) const {
        int s = -1;
        for (std::uint32_t i = 0; i <= root; ++i) s = std::max(s, nodes_[i].step);
        return s + 1;
    }

    // ---- one node --------------------------------------------------------------------------------

    /// Backward of node i: contributions into its inputs' entries of g, allocated from mem.
    /// keep(input, consumer) says whether gradient flows along that edge.
    template <class Keep>
    void sweep_one(std::uint32_t i, std::vector<void*>& g, arena& mem, Keep& keep) {
        detail::node& n = nodes_[i];
        if (!g[i] || !n.op || !n.requires_grad) return;
        const op_def& op = *n.op;
        const std::uint32_t* ins = t_.input_ids_.data() + n.first_input;
        const std::size_t k = n.num_inputs;
        constexpr std::size_t inline_inputs = 8;
        // Not value-initialised: entries [0, k) are all set below (this runs once per node).
        union target_slots {
            tensor_ref<T> r[inline_inputs];
            target_slots() {}
        } slots;
        bool acc_inline[inline_inputs];
        T* pending_inline[inline_inputs];
        union fold_slots {  // activations folded into this backward (fold_into); [0, k) set below
            fold_slot<T> f[inline_inputs];
            fold_slots() {}
        } fold_mem;
        fold_slot<T>* folds = fold_mem.f;
        bool folding = false;
        tensor_ref<T>* targets = slots.r;
        bool* acc = acc_inline;
        T** pending = pending_inline;
        if (k > inline_inputs) {
            targets_heap_.assign(k, {});
            acc_heap_.assign(k, 0);
            pending_heap_.assign(k, nullptr);
            targets = targets_heap_.data();
            acc = reinterpret_cast<bool*>(acc_heap_.data());
            pending = pending_heap_.data();
        }
        bool any = false;
        const int c_in = op.product_c;  // a row bias's gradient may go with the table's (flush_tables)
        const bool c_ok = c_in >= 0 && nodes_[ins[c_in]].requires_grad && keep(ins[c_in], i);
        const bool tabled = n.memo_served && op.product_a >= 0 && table_defers(i, n, ins, k, g[i], c_ok);
        const bool tabled_c = tabled && deferred_tables_.back().c != deferred_table::no_bias;
        for (std::size_t j = 0; j < k; ++j) {
            detail::node& m = nodes_[ins[j]];
            pending[j] = nullptr;
            acc[j] = false;
            targets[j] = {};
            if (j < inline_inputs) folds[j] = {};
            if (!m.requires_grad || !keep(ins[j], i)) continue;
            if (!handed_.empty()) settle(ins[j]);
            if (op.gradient_block && hands_over(i, j, g)) continue;
            if (tabled && (static_cast<int>(j) == op.product_a || static_cast<int>(j) == op.product_b)) continue;
            if (tabled_c && static_cast<int>(j) == c_in) continue;
            // repeated: an earlier input is this one (its contribution goes through scratch);
            // shared: any other input is (the product batching then leaves it alone).
            bool repeated = false, shared = false;
            for (std::size_t q = 0; q < k; ++q)
                if (q != j && ins[q] == ins[j]) {
                    shared = true;
                    repeated = repeated || q < j;
                }
            if (static_cast<int>(j) == op.product_b && defers(n, m, shared)) {
                defer(ins[j], ins[op.product_a], g[i], n);
                continue;
            }
            if (static_cast<int>(j) == op.product_a && defers_rows(n, ins[j], shared)) {
                defer_rows(ins[j], ins[op.product_b], g[i], n);
                continue;
            }
            any = true;
            if (k <= inline_inputs && fold_into(i, j, g, mem, keep, targets, acc, folds)) {
                folding = true;
                continue;
            }
            const bool reduce = op.broadcasting && !op.reduces_broadcast && !(m.shp == n.shp);
            if (reduce || repeated || clips(m, n)) {
                // Written to scratch, then summed (and clipped) into the input's gradient.
                const seqgrad::shape& s = reduce ? n.shp : m.shp;
                pending[j] = t_.grad_alloc<T>(ins[j], mem, s.size());
                targets[j] = {pending[j], s};
            } else {
                if (!g[ins[j]]) g[ins[j]] = home_or_alloc(ins[j], m.shp.size(), g, mem, g[i]);
                else acc[j] = true;
                targets[j] = {static_cast<T*>(g[ins[j]]), m.shp};
            }
        }
        if (!any) return;
        if (!op.differentiable())
            throw graph_error("backward: " + t_.describe(i) + ": op '" + op.name +
                              (op.gradient == gradient_kind::not_implemented ? "' has no gradient implemented yet"
                                                                             : "' has no gradient") +
                              ", but an input needs one (wrap that input in stop_gradient if no gradient should flow)");
        detail::scratch_source<T> scratch{&t_, ins, targets, acc, pending, &mem, folding ? folds : nullptr, &g};
        backward_ctx<T> c{nodes_.data(),
                          ins,
                          k,
                          tensor_ref<const T>{static_cast<const T*>(n.value), n.shp},
                          tensor_ref<const T>{static_cast<const T*>(g[i]), n.shp},
                          *n.at,
                          op,
                          targets,
                          acc,
                          &scratch,
                          &detail::scratch_source<T>::swap};
        c.self = &n;
        if (folding) {
            c.folds = folds;
            c.unfold = &detail::scratch_source<T>::unfold;
        }
        if (op.product_a >= 0 && targets[op.product_a].data) c.b_packed = weight_transposed(n, ins[op.product_b], g);
        {
            const detail::step_work in_step(n.step >= 0);
            op.backward<T>()(c);
        }
        if (folding) folded(i, g, targets, folds);
        for (std::size_t j = 0; j < k; ++j) {
            if (!pending[j]) continue;
            detail::node& m = nodes_[ins[j]];
            const std::size_t ms = m.shp.size();
            T* src = pending[j];
            if (!(targets[j].shape == m.shp)) {
                T* reduced = t_.grad_alloc<T>(ins[j], mem, ms);
                detail::sum_to_shape(src, n.shp, m.shp, reduced);
                src = reduced;
            }
            if (clips(m, n)) {
                const state_edge e{ins[j], i, m.step, n.step};
                for (const transform* x : edge_transforms_) x->on_state_edge(e, gradient_ref{t_.dt_, src, ms});
            }
            T* dst = static_cast<T*>(g[ins[j]]);
            if (!dst) {
                if (T* h = home(ins[j], g); h && h != g[i]) {
                    std::copy_n(src, ms, h);
                    g[ins[j]] = h;
                } else {
                    g[ins[j]] = src;  // first contribution: the scratch becomes the gradient
                }
                continue;
            }
            for (std::size_t q = 0; q < ms; ++q) dst[q] += src[q];
        }
        if (t_.check_finite_)
            for (std::size_t j = 0; j < k; ++j)
                if (targets[j].data)
                    t_.check_values(ins[j], static_cast<const T*>(g[ins[j]]), nodes_[ins[j]].shp.size(),
                                    ("gradient (from the backward of " + t_.describe(i) + ")").c_str());
    }

    // An input whose gradient is a block of i's (op_def::gradient_block), read by nothing else.
    bool hands_over(std::uint32_t i, std::size_t j, std::vector<void*>& g);
    // Activations read only by node i folded into its backward (backward_fold.hpp).
    template <class Keep>
    bool fold_into(std::uint32_t i, std::size_t j, std::vector<void*>& g, arena& mem, Keep& keep,
                   tensor_ref<T>* targets, bool* acc, fold_slot<T>* folds);
    void folded(std::uint32_t i, std::vector<void*>& g, const tensor_ref<T>* targets, const fold_slot<T>* folds);

    // ---- batched weight gradients ----------------------------------------------------------------
    //
    // A product y = op(a) op(b) whose b is untimed (a weight shared by every time step) does not
    // add a^T g_y into b's gradient at once: the pair is kept, and when the sweep reaches b (or
    // ends) every pair kept for b becomes one GEMM over all their rows, [sum m, k]^T [sum m, n]:
    // T rank-B updates of the weight gradient become one product with inner dimension T*B.

    struct deferred {
        std::uint32_t b;
        const T* a;
        const T* g;
        std::size_t rows;
        bool trans_b;
    };

    bool defers(const detail::node& n, const detail::node& b, bool repeated) const {
        return t_.optimize_ && !repeated && b.step < 0 && n.at->i[0] == 0 && !t_.check_finite_;
    }

    void defer(std::uint32_t b, std::uint32_t a, const void* g, const detail::node& n) {
        if (deferred_flag_.empty()) deferred_flag_.assign(nodes_.size(), 0);
        deferred_flag_[b] |= 1;  // b may also be a product's deferred rows (flag 2)
        deferred_.push_back(
            {b, static_cast<const T*>(nodes_[a].value), static_cast<const T*>(g), n.shp[0], n.at->i[1] != 0});
    }

    // The other side of the same products: when a is a block of rows of a larger matrix (a time
    // step of an input sequence, whose forward product was one GEMM over every step; see
    // tape::batched_product), g_y op(b)^T is kept too, and all such blocks' gradients become one
    // GEMM, [sum m, n] op(b)^T, when the sweep reaches the first of them.
    struct deferred_rows {
        std::uint32_t a, b;
        const T* g;
        std::size_t rows;
        bool trans_b;
    };

    // Only views of a sequence recorded outside the steps: a view into one step's node (a record)
    // has no other steps' rows to batch with.
    bool defers_rows(const detail::node& n, std::uint32_t a_id, bool repeated) const {
        const detail::node& a = nodes_[a_id];
        return t_.optimize_ && a.view && !repeated && n.at->i[0] == 0 && !t_.check_finite_ && !clips(a, n) &&
               nodes_[t_.view_base(a_id)].step < 0;
    }

    void defer_rows(std::uint32_t a, std::uint32_t b, const void* g, const detail::node& n) {
        if (deferred_flag_.empty()) deferred_flag_.assign(nodes_.size(), 0);
        deferred_flag_[a] |= 2;
        deferred_rows_.push_back({a, b, static_cast<const T*>(g), n.shp[0], n.at->i[1] != 0});
    }

    void flush_rows(std::vector<void*>& g, arena& mem);

    // Products served from a table (tape::product_memo::table): their gradient rows are kept and
    // summed by id into [rows of E, n] when the sweep reaches the weight or the table, and the
    // weight's and the table's gradients come from that sum (no gradient flows through the lookup).
    struct deferred_table {
        static constexpr std::uint32_t no_bias = UINT32_MAX;
        const tape::product_memo* memo;
        const T* g;
        std::size_t first, rows;  // the product's rows of the lookup
        std::uint32_t c;          // a row bias (matmul_add's addend) whose gradient is deferred too
    };
    bool table_defers(std::uint32_t i, const detail::node& n, const std::uint32_t* ins, std::size_t k, const void* g,
                      bool bias);
    void flush_tables(std::vector<void*>& g, arena& mem);

    /// Visit node i of a reverse sweep: finish the batched gradients that i is a target of first.
    template <class Keep>
    void visit(std::uint32_t i, std::vector<void*>& g, arena& mem, Keep& keep) {
        if (t_.ckpt_) enter_segment(i, g, mem);
        if (!deferred_flag_.empty() && deferred_flag_[i]) {
            if (deferred_flag_[i] & 1) flush(i, g, mem);
            if (deferred_flag_[i] & 2) flush_rows(g, mem);
            if (deferred_flag_[i] & 4) flush_tables(g, mem);
        }
        sweep_one(i, g, mem, keep);
        // Every reader of a parameter leaf comes later on the tape, so its gradient is final here.
        if (t_.param_hook_ && g[i] && &g == &t_.grad_table_ && nodes_[i].kind == node_kind::parameter) {
            settle(i);
            t_.param_hook_(parameter(nodes_[i].param), g[i]);
        }
    }

    // Checkpointing (checkpoint_bptt): recompute and release segments as the sweep meets them.
    void enter_segment(std::uint32_t i, std::vector<void*>& g, arena& mem);

    /// Whether the selected kept blocks of a list, taken in tape order (the lists are in reverse),
    /// lie one after the other in memory (field f, rows of `cols` entries).
    template <class List, class Select, class Field>
    static bool adjacent(const List& list, Select&& select, Field f, std::size_t cols) {
        const T* next = nullptr;
        for (auto it = list.rbegin(); it != list.rend(); ++it) {
            if (!select(*it)) continue;
            if (next && (*it).*f != next) return false;
            next = (*it).*f + it->rows * cols;
        }
        return true;
    }

    // ---- gradient homes ----------------------------------------------------------------------------
    //
    // The products into one untimed b (a weight used by every time step) get their gradients in
    // one contiguous block, in tape order, so the batched GEMMs over all their rows read the
    // gradients where they are instead of gathering them first.
    void plan_homes(std::uint32_t root);
    const T* weight_transposed(const detail::node& n, std::uint32_t b, const std::vector<void*>& g);

    /// Only in the tape's own table: the passes of a partitioned sweep (truncation windows,
    /// groups) may all contribute to one shared node, each in a table of its own.
    T* home(std::uint32_t id, const std::vector<void*>& g) const {
        if (&g != &t_.grad_table_ || id >= t_.grad_home_.size()) return nullptr;
        return static_cast<T*>(t_.grad_home_[id]);
    }
    /// Not the home when it holds the reader's own gradient (forwarded, then not handed over).
    T* home_or_alloc(std::uint32_t id, std::size_t size, const std::vector<void*>& g, arena& mem, const void* reader) {
        if (T* h = home(id, g); h && h != reader) return h;
        return t_.grad_alloc<T>(id, mem, size);
    }
    /// The gradient of id for a GEMM to add into: beta 1, or beta 0 into new memory when it has none yet.
    T* gemm_target(std::uint32_t id, std::vector<void*>& g, arena& mem, T& beta) {
        settle(id);
        beta = g[id] ? T(1) : T(0);
        if (!g[id]) g[id] = t_.grad_alloc<T>(id, mem, nodes_[id].shp.size());
        return static_cast<T*>(g[id]);
    }

    /// Every pair kept for b as one GEMM per transpose flag, added into b's gradient in g.
    void flush(std::uint32_t b, std::vector<void*>& g, arena& mem);
    bool handing(const std::vector<void*>& g) const;
    bool hand_over(std::uint32_t id, std::function<void()> f);  // id's gradient written on another thread
    void settle(std::uint32_t id);                              // wait for that, if handed over
    void settle_all();

    /// End of a sweep: the remaining kept pairs (weights the sweep does not visit itself).
    void flush_all(std::vector<void*>& g, arena& mem) {
        flush_tables(g, mem);
        flush_rows(g, mem);
        while (!deferred_.empty()) flush(deferred_.front().b, g, mem);
        settle_all();
    }

    /// Whether m -> n is a recorded state edge that a transform edits.
    bool clips(const detail::node& m, const detail::node& n) const {
        return !edge_transforms_.empty() && n.state_from >= 0 && m.step == n.state_from;
    }

    /// chains: the plain sweep of the whole tape, where runs of a recurrence may go as one call.
    template <class Keep>
    void sweep_range(std::uint32_t from, std::vector<void*>& g, arena& mem, Keep&& keep, bool chains = false) {
        for (std::uint32_t i = from + 1; i-- > 0;) {
            // Nodes a few back, both lines of each: a long tape's nodes are not in L2 by now and
            // the hardware prefetchers follow a descending sweep late (bench/overhead, 100,000 nodes).
            if (i >= 8) {
                __builtin_prefetch(&nodes_[i - 8]);
                __builtin_prefetch(reinterpret_cast<const char*>(&nodes_[i - 8]) + 64);
            }
            if (chains && nodes_[i].op && nodes_[i].op->chain_input >= 0)
                if (const std::uint32_t first = chain(i, g, mem); first != no_chain) {
                    i = first;
                    continue;
                }
            visit(i, g, mem, keep);
        }
        flush_all(g, mem);
    }

    // A run of a recurrence's nodes ending at i swept as one call (core/backward_chain.hpp):
    // returns the run's first node, or no_chain when i goes alone.
    static constexpr std::uint32_t no_chain = UINT32_MAX;
    std::uint32_t chain(std::uint32_t i, std::vector<void*>& g, arena& mem);

    // ---- truncated BPTT ---------------------------------------------------------------------------

    /// Window w: losses at steps [w*k1, (w+1)*k1) send gradients back to steps >= (w+1)*k1 - k2
    /// (k2 - k1 steps before the window, a last shorter window too: with k2 = k1, windows apart).
    int window_lo(std::size_t w) const {
        return std::max(0, static_cast<int>((w + 1) * k1_) - static_cast<int>(std::max(k2_, k1_)));
    }
    int window_hi(std::size_t w) const { return static_cast<int>((w + 1) * k1_); }
    std::size_t window_of(int step) const { return static_cast<std::size_t>(step) / k1_; }

    // A partition of the timed/grouped nodes into parts swept as separate passes. `part` < 0 marks
    // shared nodes; `seed` says which nodes take phase D's gradient as the pass's seed; `sweep`
    // which nodes the pass visits; `keep` which inputs it propagates into; `owner` whose gradient a
    // node shows afterwards.
    struct window_policy {
        const backward_engine& e;
        int part(const detail::node& n) const { return n.step < 0 ? -1 : static_cast<int>(e.window_of(n.step)); }
        bool seed(const detail::node& n, std::size_t w) const {
            return n.step >= static_cast<int>(w * e.k1_) && n.step < e.window_hi(w);
        }
        bool sweep(const detail::node& n, std::size_t w) const {
            return n.step >= e.window_lo(w) && n.step < e.window_hi(w);
        }
        bool keep(const detail::node& m, std::size_t w) const { return m.step < 0 || sweep(m, w); }
        bool cuts() const { return true; }  // edges between windows are dropped on purpose
    };
    struct group_policy {
        int part(const detail::node& n) const { return n.group; }
        bool seed(const detail::node& n, std::size_t g) const { return n.group == static_cast<int>(g); }
        bool sweep(const detail::node& n, std::size_t g) const { return n.group == static_cast<int>(g); }
        bool keep(const detail::node& m, std::size_t g) const { return m.group < 0 || m.group == static_cast<int>(g); }
        bool cuts() const { return false; }  // groups must not touch: checked, else one plain sweep
    };

    /// Returns whether the windows ran as separate passes.
    bool truncated(std::uint32_t root, std::size_t windows) { return partitioned(root, window_policy{*this}, windows); }

    /// Groups (group_scope) of nodes that share nothing but ungrouped inputs and outputs, e.g. the
    /// directions of a bidirectional layer, swept concurrently. Returns false (and sweeps nothing)
    /// when there are fewer than two groups.
    bool grouped(std::uint32_t root, backward_stats& st) {
        int groups = t_.max_group_ + 1;  // over the whole tape; exact when the root is the last node
        if (groups >= 2 && root + 1 < nodes_.size()) {
            groups = 0;
            for (std::uint32_t i = 0; i <= root; ++i) groups = std::max(groups, nodes_[i].group + 1);
        }
        if (groups < 2) return false;
        st.windows = static_cast<std::size_t>(groups);
        st.parallel = partitioned(root, group_policy{}, static_cast<std::size_t>(groups));
        return true;
    }

    template <class Policy>
    bool partitioned(std::uint32_t root, const Policy& pol, std::size_t parts);

    // ---- after the sweep ----------------------------------------------------------------------------

    void finish_parameters(backward_stats& st) {
        // Every transform's on_parameters runs, not only where one edits: a transform that only
        // reads the gradients (edits_parameters false) was otherwise never called.
        if (!plan_.empty()) {
            std::vector<parameter_gradient> grads;
            for (std::uint32_t id : t_.param_ids_) {
                const auto& n = nodes_[id];
                if (n.grad) grads.push_back({n.param->name, gradient_ref{t_.dt_, n.grad, n.shp.size()}});
            }
            for (const auto& x : plan_.transforms()) x->on_parameters(grads, st);
        }
        if (t_.accumulate_params_) t_.accumulate_param_grads();
    }

    tape& t_;
    const backward_plan& plan_;
    std::size_t k1_ = 0, k2_ = 0;  // the plan's windows (truncation), 0: none
    std::vector<const transform*> edge_transforms_;
    std::vector<detail::node>& nodes_;
    std::vector<tensor_ref<T>> targets_heap_;
    std::vector<char> acc_heap_;
    std::vector<T*> pending_heap_;
    std::vector<deferred> deferred_;
    std::vector<deferred_rows> deferred_rows_;
    std::vector<deferred_table> deferred_tables_;
    std::vector<char> deferred_flag_;
    detail::shape_scratch shape_room_;
    std::span<const seqgrad::shape> shapes_;  // hands_over's: the inputs' shapes of node shapes_of_
    std::span<const seqgrad::shape> input_shapes(const detail::node& n, const std::uint32_t* ins) {
        seqgrad::shape* out = shape_room_.room(n.num_inputs);
        for (std::size_t q = 0; q < n.num_inputs; ++q) out[q] = nodes_[ins[q]].shp;
        return {out, n.num_inputs};
    }
    std::uint32_t shapes_of_ = UINT32_MAX;
    arena scratch_;  // gathers of the batched gradient products, reset after each
    std::vector<std::pair<std::uint32_t, int>> release_order_;  // checkpointing: (first node, segment)
    std::size_t release_pos_ = 0;
    // Checkpointing: (lowest node recorded after the next segment began, segment), highest first,
    // and the segment's last node before that: see enter_segment.
    std::vector<std::pair<std::uint32_t, int>> late_order_;
    std::vector<std::uint32_t> main_end_;
    std::size_t late_pos_ = 0;
    std::vector<std::uint32_t> handed_;  // nodes whose gradient a handed-over product writes
    overlap overlap_;                    // last: its destructor waits for that work
};

}  // namespace detail
}  // namespace seqgrad

#include "backward_batched.hpp"
#include "backward_chain.hpp"
#include "backward_fold.hpp"
#include "backward_partitioned.hpp"

namespace seqgrad {

void tape::set_param_grad_hook(param_grad_hook h, bool final) {
    param_hook_ = std::move(h);
    hook_final_ = final && param_hook_;
}

template <class S>
backward_stats tape::run_backward(std::uint32_t root, const S* seed, const backward_plan& given) {
    check_params_current("backward");
    detail::sync_fp_mode();
    for (const auto& x : given.transforms())
        if (x->checkpoint_segment() && x->checkpoint_segment() != ckpt_)
            throw graph_error("backward: " + x->name() +
                              " changes what the tape records; set it with "
                              "tape::set_plan before recording instead of passing it to backward");
    backward_plan plan = plan_;
    for (const auto& x : given.transforms())
        if (!x->checkpoint_segment()) plan = plan | backward_plan(x);
    for (const auto& x : plan.transforms()) {
        if (ckpt_ && x->reads_step_gradients())
            throw graph_error("backward: " + x->name() +
                              " reads the time steps' gradients after the sweep; checkpoint_bptt releases them "
                              "during it (record the gradient flow on a tape without checkpointing)");
        if (hook_final_ && x->edits_parameters())
            throw graph_error("backward: " + x->name() +
                              " would edit the parameter gradients after the sweep, but this tape's hook (a "
                              "dist::reducer) takes them during it; clip the summed gradient after "
                              "reducer::finish() (optim::clip_global_norm, optim::clip_value) instead");
    }
    if (has_records_) mark_record_readers(root);
    // Sized before the sweep: truncation windows' passes mark it concurrently (table_defers).
    if (memo_.empty()) table_bypassed_.clear();
    else table_bypassed_.assign(nodes_.size(), 0);
    release_for_backward(root);  // saves: values no backward reads (core/saves.cpp)
    if (dt_ == dtype::f32) return detail::backward_engine<float>(*this, plan).run(root, seed);
    return detail::backward_engine<double>(*this, plan).run(root, seed);
}

backward_stats tape::backward(const expr& root, const backward_plan& plan) {
    const auto id = resolve(root);
    if (nodes_[id].shp.size() != 1)
        throw graph_error("backward: root " + describe(id) + " has shape " + nodes_[id].shp.str() +
                          "; backward needs a one-element loss, or an explicit seed gradient of that shape");
    const double one = 1.0;
    return run_backward(id, &one, plan);
}

std::uint32_t tape::seeded_root(const expr& root, const seqgrad::shape& seed) const {
    const auto id = resolve(root);
    if (seed != nodes_[id].shp)
        throw shape_error("backward: seed of shape " + seed.str() + " for root " + describe(id) + " of shape " +
                          nodes_[id].shp.str() + " (expected equal shapes)");
    return id;
}

backward_stats tape::backward(const expr& root, const xt::xarray<double>& seed, const backward_plan& plan) {
    return run_backward(seeded_root(root, seqgrad::shape(seed.shape())), seed.data(), plan);
}

backward_stats tape::backward(const expr& root, const xt::xarray<float>& seed, const backward_plan& plan) {
    return run_backward(seeded_root(root, seqgrad::shape(seed.shape())), seed.data(), plan);
}

}  // namespace seqgrad
