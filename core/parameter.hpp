#pragma once
// Trainable tensors live outside any tape, in a parameter_store (a model). Each has a
// hierarchical name ("encoder.lstm0.w_ih") used for save/load and in messages.
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <xtensor/xarray.hpp>

#include "shape.hpp"

namespace seqgrad {

/// How a weight matrix is stored. The convention, used by the built-in layers, checkpoints and
/// PyTorch interop, is out_in: [out, in], applied as matmul(x, T(w)) (ops/operands.hpp). A
/// parameter stored [in, out] and applied as matmul(x, w) declares in_out when it is added, so that
/// the initialisers (nn/init.hpp) take fan-in, fan-out and gate blocks from the right dimensions.
enum class weight_layout : std::uint8_t { out_in, in_out };

namespace detail {
class store_transaction;
/// Whether v is finite but beyond float's range: written into float storage it would become inf (a
/// conversion C++ leaves undefined). Every path that puts doubles into float parameters or state
/// (assign, to(f32), load_npz, load_torch_state, optimizer::load_state) refuses such a value.
inline bool beyond_float(double v) { return std::isfinite(v) && std::abs(v) > std::numeric_limits<float>::max(); }
/// The index of the first value of v[0, n) beyond_float, or n if none.
inline std::size_t first_beyond_float(const double* v, std::size_t n) {
    std::size_t i = 0;
    while (i < n && !beyond_float(v[i])) ++i;
    return i;
}
/// value_error naming `who`, the value and its index if v[0, n) has one beyond_float: doubles
/// entering a float tape (its leaves, constants and the scalars of add_scalar and mul_scalar).
void require_float(const char* who, const double* v, std::size_t n);
inline void require_float(const char*, const float*, std::size_t) {}  // floats always fit

struct param_data {
    std::string name;
    seqgrad::shape shp;
    dtype dt = dtype::f32;
    xt::xarray<float> vf, gf;   // active when dt == f32
    xt::xarray<double> vd, gd;  // active when dt == f64
    std::uint64_t uid = 0;      // unique across the process: tapes key their leaf cache on it
    // Bumped by every write of the value (assign, initialisers, loads, optimiser steps, to()); a
    // tape records it when it reads the parameter and refuses stale reads (as PyTorch's version
    // counters). Atomic: tapes on several threads read it while none writes.
    std::atomic<std::uint64_t> version{0};
    std::mutex grad_mutex;  // several tapes on several threads may accumulate at once
    bool trainable = true;
    weight_layout layout = weight_layout::out_in;
};
}  // namespace detail

/// A handle to one parameter of a store. Cheap to copy; valid while its store lives.
class parameter {
public:
    parameter() = default;
    explicit parameter(detail::param_data* p) : p_(p) {}

    const std::string& name() const { return data().name; }
    const seqgrad::shape& shape() const { return data().shp; }
    std::size_t size() const { return data().shp.size(); }
    dtype scalar_type() const { return data().dt; }
    bool valid() const { return p_ != nullptr; }
    /// A frozen parameter is still usable on a tape but gets no gradient and optimisers skip it.
    bool trainable() const { return data().trainable; }
    void set_trainable(bool on) { data().trainable = on; }
    /// The declared layout of a weight matrix (see weight_layout).
    weight_layout layout() const { return data().layout; }

    /// The value in the store's scalar type; throws value_error if T is not that type. Code that
    /// writes through this reference must call mark_modified() afterwards, and must keep the
    /// array's storage (write entries, do not assign a new array): a tape that read the parameter
    /// points into that storage.
    template <class T>
    xt::xarray<T>& value() const;
    /// The accumulated gradient (same shape as the value), in the store's scalar type.
    template <class T>
    xt::xarray<T>& grad() const;
    /// Copy of the value converted to double, whatever the store's type.
    xt::xarray<double> value_as_double() const;
    /// Set the value from any array of the right shape (converted to the store's type), in place,
    /// and mark it modified. value_error, with nothing written, for a finite value beyond the range
    /// of a float parameter (it would become inf); infinities and NaN are kept as given.
    void assign(const xt::xarray<double>& v) const;
    /// Record that the value changed. Tapes that read the parameter before refuse to use it after
    /// (graph_error from backward, tape::param, a new op reading the leaf, or reading the leaf's
    /// value), since their forward values were computed with the old value.
    void mark_modified() const { data().version.fetch_add(1, std::memory_order_relaxed); }
    /// How many times the value was written (see mark_modified).
    std::uint64_t version() const { return data().version.load(std::memory_order_relaxed); }
    /// Copy of the gradient converted to double.
    xt::xarray<double> grad_as_double() const;

    detail::param_data& data() const {
        if (!p_) throw value_error("parameter: empty handle (not created by a parameter_store)");
        return *p_;
    }
    friend bool operator==(const parameter& a, const parameter& b) { return a.p_ == b.p_; }
    static seqgrad::shape shape_of(const xt::xarray<double>& v);

private:
    detail::param_data* p_ = nullptr;
};

/// A named collection of parameters. Order of insertion is kept and is the order of iteration,
/// saving and optimiser state.
class parameter_store {
public:
    explicit parameter_store(dtype dt = dtype::f32) : dt_(dt) {}
    parameter_store(const parameter_store&) = delete;
    parameter_store& operator=(const parameter_store&) = delete;
    parameter_store(parameter_store&&) = default;
    parameter_store& operator=(parameter_store&&) = default;

    /// Add a zero-filled parameter. Names must be unique (value_error otherwise). A weight matrix
    /// stored [in, out] passes weight_layout::in_out (see weight_layout).
    parameter add(std::string name, const seqgrad::shape& shp, weight_layout layout = weight_layout::out_in);
    /// Add a parameter with the given initial value (converted to the store's scalar type).
    parameter add(std::string name, const xt::xarray<double>& init, weight_layout layout = weight_layout::out_in);

    /// Lookup by full name; throws value_error listing close names if absent.
    parameter get(std::string_view name) const;
    bool contains(std::string_view name) const;

    std::size_t size() const { return params_.size(); }
    parameter operator[](std::size_t i) const { return parameter(params_[i].get()); }
    std::vector<parameter> parameters() const;
    /// Total number of scalar entries over all parameters.
    std::size_t num_elements() const;

    dtype scalar_type() const { return dt_; }
    /// Convert every value to the given scalar type (gradients are reset to zero). Converted
    /// parameters count as modified (see parameter::mark_modified). to(f32) throws value_error,
    /// naming the parameter, the value and its entry, with nothing converted, when a finite value
    /// is beyond the range of float (it would become inf), as parameter::assign does.
    void to(dtype dt);

    void zero_grad();
    /// Sum of squared gradient entries over all trainable parameters (fixed order, double).
    double grad_squared_norm() const;

private:
    friend class detail::store_transaction;
    dtype dt_;
    std::vector<std::unique_ptr<detail::param_data>> params_;
};

namespace detail {
/// A module's construction as one change of its store: if the construction throws, the parameters
/// it added are removed again (the store as it was: the user fixes the options and builds again
/// there). Lives only as long as the construction: a local of a factory or constructor body, or
/// the temporary argument of a delegating constructor. `size`: the store's size before the module.
class store_transaction {
public:
    explicit store_transaction(parameter_store& ps) noexcept : store_transaction(ps, ps.size()) {}
    store_transaction(parameter_store& ps, std::size_t size) noexcept
        : ps_(&ps), size_(size), unwinding_(std::uncaught_exceptions()) {}
    ~store_transaction() {
        if (std::uncaught_exceptions() > unwinding_ && ps_->params_.size() > size_)
            ps_->params_.erase(ps_->params_.begin() + static_cast<std::ptrdiff_t>(size_), ps_->params_.end());
    }
    store_transaction(const store_transaction&) = delete;
    store_transaction& operator=(const store_transaction&) = delete;

private:
    parameter_store* ps_;
    std::size_t size_;
    int unwinding_;
};
}  // namespace detail

/// A view of a store that prefixes names: scope(ps, "encoder").add("w", ...) adds "encoder.w".
class parameter_scope {
public:
    parameter_scope(parameter_store& ps, std::string prefix = "") : ps_(&ps), prefix_(std::move(prefix)) {}
    parameter_scope sub(std::string_view name) const { return {*ps_, full(name)}; }
    parameter add(std::string_view name, const seqgrad::shape& shp,
                  weight_layout layout = weight_layout::out_in) const {
        return ps_->add(full(name), shp, layout);
    }
    parameter add(std::string_view name, const xt::xarray<double>& init,
                  weight_layout layout = weight_layout::out_in) const {
        return ps_->add(full(name), init, layout);
    }
    std::string full(std::string_view name) const {
        return prefix_.empty() ? std::string(name) : prefix_ + "." + std::string(name);
    }
    parameter_store& store() const { return *ps_; }
    const std::string& prefix() const { return prefix_; }

private:
    parameter_store* ps_;
    std::string prefix_;
};

}  // namespace seqgrad
