#include "tape.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "broadcast.hpp"

namespace seqgrad {

// ---- block pool and arena ---------------------------------------------------------------------

namespace detail {
namespace {
constexpr std::size_t block_bytes = std::size_t(1) << 20;
constexpr std::size_t pool_cap_bytes = std::size_t(1) << 30;

struct block_pool {
    std::mutex mu;
    std::multimap<std::size_t, std::byte*> free;  // size -> block
    std::size_t held = 0;

    std::pair<std::byte*, std::size_t> take(std::size_t want) {
        {
            std::lock_guard<std::mutex> lock(mu);
            auto it = free.lower_bound(want);
            if (it != free.end() && it->first <= 4 * want + block_bytes) {
                auto got = *it;
                free.erase(it);
                held -= got.first;
                return {got.second, got.first};
            }
        }
        const std::size_t size = (want + 63) / 64 * 64;
        auto* p = static_cast<std::byte*>(std::aligned_alloc(64, size));
        if (!p) throw std::bad_alloc();
        return {p, size};
    }
    void give(std::byte* p, std::size_t size) {
        std::lock_guard<std::mutex> lock(mu);
        if (held + size > pool_cap_bytes) {
            std::free(p);
            return;
        }
        free.emplace(size, p);
        held += size;
    }
    ~block_pool() {
        for (auto& [s, p] : free) std::free(p);
    }
};
block_pool& pool() {
    static block_pool* p = new block_pool();  // never destroyed: tapes may outlive statics
    return *p;
}

// Tape slots: generations live in a table that is never freed, so checking a stale expr reads
// valid memory even after its tape is gone.
constexpr std::uint32_t max_live_tapes = 1u << 16;
std::atomic<std::uint64_t> slot_gen[max_live_tapes];
std::mutex slot_mu;
std::vector<std::uint32_t> free_slots;
std::uint32_t next_slot = 0;

std::uint32_t acquire_slot() {
    std::lock_guard<std::mutex> lock(slot_mu);
    if (!free_slots.empty()) {
        auto s = free_slots.back();
        free_slots.pop_back();
        return s;
    }
    if (next_slot == max_live_tapes)
        throw graph_error("tape: more than 65536 tapes alive at once (are tapes being leaked?)");
    return next_slot++;
}
void release_slot(std::uint32_t s) {
    std::lock_guard<std::mutex> lock(slot_mu);
    free_slots.push_back(s);
}
}  // namespace

std::uint64_t slot_generation(std::uint32_t slot) noexcept { return slot_gen[slot].load(std::memory_order_acquire); }

arena::~arena() {
    for (auto& b : blocks_) pool().give(b.p, b.size);
}

void* arena::alloc(std::size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    while (cur_ < blocks_.size()) {
        if (off_ + bytes <= blocks_[cur_].size) {
            void* p = blocks_[cur_].p + off_;
            off_ += bytes;
            return p;
        }
        ++cur_;
        off_ = 0;
    }
    auto [p, size] = pool().take(std::max(bytes, block_bytes));
    blocks_.push_back({p, size});
    cur_ = blocks_.size() - 1;
    off_ = bytes;
    return p;
}

std::size_t arena::reserved() const {
    std::size_t n = 0;
    for (auto& b : blocks_) n += b.size;
    return n;
}
}  // namespace detail

// ---- expr ---------------------------------------------------------------------------------------

tape& expr::owner() const {
    if (!t_) throw graph_error("expr: empty handle (default-constructed, never assigned from an op)");
    if (detail::slot_generation(slot_) != gen_)
        throw graph_error("expr n" + std::to_string(id_) +
                          ": its tape was cleared or destroyed; an expr is only valid on the tape that made it, "
                          "until that tape is cleared");
    return *t_;
}

const shape& expr::shape() const { return owner().node_at(id_).shp; }

// ---- tape ---------------------------------------------------------------------------------------

tape::tape(dtype dt) : dt_(dt), slot_(detail::acquire_slot()) {
    gen_ = detail::slot_gen[slot_].fetch_add(1) + 1;
}

tape::~tape() {
    detail::slot_gen[slot_].fetch_add(1);
    detail::release_slot(slot_);
}

void tape::clear() {
    gen_ = detail::slot_gen[slot_].fetch_add(1) + 1;
    nodes_.clear();
    input_ids_.clear();
    param_leaf_.clear();
    values_.reset();
    grads_.reset();
    step_ = -1;
}

std::size_t tape::bytes_reserved() const { return values_.reserved() + grads_.reserved(); }

std::uint32_t tape::resolve(const expr& e) const {
    tape& t = e.owner();
    if (&t != this)
        throw graph_error("tape: expr n" + std::to_string(e.id()) + " belongs to another tape");
    return e.id();
}

template <class T>
expr tape::push_leaf(const seqgrad::shape& shp, const T* src, detail::node_kind kind, bool requires_grad) {
    detail::node n;
    n.shp = shp;
    n.kind = kind;
    n.step = step_;
    n.requires_grad = requires_grad;
    const std::size_t size = shp.size();
    auto copy = [&](auto* dst) {
        for (std::size_t i = 0; i < size; ++i) dst[i] = static_cast<std::remove_pointer_t<decltype(dst)>>(src[i]);
        n.value = dst;
    };
    if (dt_ == dtype::f32) copy(values_.alloc_n<float>(size));
    else copy(values_.alloc_n<double>(size));
    nodes_.push_back(n);
    return make_expr(static_cast<std::uint32_t>(nodes_.size() - 1));
}

expr tape::input(const xt::xarray<double>& v, bool requires_grad) {
    return push_leaf(seqgrad::shape(v.shape()), v.data(), detail::node_kind::input, requires_grad);
}
expr tape::input(const xt::xarray<float>& v, bool requires_grad) {
    return push_leaf(seqgrad::shape(v.shape()), v.data(), detail::node_kind::input, requires_grad);
}
template <class T>
expr tape::input(const seqgrad::shape& shp, std::span<const T> data, bool requires_grad) {
    if (data.size() != shp.size())
        throw shape_error("tape::input: " + std::to_string(data.size()) + " values for shape " + shp.str() +
                          " (expected " + std::to_string(shp.size()) + ")");
    return push_leaf(shp, data.data(), detail::node_kind::input, requires_grad);
}
template expr tape::input<float>(const seqgrad::shape&, std::span<const float>, bool);
template expr tape::input<double>(const seqgrad::shape&, std::span<const double>, bool);

expr tape::constant(double value, const seqgrad::shape& shp) {
    detail::node n;
    n.shp = shp;
    n.kind = detail::node_kind::constant;
    n.step = step_;
    const std::size_t size = shp.size();
    if (dt_ == dtype::f32) {
        float* p = values_.alloc_n<float>(size);
        std::fill(p, p + size, static_cast<float>(value));
        n.value = p;
    } else {
        double* p = values_.alloc_n<double>(size);
        std::fill(p, p + size, value);
        n.value = p;
    }
    nodes_.push_back(n);
    return make_expr(static_cast<std::uint32_t>(nodes_.size() - 1));
}

expr tape::param(const parameter& p) {
    detail::param_data& d = p.data();
    if (auto it = param_leaf_.find(d.uid); it != param_leaf_.end()) return make_expr(it->second);
    detail::node n;
    n.shp = d.shp;
    n.kind = detail::node_kind::parameter;
    n.param = &d;
    n.requires_grad = d.trainable;
    n.step = -1;  // parameters are shared by every step
    const std::size_t size = d.shp.size();
    if (d.dt == dt_) {
        // Same scalar type: the leaf reads the parameter's storage directly, no copy.
        n.value = dt_ == dtype::f32 ? static_cast<void*>(d.vf.data()) : static_cast<void*>(d.vd.data());
    } else if (dt_ == dtype::f32) {
        float* dst = values_.alloc_n<float>(size);
        std::copy(d.vd.begin(), d.vd.end(), dst);
        n.value = dst;
    } else {
        double* dst = values_.alloc_n<double>(size);
        std::copy(d.vf.begin(), d.vf.end(), dst);
        n.value = dst;
    }
    nodes_.push_back(n);
    auto id = static_cast<std::uint32_t>(nodes_.size() - 1);
    param_leaf_.emplace(d.uid, id);
    return make_expr(id);
}

// ---- forward ------------------------------------------------------------------------------------

expr tape::apply(const op_def& op, std::span<const expr> inputs, const attrs& at) {
    const std::size_t k = inputs.size();
    if (op.arity >= 0 ? k != static_cast<std::size_t>(op.arity) : k == 0)
        throw op_error(op.name + ": takes " + (op.arity >= 0 ? std::to_string(op.arity) : std::string("one or more")) +
                       " input(s), got " + std::to_string(k));
    shape_scratch_.clear();
    detail::node n;
    n.op = &op;
    n.first_input = static_cast<std::uint32_t>(input_ids_.size());
    n.num_inputs = static_cast<std::uint32_t>(k);
    n.step = step_;
    bool rg = false;
    for (const expr& e : inputs) {
        std::uint32_t id;
        try {
            id = resolve(e);
        } catch (const graph_error& err) {
            input_ids_.resize(n.first_input);
            throw graph_error(op.name + ": " + err.what());
        }
        input_ids_.push_back(id);
        shape_scratch_.push_back(nodes_[id].shp);
        rg = rg || nodes_[id].requires_grad;
    }
    try {
        n.shp = op.infer_shape(op, shape_scratch_, at);
    } catch (...) {
        input_ids_.resize(n.first_input);
        throw;
    }
    n.requires_grad = rg && !op.constant_output;
    n.at = at;
    if (!at.ints.empty()) {
        int* dst = values_.alloc_n<int>(at.ints.size());
        std::copy(at.ints.begin(), at.ints.end(), dst);
        n.at.ints = std::span<const int>(dst, at.ints.size());
    }
    const std::size_t size = n.shp.size();
    n.value = dt_ == dtype::f32 ? static_cast<void*>(values_.alloc_n<float>(size))
                                : static_cast<void*>(values_.alloc_n<double>(size));
    nodes_.push_back(n);
    const auto id = static_cast<std::uint32_t>(nodes_.size() - 1);
    try {
        if (dt_ == dtype::f32) run_forward<float>(id);
        else run_forward<double>(id);
    } catch (...) {
        nodes_.pop_back();
        input_ids_.resize(n.first_input);
        throw;
    }
    return make_expr(id);
}

template <class T>
void tape::run_forward(std::uint32_t id) {
    detail::node& n = nodes_[id];
    forward_ctx<T> c{nodes_.data(), input_ids_.data() + n.first_input, n.num_inputs,
                     tensor_ref<T>{static_cast<T*>(n.value), n.shp}, n.at};
    n.op->forward<T>()(c);
    if (check_finite_) check_values(id, static_cast<const T*>(n.value), n.shp.size(), "value");
}

template <class T>
void tape::check_values(std::uint32_t id, const T* p, std::size_t n, const char* what) const {
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i]))
            throw numeric_error("check_finite: " + describe(id) + " (shape " + nodes_[id].shp.str() + ", step " +
                                std::to_string(nodes_[id].step) + ") produced " + (std::isnan(p[i]) ? "NaN" : "Inf") +
                                " in its " + what + " at flat index " + std::to_string(i));
}

expr apply(const op_def& op, std::span<const expr> inputs, const attrs& at) {
    if (inputs.empty()) throw op_error(op.name + ": needs at least one input expr to know its tape");
    tape* t;
    try {
        t = &inputs[0].owner();
    } catch (const graph_error& e) {
        throw graph_error(op.name + ": " + e.what());
    }
    return t->apply(op, inputs, at);
}

expr apply(std::string_view op_name, std::span<const expr> inputs, const attrs& at) {
    return apply(find_op(op_name), inputs, at);
}

// ---- backward -----------------------------------------------------------------------------------

void tape::backward(const expr& root) {
    const auto id = resolve(root);
    if (nodes_[id].shp.size() != 1)
        throw graph_error("backward: root " + describe(id) + " has shape " + nodes_[id].shp.str() +
                          "; backward needs a one-element loss, or an explicit seed gradient of that shape");
    const double one = 1.0;
    if (dt_ == dtype::f32) run_backward<float>(id, &one);
    else run_backward<double>(id, &one);
}

void tape::backward(const expr& root, const xt::xarray<double>& seed) {
    const auto id = resolve(root);
    if (seqgrad::shape(seed.shape()) != nodes_[id].shp)
        throw shape_error("backward: seed of shape " + seqgrad::shape(seed.shape()).str() + " for root " +
                          describe(id) + " of shape " + nodes_[id].shp.str() + " (expected equal shapes)");
    if (dt_ == dtype::f32) run_backward<float>(id, seed.data());
    else run_backward<double>(id, seed.data());
}

template <class T>
void tape::run_backward(std::uint32_t root, const double* seed) {
    for (auto& n : nodes_) n.grad = nullptr;
    grads_.reset();
    detail::node& r = nodes_[root];
    if (!r.requires_grad) return;  // nothing on the tape needs a gradient
    {
        T* g = grads_.alloc_n<T>(r.shp.size());
        for (std::size_t i = 0; i < r.shp.size(); ++i) g[i] = static_cast<T>(seed[i]);
        r.grad = g;
    }
    constexpr std::size_t inline_inputs = 8;
    std::vector<tensor_ref<T>> targets_heap;
    std::vector<char> acc_heap;
    std::vector<T*> pending_heap;  // scratch contributions to reduce into an input after the op
    for (std::uint32_t i = root + 1; i-- > 0;) {
        detail::node& n = nodes_[i];
        if (!n.grad || !n.op || !n.requires_grad) continue;
        const op_def& op = *n.op;
        const std::uint32_t* ins = input_ids_.data() + n.first_input;
        const std::size_t k = n.num_inputs;
        if (!op.differentiable())
            throw graph_error("backward: " + describe(i) + ": op '" + op.name +
                              "' has no gradient, but an input needs one (wrap that input in stop_gradient if "
                              "no gradient should flow)");
        tensor_ref<T> targets_inline[inline_inputs];
        bool acc_inline[inline_inputs];
        T* pending_inline[inline_inputs];
        tensor_ref<T>* targets = targets_inline;
        bool* acc = acc_inline;
        T** pending = pending_inline;
        if (k > inline_inputs) {
            targets_heap.assign(k, {});
            acc_heap.assign(k, 0);
            pending_heap.assign(k, nullptr);
            targets = targets_heap.data();
            acc = reinterpret_cast<bool*>(acc_heap.data());
            pending = pending_heap.data();
        }
        for (std::size_t j = 0; j < k; ++j) {
            detail::node& m = nodes_[ins[j]];
            pending[j] = nullptr;
            acc[j] = false;
            targets[j] = {};
            if (!m.requires_grad) continue;
            bool repeated = false;
            for (std::size_t q = 0; q < j; ++q) repeated = repeated || ins[q] == ins[j];
            const bool reduce = op.broadcasting && !(m.shp == n.shp);
            if (reduce || repeated) {
                // Written to scratch, then summed into the input's gradient after the op.
                const seqgrad::shape& s = reduce ? n.shp : m.shp;
                pending[j] = grads_.alloc_n<T>(s.size());
                targets[j] = {pending[j], s};
            } else {
                if (!m.grad) m.grad = grads_.alloc_n<T>(m.shp.size());
                else acc[j] = true;
                targets[j] = {static_cast<T*>(m.grad), m.shp};
            }
        }
        backward_ctx<T> c{nodes_.data(),
                          ins,
                          k,
                          tensor_ref<const T>{static_cast<const T*>(n.value), n.shp},
                          tensor_ref<const T>{static_cast<const T*>(n.grad), n.shp},
                          n.at,
                          targets,
                          acc};
        op.backward<T>()(c);
        for (std::size_t j = 0; j < k; ++j) {
            if (!pending[j]) continue;
            detail::node& m = nodes_[ins[j]];
            const std::size_t ms = m.shp.size();
            T* g = static_cast<T*>(m.grad);
            if (!g) {
                g = grads_.alloc_n<T>(ms);
                std::fill(g, g + ms, T(0));
                m.grad = g;
            }
            const T* src = pending[j];
            if (targets[j].shape == m.shp)
                for (std::size_t q = 0; q < ms; ++q) g[q] += src[q];
            else
                detail::for_each_broadcast(n.shp, m.shp, [&](std::size_t o, std::size_t q) { g[q] += src[o]; });
        }
        if (check_finite_)
            for (std::size_t j = 0; j < k; ++j)
                if (targets[j].data)
                    check_values(ins[j], static_cast<const T*>(nodes_[ins[j]].grad), nodes_[ins[j]].shp.size(),
                                 ("gradient (from the backward of " + describe(i) + ")").c_str());
    }
    if (!accumulate_params_) return;
    for (auto& n : nodes_) {
        if (n.kind != detail::node_kind::parameter || !n.grad) continue;
        detail::param_data& d = *n.param;
        const T* g = static_cast<const T*>(n.grad);
        std::lock_guard<std::mutex> lock(d.grad_mutex);
        if (d.dt == dtype::f32) {
            float* dst = d.gf.data();
            for (std::size_t q = 0, e = d.shp.size(); q < e; ++q) dst[q] += static_cast<float>(g[q]);
        } else {
            double* dst = d.gd.data();
            for (std::size_t q = 0, e = d.shp.size(); q < e; ++q) dst[q] += static_cast<double>(g[q]);
        }
    }
}

xt::xarray<double> tape::param_grad(const parameter& p) const {
    xt::xarray<double> out = xt::zeros<double>(p.shape().to_vector());
    auto it = param_leaf_.find(p.data().uid);
    if (it == param_leaf_.end() || !nodes_[it->second].grad) return out;
    const auto& n = nodes_[it->second];
    for (std::size_t i = 0; i < out.size(); ++i)
        out.data()[i] = dt_ == dtype::f32 ? static_cast<const float*>(n.grad)[i] : static_cast<const double*>(n.grad)[i];
    return out;
}

// ---- reading ------------------------------------------------------------------------------------

namespace {
xt::xarray<double> to_array(const void* p, const shape& s, dtype dt) {
    xt::xarray<double> out = xt::zeros<double>(s.to_vector());
    for (std::size_t i = 0; i < out.size(); ++i)
        out.data()[i] = dt == dtype::f32 ? static_cast<const float*>(p)[i] : static_cast<const double*>(p)[i];
    return out;
}
}  // namespace

xt::xarray<double> tape::value(const expr& e) const {
    const auto& n = nodes_[resolve(e)];
    return to_array(n.value, n.shp, dt_);
}

double tape::item(const expr& e) const {
    const auto id = resolve(e);
    const auto& n = nodes_[id];
    if (n.shp.size() != 1)
        throw shape_error("tape::item: " + describe(id) + " has shape " + n.shp.str() + " (expected one element)");
    return dt_ == dtype::f32 ? static_cast<const float*>(n.value)[0] : static_cast<const double*>(n.value)[0];
}

template <class T>
tensor_ref<const T> tape::data(const expr& e) const {
    const auto& n = nodes_[resolve(e)];
    if (dtype_of<T>() != dt_)
        throw value_error(std::string("tape::data<") + to_string(dtype_of<T>()) + ">: the tape holds " + to_string(dt_));
    return {static_cast<const T*>(n.value), n.shp};
}
template tensor_ref<const float> tape::data<float>(const expr&) const;
template tensor_ref<const double> tape::data<double>(const expr&) const;

xt::xarray<double> tape::grad(const expr& e) const {
    const auto& n = nodes_[resolve(e)];
    if (!n.grad) return xt::zeros<double>(n.shp.to_vector());
    return to_array(n.grad, n.shp, dt_);
}

bool tape::has_grad(const expr& e) const { return nodes_[resolve(e)].grad != nullptr; }

std::string tape::short_name(std::uint32_t id) const {
    const auto& n = nodes_[id];
    if (n.kind == detail::node_kind::parameter) return n.param->name;
    std::string s = "n";  // built in two steps: GCC 12 warns falsely (-Wrestrict) on "n" + string
    s += std::to_string(id);
    return s;
}

std::string tape::describe(std::uint32_t id) const {
    const auto& n = nodes_[id];
    switch (n.kind) {
    case detail::node_kind::parameter: return "parameter " + n.param->name;
    case detail::node_kind::input: return "input " + short_name(id);
    case detail::node_kind::constant: return "constant " + short_name(id);
    case detail::node_kind::op: break;
    }
    std::string s = n.op->name + "(";
    for (std::uint32_t j = 0; j < n.num_inputs; ++j)
        s += (j ? ", " : "") + short_name(input_ids_[n.first_input + j]);
    if (n.op->print_attrs) s += ", " + n.op->print_attrs(n.at);
    return s + ")";
}

}  // namespace seqgrad
