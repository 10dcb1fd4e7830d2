#pragma once
// Fused kernels for recurrent layers: one GEMM for all gates of a cell plus one pointwise kernel
// per time step, and GEMMs with the bias folded in for the projections done over all steps at once.
//
// Gate order is PyTorch's: i, f, g, o (i, f, o sigmoid, g tanh); c' = f*c + i*g, h' = o*tanh(c').
// Every op here has a composed twin built from the elementwise, activation and linalg ops, and
// tests/nn/test_lstm_layer.cpp holds each fused path equal to its twin (values and gradients).
#include <span>

#include "../core/tape.hpp"

namespace seqgrad {

/// c + op(a) op(b) in one GEMM (beta = 1 over a copy of c). op(a) is [M, K], op(b) is [K, N]; c is
/// [M, N] or a row [N] / [1, N] added to every row (a bias), whose gradient is the column sums.
/// With PyTorch-layout weights w [N, K]: matmul_add(bias, x, T(w)) is x w^T + bias, a linear
/// layer in one node (T() and parameter operands: ops/operands.hpp). Deprecated: the positional
/// flags trans_a / trans_b; write T(a) / T(b) instead.
expr matmul_add(const expr& c, const expr& a, const expr& b, bool trans_a = false, bool trans_b = false);

/// The LSTM cell's pointwise part: gates [B, 4H] (pre-activations, blocks i, f, g, o) and
/// c_prev [B, H] -> a step record [6, B, H] like lstm_step's: h' and c' (blocks 0 and 1, read them
/// with lstm_rows), then the gate activations, which backward reuses. One pass forward, one
/// backward, where the same cell written from split, sigmoid, tanh, * and + takes a dozen.
expr lstm_pointwise(const expr& gates, const expr& c_prev);
/// The same with gates = x_part + h_part (the two projections, both [B, 4H]) summed in the kernel.
expr lstm_pointwise(const expr& x_part, const expr& h_part, const expr& c_prev);

/// One fused LSTM step. x [N, 4H] holds input projections (biases included) of several steps
/// laid out row after row; this step reads rows [row, row + B). prev is the previous step's
/// record [6, B, H] or an initial state [2, B, H] (h over c); w_hh is [4H, H] (PyTorch layout).
/// Returns the step record [6, B, H]: h' and c' (blocks 0 and 1), then the gate activations as a
/// [B, 4H] matrix (i, f, g, o per row) that backward reuses; they are differentiable outputs like
/// any other, but only blocks 0 and 1 have a meaning as [B, H] blocks. Cost per step: one GEMM (a GEMV
/// at B = 1) for h w_hh^T and one pointwise pass; backward adds two products and one pass.
expr lstm_step(const expr& x, const expr& prev, const expr& w_hh, std::size_t row);
/// The same with w_hh_t = lstm_pack(w_hh) or stop_gradient(transpose(w_hh)) [H, 4H], made once
/// per sequence: the forward product then reads it in place (no packing of w_hh per step and
/// thread; the packed form at any B, the transposed one at B > 1). The values are those of the
/// three-input form up to rounding; w_hh_t takes no gradient (graph_error if it needs one), w_hh
/// gets it.
expr lstm_step(const expr& x, const expr& prev, const expr& w_hh, const expr& w_hh_t, std::size_t row);
/// w_hh [4H, H] laid out for lstm_step's products: w_hh^T [H, 4H] in column panels for forward
/// (detail::pack_panels; its values are in that layout, not row-major), and when H is a multiple
/// of 16, w_hh in panels for backward's dh_prev after it: [2, H, 4H]. No gradient. H a multiple of
/// 4.
expr lstm_pack(const expr& w_hh);
/// The forward of `steps` lstm_steps at once (x's rows from `row`, B rows a step, from state0,
/// w_hh_packed = lstm_pack(w_hh)): [steps, 6, B, H], each thread taking its batch rows through
/// every step in one parallel region. No gradient: read its steps through lstm_step_view.
expr lstm_run(const expr& x, const expr& state0, const expr& w_hh, const expr& w_hh_packed, std::size_t row,
              std::size_t steps);
/// Step `step` of an lstm_run, as lstm_step(x, prev, w_hh, w_hh_packed, row) with the run's inputs
/// (prev: the previous step's view, or the run's state0): the same values, read from the run (a
/// view, under the graph optimisations; else computed), and lstm_step's gradient.
expr lstm_step_view(const expr& run, const expr& x, const expr& prev, const expr& w_hh, const expr& w_hh_packed,
                    std::size_t row, std::size_t step);

/// Block `part` (0: h, 1: c) of each step record or state [k, B, H], stacked along rows:
/// -> [n * B, H], row block t from records[t]. All hidden states of a sequence as one matrix, so
/// that the output projection is one GEMM; with one record, its h (or c) as [B, H].
expr lstm_rows(std::span<const expr> records, int part = 0);
inline expr lstm_rows(std::initializer_list<expr> records, int part = 0) {
    return lstm_rows(std::span<const expr>(records.begin(), records.size()), part);
}

}  // namespace seqgrad
