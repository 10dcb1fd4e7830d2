#pragma once
// Shape manipulation, indexing and gradient control.
#include <vector>

#include "../core/tape.hpp"

namespace seqgrad {

/// Same data, new shape (sizes must agree).
expr reshape(const expr& x, const shape& s);
/// Join along an axis; other dimensions must agree.
expr concat(std::span<const expr> xs, int axis = -1);
inline expr concat(std::initializer_list<expr> xs, int axis = -1) {
    return concat(std::span<const expr>(xs.begin(), xs.size()), axis);
}
/// Entries [begin, end) along an axis.
expr slice(const expr& x, int axis, std::size_t begin, std::size_t end);
/// Cut into equal parts along an axis (slices; e.g. the four gates of an LSTM).
std::vector<expr> split(const expr& x, std::size_t parts, int axis = -1);
/// Repeat along broadcast dimensions (NumPy rules) to shape s; backward sums back.
expr broadcast_to(const expr& x, const shape& s);
/// Rows of a matrix: table [V, D], ids (n of them) -> [n, D]. The embedding lookup.
expr gather_rows(const expr& table, std::span<const int> ids);
/// One entry per row: x [N, C], idx (N of them) -> [N] with y[n] = x[n, idx[n]].
expr pick(const expr& x, std::span<const int> idx);
/// Identity forward; no gradient flows through (the output is a constant for backward).
expr stop_gradient(const expr& x);

}  // namespace seqgrad
