#pragma once
// Decoding a sequence from a model that scores the next token: greedy, ancestral sampling (with
// temperature and top-k), beam search (width, length normalisation, EOS handling, maximum length)
// and exhaustive search for tiny vocabularies and lengths.
//
// The algorithms see a model only through decoder_model: a batch of hypotheses ("rows") of one
// source, each extended one token per step(), and reordered between steps when a beam keeps some
// hypotheses and drops others. nn::seq2seq provides one (seq2seq::decoder); tests build others by
// hand from known probability tables. Everything here is forward-only.
//
// Conventions shared by every algorithm:
//   - a hypothesis is y_1 .. y_n, either ending with EOS (n <= max_length, `finished`) or cut at
//     n = max_length without one;
//   - its log-probability is sum_i log p(y_i | y_<i); its score is log_prob / n^alpha with
//     alpha = length_penalty (0: raw log-probability, 1: per-token average), n counting the EOS;
//   - the first step() of a hypothesis receives the model's start_token() as "previous token".
//
//     auto dec = model.decoder(source_ids);               // a decoder_model for one source
//     auto g = nn::greedy(*dec, {.max_length = 20});
//     auto best = nn::beam_search(*dec, {.width = 5, .max_length = 20, .length_penalty = 1.0}).front();
//     std::mt19937_64 rng(1);
//     auto s = nn::sample(*dec, {.temperature = 0.7, .top_k = 10, .max_length = 20}, rng);
#include <cstddef>
#include <random>
#include <span>
#include <vector>

#include <xtensor/xarray.hpp>

#include "text.hpp"

namespace seqgrad::nn {

/// What decoding needs from a model.
class decoder_model {
public:
    virtual ~decoder_model() = default;
    /// V: the number of tokens step() scores.
    virtual std::size_t vocab_size() const = 0;
    /// The token that ends a sequence (vocab::eos_id by default); one of 0 .. V-1 (the decoders
    /// throw value_error otherwise).
    virtual int eos_token() const { return vocab::eos_id; }
    /// The "previous token" of the first step (EOS by default: vocab has no begin token).
    virtual int start_token() const { return vocab::eos_id; }
    /// Start `rows` hypotheses afresh, all of the same source.
    virtual void begin(std::size_t rows) = 0;
    /// Log-probabilities [rows, V] of each row's next token, given the token each row took last
    /// (one per row); advances every row by that token. The decoders throw value_error for V = 0
    /// and numeric_error for a NaN or +Inf entry (-Inf, probability 0, is fine).
    virtual xt::xarray<double> step(std::span<const int> previous) = 0;
    /// Keep some rows: new row i continues old row parents[i] (parents may repeat a row and may
    /// have any length >= 1).
    virtual void reorder(std::span<const std::size_t> parents) = 0;
};

/// One decoded sequence.
struct hypothesis {
    std::vector<int> tokens;  ///< y_1 .. y_n, including the EOS when finished
    double log_prob = 0;      ///< sum of the tokens' log-probabilities
    double score = 0;         ///< log_prob / n^length_penalty
    bool finished = false;    ///< ended with EOS (else cut at max_length)

    /// The tokens without the final EOS.
    std::vector<int> output() const;
};

/// log_prob / n^alpha (n = tokens.size(); n == 0 gives log_prob).
double length_normalised(double log_prob, std::size_t n, double alpha);

struct greedy_options {
    std::size_t max_length = 50;
};
/// The most probable token at every step (ties: the lowest id), until EOS or max_length.
hypothesis greedy(decoder_model& m, const greedy_options& o = {});

struct sample_options {
    /// Divides the log-probabilities before renormalising (p^(1/T)); 0 picks the argmax (greedy),
    /// small values approach it, large ones flatten the distribution. Must be >= 0.
    double temperature = 1.0;
    /// Sample among the k most probable tokens only (0: all).
    std::size_t top_k = 0;
    std::size_t max_length = 50;
};
/// Ancestral sampling: each token drawn from the (tempered, top-k) next-token distribution. The
/// returned log_prob is under the model's own distribution (temperature 1, no top-k). A step where
/// every token has log-probability -Inf leaves nothing to draw: numeric_error (at temperature 0,
/// greedy's rule takes the lowest id).
hypothesis sample(decoder_model& m, const sample_options& o, std::mt19937_64& rng);

struct beam_options {
    std::size_t width = 5;
    std::size_t max_length = 50;
    /// alpha of the score log_prob / n^alpha (0: none); finite and >= 0 (value_error otherwise).
    double length_penalty = 0.0;
};
/// Beam search. Each step extends the `width` live hypotheses by every token and ranks the
/// candidates by log-probability. A candidate ending in EOS among the top `width` is finished and
/// set aside; the best `width` others stay live. The search stops when none is live, at
/// max_length (live ones are then kept, cut), or once `width` hypotheses have finished and no live
/// one can still beat the width-th best of them (a live hypothesis only loses log-probability as
/// it grows, so log_prob / max_length^alpha bounds its score). Returns the finished hypotheses,
/// best score first (ties: the earlier found). Width 1 with length_penalty 0 is greedy; a width at
/// least the number of possible hypotheses prunes nothing and equals exhaustive_search.
std::vector<hypothesis> beam_search(decoder_model& m, const beam_options& o = {});

struct exhaustive_options {
    std::size_t max_length = 4;
    /// alpha, as for beam_search: finite and >= 0 (value_error otherwise).
    double length_penalty = 0.0;
    /// value_error when there are more hypotheses than this ((V-1)^max_length grows fast).
    std::size_t max_hypotheses = 200000;
};
/// Every hypothesis scored one by one (a fresh begin(1) for each, independent of beam_search's
/// bookkeeping), best score first (ties: shorter first, then by token ids).
std::vector<hypothesis> exhaustive_search(decoder_model& m, const exhaustive_options& o = {});

}  // namespace seqgrad::nn
