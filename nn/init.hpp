#pragma once
// Initialisers: each one overwrites a parameter's value in place, drawing from the generator it is
// given, so a model built with the same seed starts from the same numbers on every run.
//
//     std::mt19937_64 rng(42);
//     nn::lstm_cell cell(scope, 32, 128, rng);              // PyTorch default: U(-1/sqrt(H), 1/sqrt(H))
//     nn::orthogonal_per_gate(cell.w_hh, 4, rng);           // each gate's [H, H] block orthogonal
//     nn::lstm_forget_bias(cell.b_ih, 1.0);                 // remember by default
//
// Values are computed in double and converted to the store's scalar type. A weight matrix is read
// in the layout it was declared with (sg::weight_layout, core/parameter.hpp): the convention
// [out, in] (PyTorch's; fan_in is the number of columns, fan_out the number of rows, gates are row
// blocks), or [in, out] for a parameter added with weight_layout::in_out (fan_in is the number of
// rows, gates are column blocks). Functions that need a matrix throw shape_error naming the
// initialiser and the shape they got (xavier_* also for fan_in + fan_out 0, kaiming_* for fan-in
// 0), and value_error naming it for a gain or scale that is not finite (xavier_* and kaiming_*:
// or negative).
#include <cstddef>
#include <random>
#include <string_view>

#include "../core/parameter.hpp"

namespace seqgrad::nn {

/// Every entry set to value.
void constant(const parameter& p, double value);
/// Every entry zero.
void zeros(const parameter& p);
/// Entries drawn from U(a, b). value_error unless a <= b, both finite; also (parameter::assign)
/// when a float parameter cannot hold the draws.
void uniform(const parameter& p, double a, double b, std::mt19937_64& rng);
/// Entries drawn from N(mean, stddev^2). value_error unless mean and stddev >= 0 are finite; also
/// (parameter::assign) when a float parameter cannot hold the draws.
void normal(const parameter& p, double mean, double stddev, std::mt19937_64& rng);

/// Glorot & Bengio (2010): U(-g*sqrt(6/(fan_in+fan_out)), +g*sqrt(...)), variance
/// 2 g^2 / (fan_in + fan_out). Keeps activation variance roughly constant through a layer.
void xavier_uniform(const parameter& p, std::mt19937_64& rng, double gain = 1.0);
/// N(0, 2 g^2 / (fan_in + fan_out)).
void xavier_normal(const parameter& p, std::mt19937_64& rng, double gain = 1.0);

/// He et al. (2015), fan-in mode: U(-g*sqrt(3/fan_in), +g*sqrt(3/fan_in)), variance g^2 / fan_in.
/// The default gain sqrt(2) suits relu layers; gain 1/sqrt(3) gives PyTorch's nn.Linear default
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void kaiming_uniform(const parameter& p, std::mt19937_64& rng, double gain = 1.4142135623730951);
/// N(0, g^2 / fan_in).
void kaiming_normal(const parameter& p, std::mt19937_64& rng, double gain = 1.4142135623730951);

/// Inputs and outputs of a weight matrix in its declared layout (shape_error if not a matrix).
std::size_t fan_in(const parameter& p);
std::size_t fan_out(const parameter& p);

/// A (semi-)orthogonal matrix times gain (Saxe et al. 2014), as torch.nn.init.orthogonal_: the
/// Q factor of the QR decomposition of a random normal matrix, sign-corrected so that R has a
/// positive diagonal (which makes Q uniformly distributed). A [rows, cols] parameter gets
/// orthonormal rows (W W^T = I) when rows <= cols and orthonormal columns (W^T W = I) otherwise.
/// QR is by modified Gram-Schmidt with one re-orthogonalisation pass, which is orthonormal to
/// rounding in double; Gram-Schmidt produces the positive-diagonal R directly.
void orthogonal(const parameter& p, std::mt19937_64& rng, double gain = 1.0);
/// orthogonal() applied to each of `gates` equal blocks of the out dimension on its own: for
/// recurrent weights of stacked gates (LSTM w_hh [4H, H] with gates = 4, GRU with 3; [H, 4H] when
/// declared in_out) each gate's [H, H] block becomes orthogonal, which is what "orthogonal
/// recurrent init" usually means for gated cells.
void orthogonal_per_gate(const parameter& p, std::size_t gates, std::mt19937_64& rng, double gain = 1.0);

/// scale * I (ones on the main diagonal of a possibly non-square matrix). With a relu rnn_cell's
/// w_hh and zero biases this is the IRNN of Le, Jaitly & Hinton (2015).
void identity(const parameter& p, double scale = 1.0);

/// Set the forget-gate quarter [H, 2H) of an LSTM bias [4H] (gate order i, f, g, o) to value and
/// leave the rest alone. PyTorch adds b_ih and b_hh, so the effective forget bias is the sum of
/// both: set it on one of them and zero the quarter of the other for an exact value.
void lstm_forget_bias(const parameter& bias, double value);

/// The PyTorch default for recurrent weights and biases: U(-1/sqrt(hidden), 1/sqrt(hidden)).
void rnn_default(const parameter& p, std::size_t hidden_size, std::mt19937_64& rng);

namespace detail {
/// A generator seeded from a name (FNV-1a), so that modules built without an explicit generator
/// still get distinct, reproducible values per parameter scope.
std::mt19937_64 seeded_from(std::string_view name);
}  // namespace detail

}  // namespace seqgrad::nn
