#pragma once
// Part of core/backward.cpp (included there): activations folded into their reader's backward.
//
// y = f(z) for an op declaring output_derivative (sigmoid, tanh, relu, exp), read by one op R and
// nothing else: R's backward writes z's gradient, g(y) f'(y), in the pass that computes g(y), and
// y's own backward never runs. A cell's gates (sigmoid(a) * c, i * tanh(g), o * tanh(c)) lose a
// pass over memory and a node each. tape::grad(y) recomputes g(y) from R when asked, from R's
// gradient as the sweep left it (in a partitioned sweep, the part owning R: folded or not, y shows
// the gradient of the part owning it, and R is in y's step).

namespace seqgrad {
namespace detail {

namespace {
std::atomic<bool> fold_on{true};
}
void set_activation_folding(bool on) { fold_on.store(on); }
bool activation_folding() { return fold_on.load(std::memory_order_relaxed); }

template <class T>
template <class Keep>
bool backward_engine<T>::fold_into(std::uint32_t i, std::size_t j, std::vector<void*>& g, arena& mem, Keep& keep,
                                   tensor_ref<T>* targets, bool* acc, fold_slot<T>* folds) {
    const detail::node& n = nodes_[i];
    const std::uint32_t* ins = t_.input_ids_.data() + n.first_input;
    const std::uint32_t yi = ins[j];
    const detail::node& y = nodes_[yi];
    if (!y.op || y.op->derivative == output_derivative::none) return false;
    if (!t_.optimize_ || !activation_folding() || t_.ckpt_ || t_.check_finite_) return false;
    // Products defer and batch their operands' gradients; gradient-flow records and state-edge
    // transforms read and edit gradients along their edges; a home is read by batched GEMMs; a
    // reader in another step may be in another part of a partitioned sweep.
    if (y.step != n.step || y.num_inputs != 1 || y.shared || y.is_state || y.view || g[yi] || n.op->product_a >= 0 ||
        clips(y, n) || home(yi, g))
        return false;
    // A reader that broadcasts y without summing its gradient back (broadcast_to, where) writes
    // y's gradient at its own, larger shape; the engine sums it to y's (the scratch path), which a
    // fold would skip.
    if (n.op->broadcasting && !n.op->reduces_broadcast && !(y.shp == n.shp)) return false;
    const std::uint32_t zi = t_.input_ids_[y.first_input];
    const detail::node& z = nodes_[zi];
    if (!z.requires_grad || !keep(zi, yi) || clips(z, y) || !(z.shp == y.shp)) return false;
    for (std::size_t q = 0; q < n.num_inputs; ++q)
        if (ins[q] == zi) return false;  // i writes z's gradient through another input as well
    // Another activation of z folded into i (tanh(z) * sigmoid(z)): both would find z's gradient
    // unset and write it, the second over the first. That one is swept on its own and adds in.
    for (std::size_t q = 0; q < j; ++q)
        if (folds[q].y && t_.input_ids_[nodes_[ins[q]].first_input] == zi) return false;
    T* t = static_cast<T*>(g[zi]);
    const bool adds = t != nullptr;
    if (!t) t = home_or_alloc(zi, z.shp.size(), g, mem, g[i]);  // z's gradient once folded() says so
    if (t == g[i]) return false;
    acc[j] = adds;
    targets[j] = {t, z.shp};
    folds[j] = {static_cast<const T*>(y.value), y.op->derivative};
    return true;
}

// After i's backward: the folds its op wrote through emit stand (the others were unfolded).
template <class T>
void backward_engine<T>::folded(std::uint32_t i, std::vector<void*>& g, const tensor_ref<T>* targets,
                                const fold_slot<T>* folds) {
    const detail::node& n = nodes_[i];
    const std::uint32_t* ins = t_.input_ids_.data() + n.first_input;
    for (std::size_t j = 0; j < n.num_inputs; ++j) {
        if (!folds[j].y) continue;
        const std::uint32_t y = ins[j], z = t_.input_ids_[nodes_[y].first_input];
        if (!g[z]) g[z] = targets[j].data;
        // The passes of a partitioned sweep fold concurrently (overlapping truncation windows fold
        // the same y into the same i); partitioned() sized the table before they started.
        if (t_.folded_into_.size() < nodes_.size()) t_.folded_into_.resize(nodes_.size(), tape::not_folded);
        std::atomic_ref<std::uint32_t>(t_.folded_into_[y]).store(i, std::memory_order_relaxed);
        std::atomic_ref<std::size_t>(t_.opt_counts_.activations_folded).fetch_add(1, std::memory_order_relaxed);
    }
}

template <output_derivative K, class T>
static void fold_as(T* __restrict t, const T* __restrict y, const T* __restrict g, std::size_t n, bool add) {
    if (add)
        for (std::size_t i = 0; i < n; ++i) t[i] += through<K, T>(g[i], y[i]);
    else
        for (std::size_t i = 0; i < n; ++i) t[i] = through<K, T>(g[i], y[i]);
}

template <class T>
void fold_chunk(T* t, const T* y, const T* g, std::size_t n, bool add, output_derivative kind) {
    using K = output_derivative;
    switch (kind) {
    case K::sigmoid: return fold_as<K::sigmoid>(t, y, g, n, add);
    case K::tanh: return fold_as<K::tanh>(t, y, g, n, add);
    case K::relu: return fold_as<K::relu>(t, y, g, n, add);
    case K::exp: return fold_as<K::exp>(t, y, g, n, add);
    case K::none: return;
    }
}
template void fold_chunk<float>(float*, const float*, const float*, std::size_t, bool, output_derivative);
template void fold_chunk<double>(double*, const double*, const double*, std::size_t, bool, output_derivative);

}  // namespace detail
}  // namespace seqgrad
