#pragma once
// Typed exceptions. Every message names the op or module, the shapes involved and what was
// expected, in release builds too.
#include <charconv>
#include <stdexcept>
#include <string>

namespace seqgrad {

/// Base of every exception seqgrad throws.
struct error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
/// Input shapes that an op or module cannot accept.
struct shape_error : error {
    using error::error;
};
/// Misuse of a graph: stale expr, backward from a non-scalar, gradient through an op that has none.
struct graph_error : error {
    using error::error;
};
/// Op registry misuse: unknown op name, wrong arity, duplicate registration.
struct op_error : error {
    using error::error;
};
/// A value out of its domain: a target index out of range, a bad option.
struct value_error : error {
    using error::error;
};
/// NaN or Inf found while finite-checking is on; names the first node that produced one.
struct numeric_error : error {
    using error::error;
};
/// Reading or writing a file failed, or a file is corrupt.
struct io_error : error {
    using error::error;
};

namespace detail {
/// v in a message: the shortest decimal that reads back as v (std::to_string's six decimals print
/// 1e-9 as 0.000000 and 1 + 1e-9 as 1.000000).
inline std::string number(double v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}
}  // namespace detail

}  // namespace seqgrad
