#include "linear.hpp"

#include <cmath>
#include <string>

#include "../ops/elementwise.hpp"
#include "../ops/linalg.hpp"
#include "../ops/operands.hpp"
#include "../ops/shape_ops.hpp"
#include "init.hpp"

namespace seqgrad::nn {
namespace {
std::mt19937_64& lvalue(std::mt19937_64&& r) { return r; }

// "<prefix>" of a parameter named "<prefix>.<leaf>" ("" when it has no prefix).
std::string owner(const parameter& p) {
    const std::string& n = p.name();
    const auto dot = n.rfind('.');
    return dot == std::string::npos ? std::string() : n.substr(0, dot);
}

void check_sizes(const char* who, const parameter_scope& scope, std::size_t a, std::size_t b) {
    if (a == 0 || b == 0)
        throw value_error(std::string("nn::") + who + " '" + scope.prefix() + "': sizes " + std::to_string(a) +
                          " and " + std::to_string(b) + " (expected both > 0)");
}
}  // namespace

linear::linear(const parameter_scope& scope, std::size_t in, std::size_t out, bool with_bias)
    : linear(scope, in, out, with_bias, lvalue(detail::seeded_from(scope.prefix()))) {}

linear::linear(const parameter_scope& scope, std::size_t in, std::size_t out, bool with_bias, std::mt19937_64& rng)
    : in_features(in), out_features(out) {
    check_sizes("linear", scope, in, out);
    const seqgrad::detail::store_transaction undo(scope.store());  // "bias" taken: no "weight" left behind
    weight = scope.add("weight", shape{out, in});
    if (with_bias) bias = scope.add("bias", shape{out});
    reset_parameters(rng);
}

void linear::reset_parameters(std::mt19937_64& rng) const {
    const double k = 1.0 / std::sqrt(static_cast<double>(in_features));
    uniform(weight, -k, k, rng);
    if (has_bias()) uniform(bias, -k, k, rng);
}

expr linear::operator()(const expr& x) const {
    const shape xs = x.shape();  // a copy: node storage moves as nodes are added
    if (xs.rank() == 0 || xs.back() != in_features) {
        throw shape_error("nn::linear '" + owner(weight) + "': input " + xs.str() + " (expected [..., " +
                          std::to_string(in_features) + "]; weight is " + weight.shape().str() + ")");
    }
    const bool matrix = xs.rank() == 2;
    const expr x2 = matrix ? x : reshape(x, {xs.size() / in_features, in_features});
    expr y = matmul(x2, T(weight));
    if (has_bias()) y = y + bias;
    if (matrix) return y;
    shape ys = xs;
    ys[xs.rank() - 1] = out_features;
    return reshape(y, ys);
}

embedding::embedding(const parameter_scope& scope, std::size_t v, std::size_t d)
    : embedding(scope, v, d, lvalue(detail::seeded_from(scope.prefix()))) {}

embedding::embedding(const parameter_scope& scope, std::size_t v, std::size_t d, std::mt19937_64& rng)
    : num_embeddings(v), embedding_dim(d) {
    check_sizes("embedding", scope, v, d);
    weight = scope.add("weight", shape{v, d});
    reset_parameters(rng);
}

void embedding::reset_parameters(std::mt19937_64& rng) const { normal(weight, 0.0, 1.0, rng); }

expr embedding::operator()(tape& t, std::span<const int> ids) const {
    for (std::size_t k = 0; k < ids.size(); ++k)
        if (ids[k] < 0 || static_cast<std::size_t>(ids[k]) >= num_embeddings)
            throw value_error("nn::embedding '" + weight.name() + "' " + weight.shape().str() + ": id " +
                              std::to_string(ids[k]) + " at position " + std::to_string(k) + " (expected ids in [0, " +
                              std::to_string(num_embeddings) + "))");
    return gather_rows(t.param(weight), ids);
}

}  // namespace seqgrad::nn
