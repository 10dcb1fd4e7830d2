#pragma once
// Affine layers and embeddings, as compositions of registered ops.
//
//     nn::linear out(sg::parameter_scope(ps, "out"), 128, vocab);   // out.weight [V, 128], out.bias [V]
//     nn::embedding emb(sg::parameter_scope(ps, "emb"), vocab, 32); // emb.weight [V, 32]
//     sg::expr x = emb(t, ids);                                    // [n, 32]
//     sg::expr logits = out(h);                                    // [B, V], or [T, B, V] from [T, B, 128]
//
// Layouts and names are PyTorch's (nn.Linear: weight [out, in], bias [out]; nn.Embedding:
// weight [V, D]), so state dicts load by name. The default initialisation is PyTorch's too:
// linear weight and bias from U(-1/sqrt(in), 1/sqrt(in)), embedding rows from N(0, 1).
#include <cstddef>
#include <random>
#include <span>

#include "../core/tape.hpp"

namespace seqgrad::nn {

/// y = x W^T + b. x may have any rank from 1 to 4 with the features last ([in], [N, in],
/// [T, B, in], ...); leading dimensions are kept. The product is matmul(x, T(W)): no
/// transpose node, and the bias [out] broadcasts over the rows.
struct linear {
    parameter weight;  ///< [out, in]
    parameter bias;    ///< [out]; empty handle when built without a bias
    std::size_t in_features = 0, out_features = 0;

    linear(const parameter_scope& scope, std::size_t in_features, std::size_t out_features, bool with_bias = true);
    linear(const parameter_scope& scope, std::size_t in_features, std::size_t out_features, bool with_bias,
           std::mt19937_64& rng);
    /// U(-1/sqrt(in), 1/sqrt(in)) for weight and bias, as torch.nn.Linear.reset_parameters.
    void reset_parameters(std::mt19937_64& rng) const;
    bool has_bias() const { return bias.valid(); }
    /// Throws shape_error naming the layer when the last dimension of x is not in_features.
    expr operator()(const expr& x) const;
};

/// A lookup table: row ids -> rows of weight [V, D] (gather_rows; the backward pass scatters the
/// gradient into the looked-up rows only, adding up repeated ids).
struct embedding {
    parameter weight;  ///< [V, D]
    std::size_t num_embeddings = 0, embedding_dim = 0;

    embedding(const parameter_scope& scope, std::size_t num_embeddings, std::size_t embedding_dim);
    embedding(const parameter_scope& scope, std::size_t num_embeddings, std::size_t embedding_dim,
              std::mt19937_64& rng);
    /// N(0, 1), as torch.nn.Embedding.reset_parameters.
    void reset_parameters(std::mt19937_64& rng) const;
    /// ids (n of them, each in [0, V)) -> [n, D] on t. Throws value_error naming the table and the
    /// first bad id otherwise.
    expr operator()(tape& t, std::span<const int> ids) const;
};

}  // namespace seqgrad::nn
