#pragma once
// The fused LSTM layer behind nn::lstm_cell's whole-sequence path: nn::unroll(t, lstm_cell,
// sequence [T, B, I], s0) runs it by itself (nn/unroll.hpp, sequence_path), so no user code
// chooses it. Internal (namespace nn::detail): the tests hold it equal to the per-step cell
// (tests/nn/test_lstm_layer.cpp, values and gradients), and the benches that compare against the
// hand-called layer of before (bench/cells' reference, `lstm_lm --layer`, lstm_onednn) call it.
//
// Where the speed comes from: the inputs of all T steps are known before the recurrence runs, so
//   1. their projections x W_ih^T + b_ih + b_hh are one GEMM over [T*B, I] (one node);
//   2. each step is one lstm_step node: h W_hh^T (a GEMV at B = 1) plus one pointwise pass, and
//      its backward two products plus one pass; no slices, no per-gate nodes;
//   3. all hidden states come out as one [T*B, H] matrix (hidden_all), so an output projection
//      over every step is one GEMM too (matmul_add(bias, hs, T(w))).
//   4. at B >= 8 (where a step's rows split across threads) and T > 1, with H % 4 == 0, the
//      library's small-product kernels, the tape's optimisations on and no checkpointing (the
//      conditions are lstm_layer::run's), the forward of all steps is one
//      lstm_run node, each thread taking its rows through every step in one parallel region, and
//      each step's node is a view of its record (lstm_step_view); backward sweeps the steps as one
//      call the same way (op_builder::chain), dW_hh of all steps one GEMM. Off with
//      seqgrad::detail::set_recurrence_chains(false) (tests/nn/test_recurrence_chain.cpp holds
//      both equal).
// A run of T steps adds T + 2 op nodes to the tape (the bias sum, the projection, one step node
// per step), lstm_pack of w_hh at B > 1 with H % 4 == 0 and the small-product kernels on, lstm_run
// where 4. applies, and a zero-state constant. Each
// step's node is marked with its step (step_scope), as nn::unroll marks them, so truncate_bptt
// and clip_state_gradient cut and clip the same state edges as on the composed cell (tested).
#include <cstddef>
#include <span>
#include <vector>

#include "../core/tape.hpp"
#include "cells.hpp"

namespace seqgrad::nn::detail {

/// The result of running an lstm_layer over T steps of a batch of B.
struct lstm_sequence {
    /// Per step, its lstm_step (or lstm_step_view) record [6, B, H]: h', c', then the gate
    /// activations i, f, g, o.
    std::vector<expr> records;
    std::size_t batch = 0, hidden_size = 0;

    std::size_t steps() const { return records.size(); }
    /// h of step t as [B, H] (adds one node, marked with step t's mark); value_error naming the
    /// range when t >= steps().
    expr h(std::size_t t) const;
    /// c of step t as [B, H] (adds one node); value_error when t >= steps().
    expr c(std::size_t t) const;
    /// h of every step (adds T nodes; prefer hidden_all for an output layer).
    std::vector<expr> hs() const;
    /// Every h as one [T*B, H] matrix, time-major: row t*B + b is h_t of batch row b (one node).
    expr hidden_all() const;
    /// h and c of the last step, [B, H] each.
    lstm_state final_state() const;
};

/// An LSTM over whole sequences, sharing (not copying) the parameters of an lstm_cell.
class lstm_layer {
public:
    /// weight_drop: DropConnect on w_hh with one mask per run (AWD-LSTM; nn/dropout.hpp), in the
    /// tape's training mode only.
    explicit lstm_layer(const lstm_cell& cell, double weight_drop = 0) : cell_(cell), weight_drop_(weight_drop) {}
    const lstm_cell& cell() const { return cell_; }

    /// x [T*B, I], time-major (row t*B + b is step t of batch row b), from a zero state. Steps are
    /// marked first_step, first_step + 1, ... Throws shape_error naming the layer when x is not
    /// [T*B, I] for some T >= 1.
    lstm_sequence operator()(const expr& x, std::size_t batch, int first_step = 0) const;
    /// The same from a given state (h and c [B, H], B taken from them); gradients reach s0.
    lstm_sequence operator()(const expr& x, const lstm_state& s0, int first_step = 0) const;

    /// Inputs that are rows of an embedding table [V, I]: x = gather_rows(table, ids), ids
    /// time-major (T*B of them). Values and gradients are those of (*this)(x, ...), but the
    /// projection is done on whichever is smaller: with V < T*B the table itself is projected
    /// (V rows instead of T*B; the projected rows are then gathered), as (x W^T)[ids] =
    /// (table W^T)[ids]. For a character model (V = 65, T*B = 2048) that cuts the input GEMMs of
    /// forward and backward by 30x. With the graph optimisations on (the default), the engine does
    /// the same for (*this)(gather_rows(table, ids), ...) by itself (core/batched_product.cpp).
    lstm_sequence embedded(const expr& table, std::span<const int> ids, std::size_t batch, int first_step = 0) const;
    lstm_sequence embedded(const expr& table, std::span<const int> ids, const lstm_state& s0, int first_step = 0) const;

    /// The building blocks of the calls above. project(x) is x W_ih^T + b_ih + b_hh for every row
    /// ([N, 4H], one GEMM); run() is the recurrence over such projections from state0, a state
    /// [2, B, H] (h over c) or a previous record [6, B, H]; shape_error when the projections are
    /// not [T*B, 4H] for some T >= 1.
    expr project(const expr& x) const;
    lstm_sequence run(const expr& projections, const expr& state0, int first_step = 0) const;

private:
    expr project_embedded(const expr& table, std::span<const int> ids) const;
    expr initial(const lstm_state& s0, std::size_t rows) const;
    lstm_cell cell_;
    double weight_drop_ = 0;
};

}  // namespace seqgrad::nn::detail
