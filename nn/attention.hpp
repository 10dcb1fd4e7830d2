#pragma once
// Attention over a stored sequence of encoder states (the memory), as a composition of registered
// ops: no gradient code of its own.
//
// For a query q (a decoder state) and memory states a_1 .. a_S, a score function gives e_s, the
// weights are alpha = softmax over s of e_s and the context is c = sum_s alpha_s a_s. The score
// functions (PyTorch nn.Linear layouts for every weight, [out, in]):
//
//     additive   (Bahdanau et al. 2015)  e_s = v . tanh(W_q q + W_k a_s + b)   w_q [A, Dq], w_k [A, Dm], b [A], v [1, A]
//     dot        (Luong et al. 2015)     e_s = q . a_s                        (Dq == Dm)
//     general    (Luong)                 e_s = q . (W a_s)                     w [Dq, Dm]
//     concat     (Luong)                 e_s = v . tanh(W [q; a_s])            w [A, Dq + Dm], v [1, A]
//     scaled_dot (Vaswani et al. 2017)   e_s = q . a_s / sqrt(Dq)             (Dq == Dm)
//
// What does not depend on the query is hoisted out of the decoder loop: prepare() projects the
// memory once per source batch (W a_s for general, W_k a_s + b for additive, the memory half of W
// for concat, which splits W [q; a] = W_q q + W_k a), so each decoder step costs one small
// product for the query and one batched product (bmm) for the scores and one for the context.
//
// Masks. With source lengths, positions s >= lengths[b] of row b are masked: alpha is
// masked_softmax(e, lengths), whose max and sum exclude masked positions (so any score, however
// large, at a masked position changes nothing), which get weight exactly 0 and no gradient. A row whose positions are all masked (length 0) gets zero weights, a zero
// context and zero gradients, never NaN.
//
// Two paths, same numbers:
//   - step by step, operator()(memory, q) with q [B, Dq]: for decoders whose next query depends
//     on this step's context (input feeding, Bahdanau-style decoders, beam search);
//   - all steps at once, all_steps(memory, qs) with qs [B, T, Dq]: when every query is known up
//     front (teacher forcing with attention after the decoder RNN, Luong style), the scores of all
//     T steps are one batched product and the contexts another.
// tests/nn/test_attention.cpp holds the two equal in values and gradients for every score.
//
// The weights stay on the tape: attention_output::weights is an expr whose value the caller reads
// after the forward pass (tape::value), for plots and tests.
//
//     nn::attention att(sg::parameter_scope(ps, "att"), nn::attention_score::general, 64, 128);
//     nn::attention_memory mem = att.prepare(nn::memory_from_steps(encoder_outputs), src_lengths);
//     nn::attention_output o = att(mem, h);                // o.context [B, 128], o.weights [B, S]
#include <cstddef>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <xtensor/xarray.hpp>

#include "../core/tape.hpp"

namespace seqgrad::nn {

enum class attention_score { additive, dot, general, concat, scaled_dot };

/// "additive", "dot", "general", "concat", "scaled_dot".
const char* to_string(attention_score s);
/// The inverse of to_string; value_error listing the names otherwise.
attention_score attention_score_from_string(std::string_view name);

/// The memory of one source batch, prepared once for every decoder step.
struct attention_memory {
    expr values;  ///< [B, S, Dm]: the encoder states the contexts average
    expr keys;    ///< [B, S, K]: what queries are scored against (values, or their projection)
    /// Valid steps per batch row (positions at or past them get weight exactly 0: they take no
    /// part in the softmax's max or sum); empty when no position is masked.
    std::vector<int> lengths;
    std::size_t batch = 0, steps = 0;

    bool masked() const { return !lengths.empty(); }
};

/// Result of attending: contexts and the weights that made them.
struct attention_output {
    expr context;  ///< [B, Dm] per step, [B, T, Dm] for all_steps
    expr weights;  ///< [B, S] per step, [B, T, S] for all_steps
};

/// Encoder states of S steps, each [B, Dm] (as nn::unroll and nn::bidirectional return them), as
/// one memory [B, S, Dm] (S reshapes and one concat). shape_error when the shapes differ.
expr memory_from_steps(std::span<const expr> states);

/// A score function with its parameters.
class attention {
public:
    attention_score score;
    std::size_t query_size = 0, memory_size = 0, attention_size = 0;
    parameter w_q, w_k, b, w, v;  ///< those the score uses (see the table above); others empty
    std::string scope_name;       ///< the scope's prefix, which errors name (dot has no parameter)

    /// attention_size is A for additive and concat (0: query_size); unused by the others. dot and
    /// scaled_dot need query_size == memory_size (shape_error otherwise). Weights start as
    /// PyTorch's nn.Linear: U(-1/sqrt(in), 1/sqrt(in)).
    attention(const parameter_scope& scope, attention_score score, std::size_t query_size, std::size_t memory_size,
              std::size_t attention_size = 0);
    attention(const parameter_scope& scope, attention_score score, std::size_t query_size, std::size_t memory_size,
              std::size_t attention_size, std::mt19937_64& rng);
    void reset_parameters(std::mt19937_64& rng) const;

    /// Prepare a memory [B, S, Dm]: hoists the query-independent projections and builds the mask
    /// from lengths (B of them, each <= S; empty: no mask). Throws shape_error / value_error
    /// naming the module, the shapes and what was expected.
    attention_memory prepare(const expr& memory, std::span<const std::size_t> lengths = {}) const;

    /// One decoder step: query [B, Dq] -> context [B, Dm], weights [B, S].
    attention_output operator()(const attention_memory& m, const expr& query) const;
    /// Every step at once: queries [B, T, Dq] -> context [B, T, Dm], weights [B, T, S]; the
    /// scores of all steps are one batched product.
    attention_output all_steps(const attention_memory& m, const expr& queries) const;

    /// Unnormalised scores e: [B, R, S] for queries [B, R, Dq] (R = 1 per step, T for all steps).
    expr scores(const attention_memory& m, const expr& queries) const;

private:
    void check_query(const attention_memory& m, const expr& q, std::size_t rank) const;
};

/// The [T, S] weights of batch row `row` from per-step weights [B, S] (T exprs) or from one
/// all-steps weights expr [B, T, S]: rows = decoder steps (output tokens), columns = source
/// positions. For plots and tests, after the forward pass.
xt::xarray<double> weights_of_row(const tape& t, std::span<const expr> step_weights, std::size_t row);
xt::xarray<double> weights_of_row(const tape& t, const expr& all_weights, std::size_t row);

}  // namespace seqgrad::nn
