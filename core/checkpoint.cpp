// checkpoint_bptt's side of the tape (see transforms.hpp): the values of time-stepped op nodes
// live in one arena per segment of steps; a released segment is recomputed from the values kept
// out of it, replaying exactly what was recorded.
#include <cstdlib>
#include <cstring>

#include "tape.hpp"

namespace seqgrad {

void tape::set_plan(const backward_plan& p) {
    std::size_t seg = 0;
    for (const auto& x : p.transforms()) seg = std::max(seg, x->checkpoint_segment());
    for (const auto& x : p.transforms())  // refused here, before a whole sequence is recorded for nothing
        if (seg && x->windows().first)
            throw graph_error("tape::set_plan: " + x->name() +
                              " does not combine with checkpoint_bptt (truncated windows already bound the "
                              "memory a backward needs)");
    if (seg != ckpt_ && !nodes_.empty())
        throw graph_error(
            "tape::set_plan: checkpointing changes what the tape records; set the plan on an empty "
            "tape (new or clear()ed)");
    plan_ = p;
    ckpt_ = seg;
}

detail::arena& tape::segment_arena(int seg, bool grads) {
    if (segments_.size() <= static_cast<std::size_t>(seg)) segments_.resize(seg + 1);
    auto& a = grads ? segments_[seg].grads : segments_[seg].values;
    if (!a) a = std::make_unique<detail::arena>();
    return *a;
}

void tape::ensure_value(std::uint32_t id) const {
    auto& self = const_cast<tape&>(*this);  // a released value is a cache miss, not a change
    if (nodes_[id].released) {              // by saves (core/saves.cpp)
        if (dt_ == dtype::f32) self.recompute_released<float>(id);
        else self.recompute_released<double>(id);
        return;
    }
    if (!nodes_[id].evicted) return;
    if (dt_ == dtype::f32) self.recompute_segment<float>(segment_of(id));
    else self.recompute_segment<double>(segment_of(id));
}

void tape::prepare_inputs(std::uint32_t first, std::size_t k) {
    const int here = step_ >= 0 ? static_cast<int>(static_cast<std::size_t>(step_) / ckpt_) : -1;
    for (std::size_t j = 0; j < k; ++j) {
        const std::uint32_t id = input_ids_[first + j];
        ensure_value(id);
        detail::node& m = nodes_[id];
        const int s = segment_of(id);
        if (s < 0 || s == here || m.kept) continue;
        // Read across segments: the value outlives its segment (a state at a segment boundary, a
        // per-step loss summed outside the steps).
        const std::size_t bytes = m.shp.size() * (dt_ == dtype::f32 ? sizeof(float) : sizeof(double));
        void* dst = values_.alloc(bytes);
        std::memcpy(dst, m.value, bytes);
        m.value = dst;
        m.kept = true;
        m.view = false;  // no longer aliases its input
    }
    if (here < 0) return;
    for (std::size_t s = 0; s < segments_.size(); ++s)
        if (segments_[s].values && std::abs(static_cast<int>(s) - here) >= 2) release_segment(static_cast<int>(s));
}

void tape::release_segment(int seg, bool with_grads) {
    auto& s = segments_[seg];
    if (s.values) {
        for (std::uint32_t id : s.nodes) {
            auto& n = nodes_[id];
            if (!n.kept && n.value && s.values->contains(n.value)) {
                n.value = nullptr;
                n.evicted = true;
            }
        }
        s.values.reset();
    }
    if (s.grads && with_grads) {
        for (std::uint32_t id : s.nodes)
            if (id < grad_table_.size()) grad_table_[id] = nullptr;
        s.grads.reset();
    }
}

template <class T>
void tape::recompute_segment(int seg) {
    detail::arena& mem = segment_arena(seg, false);
    std::vector<seqgrad::shape> shapes;
    for (std::uint32_t id : segments_[seg].nodes) {
        detail::node& n = nodes_[id];
        if (!n.evicted) continue;
        const std::uint32_t* ins = input_ids_.data() + n.first_input;
        for (std::uint32_t j = 0; j < n.num_inputs; ++j) ensure_value(ins[j]);  // kept or earlier here
        n.evicted = false;
        if (n.view) {
            shapes.clear();
            for (std::uint32_t j = 0; j < n.num_inputs; ++j) shapes.push_back(nodes_[ins[j]].shp);
            n.value = static_cast<std::byte*>(nodes_[ins[0]].value) + n.op->view_offset(shapes, *n.at) * sizeof(T);
            continue;
        }
        n.value = mem.alloc_n<T>(n.shp.size());
        // The same computation as when it was recorded, so the same bits.
        if (!(n.memo_served && batched_product<T>(id))) run_forward<T>(id);
    }
}

template void tape::recompute_segment<float>(int);
template void tape::recompute_segment<double>(int);

}  // namespace seqgrad
