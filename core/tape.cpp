#include "tape.hpp"

#include "blas.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace seqgrad {

// ---- tape slots ------------------------------------------------------------------------------

namespace detail {
// Tape slots: generations in a never-freed table, so checking a stale expr reads valid memory.
constexpr std::uint32_t max_live_tapes = 1u << 16;
std::atomic<std::uint64_t> slot_gen[max_live_tapes];
namespace {
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

}  // namespace detail

// ---- expr ---------------------------------------------------------------------------------------

void expr::stale() const {
    if (!t_) throw graph_error("expr: empty handle (default-constructed, never assigned from an op)");
    throw graph_error("expr n" + std::to_string(id_) +
                      ": its tape was cleared or destroyed; an expr is only valid on the tape that made it, "
                      "until that tape is cleared");
}

shape expr::shape() const { return owner().node_at(id_).shp; }

// ---- tape ---------------------------------------------------------------------------------------

namespace {
std::atomic<bool> optimizations_on{true};
}
void set_graph_optimizations(bool on) { optimizations_on.store(on); }
bool graph_optimizations() { return optimizations_on.load(); }

tape::tape(dtype dt) : dt_(dt), slot_(detail::acquire_slot()), optimize_(graph_optimizations()) {
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
    param_ids_.clear();
    grad_table_.clear();
    products_.clear();
    grad_home_.clear();
    folded_into_.clear();
    table_bypassed_.clear();
    max_group_ = -1;
    has_records_ = false;
    memo_.clear();
    transposed_.clear();
    opt_counts_ = {};
    segments_.clear();
    free_values_.clear();
    free_count_ = 0;
    candidates_.clear();
    late_.clear();
    borrowed_.clear();
    release_step_ = -1;
    released_count_ = recomputed_count_ = 0;
    values_.reset();
    grads_.reset();
    step_ = -1;
    state_from_ = -1;
    group_ = -1;
}

std::uint32_t tape::resolve_slow(const expr& e) const {
    tape& t = e.owner();
    if (&t != this) throw graph_error("tape: expr n" + std::to_string(e.id()) + " belongs to another tape");
    return e.id();
}

expr tape::operand(const expr& e, std::size_t j) {
    const std::span<const std::uint32_t> ins = inputs_of(resolve(e));
    if (j >= ins.size())
        throw value_error("tape::operand: input " + std::to_string(j) + " of a node with " +
                          std::to_string(ins.size()) + " inputs");
    return make_expr(ins[j]);
}

template <class T>
expr tape::push_leaf(const seqgrad::shape& shp, const T* src, detail::node_kind kind, bool requires_grad) {
    detail::node n;
    n.shp = shp;
    n.kind = kind;
    n.step = step_;
    n.group = group_;
    max_group_ = std::max(max_group_, group_);
    n.requires_grad = requires_grad;
    const std::size_t size = shp.size();
    if (dt_ == dtype::f32)
        detail::require_float(kind == detail::node_kind::parameter ? "tape::param" : "tape::input", src, size);
    auto copy = [&](auto* dst) {
        for (std::size_t i = 0; i < size; ++i) dst[i] = static_cast<std::remove_pointer_t<decltype(dst)>>(src[i]);
        n.value = dst;
    };
    if (dt_ == dtype::f32) copy(values_.alloc_n<float>(size));
    else copy(values_.alloc_n<double>(size));
    nodes_.push_back(n);
    const auto id = static_cast<std::uint32_t>(nodes_.size() - 1);
    check_leaf(id);
    return make_expr(id);
}

// Leaves are checked as they enter: a NaN input or parameter is blamed on itself, then taken off.
void tape::check_leaf(std::uint32_t id) {
    if (!check_finite_) return;
    const detail::node& n = nodes_[id];
    try {
        if (dt_ == dtype::f32) check_values(id, static_cast<const float*>(n.value), n.shp.size(), "value");
        else check_values(id, static_cast<const double*>(n.value), n.shp.size(), "value");
    } catch (...) {
        if (n.kind == detail::node_kind::parameter) param_leaf_.erase(n.param->uid);
        nodes_.pop_back();
        throw;
    }
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
    if (dt_ == dtype::f32) detail::require_float("tape::constant", &value, 1);
    detail::node n;
    n.shp = shp;
    n.kind = detail::node_kind::constant;
    n.step = step_;
    n.group = group_;
    max_group_ = std::max(max_group_, group_);
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
    const auto id = static_cast<std::uint32_t>(nodes_.size() - 1);
    check_leaf(id);
    return make_expr(id);
}

expr tape::param(const parameter& p) {
    detail::param_data& d = p.data();
    if (auto it = param_leaf_.find(d.uid); it != param_leaf_.end()) {
        check_param_current(it->second, "tape::param");
        return make_expr(it->second);
    }
    detail::node n;
    n.shp = d.shp;
    n.kind = detail::node_kind::parameter;
    n.param = &d;
    n.param_version = d.version.load(std::memory_order_relaxed);
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
    check_leaf(id);
    param_ids_.push_back(id);
    return make_expr(id);
}

void tape::check_param_current(std::uint32_t id, const char* who) const {
    const detail::node& n = nodes_[id];
    const detail::param_data& d = *n.param;
    const std::uint64_t now = d.version.load(std::memory_order_relaxed);
    // A leaf of the tape's own dtype points into the store: a replaced array is caught by its
    // address too (a write through value<T>() that forgot mark_modified and reallocated).
    const void* storage = d.dt == dtype::f32 ? static_cast<const void*>(d.vf.data()) : d.vd.data();
    if (now == n.param_version && (d.dt != dt_ || storage == n.value)) return;
    throw graph_error(std::string(who) + ": parameter '" + d.name + "' was modified (assign, initialiser, load, " +
                      "optimiser step or parameter_store::to; version " + std::to_string(n.param_version) + " -> " +
                      std::to_string(now) + ") after this tape read it as n" + std::to_string(id) +
                      ", so the tape's values computed from it are stale; clear() the tape or use a new one " +
                      "after changing parameters");
}

void tape::check_params_current(const char* who) const {
    for (const auto& [uid, id] : param_leaf_) check_param_current(id, who);
}

// ---- forward ------------------------------------------------------------------------------------

expr tape::apply(const op_def& op, std::span<const expr> inputs, const attrs& at) {
    detail::sync_fp_mode();  // flush denormals (executor.hpp)
    const std::size_t k = inputs.size();
    if (op.arity >= 0 ? k != static_cast<std::size_t>(op.arity) : k == 0)
        throw op_error(op.name + ": takes " + (op.arity >= 0 ? std::to_string(op.arity) : std::string("one or more")) +
                       " input(s), got " + std::to_string(k));
    const auto first = static_cast<std::uint32_t>(input_ids_.size());
    seqgrad::shape* shapes = shape_scratch_.room(k);  // the inputs' shapes, for infer_shape
    const std::span<const seqgrad::shape> in_shapes(shapes, k);
    bool shapes_set = false;  // filled only for a rule or view_offset that reads them
    auto set_shapes = [&] {
        if (shapes_set) return;
        for (std::size_t j = 0; j < k; ++j) shapes[j] = nodes_[input_ids_[first + j]].shp;
        shapes_set = true;
    };
    bool rg = false;
    for (const expr& e : inputs) {
        std::uint32_t id;
        try {
            id = resolve(e);
        } catch (const graph_error& err) {
            input_ids_.resize(first);
            throw graph_error(op.name + ": " + err.what());
        }
        if (nodes_[id].kind == detail::node_kind::parameter) {
            try {
                check_param_current(id, op.name.c_str());
            } catch (...) {
                input_ids_.resize(first);
                throw;
            }
        }
        input_ids_.push_back(id);
        rg = rg || nodes_[id].requires_grad;
    }
    seqgrad::shape out;
    std::size_t off = op_def::no_view;  // a view's offset into input 0, checked before the node exists
    try {
        // The two common rules answered without the indirect call (bench/overhead's nodes).
        const std::uint32_t* ins = input_ids_.data() + first;
        if (op.infer_shape == &same_shape && k >= 1) out = nodes_[ins[0]].shp;
        else if (op.infer_shape == &broadcast_shape && k == 2 && nodes_[ins[0]].shp == nodes_[ins[1]].shp)
            out = nodes_[ins[0]].shp;
        else {
            set_shapes();
            out = detail::inferred_shape(op, in_shapes, at);
        }
        if (optimize_ && op.view_offset) set_shapes(), off = detail::checked_view_offset(op, in_shapes, at, out);
        if (ckpt_) prepare_inputs(first, k);
        for (std::size_t j = 0; j < k; ++j)
            if (nodes_[input_ids_[first + j]].released) ensure_value(input_ids_[first + j]);  // saves.cpp
    } catch (...) {
        input_ids_.resize(first);
        throw;
    }
    // The node a few ahead, for writing: a long tape's nodes do not stay in L2 between passes, and
    // a node's first stores otherwise wait on its line (bench/overhead at 100,000 nodes).
    if (nodes_.size() + 8 < nodes_.capacity()) __builtin_prefetch(nodes_.data() + nodes_.size() + 8, 1);
    detail::node& n = nodes_.emplace_back();
    const auto id = static_cast<std::uint32_t>(nodes_.size() - 1);
    n.op = &op;
    if (op.record_state_rows) has_records_ = true;
    n.first_input = first;
    n.num_inputs = static_cast<std::uint32_t>(k);
    n.step = step_;
    n.group = group_;
    n.state_from = state_from_;
    max_group_ = std::max(max_group_, group_);
    n.shp = out;
    n.requires_grad = rg && !op.constant_output;
    if (&at != &no_attrs && !at.empty()) {
        attrs* copy = new (values_.alloc(sizeof(attrs))) attrs(at);
        if (!at.ints.empty()) {
            int* dst = values_.alloc_n<int>(at.ints.size());
            std::copy(at.ints.begin(), at.ints.end(), dst);
            copy->ints = std::span<const int>(dst, at.ints.size());
        }
        n.at = copy;
    }
    note_reads(op, first, k, n.requires_grad);
    const std::size_t size = out.size();
    const int seg = segment_of(id);
    if (seg >= 0) {
        segment_arena(seg, false);
        segments_[seg].nodes.push_back(id);
    }
    if (off != op_def::no_view) {
        const std::size_t elem = dt_ == dtype::f32 ? sizeof(float) : sizeof(double);
        n.value = static_cast<std::byte*>(nodes_[input_ids_[first]].value) + off * elem;
        n.view = true;
        for (std::uint32_t b = input_ids_[first];; b = input_ids_[nodes_[b].first_input]) {
            nodes_[b].aliased = true;  // its memory is read through the view
            if (!nodes_[b].view) break;
        }
        return make_expr(id);
    }
    const std::size_t bytes = size * (dt_ == dtype::f32 ? sizeof(float) : sizeof(double));
    nodes_[id].value = seg >= 0 ? segments_[seg].values->alloc(bytes) : alloc_value(bytes);
    try {
        bool done = optimize_ && op.product_a >= 0 &&
                    (dt_ == dtype::f32 ? batched_product<float>(id) : batched_product<double>(id));
        nodes_[id].memo_served = done;
        opt_counts_.products_batched += done;
        if (!done && optimize_ && op.product_a >= 0)
            done = dt_ == dtype::f32 ? transposed_product<float>(id) : transposed_product<double>(id);
        if (!done) {
            if (dt_ == dtype::f32) run_forward<float>(id, &out);
            else run_forward<double>(id, &out);
        } else if (check_finite_) {
            if (dt_ == dtype::f32) check_values(id, static_cast<const float*>(nodes_[id].value), size, "value");
            else check_values(id, static_cast<const double*>(nodes_[id].value), size, "value");
        }
    } catch (...) {
        if (seg >= 0) segments_[seg].nodes.pop_back();
        nodes_.pop_back();
        input_ids_.resize(first);
        throw;
    }
    if (op.product_b >= 0 && nodes_[input_ids_[first + op.product_b]].step < 0) products_.push_back(id);
    // saves (saves.cpp): smaller values are not worth a free-list entry (bench/overhead's nodes).
    if (!ckpt_ && bytes >= release_min_bytes) (step_ >= 0 ? candidates_ : late_).push_back(id);
    if (step_ >= 0 && step_ != release_step_) release_old_steps();
    return make_expr(id);
}

template <class T>
void tape::run_forward(std::uint32_t id, const seqgrad::shape* shp) {
    detail::node& n = nodes_[id];
    const detail::step_work in_step(n.step >= 0);
    forward_ctx<T> c{nodes_.data(), input_ids_.data() + n.first_input, n.num_inputs,
                     tensor_ref<T>{static_cast<T*>(n.value), shp ? *shp : n.shp}, *n.at};
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

template void tape::check_values<float>(std::uint32_t, const float*, std::size_t, const char*) const;
template void tape::check_values<double>(std::uint32_t, const double*, std::size_t, const char*) const;
// checkpoint.cpp replays recorded nodes with these.
template void tape::run_forward<float>(std::uint32_t, const seqgrad::shape*);
template void tape::run_forward<double>(std::uint32_t, const seqgrad::shape*);

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

xt::xarray<double> tape::param_grad(const parameter& p) const {
    xt::xarray<double> out = xt::zeros<double>(p.shape().to_vector());
    auto it = param_leaf_.find(p.data().uid);
    if (it == param_leaf_.end() || !nodes_[it->second].grad) return out;
    const auto& n = nodes_[it->second];
    for (std::size_t i = 0; i < out.size(); ++i)
        out.data()[i] = dt_ == dtype::f32 ? static_cast<const float*>(n.grad)[i]
                                          : static_cast<const double*>(n.grad)[i];
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
    const auto id = resolve(e);
    ensure_value(id);
    if (nodes_[id].kind == detail::node_kind::parameter) check_param_current(id, "tape::value");
    const auto& n = nodes_[id];
    return to_array(n.value, n.shp, dt_);
}

double tape::item(const expr& e) const {
    const auto id = resolve(e);
    ensure_value(id);
    if (nodes_[id].kind == detail::node_kind::parameter) check_param_current(id, "tape::item");
    const auto& n = nodes_[id];
    if (n.shp.size() != 1)
        throw shape_error("tape::item: " + describe(id) + " has shape " + n.shp.str() + " (expected one element)");
    return dt_ == dtype::f32 ? static_cast<const float*>(n.value)[0] : static_cast<const double*>(n.value)[0];
}

template <class T>
tensor_ref<const T> tape::data(const expr& e) const {
    const auto id = resolve(e);
    ensure_value(id);
    if (nodes_[id].kind == detail::node_kind::parameter) check_param_current(id, "tape::data");
    const auto& n = nodes_[id];
    if (dtype_of<T>() != dt_)
        throw value_error(std::string("tape::data<") + to_string(dtype_of<T>()) + ">: the tape holds " +
                          to_string(dt_));
    return {static_cast<const T*>(n.value), n.shp};
}
template tensor_ref<const float> tape::data<float>(const expr&) const;
template tensor_ref<const double> tape::data<double>(const expr&) const;

xt::xarray<double> tape::grad(const expr& e) const {
    const auto& n = nodes_[resolve(e)];
    if (e.id() < table_bypassed_.size() && table_bypassed_[e.id()])
        throw graph_error("tape::grad: " + describe(e.id()) +
                          ": its gradient was not formed: the graph optimisations sent the gradients of the "
                          "products reading these looked-up rows to the table's rows instead "
                          "(optimizations().table_products); the table's gradient is exact. To read this "
                          "one, record the tape with set_optimize(false)");
    const void* g = grad_of(e.id());
    if (!g) return xt::zeros<double>(n.shp.to_vector());
    return to_array(g, n.shp, dt_);
}

bool tape::has_grad(const expr& e) const {
    const auto id = resolve(e);
    return (id < table_bypassed_.size() && table_bypassed_[id]) || grad_of(id) != nullptr;
}

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
    for (std::uint32_t j = 0; j < n.num_inputs; ++j) s += (j ? ", " : "") + short_name(input_ids_[n.first_input + j]);
    if (n.op->print_attrs) s += ", " + n.op->print_attrs(*n.at);
    return s + ")";
}

// ---- after backward ------------------------------------------------------------------------------

void tape::accumulate_param_grads() {
    check_params_current("accumulate_param_grads");
    for (std::uint32_t id : param_ids_) {
        auto& n = nodes_[id];
        if (!n.grad) continue;
        detail::param_data& d = *n.param;
        std::lock_guard<std::mutex> lock(d.grad_mutex);
        const std::size_t sz = d.shp.size();
        // Split across the executor's threads: at a layer's size (a 1 MB weight) this pass is
        // bound by memory, which one core does not saturate.
        constexpr std::size_t block = 4096;
        auto add = [&](auto* dst) {
            using D = std::remove_pointer_t<decltype(dst)>;
            detail::parallel_rows((sz + block - 1) / block, double(block), [&](std::size_t lo, std::size_t hi) {
                const std::size_t q0 = lo * block, q1 = std::min(sz, hi * block);
                if (dt_ == dtype::f32)
                    for (std::size_t q = q0; q < q1; ++q)
                        dst[q] += static_cast<D>(static_cast<const float*>(n.grad)[q]);
                else
                    for (std::size_t q = q0; q < q1; ++q)
                        dst[q] += static_cast<D>(static_cast<const double*>(n.grad)[q]);
            });
        };
        if (d.dt == dtype::f32) add(d.gf.data());
        else add(d.gd.data());
    }
}

void tape::mark_state(const expr& e) { nodes_[resolve(e)].is_state = true; }

void tape::mark_record_readers(std::uint32_t root) {
    nodes_[root].other_reader = true;  // its seed may reach a record's internal rows
    for (std::uint32_t i = 0; i <= root; ++i) {
        const detail::node& n = nodes_[i];
        if (!n.op || n.op->record_reader) continue;
        for (std::uint32_t j = 0; j < n.num_inputs; ++j) {
            detail::node& m = nodes_[input_ids_[n.first_input + j]];
            if (m.op && m.op->record_state_rows) m.other_reader = true;
        }
    }
}

void tape::clear_internal(std::uint32_t id, const void* g) const {
    // Logically const: the rows hold zeros; backward left them unwritten (op_def::record_state_rows).
    const detail::node& n = nodes_[id];
    if (n.shp.size() == 0) return;
    const std::size_t from = n.shp.size() / n.shp[0] * static_cast<std::size_t>(n.op->record_state_rows);
    void* p = const_cast<void*>(g);
    if (dt_ == dtype::f32) std::fill(static_cast<float*>(p) + from, static_cast<float*>(p) + n.shp.size(), 0.0f);
    else std::fill(static_cast<double*>(p) + from, static_cast<double*>(p) + n.shp.size(), 0.0);
}

const void* tape::grad_of(std::uint32_t id) const {
    // A state read from a record: its own gradient lacks the recurrent part (dL/dh_t).
    if (nodes_[id].op && nodes_[id].op->record_reader)
        if (const void* b = record_block_grad(id)) return b;
    const void* g = id < grad_table_.size() ? grad_table_[id] : nullptr;
    if (!g && id < folded_into_.size() && folded_into_[id] != not_folded) g = refold(id);
    if (g && detail::internal_unread(nodes_[id])) clear_internal(id, g);
    return g;
}

const void* tape::record_block_grad(std::uint32_t id) const {
    const detail::node& n = nodes_[id];
    // The same whether the node is a view of the record or a copy (graph optimisations off).
    if (!n.op || !n.op->record_reader || n.num_inputs != 1 || !n.op->view_offset) return nullptr;
    const std::uint32_t r = input_ids_[n.first_input];
    const detail::node& rec = nodes_[r];
    if (!rec.op || rec.op->record_state_rows == 0) return nullptr;
    const void* g = grad_of(r);
    const shape in[1] = {rec.shp};
    const std::size_t off = n.op->view_offset(std::span<const shape>(in, 1), *n.at);
    if (!g || off == op_def::no_view || off + n.shp.size() > rec.shp.size()) return nullptr;
    const std::size_t elem = dt_ == dtype::f32 ? sizeof(float) : sizeof(double), block = rec.shp.size() / rec.shp[0];
    if (rec.op->state_gradient && rec.value && off % block == 0 && n.shp.size() == block) {
        // Computed when asked, in this backward's gradient memory (reset by the next one).
        void* out = const_cast<detail::arena&>(grads_).alloc(block * elem);
        if (rec.op->state_gradient(dt_ == dtype::f32, rec.shp, rec.value, g, static_cast<int>(off / block), out))
            return out;
    }
    return static_cast<const std::byte*>(g) + off * elem;
}

gradient_ref tape::gradient_at(std::uint32_t id) const {
    const void* g = grad_of(id);
    if (!g) return {};
    return gradient_ref{dt_, const_cast<void*>(g), nodes_[id].shp.size()};
}

}  // namespace seqgrad
