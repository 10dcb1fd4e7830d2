#pragma once
// Recurrent cells: pure functions (parameters, x_t, state) -> state, written as compositions of
// registered ops with no gradient code of their own (the ops' gradients, already checked one by
// one, compose into the cell's).
//
// Equations, gate order and parameter layouts are PyTorch's (torch.nn.RNNCell, LSTMCell, GRUCell),
// so weights exported from PyTorch load by name and give the same outputs:
//
//     torch                 seqgrad                shape
//     weight_ih             <prefix>.w_ih          [G*H, I]   G = 1 (rnn), 4 (lstm), 3 (gru)
//     weight_hh             <prefix>.w_hh          [G*H, H]
//     bias_ih               <prefix>.b_ih          [G*H]
//     bias_hh               <prefix>.b_hh          [G*H]
//
// Inputs are batch-major rows: x [B, I], state [B, H]. Every product is x W^T through
// matmul(x, T(w)), so no transpose node is built. The default initialisation is
// PyTorch's, U(-1/sqrt(H), 1/sqrt(H)) for every parameter; pass a generator to control it, or
// re-initialise afterwards with nn/init.hpp. Without a generator the values are drawn from a
// generator seeded by the scope's name: reproducible, and distinct for differently named cells.
//
//     sg::parameter_store ps;
//     nn::lstm_cell cell(sg::parameter_scope(ps, "enc"), 3, 4);   // enc.w_ih [16, 3], ...
//     sg::tape t;
//     nn::lstm_state s = cell.initial_state(t, 2);                 // h, c zeros [2, 4]
//     s = cell(t.input(x), s);                                      // one step
//
// Cells are cheap value types (parameters are handles into their store): copying a cell gives a
// second handle to the same weights, which is how stacked/any_cell hold them.
#include <cstddef>
#include <random>

#include "../core/tape.hpp"

namespace seqgrad::nn {

// ---- states and their customisation points -----------------------------------------------------

/// State of an LSTM: hidden h and cell c, both [B, H].
struct lstm_state {
    expr h, c;
};

/// The part of a state that is the cell's output (what the next layer, an output projection or
/// attention reads). Overload hidden() for your own state type, in its namespace, to use it with
/// stacked, bidirectional and the helpers of nn/unroll.hpp.
inline expr hidden(const expr& s) { return s; }
inline expr hidden(const lstm_state& s) { return s.h; }
/// The part of a state that record_gradient_flow reads (nn::unroll marks it with tape::mark_state each step):
/// hidden(s), but for a stack its top layer's own state, which the next step reads (with residual connections the
/// stack's output is not read by the next step, so its gradient held only the loss's own).
template <class State>
expr flow_state(const State& s) {
    return hidden(s);
}

/// mask * new_state + (1 - mask) * old_state, with mask [B, 1] of zeros and ones: rows whose mask
/// is 0 keep their old state exactly (0 * a + 1 * b == b), and no gradient reaches new_state
/// through them. Overload it for your own state type to use masked (variable-length) unrolls.
expr blend(const expr& mask, const expr& new_state, const expr& old_state);
lstm_state blend(const expr& mask, const lstm_state& new_state, const lstm_state& old_state);

// ---- cells ---------------------------------------------------------------------------------------

enum class rnn_activation { tanh, relu };

/// Elman cell: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu.
struct rnn_cell {
    parameter w_ih, w_hh, b_ih, b_hh;  ///< [H, I], [H, H], [H], [H]
    std::size_t input_size = 0, hidden_size = 0;
    rnn_activation activation = rnn_activation::tanh;

    rnn_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size,
             rnn_activation activation = rnn_activation::tanh);
    rnn_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size, rnn_activation activation,
             std::mt19937_64& rng);
    /// Every parameter from U(-1/sqrt(H), 1/sqrt(H)).
    void reset_parameters(std::mt19937_64& rng) const;
    /// Zeros [batch, H] on t.
    expr initial_state(tape& t, std::size_t batch) const;
    /// x [B, I], h [B, H] -> h' [B, H]. Throws shape_error naming the cell and both shapes.
    expr operator()(const expr& x, const expr& h) const;
};

/// LSTM cell (Hochreiter & Schmidhuber 1997, with forget gate), gates stacked i, f, g, o:
///   [i f g o] = x W_ih^T + b_ih + h W_hh^T + b_hh      (each [B, H])
///   i, f, o = sigmoid(.), g = tanh(.);  c' = f * c + i * g;  h' = o * tanh(c')
/// A step records the two projections, one lstm_pointwise node (their sum and the line above in
/// one pass) and h', c': five nodes, whose input projections and weight gradients the engine batches
/// over the steps of an unroll like any cell's.
struct lstm_cell {
    parameter w_ih, w_hh, b_ih, b_hh;  ///< [4H, I], [4H, H], [4H], [4H]
    std::size_t input_size = 0, hidden_size = 0;

    lstm_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size);
    lstm_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size, std::mt19937_64& rng);
    void reset_parameters(std::mt19937_64& rng) const;
    /// h and c zeros [batch, H].
    lstm_state initial_state(tape& t, std::size_t batch) const;
    lstm_state operator()(const expr& x, const lstm_state& s) const;
};

/// GRU cell (Cho et al. 2014, PyTorch's variant with the reset gate applied after the product):
///   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
///   z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
///   n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
///   h' = (1 - z) * n + z * h
/// with W_ir, W_iz, W_in stacked (in that order) in w_ih, and likewise for w_hh, b_ih, b_hh.
struct gru_cell {
    parameter w_ih, w_hh, b_ih, b_hh;  ///< [3H, I], [3H, H], [3H], [3H]
    std::size_t input_size = 0, hidden_size = 0;

    gru_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size);
    gru_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size, std::mt19937_64& rng);
    void reset_parameters(std::mt19937_64& rng) const;
    expr initial_state(tape& t, std::size_t batch) const;
    expr operator()(const expr& x, const expr& h) const;
};

namespace detail {
/// A cell's step input x [B, I] and state (`state_name`, e.g. "h") [B, H]: shape_error naming
/// the cell (`who` and its parameters' prefix) otherwise.
void check_step(const char* who, const parameter& w_ih, std::size_t in, std::size_t hid, const expr& x, const expr& h,
                const char* state_name);
}  // namespace detail

}  // namespace seqgrad::nn
