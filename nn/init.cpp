#include "init.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xmanipulation.hpp>

#include "../core/errors.hpp"

namespace seqgrad::nn {
namespace {

xt::xarray<double> draw(const parameter& p, auto&& dist, std::mt19937_64& rng) {
    xt::xarray<double> v = xt::zeros<double>(p.shape().to_vector());
    for (auto& x : v) x = dist(rng);
    return v;
}

bool in_out(const parameter& p) { return p.layout() == weight_layout::in_out; }

// [rows, cols] of a matrix parameter, or shape_error naming the initialiser.
std::pair<std::size_t, std::size_t> matrix_dims(const parameter& p, const char* who) {
    if (p.shape().rank() != 2)
        throw shape_error(std::string("nn::") + who + ": parameter '" + p.name() + "' has shape " + p.shape().str() +
                          (in_out(p) ? " (expected a matrix [in, out])" : " (expected a matrix [out, in])"));
    return {p.shape()[0], p.shape()[1]};
}

// {out, in} of a weight matrix, read by its declared layout.
std::pair<std::size_t, std::size_t> out_in_dims(const parameter& p, const char* who) {
    auto [rows, cols] = matrix_dims(p, who);
    return in_out(p) ? std::pair{cols, rows} : std::pair{rows, cols};
}

// A gain or scale the initialiser multiplies its draws by, checked under the initialiser's name
// (a NaN or infinite one wrote NaN or inf weights; a negative one failed as nn::uniform's or
// nn::normal's bounds).
void check_gain(const parameter& p, const char* who, const char* what, double v, bool nonneg) {
    if (!std::isfinite(v) || (nonneg && v < 0))
        throw value_error(std::string("nn::") + who + ": " + what + " " + seqgrad::detail::number(v) + " for '" +
                          p.name() + "' (expected finite" + (nonneg ? " and >= 0)" : ")"));
}

double xavier_std(const parameter& p, const char* who, double gain) {
    auto [out, in] = out_in_dims(p, who);
    check_gain(p, who, "gain", gain, true);
    if (in + out == 0)
        throw shape_error(std::string("nn::") + who + ": parameter '" + p.name() + "' has shape " + p.shape().str() +
                          " (fan_in + fan_out 0)");
    return gain * std::sqrt(2.0 / static_cast<double>(in + out));
}

double kaiming_std(const parameter& p, const char* who, double gain) {
    auto [out, in] = out_in_dims(p, who);
    check_gain(p, who, "gain", gain, true);
    if (in == 0)
        throw shape_error(std::string("nn::") + who + ": parameter '" + p.name() + "' has shape " + p.shape().str() +
                          " (fan-in 0)");
    return gain / std::sqrt(static_cast<double>(in));
}

// Q of a random normal [rows, cols] matrix (rows >= cols): orthonormal columns, written into a
// row-major block of the destination at dst[r * stride + c], transposed when `transposed`.
void orthonormal_columns(std::size_t rows, std::size_t cols, std::mt19937_64& rng, double gain, double* dst,
                         std::size_t stride, bool transposed) {
    std::normal_distribution<double> n(0.0, 1.0);
    std::vector<std::vector<double>> q(cols, std::vector<double>(rows));  // column-major
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) q[c][r] = n(rng);
    for (std::size_t j = 0; j < cols; ++j) {
        for (int pass = 0; pass < 2; ++pass)
            for (std::size_t k = 0; k < j; ++k) {
                double d = 0;
                for (std::size_t r = 0; r < rows; ++r) d += q[k][r] * q[j][r];
                for (std::size_t r = 0; r < rows; ++r) q[j][r] -= d * q[k][r];
            }
        double norm = 0;
        for (double x : q[j]) norm += x * x;
        norm = std::sqrt(norm);
        for (double& x : q[j]) x /= norm;
    }
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c)
            (transposed ? dst[c * stride + r] : dst[r * stride + c]) = gain * q[c][r];
}

}  // namespace

void constant(const parameter& p, double value) {
    p.assign(xt::xarray<double>(xt::zeros<double>(p.shape().to_vector())) + value);
}
void zeros(const parameter& p) { constant(p, 0.0); }

void uniform(const parameter& p, double a, double b, std::mt19937_64& rng) {
    if (!(a <= b) || !std::isfinite(a) || !std::isfinite(b))
        throw value_error("nn::uniform: bounds [" + std::to_string(a) + ", " + std::to_string(b) + ") for '" +
                          p.name() + "' (expected finite a <= b)");
    p.assign(draw(p, std::uniform_real_distribution<double>(a, b), rng));
}

void normal(const parameter& p, double mean, double stddev, std::mt19937_64& rng) {
    if (!(stddev >= 0) || !std::isfinite(stddev) || !std::isfinite(mean))
        throw value_error("nn::normal: mean " + std::to_string(mean) + ", stddev " + std::to_string(stddev) + " for '" +
                          p.name() + "' (expected finite, stddev >= 0)");
    p.assign(draw(p, std::normal_distribution<double>(mean, stddev), rng));
}

void xavier_uniform(const parameter& p, std::mt19937_64& rng, double gain) {
    const double bound = std::sqrt(3.0) * xavier_std(p, "xavier_uniform", gain);
    uniform(p, -bound, bound, rng);
}

void xavier_normal(const parameter& p, std::mt19937_64& rng, double gain) {
    normal(p, 0.0, xavier_std(p, "xavier_normal", gain), rng);
}

void kaiming_uniform(const parameter& p, std::mt19937_64& rng, double gain) {
    const double bound = std::sqrt(3.0) * kaiming_std(p, "kaiming_uniform", gain);
    uniform(p, -bound, bound, rng);
}

void kaiming_normal(const parameter& p, std::mt19937_64& rng, double gain) {
    normal(p, 0.0, kaiming_std(p, "kaiming_normal", gain), rng);
}

std::size_t fan_in(const parameter& p) { return out_in_dims(p, "fan_in").second; }
std::size_t fan_out(const parameter& p) { return out_in_dims(p, "fan_out").first; }

void orthogonal(const parameter& p, std::mt19937_64& rng, double gain) { orthogonal_per_gate(p, 1, rng, gain); }

void orthogonal_per_gate(const parameter& p, std::size_t gates, std::mt19937_64& rng, double gain) {
    // Gates are blocks of the out dimension: rows of [out, in], columns of [in, out] (built as
    // [out, in], then transposed).
    const char* who = gates == 1 ? "orthogonal" : "orthogonal_per_gate";
    auto [rows, cols] = out_in_dims(p, who);
    check_gain(p, who, "gain", gain, false);
    if (gates == 0 || rows % gates != 0)
        throw shape_error("nn::orthogonal_per_gate: parameter '" + p.name() + "' of shape " + p.shape().str() +
                          " cannot be cut into " + std::to_string(gates) + " equal " + (in_out(p) ? "column" : "row") +
                          " blocks");
    const std::size_t br = rows / gates;
    xt::xarray<double> v = xt::zeros<double>({rows, cols});
    for (std::size_t g = 0; g < gates; ++g) {
        double* block = v.data() + g * br * cols;
        if (br >= cols) orthonormal_columns(br, cols, rng, gain, block, cols, false);
        else orthonormal_columns(cols, br, rng, gain, block, cols, true);  // rows of the block
    }
    p.assign(in_out(p) ? xt::xarray<double>(xt::transpose(v)) : v);
}

void identity(const parameter& p, double scale) {
    auto [rows, cols] = matrix_dims(p, "identity");
    check_gain(p, "identity", "scale", scale, false);
    xt::xarray<double> v = xt::zeros<double>({rows, cols});
    for (std::size_t i = 0; i < std::min(rows, cols); ++i) v(i, i) = scale;
    p.assign(v);
}

void lstm_forget_bias(const parameter& bias, double value) {
    if (bias.shape().rank() != 1 || bias.shape()[0] % 4 != 0)
        throw shape_error("nn::lstm_forget_bias: parameter '" + bias.name() + "' has shape " + bias.shape().str() +
                          " (expected an LSTM bias [4H], gates i, f, g, o)");
    xt::xarray<double> v = bias.value_as_double();
    const std::size_t h = bias.shape()[0] / 4;
    for (std::size_t k = h; k < 2 * h; ++k) v(k) = value;
    bias.assign(v);
}

void rnn_default(const parameter& p, std::size_t hidden_size, std::mt19937_64& rng) {
    if (hidden_size == 0) throw value_error("nn::rnn_default: hidden size 0 for '" + p.name() + "'");
    const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    uniform(p, -k, k, rng);
}

namespace detail {
std::mt19937_64 seeded_from(std::string_view name) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    return std::mt19937_64(h);
}
}  // namespace detail

}  // namespace seqgrad::nn
