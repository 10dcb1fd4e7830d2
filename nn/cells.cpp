#include "cells.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../ops/activation.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/linalg.hpp"
#include "../ops/operands.hpp"
#include "../ops/recurrent.hpp"
#include "../ops/shape_ops.hpp"
#include "init.hpp"

namespace seqgrad::nn {
namespace {

// Lets a delegating constructor pass a temporary generator (it lives to the end of the call).
std::mt19937_64& lvalue(std::mt19937_64&& r) { return r; }

// The four parameters of a cell with `gates` stacked gates, named <prefix>.w_ih, ... .
template <class Cell>
void make_params(Cell& c, const parameter_scope& scope, std::size_t gates, const char* who) {
    // gates x hidden (a 4.6e18 hidden size wrapped to a [0, in] weight) and its entries within size_t.
    const std::size_t most = std::numeric_limits<std::size_t>::max() / gates;
    if (c.input_size == 0 || c.hidden_size == 0 || c.hidden_size > most / std::max(c.input_size, c.hidden_size))
        throw value_error(std::string("nn::") + who + " '" + scope.prefix() + "': input size " +
                          std::to_string(c.input_size) + ", hidden size " + std::to_string(c.hidden_size) +
                          " (expected both > 0, and gates x hidden x max(input, hidden) entries within size_t)");
    const seqgrad::detail::store_transaction undo(scope.store());  // a name taken, a weight too large
    const std::size_t g = gates * c.hidden_size;
    c.w_ih = scope.add("w_ih", shape{g, c.input_size});
    c.w_hh = scope.add("w_hh", shape{g, c.hidden_size});
    c.b_ih = scope.add("b_ih", shape{g});
    c.b_hh = scope.add("b_hh", shape{g});
}

template <class Cell>
void reset(const Cell& c, std::mt19937_64& rng) {
    for (const parameter* p : {&c.w_ih, &c.w_hh, &c.b_ih, &c.b_hh}) rnn_default(*p, c.hidden_size, rng);
}

// "<prefix>" of "<prefix>.w_ih" ("" when the cell was built without a prefix).
std::string cell_name(const parameter& w_ih) {
    const std::string& n = w_ih.name();
    const auto dot = n.rfind('.');
    return dot == std::string::npos ? std::string() : n.substr(0, dot);
}

// x [B, I] and state [B, H] on one batch size; shape_error naming the cell otherwise.

// x W_ih^T + b_ih and h W_hh^T + b_hh.
std::pair<expr, expr> projections(const expr& x, const expr& h, const parameter& w_ih, const parameter& w_hh,
                                  const parameter& b_ih, const parameter& b_hh) {
    // One node each, bias added in the product's output (the engine batches the x side over steps).
    return {matmul_add(b_ih, x, T(w_ih)), matmul_add(b_hh, h, T(w_hh))};
}

}  // namespace

void detail::check_step(const char* who, const parameter& w_ih, std::size_t in, std::size_t hid, const expr& x,
                        const expr& h, const char* state_name) {
    const shape xs = x.shape();
    const shape hs = h.shape();
    const bool ok = xs.rank() == 2 && xs[1] == in && hs.rank() == 2 && hs[1] == hid && hs[0] == xs[0];
    if (!ok)
        throw shape_error(std::string("nn::") + who + " '" + cell_name(w_ih) + "': input x " + xs.str() + ", " +
                          state_name + " " + hs.str() + " (expected x [B, " + std::to_string(in) + "] and " +
                          state_name + " [B, " + std::to_string(hid) + "] with the same B" +
                          (xs.rank() == 2 ? std::string()
                                          : "; nn::unroll gives a cell one step of a time-major sequence [T, B, " +
                                                std::to_string(in) + "]") +
                          ")");
}

namespace {
// A [B] mask with B = H broadcast over the columns and blended every row alike, silently.
void check_blend(const expr& mask, const expr& new_state, const expr& old_state) {
    const shape &m = mask.shape(), &a = new_state.shape(), &b = old_state.shape();
    if (a.rank() != 2 || !(a == b) || m.rank() != 2 || m[0] != a[0] || m[1] != 1)
        throw shape_error("nn::blend: mask " + m.str() + ", new state " + a.str() + ", old state " + b.str() +
                          " (expected states of one shape [B, H] and a [B, 1] mask of their rows)");
}
}  // namespace

expr blend(const expr& mask, const expr& new_state, const expr& old_state) {
    check_blend(mask, new_state, old_state);
    return mask * new_state + (1.0 - mask) * old_state;
}

lstm_state blend(const expr& mask, const lstm_state& new_state, const lstm_state& old_state) {
    check_blend(mask, new_state.h, old_state.h);
    check_blend(mask, new_state.c, old_state.c);
    const expr keep = 1.0 - mask;
    return {mask * new_state.h + keep * old_state.h, mask * new_state.c + keep * old_state.c};
}

// ---- rnn_cell ----------------------------------------------------------------------------------

rnn_cell::rnn_cell(const parameter_scope& scope, std::size_t in, std::size_t hid, rnn_activation act)
    : rnn_cell(scope, in, hid, act, lvalue(detail::seeded_from(scope.prefix()))) {}

rnn_cell::rnn_cell(const parameter_scope& scope, std::size_t in, std::size_t hid, rnn_activation act,
                   std::mt19937_64& rng)
    : input_size(in), hidden_size(hid), activation(act) {
    make_params(*this, scope, 1, "rnn_cell");
    reset_parameters(rng);
}

void rnn_cell::reset_parameters(std::mt19937_64& rng) const { reset(*this, rng); }

expr rnn_cell::initial_state(tape& t, std::size_t batch) const { return t.constant(0.0, {batch, hidden_size}); }

expr rnn_cell::operator()(const expr& x, const expr& h) const {
    detail::check_step("rnn_cell", w_ih, input_size, hidden_size, x, h, "h");
    auto [xi, hh] = projections(x, h, w_ih, w_hh, b_ih, b_hh);
    return activation == rnn_activation::tanh ? tanh(xi + hh) : relu(xi + hh);
}

// ---- lstm_cell ---------------------------------------------------------------------------------

lstm_cell::lstm_cell(const parameter_scope& scope, std::size_t in, std::size_t hid)
    : lstm_cell(scope, in, hid, lvalue(detail::seeded_from(scope.prefix()))) {}

lstm_cell::lstm_cell(const parameter_scope& scope, std::size_t in, std::size_t hid, std::mt19937_64& rng)
    : input_size(in), hidden_size(hid) {
    make_params(*this, scope, 4, "lstm_cell");
    reset_parameters(rng);
}

void lstm_cell::reset_parameters(std::mt19937_64& rng) const { reset(*this, rng); }

lstm_state lstm_cell::initial_state(tape& t, std::size_t batch) const {
    return {t.constant(0.0, {batch, hidden_size}), t.constant(0.0, {batch, hidden_size})};
}

lstm_state lstm_cell::operator()(const expr& x, const lstm_state& s) const {
    detail::check_step("lstm_cell", w_ih, input_size, hidden_size, x, s.h, "h");
    detail::check_step("lstm_cell", w_ih, input_size, hidden_size, x, s.c, "c");
    auto [xi, hh] = projections(x, s.h, w_ih, w_hh, b_ih, b_hh);
    // The pointwise part (the projections' sum, gates, c', h') is one fused kernel that keeps its
    // activations for backward: one pass each way instead of a dozen ops (ops/recurrent.hpp).
    const expr rec = lstm_pointwise(xi, hh, s.c);
    return {lstm_rows({rec}, 0), lstm_rows({rec}, 1)};
}

// ---- gru_cell ----------------------------------------------------------------------------------

gru_cell::gru_cell(const parameter_scope& scope, std::size_t in, std::size_t hid)
    : gru_cell(scope, in, hid, lvalue(detail::seeded_from(scope.prefix()))) {}

gru_cell::gru_cell(const parameter_scope& scope, std::size_t in, std::size_t hid, std::mt19937_64& rng)
    : input_size(in), hidden_size(hid) {
    make_params(*this, scope, 3, "gru_cell");
    reset_parameters(rng);
}

void gru_cell::reset_parameters(std::mt19937_64& rng) const { reset(*this, rng); }

expr gru_cell::initial_state(tape& t, std::size_t batch) const { return t.constant(0.0, {batch, hidden_size}); }

expr gru_cell::operator()(const expr& x, const expr& h) const {
    detail::check_step("gru_cell", w_ih, input_size, hidden_size, x, h, "h");
    auto [xi, hh] = projections(x, h, w_ih, w_hh, b_ih, b_hh);
    const std::vector<expr> a = split(xi, 3, -1), b = split(hh, 3, -1);
    const expr r = sigmoid(a[0] + b[0]), z = sigmoid(a[1] + b[1]);
    const expr n = tanh(a[2] + r * b[2]);
    return (1.0 - z) * n + z * h;
}

}  // namespace seqgrad::nn
