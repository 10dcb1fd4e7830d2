#pragma once
// Layer-normalised LSTM and GRU cells (Ba, Kiros & Hinton 2016, section 3.1), built on the fused
// layer_norm op (ops/norm.hpp). The input and recurrent projections are normalised separately
// (all gates of one projection as one row), each with its own gain; an LSTM also normalises the
// cell state before its output tanh:
//
//   LN-LSTM  [i f g o] = LN(x W_ih^T; g_ih) + LN(h W_hh^T; g_hh) + b
//            c' = f * c + i * g;  h' = o * tanh(LN(c'; g_c, b_c))
//   LN-GRU   a = LN(x W_ih^T; g_ih) + b_ih,  u = LN(h W_hh^T; g_hh) + b_hh  (each [r z n])
//            r = sigmoid(a_r + u_r), z = sigmoid(a_z + u_z), n = tanh(a_n + r * u_n)
//            h' = (1 - z) * n + z * h
//
// Parameters (gains start at 1, b_c at 0, weights and b, b_ih, b_hh as PyTorch's cells):
//   <prefix>.w_ih [G*H, I], .w_hh [G*H, H], .g_ih [G*H], .g_hh [G*H], .b [G*H] (LSTM; GRU: .b_ih,
//   .b_hh), LSTM also .g_c [H], .b_c [H].  G = 4 (LSTM), 3 (GRU).
#include <cstddef>
#include <random>

#include "../core/tape.hpp"
#include "cells.hpp"

namespace seqgrad::nn {

struct layer_norm_lstm_cell {
    parameter w_ih, w_hh, g_ih, g_hh, b, g_c, b_c;
    std::size_t input_size = 0, hidden_size = 0;
    double eps = 1e-5;

    layer_norm_lstm_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size);
    layer_norm_lstm_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size,
                         std::mt19937_64& rng);
    void reset_parameters(std::mt19937_64& rng) const;
    lstm_state initial_state(tape& t, std::size_t batch) const;
    /// x [B, I], s.h and s.c [B, H]; shape_error naming the cell otherwise.
    lstm_state operator()(const expr& x, const lstm_state& s) const;
};

struct layer_norm_gru_cell {
    parameter w_ih, w_hh, g_ih, g_hh, b_ih, b_hh;
    std::size_t input_size = 0, hidden_size = 0;
    double eps = 1e-5;

    layer_norm_gru_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size);
    layer_norm_gru_cell(const parameter_scope& scope, std::size_t input_size, std::size_t hidden_size,
                        std::mt19937_64& rng);
    void reset_parameters(std::mt19937_64& rng) const;
    expr initial_state(tape& t, std::size_t batch) const;
    expr operator()(const expr& x, const expr& h) const;
};

}  // namespace seqgrad::nn
