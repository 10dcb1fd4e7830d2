#include "lstm_layer.hpp"

#include <string>

#include "../core/blas.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/linalg.hpp"
#include "../ops/operands.hpp"
#include "../ops/recurrent.hpp"
#include "../ops/shape_ops.hpp"
#include "dropout.hpp"
#include "unroll.hpp"

namespace seqgrad::nn::detail {
namespace {

std::string layer_name(const lstm_cell& cell) {
    const std::string& n = cell.w_ih.name();
    const auto dot = n.rfind('.');
    return "nn::lstm_cell '" + (dot == std::string::npos ? std::string() : n.substr(0, dot)) + "' (fused layer)";
}

void check_input(const lstm_cell& cell, const expr& x, std::size_t batch) {
    const shape& s = x.shape();
    if (batch == 0 || s.rank() != 2 || s[1] != cell.input_size || s[0] == 0 || s[0] % batch != 0)
        throw shape_error(layer_name(cell) + ": input x " + s.str() + " with batch " + std::to_string(batch) +
                          " (expected x [T*B, " + std::to_string(cell.input_size) +
                          "], time-major, T >= 1, B = " + std::to_string(batch) + " >= 1)");
}

}  // namespace

namespace {
void check_step(const std::vector<expr>& records, const char* what, std::size_t t) {
    if (t >= records.size())
        throw value_error("nn::lstm_sequence::" + std::string(what) + "(" + std::to_string(t) +
                          "): step out of range (the sequence has " + std::to_string(records.size()) + " steps" +
                          (records.empty() ? std::string() : ": 0 .. " + std::to_string(records.size() - 1)) + ")");
}
}  // namespace

expr lstm_sequence::h(std::size_t t) const {
    check_step(records, "h", t);
    tape& tp = records.at(t).owner();
    step_scope scope(tp, tp.node_at(records[t].id()).step);
    return lstm_rows({records[t]}, 0);
}

expr lstm_sequence::c(std::size_t t) const {
    check_step(records, "c", t);
    tape& tp = records.at(t).owner();
    step_scope scope(tp, tp.node_at(records[t].id()).step);
    return lstm_rows({records[t]}, 1);
}

std::vector<expr> lstm_sequence::hs() const {
    std::vector<expr> out;
    out.reserve(records.size());
    for (std::size_t t = 0; t < records.size(); ++t) out.push_back(h(t));
    return out;
}

expr lstm_sequence::hidden_all() const {
    if (records.empty()) throw value_error("nn::lstm_sequence::hidden_all: no steps");
    return lstm_rows(records, 0);
}

lstm_state lstm_sequence::final_state() const {
    if (records.empty()) throw value_error("nn::lstm_sequence::final_state: no steps");
    return {h(records.size() - 1), c(records.size() - 1)};
}

expr lstm_layer::project(const expr& x) const {
    tape& t = x.owner();
    const expr bias = t.param(cell_.b_ih) + t.param(cell_.b_hh);
    return matmul_add(bias, x, T(cell_.w_ih));
}

lstm_sequence lstm_layer::run(const expr& projections, const expr& state0, int first_step) const {
    tape& t = projections.owner();
    const shape& s = state0.shape();
    const std::size_t H = cell_.hidden_size;
    // T = 0 is refused as x of no rows is (check_input) and as torch.nn.LSTM refuses it: a run of
    // no steps has no output, and hidden_all() or final_state() would fail later, far from the cause.
    if (s.rank() != 3 || (s[0] != 2 && s[0] != 6) || s[2] != H || s[1] == 0 || projections.shape().rank() != 2 ||
        projections.shape()[1] != 4 * H || projections.shape()[0] == 0 || projections.shape()[0] % s[1] != 0)
        throw shape_error(layer_name(cell_) + ": projections " + projections.shape().str() + ", state " + s.str() +
                          " (expected projections [T*B, " + std::to_string(4 * H) +
                          "] with T >= 1 and a state [2, B, " + std::to_string(H) + "] or a step record [6, B, " +
                          std::to_string(H) + "])");
    const std::size_t B = s[1], T = projections.shape()[0] / B;
    const expr w_hh = drop_connect(t.param(cell_.w_hh), weight_drop_);  // one mask for the sequence
    lstm_sequence seq;
    seq.batch = B;
    seq.hidden_size = H;
    seq.records.reserve(T);
    // w_hh^T packed once for the steps' forward products (ops/recurrent.hpp), where they run on
    // the library's own small-product kernel.
    const bool transposed = B > 1 && H % 4 == 0 && seqgrad::detail::small_gemm_kernels();
    const expr w_hh_t = transposed ? lstm_pack(w_hh) : expr{};
    // Where a step's rows split across threads, the forward of all steps runs as one node
    // (lstm_run: each thread its rows through every step, one parallel region instead of one a
    // step) and each step's node is a view of its record, with lstm_step's gradient. Not under
    // checkpointing, which recomputes steps one segment at a time; switched off with the chains
    // (detail::set_recurrence_chains), their backward half.
    const bool whole = transposed && B >= 8 && T > 1 && t.optimize() && seqgrad::detail::recurrence_chains() &&
                       t.checkpoint_segment() == 0;
    expr run;
    if (whole) {
        step_scope scope(t, first_step);  // a step's, so that products do not batch over its records
        run = lstm_run(projections, state0, w_hh, w_hh_t, 0, T);
    }
    expr prev = state0;
    for (std::size_t k = 0; k < T; ++k) {
        const int step = first_step + static_cast<int>(k);
        step_scope scope(t, step, step - 1);  // the state comes from the previous step
        prev = whole        ? lstm_step_view(run, projections, prev, w_hh, w_hh_t, k * B, k)
               : transposed ? lstm_step(projections, prev, w_hh, w_hh_t, k * B)
                            : lstm_step(projections, prev, w_hh, k * B);
        seq.records.push_back(prev);
    }
    return seq;
}

// The given state is read inside the first step, its state coming from the step before, as the
// per-step cell reads it: a state carried over from an earlier run (the last step of the chunk
// before) is then a state edge that clip_state_gradient clips and truncate_bptt cuts, not an
// untimed node between two steps (which clipped nothing and made truncate_bptt(k1, k2) throw).
namespace {
expr initial_in_step(tape& t, int first_step, const auto& make) {
    step_scope scope(t, first_step, first_step - 1);
    return make();
}
}  // namespace

expr lstm_layer::initial(const lstm_state& s0, std::size_t rows) const {
    const shape &hs = s0.h.shape(), &cs = s0.c.shape();
    if (hs.rank() != 2 || !(hs == cs) || hs[1] != cell_.hidden_size || hs[0] == 0 || rows % hs[0] != 0)
        throw shape_error(layer_name(cell_) + ": initial state h " + hs.str() + ", c " + cs.str() + " for " +
                          std::to_string(rows) + " input rows (expected h and c [B, " +
                          std::to_string(cell_.hidden_size) + "] with B dividing the rows)");
    const shape one{1, hs[0], hs[1]};
    return concat({reshape(s0.h, one), reshape(s0.c, one)}, 0);
}

lstm_sequence lstm_layer::operator()(const expr& x, std::size_t batch, int first_step) const {
    check_input(cell_, x, batch);
    const expr proj = project(x);
    return run(proj, x.owner().constant(0.0, {2, batch, cell_.hidden_size}), first_step);
}

lstm_sequence lstm_layer::operator()(const expr& x, const lstm_state& s0, int first_step) const {
    const shape& hs = s0.h.shape();
    if (hs.rank() == 2 && hs[0] > 0) check_input(cell_, x, hs[0]);
    const expr state0 = initial_in_step(x.owner(), first_step, [&] { return initial(s0, x.shape()[0]); });
    return run(project(x), state0, first_step);
}

expr lstm_layer::project_embedded(const expr& table, std::span<const int> ids) const {
    const shape& s = table.shape();
    if (s.rank() != 2 || s[1] != cell_.input_size)
        throw shape_error(layer_name(cell_) + ": embedding table " + s.str() + " (expected [V, " +
                          std::to_string(cell_.input_size) + "])");
    // Checked here, against the user's table: past this point the rows gathered may be the projection's.
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= s[0])
            throw value_error(layer_name(cell_) + ": id " + std::to_string(ids[i]) + " at position " +
                              std::to_string(i) + " is out of range for the embedding table " + s.str() +
                              " (expected 0 <= id < " + std::to_string(s[0]) + ")");
    if (s[0] < ids.size()) return gather_rows(project(table), ids);
    return project(gather_rows(table, ids));
}

namespace {
void check_ids(const lstm_cell& cell, std::span<const int> ids, std::size_t batch) {
    if (batch == 0 || ids.empty() || ids.size() % batch != 0)
        throw shape_error(layer_name(cell) + ": " + std::to_string(ids.size()) + " ids with batch " +
                          std::to_string(batch) + " (expected T*B ids, time-major, T >= 1, B >= 1)");
}
}  // namespace

lstm_sequence lstm_layer::embedded(const expr& table, std::span<const int> ids, std::size_t batch,
                                   int first_step) const {
    check_ids(cell_, ids, batch);
    const expr proj = project_embedded(table, ids);
    return run(proj, table.owner().constant(0.0, {2, batch, cell_.hidden_size}), first_step);
}

lstm_sequence lstm_layer::embedded(const expr& table, std::span<const int> ids, const lstm_state& s0,
                                   int first_step) const {
    const shape& hs = s0.h.shape();
    if (hs.rank() == 2 && hs[0] > 0) check_ids(cell_, ids, hs[0]);  // as operator()(x, s0) checks x
    const expr state0 = initial_in_step(table.owner(), first_step, [&] { return initial(s0, ids.size()); });
    return run(project_embedded(table, ids), state0, first_step);
}

}  // namespace seqgrad::nn::detail

namespace seqgrad::nn {

bool sequence_path_applies(const tape& t, const lstm_cell& cell, const shape& s, const lstm_state& s0) {
    const shape& hs = s0.h.shape();
    return t.optimize() && t.checkpoint_segment() == 0 && s.rank() == 3 && s[0] > 0 && s[1] >= 1 &&
           s[2] == cell.input_size && hs == s0.c.shape() && hs.rank() == 2 && hs[0] == s[1] &&
           hs[1] == cell.hidden_size;
}

std::vector<lstm_state> sequence_path(tape& t, const lstm_cell& cell, const expr& sequence, const lstm_state& s0,
                                      int first_step) {
    const shape& s = sequence.shape();
    const detail::lstm_sequence r = detail::lstm_layer(cell)(reshape(sequence, {s[0] * s[1], s[2]}), s0, first_step);
    std::vector<lstm_state> out;
    out.reserve(r.steps());
    for (std::size_t k = 0; k < r.steps(); ++k) {
        step_scope scope(t, first_step + static_cast<int>(k));
        out.push_back({lstm_rows({r.records[k]}, 0), lstm_rows({r.records[k]}, 1)});  // views (unroll marks h)
    }
    return out;
}

}  // namespace seqgrad::nn
