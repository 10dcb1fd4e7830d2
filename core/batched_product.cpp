// Products served from one GEMM over a whole sequence (tape::batched_product): split out of
// tape.cpp, whose apply() calls it for every product node while the optimisations are on.
#include <algorithm>
#include <cstdint>

#include "blas.hpp"
#include "executor.hpp"
#include "tape.hpp"

namespace seqgrad {

namespace {
// y = p + c (or a copy of p without c): one row of a batched product.
template <class T>
void add_row(T* __restrict y, const T* __restrict p, const T* __restrict c, std::size_t n) {
    if (!c) std::copy_n(p, n, y);
    else
        for (std::size_t j = 0; j < n; ++j) y[j] = p[j] + c[j];
}
}  // namespace

// op(a) op(b) where a is a block of rows of a larger matrix (a view of it: a time step of a
// sequence) is that block of the product of the whole matrix. From the second product of the same
// matrix by the same b, the whole matrix is multiplied once (one GEMM instead of one GEMV or small
// GEMM per step) and each product copies its rows (plus its addend, for matmul_add). When the
// matrix is a lookup gather_rows(E, ids) into an untimed table with at most half as many rows, E
// op(b) is multiplied instead and rows are gathered from it by id; a product of the whole lookup
// (not a view: a layer's input projection over all steps) takes that path at its first use.
template <class T>
bool tape::batched_product(std::uint32_t id) {
    detail::node& n = nodes_[id];
    const op_def& op = *n.op;
    if (n.at->i[0] != 0) return false;  // a transposed: its rows are not the output's rows
    const std::uint32_t* ins = input_ids_.data() + n.first_input;
    const detail::node& a = nodes_[ins[op.product_a]];
    const std::uint32_t base = view_base(ins[op.product_a]);
    const detail::node& src = nodes_[base];
    const bool gathered = src.op && src.op->name == "gather_rows";
    // A whole gathered matrix (or a view of all of it) is served only from its table, on first use.
    const bool whole = gathered && a.shp.size() == src.shp.size();
    if ((!a.view && !whole) || src.step >= 0) return false;  // a step's record: no other steps' rows
    const std::size_t m = a.shp[0], k = a.shp[1], cols = n.shp[1], total = src.shp.size();
    // The rows must lie inside the base: with checkpointing, a base copied out of its segment no
    // longer holds the memory of views made before the copy.
    const auto pa = reinterpret_cast<std::uintptr_t>(a.value), pb = reinterpret_cast<std::uintptr_t>(src.value);
    if (!src.value || pa < pb || pa + m * k * sizeof(T) > pb + total * sizeof(T)) return false;
    const auto off = static_cast<std::ptrdiff_t>((pa - pb) / sizeof(T));
    // Below k = 8 one GEMM gains nothing and its [T*B, n] result costs a pass (gradient_flow, 2 inputs).
    if (k < 8 || total % k != 0 || off % static_cast<std::ptrdiff_t>(k) != 0 || (!whole && total / k < 2 * m))
        return false;
    const std::size_t rows = total / k, first = static_cast<std::size_t>(off) / k;
    const std::uint32_t b = ins[op.product_b];
    const bool tb = n.at->i[1] != 0;
    product_memo* memo = nullptr;
    for (auto& e : memo_)
        if (e.base == base && e.b == b && e.trans_b == tb) memo = &e;
    if (!memo) {
        memo_.push_back({base, b, tb, 1, nullptr});
        // A lookup into an untimed table with at most half as many rows: multiply the table.
        if (gathered) {
            const std::uint32_t e = input_ids_[src.first_input];
            const detail::node& tab = nodes_[e];
            if (tab.step < 0 && tab.shp.rank() == 2 && tab.shp[1] == k && 2 * tab.shp[0] <= rows && tab.value)
                memo_.back().table = e;
        }
        memo = &memo_.back();
        if (!whole) return false;
    }
    if (whole && memo->table == product_memo::no_table) return false;
    // Under checkpoint_bptt a sequence's products stay a step's own: all steps' rows at once are
    // T B cols values kept for the whole backward (4H a row for a layer's input projection: 16 KB
    // a step at B 8, H 128, 3-4 times the rest of the checkpointed tape), where the segments keep
    // O(sqrt T) steps. A table's products (V rows) are kept as before.
    if (ckpt_ && memo->table == product_memo::no_table) return false;
    if (!memo->rows) {
        if (!whole && ++memo->uses < 2) return false;
        const bool table = memo->table != product_memo::no_table;
        const detail::node& m_src = table ? nodes_[memo->table] : src;
        const std::size_t r_src = table ? m_src.shp[0] : rows;
        T* all = values_.alloc_n<T>(r_src * cols);
        detail::gemm(false, tb, r_src, cols, k, T(1), static_cast<const T*>(m_src.value),
                     static_cast<const T*>(nodes_[b].value), T(0), all);
        memo->rows = all;
    }
    T* y = static_cast<T*>(n.value);
    if (memo->table != product_memo::no_table) {
        const std::span<const int> ids = src.at->ints;
        const T* tab = static_cast<const T*>(memo->rows);
        const detail::node* c = op.product_c < 0 ? nullptr : &nodes_[ins[op.product_c]];
        const T* cv = c ? static_cast<const T*>(c->value) : nullptr;
        const std::size_t step = c && c->shp.size() == m * cols ? cols : 0;           // full addend or a row
        detail::parallel_rows(m, double(cols), [&](std::size_t lo, std::size_t hi) {  // rows apart: split
            for (std::size_t r = lo; r < hi; ++r)
                add_row(y + r * cols, tab + static_cast<std::size_t>(ids[first + r]) * cols, cv ? cv + r * step : cv,
                        cols);
        });
        ++opt_counts_.table_products;
        return true;
    }
    const T* p = static_cast<const T*>(memo->rows) + first * cols;
    if (op.product_c < 0) {
        n.value = const_cast<T*>(p);  // values never change once computed: the rows are the value
    } else {
        const detail::node& c = nodes_[ins[op.product_c]];
        const T* cv = static_cast<const T*>(c.value);
        const std::size_t step = c.shp.size() == m * cols ? cols : 0;
        for (std::size_t r = 0; r < m; ++r) add_row(y + r * cols, p + r * cols, cv + r * step, cols);
    }
    return true;
}

// A product of a few rows by the transpose of an untimed weight, op(a) = a and b^T (h W_hh^T in a
// cell whose weights have PyTorch's layout): the weight is transposed into column panels once per tape
// and every product reads them on the own small-product kernel (detail::gemm_packed), where
// OpenBLAS would pack the weight at every step (so the copy never costs more than OpenBLAS's
// packing). Not under checkpointing (a recomputed segment must give the same bits).
template <class T>
bool tape::transposed_product(std::uint32_t id) {
    detail::node& n = nodes_[id];
    const op_def& op = *n.op;
    if (ckpt_ || n.at->i[0] != 0 || n.at->i[1] == 0 || !detail::small_gemm_kernels()) return false;
    const std::uint32_t* ins = input_ids_.data() + n.first_input;
    const detail::node& a = nodes_[ins[op.product_a]];
    const std::uint32_t b = ins[op.product_b];
    const detail::node& w = nodes_[b];
    const std::size_t m = a.shp[0], k = a.shp[1], cols = n.shp[1];
    // Many rows (a sequence's input projection) only by a weight that stays in L2 across their
    // blocks: the own kernel then beats OpenBLAS's packing of both operands; a larger one streams
    // from L2 into every block, where OpenBLAS runs faster.
    const bool rows_ok = m <= 64 || w.shp.size() * sizeof(T) <= detail::packed_rows_max_bytes;
    if (w.step >= 0 || !w.value || !a.value || m < 2 || !rows_ok || cols % (64 / sizeof(T)) != 0) return false;
    const T* wt = packed_transpose<T>(b);
    T* y = static_cast<T*>(n.value);
    // The addend (a full one or a row, a bias) is added in the product's store instead of copied
    // into y first.
    const T* s = nullptr;
    std::size_t lds = 0;
    if (op.product_c >= 0) {
        const detail::node& c = nodes_[ins[op.product_c]];
        s = static_cast<const T*>(c.value);
        lds = c.shp.size() == m * cols ? cols : 0;  // full addend or a row
    }
    detail::gemm_packed(m, cols, k, static_cast<const T*>(a.value), wt, T(0), y, s, lds);
    ++opt_counts_.products_transposed;
    return true;
}

template <class T>
const T* tape::packed_transpose(std::uint32_t b) {
    for (const auto& [node, copy] : transposed_)
        if (node == b) return static_cast<const T*>(copy);
    const detail::node& w = nodes_[b];
    T* wt = values_.alloc_n<T>(w.shp.size());
    detail::pack_panels(true, w.shp[1], w.shp[0], static_cast<const T*>(w.value), wt);
    transposed_.emplace_back(b, wt);
    return wt;
}

const tape::product_memo* tape::table_memo(std::uint32_t id) const {
    const detail::node& n = nodes_[id];
    if (!n.memo_served || !n.op || n.op->product_a < 0) return nullptr;
    const std::uint32_t* ins = input_ids_.data() + n.first_input;
    const std::uint32_t base = view_base(ins[n.op->product_a]);
    const std::uint32_t b = ins[n.op->product_b];
    const bool tb = n.at->i[1] != 0;
    for (const auto& e : memo_)
        if (e.base == base && e.b == b && e.trans_b == tb)
            return e.table != product_memo::no_table && e.rows ? &e : nullptr;
    return nullptr;
}

template bool tape::batched_product<float>(std::uint32_t);
template bool tape::transposed_product<float>(std::uint32_t);
template bool tape::transposed_product<double>(std::uint32_t);
template const float* tape::packed_transpose<float>(std::uint32_t);
template const double* tape::packed_transpose<double>(std::uint32_t);
template bool tape::batched_product<double>(std::uint32_t);

}  // namespace seqgrad
