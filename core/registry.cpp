#include <mutex>

#include "builtin_ops.hpp"
#include "op.hpp"

namespace seqgrad {

namespace detail {

namespace {
std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}
void ensure_builtins() {
    static std::once_flag once;
    std::call_once(once, [] {
        register_elementwise_ops();
        register_activation_ops();
        register_linalg_ops();
        register_reduce_ops();
        register_shape_ops();
        register_loss_ops();
        register_recurrent_ops();
        register_math_ops();
        register_norm_ops();
        register_conv_ops();
        register_random_ops();
    });
}
}  // namespace

void accumulate_not_declared(const op_def& op) {
    throw op_error("op '" + op.name +
                   "': its backward read accumulate(), which only ops registered with .accumulates() may do; "
                   "write plain contributions (emit, or overwrite target(i)) and the engine adds them");
}
std::size_t checked_view_offset(const op_def& op, std::span<const shape> in, const attrs& at, const shape& out) {
    const std::size_t off = op.view_offset(in, at), n = in[0].size();
    if (off != op_def::no_view && (off > n || out.size() > n - off))
        throw op_error(op.name + ": its view offset " + std::to_string(off) + " and output shape " + out.str() +
                       " point past input 0 of shape " + in[0].str() +
                       " (expected offset + output size <= " + std::to_string(n) + ")");
    return off;
}
seqgrad::shape inferred_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    seqgrad::shape out = op.infer_shape(op, in, at);
    // derivative_of_output's backward reads y and g(y) at the input's entries: any other shape
    // would read past them (or leave entries unwritten) without a word.
    if (op.derivative != output_derivative::none && out != in[0])
        throw op_error(op.name + ": output shape " + out.str() + " for input " + in[0].str() +
                       " (an op declaring derivative_of_output must give its input's shape)");
    return out;
}
}  // namespace detail

op_registry& op_registry::instance() {
    static op_registry r;
    return r;
}

const op_def& op_registry::add(op_def def) {
    if (def.name.empty()) throw op_error("register_op: an op needs a name");
    if (!def.infer_shape) throw op_error("register_op '" + def.name + "': no shape rule");
    if (!def.forward_f || !def.forward_d) throw op_error("register_op '" + def.name + "': no forward");
    if (def.arity == 0 || def.arity < -1)
        throw op_error("register_op '" + def.name + "': arity must be >= 1, or -1 for one-or-more");
    if (def.derivative != output_derivative::none && def.arity != 1)  // its backward writes input 0 alone
        throw op_error("register_op '" + def.name + "': derivative_of_output needs an op of one input (arity " +
                       std::to_string(def.arity) + ")");
    // Input indices the engine reads on every node (products, chains): past the arity they read
    // other nodes' inputs (a segfault, or another input's value).
    const auto check_input = [&](int j, const char* what) {
        if (j < -1 || (def.arity >= 0 && j >= def.arity))
            throw op_error("register_op '" + def.name + "': " + what + " names input " + std::to_string(j) +
                           " (expected -1 for none, or an input index below the arity, " + std::to_string(def.arity) +
                           ")");
    };
    check_input(def.product_a, "product (a)");
    check_input(def.product_b, "product (b)");
    check_input(def.product_c, "product (c)");
    check_input(def.chain_input, "chain");
    for (const auto& s : def.samples)
        if (def.arity >= 0 ? s.inputs.size() != static_cast<std::size_t>(def.arity) : s.inputs.empty())
            throw op_error("register_op '" + def.name + "': a sample has " + std::to_string(s.inputs.size()) +
                           " inputs, the op takes " +
                           (def.arity >= 0 ? std::to_string(def.arity) : std::string("one or more")));
    std::lock_guard<std::mutex> lock(detail::registry_mutex());
    for (const auto& o : ops_)
        if (o->name == def.name) throw op_error("register_op: an op named '" + def.name + "' is already registered");
    if (def.gradient == gradient_kind::undeclared)
        throw op_error("register_op '" + def.name +
                       "': no gradient declared; say .backward(f), .no_gradient() (it "
                       "has none, as argmax) or .gradient_not_implemented()");
    ops_.push_back(std::make_unique<op_def>(std::move(def)));
    return *ops_.back();
}

const op_def* op_registry::find(std::string_view name) const {
    detail::ensure_builtins();
    std::lock_guard<std::mutex> lock(detail::registry_mutex());
    for (const auto& o : ops_)
        if (o->name == name) return o.get();
    return nullptr;
}

const op_def& op_registry::get(std::string_view name) const {
    if (const op_def* o = find(name)) return *o;
    throw op_error("op registry: no op named '" + std::string(name) + "' (" + std::to_string(ops_.size()) +
                   " ops are registered; op_registry::instance().all() lists them)");
}

std::vector<const op_def*> op_registry::all() const {
    detail::ensure_builtins();
    std::lock_guard<std::mutex> lock(detail::registry_mutex());
    std::vector<const op_def*> out;
    for (const auto& o : ops_) out.push_back(o.get());
    return out;
}

const op_def& register_op(op_builder&& b) {
    detail::ensure_builtins();
    return op_registry::instance().add(std::move(b).build());
}

const op_def& find_op(std::string_view name) { return op_registry::instance().get(name); }

void fail_shape(const op_def& op, std::span<const seqgrad::shape> in, const std::string& expected) {
    std::string s = op.name + ": input shape" + (in.size() == 1 ? " " : "s ");
    for (std::size_t i = 0; i < in.size(); ++i) s += (i ? ", " : "") + in[i].str();
    throw shape_error(s + ": " + expected);
}

seqgrad::shape same_shape(const op_def&, std::span<const seqgrad::shape> in, const attrs&) { return in[0]; }

seqgrad::shape scalar_shape(const op_def&, std::span<const seqgrad::shape>, const attrs&) { return {}; }

seqgrad::shape broadcast_shape(const op_def& op, std::span<const seqgrad::shape> in, const attrs&) {
    bool same = true;  // the common case, answered without building a shape
    for (const auto& s : in) same = same && s == in[0];
    if (same) return in[0];
    std::size_t rank = 0;
    for (const auto& s : in) rank = std::max(rank, s.rank());
    seqgrad::shape out;
    for (std::size_t k = 0; k < rank; ++k) out.push_back(1);
    for (const auto& s : in)
        for (std::size_t k = 0; k < s.rank(); ++k) {
            std::size_t& o = out[rank - 1 - k];
            const std::size_t d = s.back(k);
            if (o == 1) o = d;
            else if (d != 1 && d != o)
                fail_shape(
                    op, in,
                    "expected shapes that broadcast (NumPy rules: aligned on the right, each dimension equal or 1)");
        }
    return out;
}

}  // namespace seqgrad
