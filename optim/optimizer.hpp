#pragma once
// Base class of the optimisers (sgd, adam, adagrad, rmsprop).
//
// An optimiser holds a reference to a parameter_store. Backward accumulates into the parameters'
// gradients; step() reads them, updates every trainable parameter's value in place and then,
// like DyNet and unlike PyTorch, sets every gradient of the store back to zero, so the next
// backward starts clean without a separate zero_grad() call. Pass step(false) to keep the
// gradients (to inspect them, or to accumulate over several steps by hand).
//
// Per-parameter state (momentum, moment estimates, ...) is created lazily, zero-filled, the first
// time a parameter is updated, and is keyed by the parameter's index in the store: parameters
// added to the store after the optimiser was built are picked up by the next step(). State lives
// in the store's scalar type; after parameter_store::to() it is converted on the next step. Once a
// parameter's state exists, step() does not allocate.
//
// Updates follow PyTorch's torch.optim formulas (each optimiser's header quotes its own), computed
// in the store's scalar type, for float and double stores alike.
//
// Not thread-safe: call step() when no backward pass is writing into the same store. The store
// must outlive the optimiser and must not be moved from while the optimiser uses it.
//
// Resuming exactly (torch's optimizer.state_dict() / load_state_dict()): save the parameters and
// the optimiser's state side by side, and load both into a fresh store and optimiser of the same
// kind and options; the steps that follow are bit for bit those of an uninterrupted run.
//
//     seqgrad::save_npz(ps, "model.npz");         // the parameters
//     opt.save_state("model.npz.optim");          // moments, step counts, learning rate
//     ...
//     seqgrad::load_npz(ps2, "model.npz");
//     seqgrad::optim::adam opt2(ps2, 1e-3);        // same kind and options as opt
//     opt2.load_state("model.npz.optim");
//
// The state is a file of its own rather than members of the parameters' .npz: a model file stays
// what load_npz (strict), nn::load_torch_state and numpy users read as a model, a state file can
// be dropped to restart the moments, and neither needs to know the other's layout. The two files
// are written one after the other, each atomically; steps() in the state file lets a caller check
// that they belong together (examples/char_lm.cpp does). State file format: an .npz with
//     "optimizer/<name>"   [3] '<f8': steps(), learning_rate(), buffers per parameter
//     "<param>/steps"      [1] '<f8': that parameter's update count (whole, >= 1; 0 for a
//                          parameter without state: frozen, or added since the last step)
//     "<param>/state"      [buffers, size] in the state's scalar type ('<f4' or '<f8'): row k is
//                          buffer k (adam: m, v; sgd: momentum; adagrad: sum; rmsprop: v, then b
//                          if momentum > 0, then a if centered) flattened in C order; none when
//                          the count is 0
// for every parameter of the store, keyed by the parameter's full name, never its index.
// Hyper-parameters (betas, momentum, eps, ...) are not saved: they are the constructor's options.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../core/errors.hpp"
#include "../core/executor.hpp"
#include "../core/parameter.hpp"

namespace seqgrad {

namespace detail {

/// What an optimiser keeps for one parameter: the number of updates it has had and `buffers`
/// arrays of the parameter's size, stored back to back in the parameter's scalar type.
struct optim_state {
    std::uint64_t uid = 0;  // the parameter it was made for; 0 while not made
    dtype dt = dtype::f32;
    std::size_t size = 0;   // entries per buffer
    std::size_t steps = 0;  // updates applied, counting the one in progress during update()
    std::vector<float> f;   // the buffers when dt == f32
    std::vector<double> d;  // the buffers when dt == f64

    template <class T>
    T* buffer(std::size_t k) {
        if constexpr (std::is_same_v<T, float>) return f.data() + k * size;
        else return d.data() + k * size;
    }
};

/// Call f(T{}) with T the C++ type of dt (float or double).
template <class F>
void optim_visit(dtype dt, F&& f) {
    if (dt == dtype::f32) f(float{});
    else f(double{});
}

/// Call f(std::bool_constant<v>{}): an update's options as template parameters, so that its loop
/// holds no run-time test (GCC 12 left such loops scalar: a conditional load of a buffer).
template <class F>
void with_bool(bool v, F&& f) {
    if (v) f(std::true_type{});
    else f(std::false_type{});
}

/// Throw value_error("<who>: <what> must be <expected>, got <v>") unless ok.
inline void optim_require(bool ok, std::string_view who, std::string_view what, double v, std::string_view expected) {
    if (!ok)
        throw value_error(std::string(who) + ": " + std::string(what) + " must be " + std::string(expected) + ", got " +
                          detail::number(v));
}
// Options are used in the store's scalar type, float for a float store (or one converted with
// to() later): beyond float's range a learning rate or weight decay became inf, and an eps below
// its smallest normal number 0 (flushed, under set_flush_denormals), and an update NaN.
inline constexpr double optim_float_max = std::numeric_limits<float>::max(),
                        optim_float_min = std::numeric_limits<float>::min();
inline void optim_require_lr(std::string_view who, double lr) {
    optim_require(lr >= 0 && lr <= optim_float_max, who, "learning rate", lr, "finite and >= 0, at most 3.4e38");
}
/// A value in [0, 3.4e38] (weight decay, momentum, ...).
inline void optim_require_nonneg(std::string_view who, std::string_view what, double v) {
    optim_require(v >= 0 && v <= optim_float_max, who, what, v, "finite and >= 0, at most 3.4e38");
}
/// A value in [1.2e-38, 3.4e38] (eps: with 0, an entry whose gradient was always 0 divides 0 by 0).
inline void optim_require_positive(std::string_view who, std::string_view what, double v) {
    optim_require(v >= optim_float_min && v <= optim_float_max, who, what, v,
                  "finite and > 0, from 1.2e-38 (float's smallest normal number) to 3.4e38");
}

}  // namespace detail

namespace optim {

/// Base of every optimiser. Not copyable: it refers to one store and owns that store's state.
class optimizer {
public:
    virtual ~optimizer() = default;
    optimizer(const optimizer&) = delete;
    optimizer& operator=(const optimizer&) = delete;

    /// Update every trainable parameter from its gradient; frozen parameters keep their value.
    /// Then, if zero_grad, set every gradient in the store to zero (frozen ones included).
    /// Throws shape_error, before changing anything, if a gradient's size differs from its value's.
    /// Updated parameters are marked modified (in place, same storage): a tape built before the
    /// step that is still alive then refuses to run backward or read them again (graph_error), so
    /// build a new tape (or clear() the old one) per step. An override must keep the default
    /// argument. In a store of 2^20 (1M) entries or more the parameters are updated (and zeroed) as
    /// separate items across the executor's threads (set_num_threads): the same bits on any count.
    virtual void step(bool zero_grad = true);

    double learning_rate() const noexcept { return lr_; }
    /// Throws value_error unless lr is finite and >= 0. Takes effect at the next step().
    void set_learning_rate(double lr) {
        detail::optim_require_lr(name_, lr);
        lr_ = lr;
    }
    /// Number of step() calls so far (what apply_schedule() passes to a schedule).
    std::size_t steps() const noexcept { return steps_; }
    /// Set steps(): for a run resumed from parameters saved without the optimiser's state, so that
    /// schedules go on from the saved step (load_state restores it from the file).
    void set_steps(std::size_t n) noexcept { steps_ = n; }
    /// "sgd", "adam", ...: the name used in error messages.
    const std::string& name() const noexcept { return name_; }
    parameter_store& store() const noexcept { return *ps_; }

    /// Forget all per-parameter state (momentum, moments, per-parameter step counts); the next
    /// step() starts each parameter afresh. steps() is left as it is.
    void reset_state() { state_.clear(); }
    /// Write the state (see the top of this file) to an .npz file at `path`, atomically as save_npz:
    /// on any failure io_error is thrown, naming optimizer::save_state and the file, and an existing
    /// file at `path` is left as it was. Parameters without state (frozen, or added since the last
    /// step) are named with an update count of 0 and no buffers.
    void save_state(const std::string& path) const;
    /// Replace the state with the one save_state wrote to `path`: every parameter's buffers and
    /// update count, steps() and the learning rate (as torch's load_state_dict restores its lr; set
    /// another with set_learning_rate afterwards). Schedules (schedule.hpp) are functions of steps(),
    /// so apply_schedule goes on from where the saved run was. Buffers saved from a float store load
    /// into a double one and the reverse, converted as load_npz converts parameters. Everything is
    /// checked before anything changes; io_error naming optimizer::load_state (and this optimiser's
    /// name), the file, the member or parameter and what was expected, for: a corrupt or unreadable
    /// file, a member that is not '<f4'/'<f8', no "optimizer/<name>" member (another kind's state
    /// names that kind), a buffer count other than this optimiser's (other options, e.g. rmsprop
    /// centered or not), a member naming no parameter of the store, a trainable parameter without
    /// state while others have some, a size other than the parameter's, a step count that is not a
    /// whole number in [1, 2^53] (steps() and the buffer count: [0, 2^53]; 0 for a parameter saved
    /// without state, which then has none), a learning rate that is negative or above 3.4e38, a
    /// NaN in a buffer, a negative entry in a sum of squares (adam's v, rmsprop's v, adagrad's sum),
    /// and a finite value too large for a float store. After a failed load the optimiser is exactly
    /// as it was.
    void load_state(const std::string& path);
    /// The state of the parameter at `index` in the store, or nullptr if it has none yet.
    /// For inspection and serialisation; its layout is each optimiser's own.
    const detail::optim_state* state(std::size_t index) const {
        return index < state_.size() && state_[index].uid != 0 ? &state_[index] : nullptr;
    }

protected:
    /// `buffers`: how many arrays of a parameter's size the optimiser keeps per parameter;
    /// `nonneg_rows`: bit r set when buffer r is a sum of squares, which load_state refuses below 0.
    optimizer(parameter_store& ps, std::string name, double lr, std::size_t buffers, unsigned nonneg_rows = 0)
        : ps_(&ps), name_(std::move(name)), lr_(lr), buffers_(buffers), nonneg_rows_(nonneg_rows) {
        detail::optim_require_lr(name_, lr);
    }

    /// Update one trainable parameter from its gradient (do not zero it). `s` exists, and s.steps
    /// counts this update (1 on the parameter's first update). step() may call it for different
    /// parameters at the same time on the executor's threads: touch only p and s.
    virtual void update(const parameter& p, detail::optim_state& s) = 0;
    /// update(), then set p's gradient to zero: what step(true) calls. The built-in optimisers
    /// override it to zero each entry in the pass that reads it, since a second pass over a word
    /// model's tens of MB of gradients costs as much as the update's own traffic of them.
    virtual void update_and_zero(const parameter& p, detail::optim_state& s) {
        update(p, s);
        zero_gradient(p);
    }
    static void zero_gradient(const parameter& p) {
        auto& d = p.data();
        if (d.dt == dtype::f32) std::fill(d.gf.begin(), d.gf.end(), 0.0f);
        else std::fill(d.gd.begin(), d.gd.end(), 0.0);
    }
    /// Called once when a parameter's state is made, after its buffers were zero-filled.
    virtual void init_state(detail::optim_state&) {}

private:
    detail::optim_state& state_for(std::size_t index, const parameter& p);

    parameter_store* ps_;
    std::string name_;
    double lr_;
    std::size_t buffers_;
    unsigned nonneg_rows_;
    std::size_t steps_ = 0;
    std::vector<detail::optim_state> state_;
};

inline detail::optim_state& optimizer::state_for(std::size_t index, const parameter& p) {
    if (state_.size() < ps_->size()) state_.resize(ps_->size());
    auto& s = state_[index];
    const auto& d = p.data();
    const std::size_t n = d.dt == dtype::f32 ? d.vf.size() : d.vd.size();
    if (s.uid != d.uid || s.size != n) {  // first update (or the store's contents were replaced)
        s = detail::optim_state{};
        s.uid = d.uid;
        s.dt = d.dt;
        s.size = n;
        if (d.dt == dtype::f32) s.f.assign(buffers_ * s.size, 0.0f);
        else s.d.assign(buffers_ * s.size, 0.0);
        init_state(s);
    } else if (s.dt != d.dt) {  // the store was converted with parameter_store::to()
        if (d.dt == dtype::f64) {
            s.d.assign(s.f.begin(), s.f.end());
            std::vector<float>().swap(s.f);
        } else {
            s.f.resize(s.d.size());
            for (std::size_t i = 0; i < s.d.size(); ++i) s.f[i] = static_cast<float>(s.d[i]);
            std::vector<double>().swap(s.d);
        }
        s.dt = d.dt;
    }
    return s;
}

inline void optimizer::step(bool zero_grad) {
    detail::sync_fp_mode();  // set_flush_denormals: moments and updates decay into that range too
    auto& ps = *ps_;
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const auto& d = ps[i].data();
        if (!d.trainable) continue;
        const std::size_t nv = d.dt == dtype::f32 ? d.vf.size() : d.vd.size();
        const std::size_t ng = d.dt == dtype::f32 ? d.gf.size() : d.gd.size();
        if (nv != ng)
            throw shape_error(name_ + ": parameter '" + d.name + "' has a gradient of " + std::to_string(ng) +
                              " entries for a value of " + std::to_string(nv));
    }
    // States are made here, on the calling thread; then each parameter's update and zeroing is an
    // item of its own, run across the executor's threads when the store is large (a word model's
    // embedding and output layer are 10 MB each, a pass bound by memory). Updates are independent
    // and elementwise: the same bits for any thread count.
    std::vector<detail::optim_state*> states(ps.size(), nullptr);
    std::size_t total = 0;
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const parameter p = ps[i];
        total += p.size();
        if (p.data().trainable) {
            states[i] = &state_for(i, p);
            ++states[i]->steps;
        }
    }
    auto one = [&](std::size_t i) {
        const parameter p = ps[i];
        if (!states[i]) {
            if (zero_grad) zero_gradient(p);
        } else if (zero_grad) {
            update_and_zero(p, *states[i]);
        } else {
            update(p, *states[i]);
        }
    };
    detail::parallel_for_entries(ps.size(), total, one);
    // A tape still holding an old value refuses it (see tape::param).
    for (std::size_t i = 0; i < ps.size(); ++i)
        if (states[i]) ps[i].mark_modified();
    ++steps_;
}

}  // namespace optim
}  // namespace seqgrad
