// saves made real (see saves in op.hpp): a value that some op has read and that no backward will
// read (no consumer saves its inputs, its own op does not save its output) gives its memory back
// to the tape's free list: in forward once the unroll is two steps past it, at backward for the
// rest. Later values of the same size and the gradients of the sweep reuse that memory, so a long
// unroll holds only what backward reads. Reading a released value again recomputes it (and what it
// was computed from, if released too) exactly as it was recorded.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "tape.hpp"

namespace seqgrad {

namespace {
constexpr std::size_t round64(std::size_t bytes) { return (bytes + 63) / 64 * 64; }
}  // namespace

void* tape::alloc_value(std::size_t bytes) {
    bytes = round64(bytes);
    if (free_count_)
        if (void* p = take_free(bytes)) return p;
    return values_.alloc(bytes);
}

void* tape::take_free(std::size_t bytes) {
    for (auto& [b, list] : free_values_)
        if (b == bytes && !list.empty()) {
            void* p = list.back();
            list.pop_back();
            --free_count_;
            return p;
        }
    return nullptr;
}

void tape::give_free(void* p, std::size_t bytes) {
    ++free_count_;
    for (auto& [b, list] : free_values_)
        if (b == bytes) {
            list.push_back(p);
            return;
        }
    free_values_.push_back({bytes, {p}});
}

std::size_t tape::bytes_reserved() const {
    std::size_t n = values_.reserved() + grads_.reserved();
    for (const auto& s : segments_) n += (s.values ? s.values->reserved() : 0) + (s.grads ? s.grads->reserved() : 0);
    return n;
}

bool tape::releasable(std::uint32_t id) const {
    const detail::node& n = nodes_[id];
    // Views and served products do not own their memory; an aliased value is another's memory;
    // states are what callers carry to the next batch; checkpointing manages its own segments.
    return n.kind == detail::node_kind::op && n.read && !n.saved && !n.aliased && !n.view && !n.memo_served &&
           !n.is_state && !n.released && n.value && !ckpt_ && release_ && n.shp.size() > 0;
}

void tape::release_value(std::uint32_t id) {
    detail::node& n = nodes_[id];
    const std::size_t elem = dt_ == dtype::f32 ? sizeof(float) : sizeof(double);
    if (poison_) {
        if (dt_ == dtype::f32) std::fill_n(static_cast<float*>(n.value), n.shp.size(), std::nanf(""));
        else std::fill_n(static_cast<double*>(n.value), n.shp.size(), std::nan(""));
    }
    // Poisoned memory stays poisoned and pointed to: a backward reading it sees NaN.
    if (!poison_) {
        give_free(n.value, round64(n.shp.size() * elem));
        n.value = nullptr;
    }
    n.released = true;
    ++released_count_;
}

void tape::release_old_steps() {
    release_step_ = step_;
    if (step_ < 0 || ckpt_) return;
    std::size_t keep = 0;
    for (std::uint32_t id : candidates_) {
        if (std::abs(nodes_[id].step - step_) < 2) candidates_[keep++] = id;
        else if (releasable(id)) release_value(id);
        else if (!nodes_[id].saved) late_.push_back(id);  // not read yet: perhaps by backward's time
    }
    candidates_.resize(keep);
}

void tape::release_for_backward(std::uint32_t root) {
    for (auto [p, bytes] : borrowed_) give_free(p, bytes);
    borrowed_.clear();
    if (ckpt_) return;
    if (!poison_) {
        for (auto* list : {&candidates_, &late_}) {
            for (std::uint32_t id : *list)
                if (id != root && releasable(id)) release_value(id);
            std::erase_if(*list, [this](std::uint32_t id) { return nodes_[id].released; });
        }
        return;
    }
    for (std::uint32_t id = 0; id < nodes_.size(); ++id)
        if (id != root && releasable(id)) release_value(id);
    // Everything else that no backward reads, leaves included (not parameters: their value is the
    // store's), unless it shares memory with a value that is read.
    for (std::uint32_t id = 0; id < nodes_.size(); ++id) {
        detail::node& n = nodes_[id];
        if (id == root || n.saved || n.aliased || n.view || n.memo_served || n.released || !n.value ||
            n.kind == detail::node_kind::parameter)
            continue;
        if (dt_ == dtype::f32) std::fill_n(static_cast<float*>(n.value), n.shp.size(), std::nanf(""));
        else std::fill_n(static_cast<double*>(n.value), n.shp.size(), std::nan(""));
    }
}

template <class T>
void tape::recompute_released(std::uint32_t id) {
    // The released values this one was computed from, recomputed first (in tape order).
    std::vector<std::uint32_t> todo{id}, order;
    while (!todo.empty()) {
        const std::uint32_t x = todo.back();
        todo.pop_back();
        if (!nodes_[x].released || std::find(order.begin(), order.end(), x) != order.end()) continue;
        order.push_back(x);
        for (std::uint32_t in : inputs_of(x))
            if (nodes_[in].released) todo.push_back(in);
    }
    std::sort(order.begin(), order.end());
    for (std::uint32_t x : order) {
        for (std::uint32_t in : inputs_of(x)) {
            if (nodes_[in].kind != detail::node_kind::parameter) continue;
            try {
                check_param_current(in, "tape");
            } catch (const graph_error& e) {
                throw graph_error("tape: the value of " + describe(x) +
                                  " was released (no backward reads it) and cannot be recomputed: " + e.what());
            }
        }
        detail::node& n = nodes_[x];
        n.value = alloc_value(n.shp.size() * sizeof(T));
        n.released = false;
        run_forward<T>(x);  // the same kernel on the same inputs: the same bits
        ++recomputed_count_;
    }
}

template <class T>
T* tape::grad_alloc(std::uint32_t id, detail::arena& mem, std::size_t n) {
    const int s = segment_of(id);
    if (s >= 0) return segment_arena(s, true).alloc_n<T>(n);
    if (&mem == &grads_ && free_count_) {
        const std::size_t bytes = round64(n * sizeof(T));
        if (void* p = take_free(bytes)) {
            borrowed_.push_back({p, bytes});
            return static_cast<T*>(p);
        }
    }
    return mem.alloc_n<T>(n);
}

template <class T>
void detail::scratch_source<T>::swap(void* self, std::size_t j) {
    auto& s = *static_cast<scratch_source*>(self);
    const seqgrad::shape shp = s.targets[j].shape;
    s.pending[j] = s.t->template grad_alloc<T>(s.ins[j], *s.mem, shp.size());
    s.targets[j] = {s.pending[j], shp};
    s.acc[j] = false;
}

// The op writes this input's contribution other than through emit: the activation folded into it
// gets a gradient of its own, which its backward reads later as it would unfolded.
template <class T>
void detail::scratch_source<T>::unfold(void* self, std::size_t j) {
    auto& s = *static_cast<scratch_source*>(self);
    const seqgrad::shape shp = s.targets[j].shape;
    T* y = s.t->template grad_alloc<T>(s.ins[j], *s.mem, shp.size());
    (*s.g)[s.ins[j]] = y;
    s.targets[j] = {y, shp};
    s.acc[j] = false;
    s.folds[j].y = nullptr;
}

const void* tape::refold(std::uint32_t id) const {
    // Logically const: the gradient was part of the last backward's result, computed lazily.
    auto* self = const_cast<tape*>(this);
    return dt_ == dtype::f32 ? self->refold<float>(id) : self->refold<double>(id);
}

// The reader's backward again, with only the folded input's target: the contribution it wrote
// before folding (the activation had no other reader, so that is its whole gradient).
template <class T>
const void* tape::refold(std::uint32_t id) {
    const std::uint32_t r = folded_into_[id];
    // Overlapping truncation windows: a pass that does not own the step may have folded it, while
    // the owning window's table, the one shown, gave the reader no gradient. Then neither has one.
    if (r >= grad_table_.size() || !grad_table_[r]) return nullptr;
    const detail::node& n = nodes_[r];
    const std::uint32_t* ins = input_ids_.data() + n.first_input;
    const std::size_t k = n.num_inputs;
    for (std::size_t j = 0; j < k; ++j) ensure_value(ins[j]);
    ensure_value(r);
    std::vector<tensor_ref<T>> targets(k);
    std::unique_ptr<bool[]> adds(new bool[k]());
    T* g = grads_.alloc_n<T>(nodes_[id].shp.size());
    for (std::size_t j = 0; j < k; ++j)
        if (ins[j] == id) targets[j] = {g, nodes_[id].shp};
    const detail::node& m = nodes_[r];
    backward_ctx<T> c{nodes_.data(),
                      ins,
                      k,
                      tensor_ref<const T>{static_cast<const T*>(m.value), m.shp},
                      tensor_ref<const T>{static_cast<const T*>(grad_table_[r]), m.shp},
                      *m.at,
                      *m.op,
                      targets.data(),
                      adds.get(),
                      nullptr,
                      nullptr};
    c.self = &m;
    m.op->backward<T>()(c);
    grad_table_[id] = g;
    return g;
}

template float* tape::grad_alloc<float>(std::uint32_t, detail::arena&, std::size_t);
template double* tape::grad_alloc<double>(std::uint32_t, detail::arena&, std::size_t);
template struct detail::scratch_source<float>;
template struct detail::scratch_source<double>;
template void tape::recompute_released<float>(std::uint32_t);
template void tape::recompute_released<double>(std::uint32_t);

}  // namespace seqgrad
