// optimizer::save_state and load_state (see optimizer.hpp): the state as an .npz keyed by name.
#include "optimizer.hpp"

#include <array>
#include <map>

#include "../core/io.hpp"
#include "../core/npz_format.hpp"

namespace seqgrad::optim {

namespace {
// Counts are stored as doubles, exact up to 2^53; an edited -1, 2.5 or NaN must not wrap into a
// count of 2^64 - 1 when cast back.
bool whole(double v, double lo) { return v >= lo && v <= 9007199254740992.0 && v == std::floor(v); }

}  // namespace

void optimizer::save_state(const std::string& path) const {
    const parameter_store& ps = *ps_;
    struct entry {
        std::string name;
        const detail::optim_state* s;
        double steps;
    };
    // Buffers only for current state: one left from a parameter whose store slot was replaced
    // (another uid or size) is stale, and the next step() would remake it from zeros anyway. Every
    // parameter without (frozen, added since the last step, stale) gets an update count of 0, so
    // that load_state tells one saved before its first update from one of another model.
    std::vector<entry> all;
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const detail::optim_state* s = i < state_.size() ? &state_[i] : nullptr;
        if (s && s->uid != 0 && s->uid == ps[i].data().uid && s->size == ps[i].size())
            all.push_back({ps[i].name(), s, static_cast<double>(s->steps)});
        else all.push_back({ps[i].name(), nullptr, 0.0});
    }
    std::vector<std::pair<std::size_t, bool>> at;  // member after the head -> (entry, its steps?)
    for (std::size_t k = 0; k < all.size(); ++k) {
        at.push_back({k, true});
        if (all[k].s) at.push_back({k, false});
    }
    const std::array<double, 3> head{static_cast<double>(steps_), lr_, static_cast<double>(buffers_)};
    detail::write_arrays(path, "optimizer::save_state", 1 + at.size(), [&](std::size_t i) {
        if (i == 0) return detail::npy_array{"optimizer/" + name_, {3}, dtype::f64, head.data()};
        const entry& e = all[at[i - 1].first];
        if (at[i - 1].second) return detail::npy_array{e.name + "/steps", {1}, dtype::f64, &e.steps};
        const void* data = e.s->dt == dtype::f32 ? static_cast<const void*>(e.s->f.data())
                                                 : static_cast<const void*>(e.s->d.data());
        return detail::npy_array{e.name + "/state", {buffers_, e.s->size}, e.s->dt, data};
    });
}

void optimizer::load_state(const std::string& path) {
    using detail::npz::dims_str;
    using detail::npz::name_list;
    const std::string who_s = "optimizer::load_state (" + name_ + ")";
    const char* who = who_s.c_str();
    const detail::npz::where w{who, path, {}};
    const auto in = [&](const std::string& key) { return detail::npz::where{who, path, key + ".npy"}; };
    const auto shape_of = [](const xt::xarray<double>& a) {
        return dims_str(std::vector<std::size_t>(a.shape().begin(), a.shape().end()));
    };
    const detail::npz_contents file = detail::read_npz_members(path, who);  // io_error on corruption
    for (const auto& [key, why] : file.other) in(key).fail(why + " (expected '<f4' or '<f8')");

    const parameter_store& ps = *ps_;
    std::map<std::string, std::size_t> own;  // "<param>/steps" and "<param>/state" -> index
    for (std::size_t i = 0; i < ps.size(); ++i) {
        own.emplace(ps[i].name() + "/steps", i);
        own.emplace(ps[i].name() + "/state", i);
    }
    const std::string head_key = "optimizer/" + name_;
    std::vector<std::string> unknown, kinds;
    for (const auto& [key, a] : file.floats) {
        if (key == head_key || own.count(key)) continue;
        (key.rfind("optimizer/", 0) == 0 ? kinds : unknown).push_back(key);
    }
    const auto head = file.floats.find(head_key);
    if (head == file.floats.end()) {
        if (!kinds.empty())
            w.fail("holds the state of '" + kinds[0].substr(10) + "' (member '" + kinds[0] + "'), not of " + name_ +
                   " (expected a member '" + head_key + "')");
        w.fail("no member '" + head_key + "' (expected a file written by " + name_ + "'s save_state)");
    }
    const xt::xarray<double>& h = head->second;
    if (h.dimension() != 1 || h.size() != 3)
        in(head_key).fail("shape " + shape_of(h) + ", expected [3]: steps, learning rate, buffers per parameter");
    if (!whole(h(0), 0)) in(head_key).fail("steps " + detail::number(h(0)) + " is not a whole number in [0, 2^53]");
    if (!(h(1) >= 0 && h(1) <= detail::optim_float_max))  // as optim_require_lr
        in(head_key).fail("learning rate " + detail::number(h(1)) + ", expected finite and >= 0, at most 3.4e38");
    if (!whole(h(2), 0) || h(2) != static_cast<double>(buffers_))
        in(head_key).fail(detail::number(h(2)) + " buffer(s) per parameter, " + name_ + " with these options keeps " +
                          std::to_string(buffers_) + " (state saved with other options: momentum, centered?)");
    if (!unknown.empty()) w.fail("member(s) " + name_list(unknown) + " name no parameter of the store");

    struct item {
        std::size_t index;
        double steps;
        const xt::xarray<double>* buffers;
    };
    std::vector<item> plan;
    std::vector<std::string> missing;
    std::size_t not_started = 0;  // parameters named with an update count of 0 (no state yet)
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const parameter p = ps[i];
        const std::string ks = p.name() + "/steps", kb = p.name() + "/state";
        const auto s = file.floats.find(ks), b = file.floats.find(kb);
        if (s == file.floats.end() && b == file.floats.end()) {
            if (p.trainable()) missing.push_back(p.name());
            continue;
        }
        if (s == file.floats.end())
            w.fail("parameter '" + p.name() + "' has member '" + kb + "' but no '" + ks + "' (expected both)");
        const xt::xarray<double>& n = s->second;
        if (n.dimension() != 1 || n.size() != 1)
            in(ks).fail("shape " + shape_of(n) + " for parameter '" + p.name() + "', expected [1]: its update count");
        if (b == file.floats.end()) {
            if (n(0) != 0)
                w.fail("parameter '" + p.name() + "' has member '" + ks + "' but no '" + kb +
                       "' (expected both, or an update count of 0: no state yet)");
            ++not_started;  // saved before its first update: it starts afresh, as it would have
            continue;
        }
        if (!whole(n(0), 1))
            in(ks).fail("update count " + detail::number(n(0)) + " of parameter '" + p.name() +
                        "' is not a whole number in [1, 2^53]");
        const xt::xarray<double>& a = b->second;
        if (a.dimension() != 2 || a.shape()[0] != buffers_ || a.shape()[1] != p.size())
            in(kb).fail("shape " + shape_of(a) + " for parameter '" + p.name() + "' of shape " + p.shape().str() +
                        ", expected [" + std::to_string(buffers_) + ", " + std::to_string(p.size()) +
                        "]: " + std::to_string(buffers_) + " buffer(s) of " + name_ + " with these options, " +
                        std::to_string(p.size()) + " entries each");
        if (p.scalar_type() == dtype::f32)  // a finite double beyond float's range would load as inf
            if (const std::size_t k = detail::first_beyond_float(a.data(), a.size()); k < a.size())
                in(kb).fail("value " + detail::number(a.data()[k]) + " at index " + std::to_string(k) +
                            " does not fit parameter '" + p.name() + "' of type f32");
        for (std::size_t r = 0; r < buffers_; ++r)
            for (std::size_t k = 0; k < p.size(); ++k) {
                const double v = a(r, k);
                // A NaN, or a running sum of squares below 0, makes the next update NaN.
                if (std::isnan(v) || (v < 0 && (nonneg_rows_ >> r & 1)))
                    in(kb).fail("value " + detail::number(v) + " at index " + std::to_string(k) + " of buffer " +
                                std::to_string(r) + " of parameter '" + p.name() + "' (expected " +
                                ((nonneg_rows_ >> r & 1) ? "a sum of squares, >= 0" : "a number") + ")");
            }
        plan.push_back({i, n(0), &a});
    }
    if (!missing.empty() && (!plan.empty() || not_started > 0))
        w.fail("trainable parameter(s) " + name_list(missing) + " have no state in the file, which names " +
               std::to_string(plan.size() + not_started) +
               " other parameter(s) (expected every parameter of the store: the same model?)");

    // All checked: only now replace the state.
    std::vector<detail::optim_state> fresh(ps.size());
    for (const item& it : plan) {
        const auto& d = ps[it.index].data();
        auto& s = fresh[it.index];
        s.uid = d.uid;
        s.dt = d.dt;
        s.size = ps[it.index].size();
        s.steps = static_cast<std::size_t>(it.steps);
        const xt::xarray<double>& a = *it.buffers;
        if (d.dt == dtype::f64) {
            s.d.assign(a.begin(), a.end());
        } else {
            s.f.resize(a.size());
            for (std::size_t k = 0; k < a.size(); ++k) s.f[k] = static_cast<float>(a.data()[k]);
        }
    }
    state_ = std::move(fresh);
    steps_ = static_cast<std::size_t>(h(0));
    lr_ = h(1);
}

}  // namespace seqgrad::optim
