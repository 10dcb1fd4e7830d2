#pragma once
// Elementwise arithmetic. Binary ops broadcast by NumPy rules (a bias row [1, H] or [H] adds to
// [B, H]); backward sums each contribution back to its input's shape.
#include "../core/tape.hpp"

namespace seqgrad {

expr add(const expr& a, const expr& b);
expr sub(const expr& a, const expr& b);
expr mul(const expr& a, const expr& b);
expr div(const expr& a, const expr& b);
expr neg(const expr& x);
/// x + c for a constant c.
expr add_scalar(const expr& x, double c);
/// x * c for a constant c.
expr mul_scalar(const expr& x, double c);
expr exp(const expr& x);
/// Natural log; x must be positive (check_finite catches the NaN otherwise).
expr log(const expr& x);
expr square(const expr& x);
expr sqrt(const expr& x);
/// x^p for a constant p (x > 0 unless p is a whole number).
expr pow(const expr& x, double p);

inline expr operator+(const expr& a, const expr& b) { return add(a, b); }
inline expr operator-(const expr& a, const expr& b) { return sub(a, b); }
inline expr operator*(const expr& a, const expr& b) { return mul(a, b); }
inline expr operator/(const expr& a, const expr& b) { return div(a, b); }
inline expr operator-(const expr& x) { return neg(x); }
inline expr operator+(const expr& a, double c) { return add_scalar(a, c); }
inline expr operator+(double c, const expr& a) { return add_scalar(a, c); }
inline expr operator-(const expr& a, double c) { return add_scalar(a, -c); }
inline expr operator-(double c, const expr& a) { return add_scalar(neg(a), c); }
inline expr operator*(const expr& a, double c) { return mul_scalar(a, c); }
inline expr operator*(double c, const expr& a) { return mul_scalar(a, c); }
inline expr operator/(const expr& a, double c) { return mul_scalar(a, 1.0 / c); }
inline expr operator/(double c, const expr& a) { return mul_scalar(pow(a, -1.0), c); }

}  // namespace seqgrad
