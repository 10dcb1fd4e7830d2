#pragma once
// The op registry. Every differentiable primitive is declared once, with everything about it side
// by side: name, arity, shape rule, forward, backward, what backward needs saved, and sample
// input shapes that the registry-wide gradient check uses.
//
//   SEQGRAD_REGISTER_OP(my_square) = seqgrad::op_builder("my_square")
//       .arity(1)
//       .shape(seqgrad::same_shape)
//       .forward([](auto& c) { auto x = c.in(0); const auto& y = c.out();
//                              for (std::size_t i = 0; i < y.size(); ++i) y[i] = x[i] * x[i]; })
//       .backward([](auto& c) { auto x = c.in(0); const auto& gy = c.grad_out();
//                               c.emit(0, [&](std::size_t i) { return 2 * x[i] * gy[i]; }); })
//       .saves(seqgrad::saves::inputs)
//       .sample({{2, 3}});
//   ...
//   seqgrad::expr y = seqgrad::apply(my_square, {x});
//
// Kernels are generic lambdas without captures, instantiated for float and double. A backward
// writes one contribution per input through emit()/target(), with overwrite semantics: the engine
// adds it to the input's gradient (emit adds in place; a target() that already holds an earlier
// contribution is swapped for scratch that the engine adds afterwards) and, for broadcasting ops,
// reduces it back to the input's shape (unless the op does that itself: .reduces_broadcast()).
// Ops never accumulate by hand, except those that declare .accumulates(): GEMM kernels that add
// with beta = 1, and kernels that write only a part of their target (a slice, embedding rows),
// for which a full-size scratch per contribution would turn the T slices of a sequence into
// O(T^2) work.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shape.hpp"

namespace seqgrad {

class tape;
struct op_def;

/// A contiguous row-major tensor in a kernel: a pointer and a shape.
template <class T>
struct tensor_ref {
    T* data = nullptr;
    seqgrad::shape shape;
    std::size_t size() const { return shape.size(); }
    T& operator[](std::size_t i) const { return data[i]; }
    T* begin() const { return data; }
    T* end() const { return data + size(); }
};

/// Small per-node attributes: integer and real constants, a target shape, and integer data
/// (indices, targets) copied onto the tape.
struct attrs {
    std::array<std::int64_t, 4> i{};
    std::array<double, 2> f{};
    seqgrad::shape shp{};
    std::span<const int> ints{};
    /// All zero/empty: most ops have no attributes, and their nodes share one empty set.
    bool empty() const noexcept {
        return i == decltype(i){} && f[0] == 0 && f[1] == 0 && shp.rank() == 0 && ints.empty();
    }
};
inline const attrs no_attrs{};

/// What backward reads: its inputs' values (in(i)), its output's (out()), both or nothing; it may
/// always read shapes, attributes and grad_out(). The engine keeps only that (core/saves.cpp): a
/// value that has been read and that no recorded backward reads is released (in an unroll two
/// steps later, else at backward) and its memory reused, so long unrolls hold only what backward
/// reads; reading a released value again recomputes it. A declaration that says less than the
/// backward reads is a bug that tape::set_poison_released exposes (tests/ops/test_saves.cpp).
enum class saves : std::uint8_t { nothing = 0, inputs = 1, output = 2, both = 3 };

/// What an op says about its gradient; registration refuses an op that says nothing.
enum class gradient_kind : std::uint8_t {
    undeclared,       // neither .backward(), .no_gradient() nor .gradient_not_implemented()
    defined,          // .backward(f)
    none,             // .no_gradient(): mathematically none (argmax, comparisons)
    not_implemented,  // .gradient_not_implemented(): exists, not written yet
};

/// An elementwise unary op whose derivative its output alone gives: sigmoid y (1 - y), tanh
/// 1 - y^2, relu [y > 0], exp y. Declaring it (op_builder::derivative_of_output<K>) is the op's
/// backward; with graph optimisations on, the engine also folds that backward into the backward of
/// the one op that reads its output: that op's pass writes the gradient of the activation's input,
/// g(y) f'(y), directly, and g(y) is not stored (tape::grad recomputes it when asked).
enum class output_derivative : std::uint8_t { none, sigmoid, tanh, relu, exp };

/// Value ranges for sample inputs: most ops take any value; log, sqrt and division need positive
/// ones; ops with a kink (relu) avoid a neighbourhood of it.
enum class domain : std::uint8_t { any, positive, away_from_zero };

/// One sample application of an op for the registry-wide gradient check.
struct op_sample {
    std::vector<seqgrad::shape> inputs;
    attrs at;
    std::vector<int> ints;        // copied into at.ints when the sample runs
    std::vector<domain> domains;  // per input; missing entries mean domain::any
};

namespace detail {
struct node;
}

/// Forward kernel context: input values, the output buffer, the attributes.
template <class T>
struct forward_ctx {
    const detail::node* nodes;
    const std::uint32_t* inputs;
    std::size_t num_inputs;
    tensor_ref<T> output;
    const attrs& at;

    tensor_ref<const T> in(std::size_t i) const;
    const tensor_ref<T>& out() const { return output; }
};

namespace detail {
/// g f'(y) for an op declaring output_derivative K: the one formula of each, used by the op's own
/// backward and by the engine's folded pass.
template <output_derivative K, class T>
inline T through(T g, T y) {
    if constexpr (K == output_derivative::sigmoid) return g * y * (1 - y);
    else if constexpr (K == output_derivative::tanh) return g * (1 - y * y);
    else if constexpr (K == output_derivative::relu) return y > 0 ? g : T(0);
    else return g * y;
}
/// An activation folded into a contribution: its output's values and kind (null y: none).
template <class T>
struct fold_slot {
    const T* y = nullptr;
    output_derivative kind = output_derivative::none;
};
/// t[0, n) = (or +=) g[i] f'(y[i]) for the fold's kind (core/backward.cpp; one copy per scalar type).
template <class T>
void fold_chunk(T* t, const T* y, const T* g, std::size_t n, bool add, output_derivative kind);
/// emit() of a folded contribution: the op's own entries a chunk at a time into a buffer on the
/// stack (the same loop as a plain emit), each chunk through fold_chunk while it is in L1. One
/// loop that did both inline ran scalar (GCC did not vectorize it inside the ops' kernels).
template <class T, class F>
void emit_folded(T* t, std::size_t n, bool add, const fold_slot<T>& s, F& f) {
    constexpr std::size_t chunk = 512;
    alignas(64) T buf[chunk];
    for (std::size_t o = 0; o < n; o += chunk) {
        const std::size_t m = n - o < chunk ? n - o : chunk;
        for (std::size_t i = 0; i < m; ++i) buf[i] = static_cast<T>(f(o + i));
        fold_chunk(t + o, s.y + o, buf, m, add, s.kind);
    }
}
/// The backward of an op declaring output_derivative K: the same formula the engine folds.
template <output_derivative K>
struct output_derivative_backward {
    template <class C>
    void operator()(const C& c) const {
        const auto& y = c.out();
        const auto& gy = c.grad_out();
        c.emit(0, [&](std::size_t i) { return through<K>(gy[i], y[i]); });
    }
};
/// Throws op_error: op read backward_ctx::accumulate() without declaring .accumulates().
[[noreturn]] void accumulate_not_declared(const op_def& op);
}  // namespace detail

/// Backward kernel context. in(i)/out() give the saved values (only those the op's saves
/// declaration names; see saves), grad_out() the output's gradient. For each input that needs a
/// gradient (needs(i)), write its contribution with emit(i, f), where f(k) returns entry k, or
/// overwrite target(i) (every entry: its contents are unspecified). Ops that declared
/// .accumulates() instead read accumulate(i): true when target(i) holds an earlier contribution
/// to add to (a GEMM passes beta = accumulate(i) ? 1 : 0); other ops calling it get op_error.
template <class T>
struct backward_ctx {
    const detail::node* nodes;
    const std::uint32_t* inputs;
    std::size_t num_inputs;
    tensor_ref<const T> output;
    tensor_ref<const T> grad_output;
    const attrs& at;
    const op_def& op;
    tensor_ref<T>* targets;  // per input; data == nullptr when no gradient is needed
    // The engine's side, not for kernels: adds[i] says targets[i] holds an earlier contribution;
    // to_scratch(engine, i) swaps targets[i] for scratch the engine adds in after the backward.
    bool* adds;
    void* engine;
    void (*to_scratch)(void* engine, std::size_t i);
    /// Product ops (op_builder::product): b's stored matrix transposed and packed in column panels
    /// (detail::pack_panels; read it with detail::gemm_packed), where the engine laid one out for
    /// this product (an untimed weight read by a step's few rows), else null.
    const T* b_packed = nullptr;
    /// The engine's: per input, an activation whose backward this contribution folds in (emit
    /// does it in its pass; target, emit_rows and accumulate first call unfold, which gives the
    /// activation's output a gradient of its own to write instead), or null when none is.
    detail::fold_slot<T>* folds = nullptr;
    void (*unfold)(void* engine, std::size_t i) = nullptr;
    /// The node being differentiated (set by the engine).
    const detail::node* self = nullptr;

    tensor_ref<const T> in(std::size_t i) const;
    const tensor_ref<const T>& out() const { return output; }
    const tensor_ref<const T>& grad_out() const { return grad_output; }
    bool needs(std::size_t i) const { return targets[i].data != nullptr; }
    /// Record readers (op_def::record_reader), writing input i's gradient first: whether the
    /// input's internal rows may be left unwritten (a record no other op reads, and the target is
    /// its gradient itself, not scratch the engine adds in or clips).
    bool internal_unwritten(std::size_t i) const;
    /// A record's backward (op_def::record_state_rows): whether its output gradient's internal
    /// rows were left unwritten and are to be read as zero.
    bool output_internal_unwritten() const;
    tensor_ref<T> target(std::size_t i) const;
    bool accumulate(std::size_t i) const;
    template <class F>
    void emit(std::size_t i, F&& f) const {
        // Fields read one by one, not the target copied whole: the engine has just written it,
        // and a wide load over several recent stores stalls store-to-load forwarding.
        T* const d = targets[i].data;
        if (!d) return;
        const std::size_t n = targets[i].size();
        if (folds && folds[i].y) [[unlikely]]
            return detail::emit_folded(d, n, adds[i], folds[i], f);
        if (adds[i])  // the engine's accumulation, done in the same pass
            for (std::size_t k = 0; k < n; ++k) d[k] += static_cast<T>(f(k));
        else
            for (std::size_t k = 0; k < n; ++k) d[k] = static_cast<T>(f(k));
    }
    /// emit(i, ...) of a contribution that is constant along rows of n entries (a row statistic's
    /// gradient spread back over its row): f(o) gives row o's value.
    template <class F>
    void emit_rows(std::size_t i, std::size_t n, F&& f) const {
        if (folds && folds[i].y) unfold(engine, i);
        T* const d = targets[i].data;
        if (!d) return;
        const std::size_t rows = n ? targets[i].size() / n : 0;
        for (std::size_t o = 0; o < rows; ++o) {
            const T v = static_cast<T>(f(o));
            T* __restrict r = d + o * n;
            if (adds[i])
                for (std::size_t k = 0; k < n; ++k) r[k] += v;
            else
                for (std::size_t k = 0; k < n; ++k) r[k] = v;
        }
    }
};

using shape_fn = seqgrad::shape (*)(const op_def&, std::span<const seqgrad::shape>, const attrs&);
/// A recurrence's backward over a run of its step nodes at once (op_builder::chain): the run's
/// nodes in tape order, each reading the one before as input op_def::chain_input and all reading
/// the same other inputs. The op writes what the nodes' backward calls would have written, in any
/// order that gives the same values (e.g. each thread its rows through every step).
template <class T>
struct chain_ctx {
    const detail::node* nodes;
    std::span<const std::uint32_t> ids;
    /// The first node's inputs: its chain input is the run's initial state; the others are every node's.
    const std::uint32_t* inputs;
    std::size_t num_inputs;
    /// Per node, its output gradient. For every node but the last, also where the next node's
    /// contribution through its chain input goes: added when external[k], else written, and then
    /// the op writes all of it (this is what tape::grad shows for the node).
    std::span<T* const> grads;
    /// Per node: grads[k] holds contributions of readers outside the run.
    std::span<const char> external;
    /// Per input of the first node, as backward_ctx's targets (data null: no gradient needed) and
    /// whether each holds an earlier contribution to add to.
    const tensor_ref<T>* targets;
    const bool* adds;
    /// Hands work that writes only input q's gradient (a weight's, read by nothing before the
    /// sweep ends) to another executor thread, the sweep going on meanwhile. false: not taken (one
    /// thread, or other work already handed over), so do it here. Once taken it runs on another
    /// thread, or on this one after the op returns: it must never wait for the op.
    const std::function<bool(std::size_t q, std::function<void()> work)>* hand_over = nullptr;

    tensor_ref<const T> value(std::uint32_t id) const;
    const attrs& at(std::size_t k) const;
    /// As backward_ctx::output_internal_unwritten, for node k of the run (grads[k]).
    bool internal_unwritten(std::size_t k) const;
};

template <class T>
using forward_fn = void (*)(const forward_ctx<T>&);
template <class T>
using backward_fn = void (*)(const backward_ctx<T>&);
template <class T>
using chain_fn = void (*)(const chain_ctx<T>&);
/// Whether a run whose first node has these inputs can be chained (op_builder::chain).
using chain_accepts_fn = bool (*)(const detail::node* nodes, const std::uint32_t* inputs, std::size_t num_inputs);

/// An op as the registry holds it. Build one with op_builder.
struct op_def {
    std::string name;
    int arity = 1;  // -1: any number >= 1
    shape_fn infer_shape = nullptr;
    forward_fn<float> forward_f = nullptr;
    forward_fn<double> forward_d = nullptr;
    backward_fn<float> backward_f = nullptr;  // null: the op has no gradient
    backward_fn<double> backward_d = nullptr;
    gradient_kind gradient = gradient_kind::undeclared;
    seqgrad::saves saved = saves::both;
    /// Backward adds into its targets itself, reading backward_ctx::accumulate (op_builder::accumulates).
    bool accumulates = false;
    /// Elementwise ops whose inputs broadcast to the output (NumPy rules): backward writes
    /// output-shaped contributions and the engine sums them down to each input's shape.
    bool broadcasting = false;
    /// A broadcasting op whose backward writes each input's contribution already summed down to
    /// that input's shape (ops/kernels.hpp's emit_binary does it in the pass that computes it):
    /// the engine then gives input-shaped targets and reduces nothing.
    bool reduces_broadcast = false;
    /// Output never needs a gradient (stop_gradient, comparisons, argmax).
    bool constant_output = false;
    /// The output is (or contains, added) the product op(in[product_a]) op(in[product_b]), with
    /// the transpose flags in at.i[0] and at.i[1] (matmul, matmul_add). Declaring it lets the
    /// engine compute in[product_b]'s gradient itself, batched over every such product that
    /// reads the same b (the weight gradient of all time steps as one GEMM); the op's backward
    /// then sees needs(product_b) == false. -1: not a product.
    int product_a = -1, product_b = -1;
    /// matmul_add: the addend input, [m, n] or a row [n] / [1, n] added to every row. -1: none.
    int product_c = -1;
    /// Contiguous views (reshape; a slice whose rows are one block): the output is entries
    /// [off, off + size) of input 0, in order. Returns off, or no_view where these shapes and
    /// attributes do not give one. With graph optimisations on, the tape points the output at the
    /// input's memory instead of copying it (and products can find the rows they read; see tape).
    std::size_t (*view_offset)(std::span<const seqgrad::shape> in, const attrs& at) = nullptr;
    static constexpr std::size_t no_view = static_cast<std::size_t>(-1);
    /// Ops whose backward copies blocks of the output gradient out unchanged (reshape; concat of
    /// contiguous blocks; add, add_scalar and sub's first operand where no broadcast is undone):
    /// where input j's gradient lies in the output's gradient, as an offset, or no_view. With graph optimisations on, an input with no other reader is handed that
    /// block as its gradient (no copy; tape::grad of both nodes is unchanged).
    std::size_t (*gradient_block)(std::span<const seqgrad::shape> in, const attrs& at, std::size_t j) = nullptr;
    /// Records (lstm_step's [6, B, H]): the output's first `record_state_rows` rows along axis 0
    /// are the state readers see; the rest are internal (the activations the op's own backward
    /// reads). 0: not a record. A record read only by record readers gets no gradient in its
    /// internal rows from anyone: the first writer leaves them unwritten, the op's backward reads
    /// them as zero (backward_ctx::internal_unwritten), and tape::grad shows zeros there.
    int record_state_rows = 0;
    /// Records: the loss's gradient with respect to state block s as tape::grad shows it, where it
    /// is more than the block's own gradient (an LSTM's c' also reaches the loss through
    /// h' = o tanh(c') inside the node): written to out from the record's value and gradient;
    /// false: the block's own gradient is the whole of it.
    bool (*state_gradient)(bool f32, const seqgrad::shape& record, const void* value, const void* grad, int s,
                           void* out) = nullptr;
    /// The op's backward writes only the state rows of a record input's gradient (lstm_rows, the
    /// previous state of lstm_step). Any other reader of a record, or a backward rooted at it,
    /// makes its internal rows' gradient an ordinary one.
    bool record_reader = false;
    /// See chain_ctx: the input that reads the previous step's node (-1: the op does not chain).
    int chain_input = -1;
    chain_accepts_fn chain_accepts = nullptr;
    chain_fn<float> chain_f = nullptr;
    chain_fn<double> chain_d = nullptr;
    std::vector<op_sample> samples;
    /// See output_derivative.
    output_derivative derivative = output_derivative::none;
    /// Extra text after the inputs when a node prints itself ("axis=1").
    std::string (*print_attrs)(const attrs&) = nullptr;

    bool differentiable() const { return backward_f != nullptr; }
    template <class T>
    forward_fn<T> forward() const {
        if constexpr (std::is_same_v<T, float>) return forward_f;
        else return forward_d;
    }
    template <class T>
    backward_fn<T> backward() const {
        if constexpr (std::is_same_v<T, float>) return backward_f;
        else return backward_d;
    }
};

template <class T>
tensor_ref<T> backward_ctx<T>::target(std::size_t i) const {
    if (folds && folds[i].y) unfold(engine, i);
    if (adds[i] && !op.accumulates) to_scratch(engine, i);
    return targets[i];
}
template <class T>
bool backward_ctx<T>::accumulate(std::size_t i) const {
    if (!op.accumulates) detail::accumulate_not_declared(op);
    if (folds && folds[i].y) unfold(engine, i);
    return adds[i];
}

namespace detail {
template <class F, class T>
void forward_thunk(const forward_ctx<T>& c) {
    F{}(c);
}
template <class F, class T>
void backward_thunk(const backward_ctx<T>& c) {
    F{}(c);
}
template <class F, class T>
void chain_thunk(const chain_ctx<T>& c) {
    F{}(c);
}
}  // namespace detail

/// Fluent description of an op; pass it to register_op (or SEQGRAD_REGISTER_OP).
class op_builder {
public:
    explicit op_builder(std::string name) { def_.name = std::move(name); }
    op_builder& arity(int n) {
        def_.arity = n;
        return *this;
    }
    op_builder& shape(shape_fn f) {
        def_.infer_shape = f;
        return *this;
    }
    /// A generic lambda without captures, called with a forward_ctx<float> or forward_ctx<double>.
    template <class F>
    op_builder& forward(F) {
        def_.forward_f = &detail::forward_thunk<F, float>;
        def_.forward_d = &detail::forward_thunk<F, double>;
        return *this;
    }
    template <class F>
    op_builder& backward(F) {
        def_.backward_f = &detail::backward_thunk<F, float>;
        def_.backward_d = &detail::backward_thunk<F, double>;
        def_.gradient = gradient_kind::defined;
        return *this;
    }
    /// Declare that the op has no gradient: asking for one through it throws graph_error.
    op_builder& no_gradient() {
        def_.backward_f = nullptr;
        def_.backward_d = nullptr;
        def_.gradient = gradient_kind::none;
        return *this;
    }
    /// Declare that the op's gradient is not written yet: asking for one throws graph_error
    /// saying so (and the registry's gradient check lists the op as unfinished).
    op_builder& gradient_not_implemented() {
        def_.backward_f = nullptr;
        def_.backward_d = nullptr;
        def_.gradient = gradient_kind::not_implemented;
        return *this;
    }
    op_builder& saves(seqgrad::saves s) {
        def_.saved = s;
        return *this;
    }
    /// Opt in to adding into gradient targets by hand: backward reads c.accumulate(i) and adds
    /// (beta = 1) when it is true. Only for GEMM kernels and kernels that write a small part of a
    /// large target (see the top of this file); every other op writes plain contributions.
    op_builder& accumulates(bool on = true) {
        def_.accumulates = on;
        return *this;
    }
    /// See op_def::record_state_rows and op_def::record_reader.
    op_builder& record(int state_rows, decltype(op_def::state_gradient) state_gradient = nullptr) {
        def_.record_state_rows = state_rows;
        def_.state_gradient = state_gradient;
        return *this;
    }
    op_builder& record_reader(bool on = true) {
        def_.record_reader = on;
        return *this;
    }
    op_builder& broadcasting(bool on = true) {
        def_.broadcasting = on;
        return *this;
    }
    /// See op_def::reduces_broadcast.
    op_builder& reduces_broadcast(bool on = true) {
        def_.reduces_broadcast = on;
        return *this;
    }
    op_builder& constant_output(bool on = true) {
        def_.constant_output = on;
        return *this;
    }
    op_builder& sample(std::vector<seqgrad::shape> inputs, attrs at = {}, std::vector<int> ints = {},
                       std::vector<domain> domains = {}) {
        def_.samples.push_back({std::move(inputs), at, std::move(ints), std::move(domains)});
        return *this;
    }
    /// See op_def::product_a.
    op_builder& product(int a, int b, int c = -1) {
        def_.product_a = a;
        def_.product_b = b;
        def_.product_c = c;
        return *this;
    }
    /// See chain_ctx: runs of this op's nodes linked through `input` may be swept by f as one
    /// call (in a plain sweep with the graph optimisations on; never under checkpointing,
    /// truncation, state-edge transforms or check_finite), where accepts(first node's inputs) says
    /// the kernel handles them. Held equal to the per-node backward by the tests.
    template <class F>
    op_builder& chain(int input, chain_accepts_fn accepts, F) {
        def_.chain_input = input;
        def_.chain_accepts = accepts;
        def_.chain_f = &detail::chain_thunk<F, float>;
        def_.chain_d = &detail::chain_thunk<F, double>;
        return *this;
    }
    /// See op_def::view_offset.
    op_builder& view(std::size_t (*f)(std::span<const seqgrad::shape>, const attrs&)) {
        def_.view_offset = f;
        return *this;
    }
    /// See output_derivative (an op of one input, output shaped as the input): sets the op's
    /// backward, g(y) f'(y), and what it saves (the output).
    template <output_derivative K>
    op_builder& derivative_of_output() {
        def_.derivative = K;
        def_.saved = saves::output;
        return backward(detail::output_derivative_backward<K>{});
    }
    /// See op_def::gradient_block.
    op_builder& gradient_block(std::size_t (*f)(std::span<const seqgrad::shape>, const attrs&, std::size_t)) {
        def_.gradient_block = f;
        return *this;
    }
    op_builder& print_attrs(std::string (*f)(const attrs&)) {
        def_.print_attrs = f;
        return *this;
    }
    op_def build() && { return std::move(def_); }
    const op_def& peek() const { return def_; }

private:
    op_def def_;
};

/// The process-wide registry. Built-in ops are registered on first use; user ops through
/// register_op. Lookups by name throw op_error naming the unknown op.
class op_registry {
public:
    static op_registry& instance();
    /// Register an op; returns a reference that stays valid for the life of the process.
    const op_def& add(op_def def);
    const op_def& get(std::string_view name) const;
    const op_def* find(std::string_view name) const;
    /// All ops in registration order.
    std::vector<const op_def*> all() const;

private:
    op_registry() = default;
    struct impl;
    std::vector<std::unique_ptr<op_def>> ops_;
};

/// Register a user op. Validates the description (name, arity, shape rule, forward, samples).
const op_def& register_op(op_builder&& b);
inline const op_def& register_op(op_builder& b) { return register_op(std::move(b)); }

/// Look an op up by name (op_error if unknown).
const op_def& find_op(std::string_view name);

// Helpers for shape rules.

/// Throw shape_error naming the op, every input shape and what was expected.
[[noreturn]] void fail_shape(const op_def& op, std::span<const seqgrad::shape> in, const std::string& expected);
/// Output has the shape of input 0.
seqgrad::shape same_shape(const op_def&, std::span<const seqgrad::shape> in, const attrs&);
/// NumPy broadcasting of all inputs (aligned on the right, equal or 1).
seqgrad::shape broadcast_shape(const op_def&, std::span<const seqgrad::shape> in, const attrs&);
/// Output is a scalar (rank 0).
seqgrad::shape scalar_shape(const op_def&, std::span<const seqgrad::shape> in, const attrs&);

}  // namespace seqgrad

/// Registers an op at static-initialisation time from user code:
///   SEQGRAD_REGISTER_OP(name) = seqgrad::op_builder("name")....;
/// defines `const seqgrad::op_def& name`.
#define SEQGRAD_REGISTER_OP(var) \
    const seqgrad::op_def& var = seqgrad::detail::op_registrar {}
namespace seqgrad::detail {
/// op's view offset for these shapes (op_def::no_view: none); op_error when it points past input 0
/// (a user op's op_builder::view declaration that reading through would read past its memory).
std::size_t checked_view_offset(const op_def& op, std::span<const shape> in, const attrs& at, const shape& out);
/// op.infer_shape's answer; op_error when an op declaring derivative_of_output changes the shape.
seqgrad::shape inferred_shape(const op_def& op, std::span<const shape> in, const attrs& at);
struct op_registrar {
    const op_def& operator=(op_builder&& b) const { return register_op(std::move(b)); }
    const op_def& operator=(op_builder& b) const { return register_op(std::move(b)); }
};
}  // namespace seqgrad::detail
