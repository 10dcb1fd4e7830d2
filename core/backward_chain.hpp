#pragma once
// Part of core/backward.cpp (included there): a run of a recurrence's step nodes swept as one call.
//
// A fused step (lstm_step) splits its rows across the threads, so its backward opens parallel
// regions each step: about 2 us each here, and each ends waiting for the slower thread. Rows are
// independent from step to step up to the weight gradient, so the op can take each thread's rows
// through every step in one region (op_builder::chain). The sweep hands it the run when every
// contribution to the run's nodes from outside it is in: the nodes are consecutive on the tape,
// so anything else reading them comes later and has been swept. Only in the plain sweep: truncation
// windows, state-edge transforms and gradient-flow records need each step's edge on its own.

namespace seqgrad {
namespace detail {

namespace {
std::atomic<bool> chain_on{true};
}
void set_recurrence_chains(bool on) { chain_on.store(on); }
bool recurrence_chains() { return chain_on.load(std::memory_order_relaxed); }

template <class T>
std::uint32_t backward_engine<T>::chain(std::uint32_t i, std::vector<void*>& g, arena& mem) {
    const detail::node& last = nodes_[i];
    const op_def& op = *last.op;
    if (!g[i] || !last.requires_grad || !t_.optimize_ || !recurrence_chains() || t_.ckpt_ || t_.check_finite_ ||
        !edge_transforms_.empty() || &g != &t_.grad_table_ || !op.chain_f)
        return no_chain;
    const std::size_t k = last.num_inputs, ci = static_cast<std::size_t>(op.chain_input);
    const std::uint32_t* ins_last = t_.input_ids_.data() + last.first_input;
    auto marked = [&](std::uint32_t id) {
        return (!deferred_flag_.empty() && deferred_flag_[id]) || home(id, g) ||
               nodes_[id].kind == node_kind::parameter;
    };
    if (marked(i)) return no_chain;
    std::uint32_t j = i;
    while (j > 0) {
        const detail::node& n = nodes_[j];
        const std::uint32_t* ins = t_.input_ids_.data() + n.first_input;
        const detail::node& p = nodes_[j - 1];
        if (ins[ci] != j - 1 || p.op != &op || p.num_inputs != k || !p.requires_grad || marked(j - 1)) break;
        const std::uint32_t* pins = t_.input_ids_.data() + p.first_input;
        bool same = true;
        for (std::size_t q = 0; q < k; ++q) same = same && (q == ci || pins[q] == ins_last[q]);
        if (!same) break;
        --j;
    }
    if (j == i) return no_chain;
    const std::uint32_t* ins = t_.input_ids_.data() + nodes_[j].first_input;
    for (std::size_t q = 0; q < k; ++q)
        for (std::size_t r = q + 1; r < k; ++r)
            if (ins[q] == ins[r]) return no_chain;  // an input read twice goes through scratch
    if (!op.chain_accepts || !op.chain_accepts(nodes_.data(), ins, k)) return no_chain;

    const std::size_t len = i - j + 1;
    std::vector<T*> grads(len);
    std::vector<char> external(len);
    std::vector<std::uint32_t> ids(len);
    for (std::size_t s = 0; s < len; ++s) {
        const std::uint32_t id = j + static_cast<std::uint32_t>(s);
        ids[s] = id;
        external[s] = g[id] != nullptr;
        if (!g[id]) g[id] = t_.grad_alloc<T>(id, mem, nodes_[id].shp.size());
        grads[s] = static_cast<T*>(g[id]);
    }
    std::vector<tensor_ref<T>> targets(k);
    std::unique_ptr<bool[]> adds(new bool[k]());
    for (std::size_t q = 0; q < k; ++q) {
        const detail::node& m = nodes_[ins[q]];
        if (!m.requires_grad) continue;
        settle(ins[q]);
        if (g[ins[q]]) adds[q] = true;
        else g[ins[q]] = home_or_alloc(ins[q], m.shp.size(), g, mem, g[j]);
        targets[q] = {static_cast<T*>(g[ins[q]]), m.shp};
    }
    // Work on a weight's gradient (lstm_step's W_hh over the run) may go to another thread.
    const std::function<bool(std::size_t, std::function<void()>)> hand = [&](std::size_t q, std::function<void()> f) {
        if (q >= k || !handed_.empty() || !handing(g) || nodes_[ins[q]].kind != node_kind::parameter) return false;
        return hand_over(ins[q], std::move(f));
    };
    const chain_ctx<T> c{nodes_.data(), ids, ins, k, grads, external, targets.data(), adds.get(), &hand};
    {
        const detail::step_work in_step(true);
        if constexpr (std::is_same_v<T, float>) op.chain_f(c);
        else op.chain_d(c);
    }
    t_.opt_counts_.steps_chained += len;
    return j;
}

}  // namespace detail
}  // namespace seqgrad
