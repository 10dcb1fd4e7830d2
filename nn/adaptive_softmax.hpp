#pragma once
// Adaptive softmax (Grave, Joulin, Cissé, Grangier and Jégou 2017, "Efficient softmax
// approximation for GPUs"), with the semantics, parameter names and initialisation of PyTorch's
// nn.AdaptiveLogSoftmaxWithLoss, so a state dict of one loads into the other by name.
//
//     nn::adaptive_softmax out(sg::parameter_scope(ps, "out"), 256, vocab.size(), {2000, 10000});
//     sg::expr loss = out.loss(h, targets);          // h [N, 256]: mean of -log p(target)
//     sg::expr lp = out.log_prob(h);                 // [N, V]: exact log-probabilities
//
// The classes (word ids) must be sorted by decreasing frequency (nn::vocab's ids are). With
// cutoffs c_0 < c_1 < ... < c_{k-1} < V, the head is a softmax over the shortlist [0, c_0) plus
// one entry per tail cluster; cluster i holds words [c_i, c_{i+1}) (c_k = V) and scores them
// through a projection to in / div_value^(i+1) features and then to its words, both without
// bias. p(w) = p_head(w) for a shortlist word, p_head(cluster i) * p_i(w) otherwise, so the
// log-probabilities are exact and sum to 1 over the vocabulary (perplexities compare with a full
// softmax's).
//
// loss() evaluates only the clusters that hold targets, and only on the rows whose target they
// hold: with frequency-sorted words most rows need the head alone, which is where the speed comes
// from. Everything is a composition of registered ops (linear, gather_rows, matmul, the fused
// cross_entropy), so gradients flow to the input and to every weight.
#include <cstddef>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "../core/tape.hpp"
#include "../ops/loss.hpp"
#include "linear.hpp"

namespace seqgrad::nn {

struct adaptive_softmax {
    std::size_t in_features = 0, n_classes = 0;
    /// The cutoffs given, then n_classes: cluster i (0-based) holds [cutoffs[i], cutoffs[i + 1]).
    std::vector<std::size_t> cutoffs;
    double div_value = 4.0;
    /// [in] -> [shortlist + clusters], named "<scope>.head" (bias only with head_bias).
    linear head;
    /// Per cluster i: "<scope>.tail.<i>.0" [in] -> [hsz_i] and "<scope>.tail.<i>.1" [hsz_i] -> [size_i],
    /// where hsz_i = in // div_value^(i+1) in Python's float floor division (PyTorch's rule: for
    /// a div_value such as 1.6 it can be one less than floor(in / div_value^(i+1))), as PyTorch's
    /// tail[i][0] and tail[i][1].
    std::vector<linear> tail_proj, tail_out;

    /// cutoffs: strictly increasing, each in [1, n_classes - 1] (a last entry equal to n_classes is
    /// dropped, as in "2000 / 10000" for V = 10000); value_error otherwise, or when a cluster's
    /// projection size hsz_i is 0.
    adaptive_softmax(const parameter_scope& scope, std::size_t in_features, std::size_t n_classes,
                     std::vector<std::size_t> cutoffs, double div_value = 4.0, bool head_bias = false);
    adaptive_softmax(const parameter_scope& scope, std::size_t in_features, std::size_t n_classes,
                     std::vector<std::size_t> cutoffs, double div_value, bool head_bias, std::mt19937_64& rng);

    std::size_t shortlist_size() const { return cutoffs.front(); }
    std::size_t n_clusters() const { return cutoffs.size() - 1; }
    std::size_t head_size() const { return shortlist_size() + n_clusters(); }

    /// -log p(target) over the rows of x [N, in] (or [..., in], rows in order), one target per row
    /// in [0, n_classes) or negative to ignore the row. reduction::sum or reduction::mean (over
    /// the rows not ignored; PyTorch's loss); reduction::none is refused (value_error): use
    /// log_prob. shape_error / value_error naming the module on bad shapes or targets.
    expr loss(const expr& x, std::span<const int> targets, reduction r = reduction::mean) const;
    /// Log-probabilities of every class, [N, n_classes] for x [N, in] (PyTorch's log_prob).
    expr log_prob(const expr& x) const;

private:
    std::string name_;  // "nn::adaptive_softmax '<scope>'", for errors
    expr rows_of(const expr& x, const char* who) const;
};

}  // namespace seqgrad::nn
