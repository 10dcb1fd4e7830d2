#include "unroll.hpp"

#include <optional>
#include <string>

#include "../ops/math.hpp"
#include "../ops/recurrent.hpp"

namespace seqgrad::nn {

expr step_mask(tape& t, std::span<const std::size_t> lengths, std::size_t step) {
    xt::xarray<double> m = xt::zeros<double>({lengths.size(), std::size_t{1}});
    for (std::size_t b = 0; b < lengths.size(); ++b) m(b, 0) = step < lengths[b] ? 1.0 : 0.0;
    return t.input(m);
}

std::vector<std::vector<int>> mask_targets(std::span<const std::vector<int>> targets,
                                           std::span<const std::size_t> lengths) {
    std::vector<std::vector<int>> out(targets.begin(), targets.end());
    for (std::size_t k = 0; k < out.size(); ++k) {
        if (out[k].size() != lengths.size())
            throw shape_error("nn::mask_targets: step " + std::to_string(k) + " has " + std::to_string(out[k].size()) +
                              " targets (expected one per row, B = " + std::to_string(lengths.size()) + ")");
        for (std::size_t b = 0; b < lengths.size(); ++b)
            if (k >= lengths[b]) out[k][b] = -1;
    }
    return out;
}

std::vector<std::vector<int>> step_targets(std::span<const std::vector<int>> sequences, std::size_t steps) {
    std::vector<std::vector<int>> out(steps, std::vector<int>(sequences.size(), -1));
    for (std::size_t b = 0; b < sequences.size(); ++b) {
        if (sequences[b].size() > steps)
            throw value_error("nn::step_targets: sequence " + std::to_string(b) + " has length " +
                              std::to_string(sequences[b].size()) + " (expected at most " + std::to_string(steps) +
                              " steps)");
        for (std::size_t k = 0; k < sequences[b].size(); ++k) out[k][b] = sequences[b][k];
    }
    return out;
}

std::vector<std::size_t> lengths_of(std::span<const std::vector<int>> sequences) {
    std::vector<std::size_t> out;
    out.reserve(sequences.size());
    for (const auto& s : sequences) out.push_back(s.size());
    return out;
}

std::vector<expr> unstack_steps(const expr& sequence) {
    const shape s = sequence.shape();  // a copy: node storage moves as nodes are added
    if (s.rank() < 2)
        throw shape_error("nn::unstack_steps: sequence " + s.str() + " (expected [T, B, ...] of rank 2 or more)");
    const shape step(s.begin() + 1, s.end());
    std::vector<expr> out;
    out.reserve(s[0]);
    for (std::size_t k = 0; k < s[0]; ++k) out.push_back(reshape(slice(sequence, 0, k, k + 1), step));
    return out;
}

namespace {
// Steps that are each the h (or each the c) of one LSTM record (lstm_sequence::h, the states of
// unroll's sequence path) are stacked as one lstm_rows over the records: one node whose forward
// and backward split across threads, where the backward of a concat of per-step views wrote each
// record's gradient in a node of its own, on one thread (char_b32's LM on 2 threads: +3% tokens/s,
// median of 10 alternating pairs). A graph optimisation (off with the tape's); not under
// checkpointing, which would copy whole records, not their h, out of their segments.
std::optional<expr> record_rows(std::span<const expr> steps) {
    tape& t = steps[0].owner();
    if (!t.optimize() || t.checkpoint_segment() != 0) return std::nullopt;
    std::vector<expr> records;
    std::int64_t part = -1;
    for (const expr& e : steps) {
        if (&e.owner() != &t) return std::nullopt;
        const seqgrad::detail::node& n = t.node_at(e.id());
        if (!n.op || n.op->name != "lstm_rows" || n.num_inputs != 1 || (part >= 0 && n.at->i[0] != part))
            return std::nullopt;
        part = n.at->i[0];
        records.push_back(t.operand(e, 0));
    }
    return lstm_rows(records, static_cast<int>(part));
}
}  // namespace

expr stack_steps(std::span<const expr> steps) {
    if (steps.empty()) throw value_error("nn::stack_steps: no steps");
    const shape s0 = steps[0].shape();
    for (std::size_t k = 0; k < steps.size(); ++k)
        if (!(steps[k].shape() == s0))
            throw shape_error("nn::stack_steps: step " + std::to_string(k) + " has shape " + steps[k].shape().str() +
                              ", step 0 " + s0.str() + " (expected one shape)");
    if (s0.rank() == 0) {  // scalars: each viewed as [1] first
        std::vector<expr> ones;
        for (const expr& e : steps) ones.push_back(reshape(e, {1}));
        return concat(ones, 0);
    }
    // Steps laid end to end along their first axis, then viewed as [T, ...]: one node and one
    // view, whose backward hands each step its block of the gradient (no copies, no per-step nodes).
    shape out{steps.size()};
    for (std::size_t d : s0) out.push_back(d);
    if (const auto rows = record_rows(steps)) return reshape(*rows, out);
    return reshape(concat(steps, 0), out);
}

any_state any_cell::initial_state(tape& t, std::size_t batch) const {
    if (!init_) throw value_error("nn::any_cell: the wrapped cell has no initial_state(); pass an initial state");
    return init_(t, batch);
}

namespace detail {

void check_sequence(const char* who, std::span<const expr> xs, std::span<const std::size_t> lengths,
                    const shape& state) {
    const std::size_t b = lengths.size();
    if (state.rank() == 0 || state[0] != b)
        throw shape_error(std::string("nn::") + who + ": state " + state.str() + " for " + std::to_string(b) +
                          " lengths (expected [B, ...] with B = " + std::to_string(b) + ", one per length)");
    for (std::size_t k = 0; k < xs.size(); ++k) {
        const shape s = xs[k].shape();
        if (s.rank() == 0 || s[0] != b)
            throw shape_error(std::string("nn::") + who + ": input of step " + std::to_string(k) + " has shape " +
                              s.str() + " (expected [B, ...] with B = " + std::to_string(b) + ", one per length)");
    }
    for (std::size_t r = 0; r < b; ++r)
        if (lengths[r] > xs.size())
            throw value_error(std::string("nn::") + who + ": row " + std::to_string(r) + " has length " +
                              std::to_string(lengths[r]) + " (expected at most the " + std::to_string(xs.size()) +
                              " steps given)");
}

std::size_t active_rows(std::span<const std::size_t> lengths, std::size_t k) {
    std::size_t n = 0;
    for (std::size_t len : lengths) n += k < len;
    return n;
}

expr masked_input(const expr& m, const expr& x) {
    const shape s = x.shape();  // a copy: node storage moves as nodes are added
    if (s.rank() == 2) return where(m, x, x.owner().constant(0.0));
    shape ms{s[0]};  // the mask as [B, 1, ...] of x's rank, so that it broadcasts along rows
    for (std::size_t d = 1; d < s.rank(); ++d) ms.push_back(1);
    return where(reshape(m, ms), x, x.owner().constant(0.0));
}

void any_state_error(const std::string& what) { throw value_error("nn::any_state: " + what); }

void stacked_error(const std::string& what) { throw shape_error("nn::stacked: " + what); }

void check_residual(std::size_t layer, const expr& input, const expr& output) {
    if (!(input.shape() == output.shape()))
        throw shape_error("nn::stacked: residual connection around layer " + std::to_string(layer) + ": input " +
                          input.shape().str() + ", output " + output.shape().str() +
                          " (expected equal shapes: residual layers must keep the width)");
}

}  // namespace detail
}  // namespace seqgrad::nn
