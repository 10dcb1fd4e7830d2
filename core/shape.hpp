#pragma once
// Scalar types and shapes: small value types that every other header uses.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "errors.hpp"

namespace seqgrad {

/// Scalar type of a tape or parameter store: float for training, double for gradient checks.
enum class dtype : std::uint8_t { f32, f64 };

inline const char* to_string(dtype d) { return d == dtype::f32 ? "float32" : "float64"; }
inline std::ostream& operator<<(std::ostream& os, dtype d) { return os << to_string(d); }
template <class T>
constexpr dtype dtype_of() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "seqgrad: float or double");
    return std::is_same_v<T, float> ? dtype::f32 : dtype::f64;
}

/// Maximum rank of a tensor on a tape. Four covers [time, batch, rows, cols]; a fixed bound keeps
/// shapes inline in every node, so building a node never allocates.
inline constexpr std::size_t max_rank = 4;

/// A row-major tensor shape of rank 0 (a scalar) to max_rank, stored inline.
class shape {
public:
    shape() = default;
    shape(std::initializer_list<std::size_t> dims) { assign(dims.begin(), dims.end()); }
    template <std::input_iterator It>
    shape(It first, It last) {
        assign(first, last);
    }
    template <class C, class = decltype(std::declval<const C&>().begin())>
    explicit shape(const C& c) {
        assign(c.begin(), c.end());
    }

    std::size_t rank() const { return rank_; }
    /// Number of elements (1 for a scalar).
    std::size_t size() const {
        static_assert(max_rank == 4);
        return d_[0] * d_[1] * d_[2] * d_[3];  // the dimensions past the rank are 1
    }
    std::size_t operator[](std::size_t i) const { return d_[i]; }
    std::size_t& operator[](std::size_t i) { return d_[i]; }
    /// Dimension counted from the end: back(0) is the last one.
    std::size_t back(std::size_t i = 0) const { return d_[rank_ - 1 - i]; }
    const std::size_t* begin() const { return d_.data(); }
    const std::size_t* end() const { return d_.data() + rank_; }
    void push_back(std::size_t v) {
        if (rank_ == max_rank) throw shape_error("shape: rank above " + std::to_string(max_rank) + " is not supported");
        d_[rank_++] = v;
    }
    std::vector<std::size_t> to_vector() const { return {begin(), end()}; }

    friend bool operator==(const shape& a, const shape& b) {
        return a.rank_ == b.rank_ && a.d_ == b.d_;  // all four dimensions, no loop over the rank
    }
    /// "[2, 3]"; a scalar prints as "[]".
    std::string str() const {
        std::string s = "[";
        for (std::size_t i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
        return s + "]";
    }

private:
    template <class It>
    void assign(It first, It last) {
        d_.fill(1);
        rank_ = 0;
        for (; first != last; ++first) push_back(static_cast<std::size_t>(*first));
    }
    // Past the rank every dimension is 1, so size() and == need no loop over the rank (both run
    // several times per node).
    std::array<std::size_t, max_rank> d_{1, 1, 1, 1};
    std::uint8_t rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const shape& s) { return os << s.str(); }

namespace detail {
/// Room for a node's inputs' shapes, reused from node to node: inline up to 8 inputs (a vector
/// grown per node cost about 30 instructions an input on bench/overhead's nodes), else on the heap.
class shape_scratch {
public:
    /// Room for k shapes (overwriting the last call's).
    shape* room(std::size_t k) {
        if (k <= inline_.size()) return inline_.data();
        heap_.resize(k);
        return heap_.data();
    }

private:
    std::array<shape, 8> inline_;
    std::vector<shape> heap_;
};
}  // namespace detail

}  // namespace seqgrad
