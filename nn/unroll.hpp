#pragma once
// Applying a cell over time, and the sequence shapes built from it.
//
// A cell is anything callable as `State cell(const expr& x, const State& s)`: the built-in
// rnn_cell / lstm_cell / gru_cell, a user struct, or a lambda. State is expr, lstm_state, or any
// copyable type of the user's (see "Customisation points" below).
//
//     auto states = nn::unroll(t, cell, xs, s0);             // many-to-many: one state per step
//     auto last   = states.back();                           // many-to-one
//     auto gen    = nn::generate(t, cell, x0, s0, 10, feed);  // one-to-many: outputs fed back
//     auto s2s    = nn::encode_decode(t, enc, dec, src, tgt_in, s0);
//     auto masked = nn::unroll_masked(t, cell, xs, s0, lengths);   // variable-length batch
//     nn::stacked<nn::lstm_cell> deep = nn::make_stacked<nn::lstm_cell>(scope, 3, I, H, true);
//     auto bi     = nn::bidirectional<nn::gru_cell>{fwd, bwd}(t, xs, f0, b0, lengths);
//
// Every unroll marks each step on the tape (step_scope around the step's nodes, numbered from first_step) and records
// where its state comes from (the step read before it), so graph transforms find the windows (truncated BPTT) by the
// step marks and the state edges (state-gradient clipping, user transforms) as recorded. The backward direction of a
// bidirectional run marks each node with the position it reads, so its state edges run from k + 1 to k.
//
// Variable-length batches. xs[k] is [B, F] for every step; row b is valid for the first lengths[b] steps. At a step
// where some rows have finished, the new state is blend(mask, cell(x', s), s) with a [B, 1] 0/1 mask, where x' is x
// with the finished rows zeroed: a finished row keeps its state bit for bit, and no gradient reaches anything through
// its discarded update (inputs after its end, or parameters through them), whatever the padding holds (NaN or Inf
// included). Steps where every row is valid skip the blend, and steps where none is skip the cell (the blend still
// carries the state, so a padded position is a state edge for transforms at any step). Outputs at padded positions
// still exist (a carried state); give them a target of -1 (mask_targets / step_targets) so cross_entropy ignores them.
//
// Genericity: templates over the cell type (zero overhead; the cell is inlined in the loop) plus one small type-erased
// cell, any_cell, whose state any_state carries its own hidden/blend. A stack of layers of one cell type is
// stacked<lstm_cell>; a stack mixing types is stacked<any_cell>. stacked is itself a cell, so everything here (masks,
// generate, bidirectional, encoder-decoder) works on deep models unchanged.
#include <any>
#include <concepts>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "../core/parameter.hpp"
#include "../core/tape.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/shape_ops.hpp"
#include "cells.hpp"
#include "dropout.hpp"

namespace seqgrad::nn {

// ---- customisation points ------------------------------------------------------------------------
//
// hidden(state) -> expr: the output of a state (expr -> itself, lstm_state -> .h).
// blend(mask, new_state, old_state) -> state: per-row choice by a [B, 1] 0/1 mask.
// Both are declared for expr and lstm_state in cells.hpp, for stacked_state and any_state below.
// For a state type of your own, declare them next to it (found by argument-dependent lookup):
//
//     namespace my { struct peephole_state { sg::expr h, c, n; };
//         sg::expr hidden(const peephole_state& s) { return s.h; }
//         peephole_state blend(const sg::expr& m, const peephole_state& a, const peephole_state& b) {
//             return {sg::nn::blend(m, a.h, b.h), sg::nn::blend(m, a.c, b.c), sg::nn::blend(m, a.n, b.n)}; } }

/// Outputs of a sequence of states: hidden(s) for each.
template <class State>
std::vector<expr> hiddens(const std::vector<State>& states) {
    std::vector<expr> out;
    out.reserve(states.size());
    for (const State& s : states) out.push_back(hidden(s));
    return out;
}

// ---- cell traits ---------------------------------------------------------------------------------

namespace detail {
template <class F>
struct call_signature;
#define SEQGRAD_NN_CALL_SIGNATURE(QUALIFIERS)          \
    template <class C, class R, class X, class S>      \
    struct call_signature<R (C::*)(X, S) QUALIFIERS> { \
        using state = std::remove_cvref_t<S>;          \
    };
SEQGRAD_NN_CALL_SIGNATURE()
SEQGRAD_NN_CALL_SIGNATURE(const)
SEQGRAD_NN_CALL_SIGNATURE(noexcept)
SEQGRAD_NN_CALL_SIGNATURE(const noexcept)
#undef SEQGRAD_NN_CALL_SIGNATURE
template <class Cell>
struct cell_state : call_signature<decltype(&Cell::operator())> {};
template <class R, class X, class S>
struct cell_state<R (*)(X, S)> {
    using state = std::remove_cvref_t<S>;
};
}  // namespace detail

/// The state type of a cell, read from its (non-template) call operator's second parameter. For
/// a generic lambda, name the state explicitly where a template asks for it.
template <class Cell>
using cell_state_t = typename detail::cell_state<std::remove_cvref_t<Cell>>::state;

/// Cells that can make their own zero state: cell.initial_state(t, batch).
template <class Cell>
concept has_initial_state = requires(const Cell& c, tape& t, std::size_t b) {
    c.initial_state(t, b);
};

// ---- masks and targets for variable-length batches ---------------------------------------------

/// [B, 1] mask on t for step `step`: 1 where step < lengths[b], else 0.
expr step_mask(tape& t, std::span<const std::size_t> lengths, std::size_t step);
/// Per-step targets (targets[k] has one entry per row) with -1 wherever k >= lengths[b], so that
/// cross_entropy ignores finished rows. Throws shape_error when a step's row count is not B.
std::vector<std::vector<int>> mask_targets(std::span<const std::vector<int>> targets,
                                           std::span<const std::size_t> lengths);
/// A ragged batch of sequences (sequences[b] of its own length, at most `steps`) laid out per
/// step: result[k][b] = sequences[b][k], or -1 past the end of row b.
std::vector<std::vector<int>> step_targets(std::span<const std::vector<int>> sequences, std::size_t steps);
/// The length of each sequence of a ragged batch.
std::vector<std::size_t> lengths_of(std::span<const std::vector<int>> sequences);

/// [T, B, F] -> T exprs [B, F] (one slice per step).
std::vector<expr> unstack_steps(const expr& sequence);
/// T exprs of one shape [B, F] -> [T, B, F]; an LSTM sequence path's h (or c) of every step: one lstm_rows.
expr stack_steps(std::span<const expr> steps);

namespace detail {
/// xs and the state's hidden part [B, ...] (no cell runs if every length is 0), lengths B, each <= T.
void check_sequence(const char* who, std::span<const expr> xs, std::span<const std::size_t> lengths, const shape& s);
/// How many rows are valid at step k.
std::size_t active_rows(std::span<const std::size_t> lengths, std::size_t k);
/// x [B, ...] with the rows whose step mask m [B, 1] is 0 replaced by zeros.
expr masked_input(const expr& m, const expr& x);

// The one loop behind every unroll: forward or reverse, masked when lengths is non-empty.
// states[k] is the state after reading position k, in time order either way.
template <class Cell, class State>
std::vector<State> run(tape& t, const Cell& cell, std::span<const expr> xs, State s,
                       std::span<const std::size_t> lengths, bool reverse, int first_step, const char* who,
                       bool mark = true) {
    static_assert(std::is_invocable_r_v<State, const Cell&, const expr&, const State&>,
                  "seqgrad::nn: a cell must be callable as State cell(const expr& x, const State& s)");
    const bool masked = !lengths.empty();
    if (masked) check_sequence(who, xs, lengths, flow_state(s).shape());
    std::vector<State> out(xs.size(), s);
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const std::size_t k = reverse ? xs.size() - 1 - i : i;
        // The state this step reads was made by the step read before it (the edge transforms use).
        const int step = first_step + static_cast<int>(k);
        const int from = i == 0 ? (reverse ? -1 : first_step - 1) : (reverse ? step + 1 : step - 1);
        step_scope scope(t, step, from);
        const std::size_t active = masked ? active_rows(lengths, k) : 1;
        // Where some rows have finished, the cell reads zeros in them, not their padding: a NaN or
        // Inf there would otherwise reach the kept state (0 * NaN) and the parameters' gradients.
        // Where all have, no cell runs but the carry is still a state edge, as a finished row's is
        // at a partial step, so transforms see a row's steps alike whatever its batch-mates' lengths.
        const bool partial = masked && active < lengths.size();
        const expr m = partial ? step_mask(t, lengths, k) : expr();
        State next = active == 0 ? s : cell(partial ? masked_input(m, xs[k]) : xs[k], s);
        if (partial) next = blend(m, next, s);
        s = next;
        if (mark) t.mark_state(flow_state(s));  // for record_gradient_flow: ||dL/dh_t|| per step
        out[k] = s;
    }
    return out;
}
}  // namespace detail

// ---- unroll ------------------------------------------------------------------------------------

/// Apply cell over xs (xs[k] is [B, I]) from s0: the state after every step (many-to-many; its
/// back() is the many-to-one result). Step k's nodes are marked first_step + k.
template <class Cell, class State>
std::vector<State> unroll(tape& t, const Cell& cell, std::span<const expr> xs, State s0, int first_step = 0) {
    return detail::run(t, cell, xs, std::move(s0), {}, false, first_step, "unroll");
}
/// The same from the cell's zero state (needs cell.initial_state and at least one step).
template <class Cell>
requires has_initial_state<Cell>
auto unroll(tape& t, const Cell& cell, std::span<const expr> xs) {
    if (xs.empty()) throw value_error("nn::unroll: no steps to infer the batch size from; pass an initial state");
    return unroll(t, cell, xs, cell.initial_state(t, xs[0].shape()[0]));
}
// ---- whole-sequence paths ------------------------------------------------------------------------
//
// unroll over a whole sequence [T, B, I] first asks the cell whether it runs such a sequence
// itself (found by argument-dependent lookup, as hidden and blend are):
// sequence_path_applies(t, cell, sequence_shape, s0) decides before anything is recorded, and
// sequence_path(t, cell, sequence, s0, first_step) then returns the state of every step.
// nn::lstm_cell has one (the fused layer, nn::detail::lstm_layer in nn/lstm_layer.hpp); a stack
// whose first layer has one runs that layer there and the layers above step by step; any_cell
// forwards to the cell it wraps; any other cell runs step by step. Values, gradients, step marks, state edges and
// marked states (unroll marks each step's hidden(state), a sequence_path none) are those of the step-by-step run.
template <class Cell, class State>
bool sequence_path_applies(const tape&, const Cell&, const shape&, const State&) {
    return false;
}
template <class Cell, class State>
std::vector<State> sequence_path(tape&, const Cell&, const expr&, const State&, int) {
    return {};
}
/// nn::lstm_cell: with the graph optimisations on, not under checkpoint_bptt, at any batch size (at batch 1 too since
/// 2026-12-03d: the layer's GEMV steps measured as fast as the per-step cell or up to 4% faster, bench/cells
/// lstm_cell against lstm_cell_steps), and with the shapes the per-step path would accept (it names what is wrong).
bool sequence_path_applies(const tape& t, const lstm_cell& cell, const shape& sequence, const lstm_state& s0);
/// The fused layer (the projections of all steps one GEMM, then one lstm_step node per step, as
/// nn::detail::lstm_layer); the states are views of each step's record.
std::vector<lstm_state> sequence_path(tape& t, const lstm_cell& cell, const expr& sequence, const lstm_state& s0,
                                      int first_step);

/// The same over a whole sequence [T, B, I] on the tape, on the cell's own sequence path where it has one (above):
/// for nn::lstm_cell, a stack whose first layer is one and any_cell wrapping either, with the graph optimisations
/// on, the (first) LSTM layer runs as one fused layer (tests/nn/test_engine_opt.cpp, test_sequence_path.cpp).
template <class Cell, class State>
std::vector<State> unroll(tape& t, const Cell& cell, const expr& sequence, State s0, int first_step = 0) {
    if (!sequence_path_applies(t, cell, sequence.shape(), s0))
        return unroll(t, cell, std::span<const expr>(unstack_steps(sequence)), std::move(s0), first_step);
    std::vector<State> out = sequence_path(t, cell, sequence, s0, first_step);
    for (const State& s : out) t.mark_state(flow_state(s));  // one per step, as step by step
    return out;
}

/// unroll over a variable-length batch: row b reads xs[0 .. lengths[b]) and then keeps its state
/// (so the last entry holds every row's state at its own last valid step). See the notes at the
/// top of this file. Throws shape_error / value_error when lengths do not match the batch or
/// exceed the number of steps.
template <class Cell, class State>
std::vector<State> unroll_masked(tape& t, const Cell& cell, std::span<const expr> xs, State s0,
                                 std::span<const std::size_t> lengths, int first_step = 0) {
    if (lengths.empty()) throw value_error("nn::unroll_masked: no lengths given (expected one per batch row)");
    return detail::run(t, cell, xs, std::move(s0), lengths, false, first_step, "unroll_masked");
}

/// One-to-many: step 0 reads x0; every later step reads next_input(previous state) (or
/// next_input(previous state, step)), e.g. the embedding of the previous output's argmax or a
/// projection of its hidden state. The input of step k is built inside step k's mark.
template <class Cell, class State, class Feedback>
std::vector<State> generate(tape& t, const Cell& cell, const expr& x0, State s0, std::size_t steps,
                            Feedback&& next_input, int first_step = 0) {
    std::vector<State> out;
    out.reserve(steps);
    expr x = x0;
    for (std::size_t k = 0; k < steps; ++k) {
        const int step = first_step + static_cast<int>(k);
        step_scope scope(t, step, k > 0 ? step - 1 : first_step - 1);
        if (k > 0) {
            if constexpr (std::is_invocable_v<Feedback&, const State&, std::size_t>) x = next_input(out.back(), k);
            else x = next_input(out.back());
        }
        out.push_back(cell(x, k == 0 ? s0 : out.back()));
        t.mark_state(flow_state(out.back()));  // for record_gradient_flow, as unroll marks its steps
    }
    return out;
}

/// States of an encoder-decoder run.
template <class EncState, class DecState>
struct seq2seq_states {
    std::vector<EncState> encoder;
    std::vector<DecState> decoder;
};

/// Encoder-decoder: the encoder reads source (masked by source_lengths when given, so each row's
/// final state is the one at its own last token), bridge maps its final state to the decoder's
/// initial state (identity by default: same state type), and the decoder reads target_inputs
/// (teacher forcing). Decoder steps are marked after the encoder's, from first_step + T_source;
/// the bridge runs in the decoder's first step, so the encoder-to-decoder edge is a state edge
/// (clipped by clip_state_gradient, cut by truncate_bptt) like any other.
template <class Enc, class Dec, class State, class Bridge = std::identity>
auto encode_decode(tape& t, const Enc& encoder, const Dec& decoder, std::span<const expr> source,
                   std::span<const expr> target_inputs, State s0, std::span<const std::size_t> source_lengths = {},
                   Bridge bridge = {}, int first_step = 0) {
    using dec_state = std::remove_cvref_t<std::invoke_result_t<Bridge&, const State&>>;
    seq2seq_states<State, dec_state> r;
    r.encoder = detail::run(t, encoder, source, s0, source_lengths, false, first_step, "encode_decode");
    const int decoder_first = first_step + static_cast<int>(source.size());
    dec_state d0 = [&]() -> dec_state {
        // The bridge's nodes belong to the decoder's first step, its state from the encoder's last:
        // untimed, they would hide that state edge from clip_state_gradient and make
        // truncate_bptt(k1, k2) throw.
        step_scope scope(t, decoder_first, decoder_first - 1);
        return std::invoke(bridge, r.encoder.empty() ? s0 : r.encoder.back());
    }();
    r.decoder = unroll(t, decoder, target_inputs, std::move(d0), decoder_first);
    return r;
}

// ---- type-erased cells ---------------------------------------------------------------------------

class any_state;
namespace detail {
struct state_ops {
    const std::type_info& type;
    expr (*hidden)(const std::any&);
    std::any (*blend)(const expr&, const std::any&, const std::any&);
};
template <class S>
const state_ops& ops_for();
[[noreturn]] void any_state_error(const std::string& what);
}  // namespace detail

/// A state of any type, with its hidden() and blend() carried along: the state of any_cell.
class any_state {
public:
    any_state() = default;
    template <class S>
    requires(!std::same_as<std::remove_cvref_t<S>, any_state>) explicit any_state(S s)
        : v_(std::move(s)), ops_(&detail::ops_for<S>()) {}

    bool has_value() const { return ops_ != nullptr; }
    const std::type_info& type() const { return ops_ ? ops_->type : typeid(void); }
    /// The held state; value_error naming both types when it holds another one.
    template <class S>
    const S& get() const {
        if (const S* p = std::any_cast<S>(&v_)) return *p;
        detail::any_state_error(std::string("holds ") + type().name() + ", asked for " + typeid(S).name());
    }

    friend expr hidden(const any_state& s) {
        if (!s.ops_) detail::any_state_error("hidden() of an empty state");
        return s.ops_->hidden(s.v_);
    }
    friend any_state blend(const expr& mask, const any_state& a, const any_state& b) {
        if (!a.ops_ || a.ops_ != b.ops_) detail::any_state_error("blend() of states of different types");
        any_state r;
        r.v_ = a.ops_->blend(mask, a.v_, b.v_);
        r.ops_ = a.ops_;
        return r;
    }

private:
    std::any v_;
    const detail::state_ops* ops_ = nullptr;
};
expr hidden(const any_state& s);  // visible to nn::hidden(...) too, not only by ADL
any_state blend(const expr& mask, const any_state& a, const any_state& b);

namespace detail {
template <class S>
const state_ops& ops_for() {
    static const state_ops ops{typeid(S),
                               [](const std::any& a) -> expr {
                                   if constexpr (requires(const S& s) { hidden(s); })
                                       return hidden(std::any_cast<const S&>(a));
                                   else any_state_error(std::string("no hidden() overload for ") + typeid(S).name());
                               },
                               [](const expr& m, const std::any& a, const std::any& b) -> std::any {
                                   if constexpr (requires(const S& s) { blend(m, s, s); })
                                       return S(blend(m, std::any_cast<const S&>(a), std::any_cast<const S&>(b)));
                                   else any_state_error(std::string("no blend() overload for ") + typeid(S).name());
                               }};
    return ops;
}
}  // namespace detail

/// Any cell behind one type: State is wrapped into any_state. Costs a std::function call and
/// possibly a small allocation per step over the template path; it exists so that one container
/// (stacked<any_cell>, a std::vector of layers) can mix cell types.
class any_cell {
public:
    /// Wrap a cell whose state type can be read from its call operator (cell_state_t).
    template <class Cell>
    requires(!std::same_as<std::remove_cvref_t<Cell>, any_cell>) any_cell(Cell cell)
        : any_cell(std::move(cell), std::type_identity<cell_state_t<Cell>>{}) {}
    /// Wrap a cell with an explicitly named state type (for generic lambdas).
    template <class Cell, class State>
    any_cell(Cell cell, std::type_identity<State>) {
        if constexpr (has_initial_state<Cell>)
            init_ = [cell](tape& t, std::size_t b) { return any_state(State(cell.initial_state(t, b))); };
        seq_applies_ = [cell](const tape& t, const shape& x, const any_state& s) {
            return s.type() == typeid(State) && sequence_path_applies(t, cell, x, s.get<State>());
        };
        seq_ = [cell](tape& t, const expr& x, const any_state& s, int first_step) {
            std::vector<any_state> out;
            for (auto& r : sequence_path(t, cell, x, s.get<State>(), first_step)) out.emplace_back(State(std::move(r)));
            return out;
        };
        step_ = [cell = std::move(cell)](const expr& x, const any_state& s) {
            return any_state(State(cell(x, s.get<State>())));
        };
    }
    any_state operator()(const expr& x, const any_state& s) const { return step_(x, s); }
    /// The wrapped cell's zero state; value_error when it has no initial_state().
    any_state initial_state(tape& t, std::size_t batch) const;

    /// The wrapped cell's whole-sequence path (see unroll), if it has one.
    friend bool sequence_path_applies(const tape& t, const any_cell& c, const shape& x, const any_state& s0) {
        return c.seq_applies_(t, x, s0);
    }
    friend std::vector<any_state> sequence_path(tape& t, const any_cell& c, const expr& x, const any_state& s0,
                                                int first_step) {
        return c.seq_(t, x, s0, first_step);
    }

private:
    std::function<any_state(const expr&, const any_state&)> step_;
    std::function<any_state(tape&, std::size_t)> init_;
    std::function<bool(const tape&, const shape&, const any_state&)> seq_applies_;
    std::function<std::vector<any_state>(tape&, const expr&, const any_state&, int)> seq_;
};

// ---- stacked -------------------------------------------------------------------------------------

/// State of a stack: one state per layer, and the stack's output (the top layer's hidden, plus
/// its input when residual).
template <class State>
struct stacked_state {
    std::vector<State> layers;
    expr output;
};
template <class State>
expr hidden(const stacked_state<State>& s) {
    return s.output;
}
template <class State>
expr flow_state(const stacked_state<State>& s) {
    return flow_state(s.layers.back());
}
template <class State>
stacked_state<State> blend(const expr& mask, const stacked_state<State>& a, const stacked_state<State>& b) {
    if (a.layers.size() != b.layers.size())
        throw shape_error("nn::stacked: blend() of states with " + std::to_string(a.layers.size()) + " and " +
                          std::to_string(b.layers.size()) + " layers");
    stacked_state<State> r;
    r.layers.reserve(a.layers.size());
    for (std::size_t l = 0; l < a.layers.size(); ++l) r.layers.push_back(blend(mask, a.layers[l], b.layers[l]));
    r.output = blend(mask, a.output, b.output);
    return r;
}

namespace detail {
[[noreturn]] void stacked_error(const std::string& what);
void check_residual(std::size_t layer, const expr& input, const expr& output);
}  // namespace detail

/// Deep RNN: layer l reads layer l - 1's output (hidden of its state), layer 0 reads x. With
/// residual, layers 1 and up add their input to their output (Wu et al. 2016, GNMT): those
/// layers must then keep the width (shape_error naming the layer otherwise). A stack is a cell.
template <class Cell, class State = cell_state_t<Cell>>
class stacked {
public:
    using state_type = stacked_state<State>;
    std::vector<Cell> layers;
    bool residual = false;
    /// Dropout on each layer's output but the top one's, a fresh mask per step, in the tape's
    /// training mode (PyTorch's nn.LSTM(dropout=); nn/dropout.hpp).
    double dropout = 0;

    explicit stacked(std::vector<Cell> layer_cells, bool residual_connections = false)
        : layers(std::move(layer_cells)), residual(residual_connections) {
        if (layers.empty()) detail::stacked_error("no layers (expected at least one)");
    }

    state_type operator()(const expr& x, const state_type& s) const {
        if (s.layers.size() != layers.size())
            detail::stacked_error("state has " + std::to_string(s.layers.size()) + " layers, the stack " +
                                  std::to_string(layers.size()));
        state_type r;
        r.layers.reserve(layers.size());
        expr in = x;
        for (std::size_t l = 0; l < layers.size(); ++l) {
            r.layers.push_back(layers[l](in, s.layers[l]));
            const expr out = layer_output(l, in, r.layers.back());
            in = l + 1 < layers.size() ? nn::dropout(out, dropout) : out;
        }
        r.output = in;
        return r;
    }

    /// Layer l's output from its state: its hidden, plus its input for l > 0 when residual.
    expr layer_output(std::size_t l, const expr& in, const State& s) const {
        expr out = hidden(s);
        if (residual && l > 0) {
            detail::check_residual(l, in, out);
            out = out + in;
        }
        return out;
    }

    /// A stack state from per-layer states (output: the top layer's hidden).
    state_type make_state(std::vector<State> layer_states) const {
        if (layer_states.size() != layers.size())
            detail::stacked_error("make_state got " + std::to_string(layer_states.size()) + " layer states for " +
                                  std::to_string(layers.size()) + " layers");
        expr out = hidden(layer_states.back());
        return {std::move(layer_states), out};
    }

    state_type initial_state(tape& t, std::size_t batch) const requires has_initial_state<Cell> {
        std::vector<State> s;
        s.reserve(layers.size());
        for (const Cell& c : layers) s.push_back(c.initial_state(t, batch));
        return make_state(std::move(s));
    }
};

/// A stack whose first layer has a whole-sequence path runs it on that path and the layers above it step by step
/// over its outputs, layer after layer (each layer above reads the views of the one below it per step, so
/// truncate_bptt's windows stay separable: a layer's input gathered into one untimed sequence would couple them).
/// Not with dropout between layers in training mode, whose fresh mask a step is drawn in step order.
template <class Cell, class State>
bool sequence_path_applies(const tape& t, const stacked<Cell, State>& st, const shape& sequence,
                           const stacked_state<State>& s0) {
    return !(st.dropout > 0 && t.training()) && s0.layers.size() == st.layers.size() &&
           sequence_path_applies(t, st.layers[0], sequence, s0.layers[0]);
}
template <class Cell, class State>
std::vector<stacked_state<State>> sequence_path(tape& t, const stacked<Cell, State>& st, const expr& sequence,
                                                const stacked_state<State>& s0, int first_step) {
    std::vector<State> s = sequence_path(t, st.layers[0], sequence, s0.layers[0], first_step);
    std::vector<stacked_state<State>> out(s.size());
    std::vector<expr> ins(s.size());  // the next layer's input of each step
    for (std::size_t k = 0; k < s.size(); ++k) {
        ins[k] = hidden(s[k]);
        out[k].layers.push_back(std::move(s[k]));
    }
    for (std::size_t l = 1; l < st.layers.size(); ++l) {
        s = detail::run(t, st.layers[l], ins, s0.layers[l], {}, false, first_step, "unroll", false);  // unmarked
        for (std::size_t k = 0; k < s.size(); ++k) {
            step_scope scope(t, first_step + static_cast<int>(k));
            ins[k] = st.layer_output(l, ins[k], s[k]);
            out[k].layers.push_back(std::move(s[k]));
        }
    }
    for (std::size_t k = 0; k < out.size(); ++k) out[k].output = ins[k];
    return out;
}

/// depth layers of Cell named <scope>.l0, <scope>.l1, ...: layer 0 is Cell(scope.sub("l0"),
/// input_size, hidden_size, extra...), the others take hidden_size inputs. extra is passed to
/// every layer as an lvalue (an rnn_activation, a std::mt19937_64& shared by all layers, ...).
template <class Cell, class... Extra>
stacked<Cell> make_stacked(const parameter_scope& scope, std::size_t depth, std::size_t input_size,
                           std::size_t hidden_size, bool residual = false, Extra&&... extra) {
    const seqgrad::detail::store_transaction undo(scope.store());  // a layer that throws takes the others' out too
    std::vector<Cell> cells;
    cells.reserve(depth);
    for (std::size_t l = 0; l < depth; ++l)
        cells.emplace_back(scope.sub("l" + std::to_string(l)), l == 0 ? input_size : hidden_size, hidden_size,
                           extra...);
    return stacked<Cell>(std::move(cells), residual);
}

// ---- bidirectional -------------------------------------------------------------------------------

/// Result of a bidirectional run, all in time order.
template <class FwdState, class BwdState>
struct bidirectional_states {
    /// concat(hidden(forward[k]), hidden(backward[k])) per step: [B, Hf + Hb].
    std::vector<expr> outputs;
    /// forward[k] has read xs[0 .. k]; backward[k] has read xs[k .. end) (row b: up to its length).
    std::vector<FwdState> forward;
    std::vector<BwdState> backward;
};

/// Two cells over one sequence, one each way, outputs concatenated per step. With lengths, row b's
/// backward direction starts from b0 at its own last valid step lengths[b] - 1 (not at the
/// padded end), and both directions keep their state over padded positions.
template <class Fwd, class Bwd = Fwd>
struct bidirectional {
    Fwd forward;
    Bwd backward;
    /// Dropout on the outputs (the next layer's input), in the tape's training mode.
    double dropout = 0;

    template <class FwdState, class BwdState>
    bidirectional_states<FwdState, BwdState> operator()(tape& t, std::span<const expr> xs, FwdState f0, BwdState b0,
                                                        std::span<const std::size_t> lengths = {},
                                                        int first_step = 0) const {
        bidirectional_states<FwdState, BwdState> r;
        // Each direction in a group of its own: backward sweeps the two concurrently.
        {
            group_scope g(t, 0);
            r.forward = detail::run(t, forward, xs, std::move(f0), lengths, false, first_step, "bidirectional");
        }
        {
            group_scope g(t, 1);
            r.backward = detail::run(t, backward, xs, std::move(b0), lengths, true, first_step, "bidirectional");
        }
        r.outputs.reserve(xs.size());
        for (std::size_t k = 0; k < xs.size(); ++k) {
            step_scope scope(t, first_step + static_cast<int>(k));
            r.outputs.push_back(nn::dropout(concat({hidden(r.forward[k]), hidden(r.backward[k])}, -1), dropout));
        }
        return r;
    }
    /// The same from both cells' zero states.
    auto operator()(tape& t, std::span<const expr> xs, std::span<const std::size_t> lengths = {}) const requires
        has_initial_state<Fwd> && has_initial_state<Bwd> {
        if (xs.empty()) throw value_error("nn::bidirectional: no steps to infer the batch size from");
        const std::size_t b = xs[0].shape()[0];
        return (*this)(t, xs, forward.initial_state(t, b), backward.initial_state(t, b), lengths);
    }
};
template <class Fwd, class Bwd>
bidirectional(Fwd, Bwd) -> bidirectional<Fwd, Bwd>;

}  // namespace seqgrad::nn
