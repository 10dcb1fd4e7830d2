#include "transforms.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "blas.hpp"
#include "broadcast.hpp"
#include "tape.hpp"

namespace seqgrad {

namespace {
// The shortest decimal that reads back as v: to_string's six decimals named clip_value(1e-8)
// "clip_value(0)" and refused a threshold of -1e-9 as "got -0".
std::string num(double v) { return detail::number(v); }
void require_threshold(const char* who, double v) {
    if (!(v > 0))
        throw value_error(std::string(who) + ": expected a positive threshold (+inf: no clipping), got " + num(v));
}

class truncation final : public transform {
public:
    truncation(std::size_t k1, std::size_t k2) : k1_(k1), k2_(k2) {}
    std::string name() const override {
        return "truncate_bptt(" + std::to_string(k1_) + ", " + std::to_string(k2_) + ")";
    }
    std::pair<std::size_t, std::size_t> windows() const override { return {k1_, k2_}; }

private:
    std::size_t k1_, k2_;
};

class global_norm_clip final : public transform {
public:
    explicit global_norm_clip(double c) : c_(c) {}
    std::string name() const override { return "clip_global_norm(" + num(c_) + ")"; }
    bool edits_parameters() const override { return true; }
    void on_parameters(std::span<const parameter_gradient> ps, backward_stats& st) const override {
        std::vector<gradient_ref> refs;
        refs.reserve(ps.size());
        for (const auto& p : ps) refs.push_back(p.grad);
        const clip_result r = clip_by_global_norm(refs, c_);
        st.grad_norm = r.norm;
        st.clipped = st.clipped || r.clipped;
    }

private:
    double c_;
};

class value_clip final : public transform {
public:
    explicit value_clip(double c) : c_(c) {}
    std::string name() const override { return "clip_value(" + num(c_) + ")"; }
    bool edits_parameters() const override { return true; }
    void on_parameters(std::span<const parameter_gradient> ps, backward_stats& st) const override {
        std::vector<gradient_ref> refs;
        refs.reserve(ps.size());
        for (const auto& p : ps) refs.push_back(p.grad);
        st.clipped = clip_by_value(refs, c_) || st.clipped;
    }

private:
    double c_;
};

class state_clip final : public transform {
public:
    explicit state_clip(double c) : c_(c) {}
    std::string name() const override { return "clip_state_gradient(" + num(c_) + ")"; }
    bool edits_state_edges() const override { return true; }
    void on_state_edge(const state_edge&, gradient_ref g) const override {
        g.visit([&](auto span) {
            using T = typename decltype(span)::value_type;
            const T c = static_cast<T>(c_);
            for (auto& v : span) v = std::clamp(v, -c, c);
        });
    }

private:
    double c_;
};

class checkpointing final : public transform {
public:
    explicit checkpointing(std::size_t s) : s_(s) {}
    std::string name() const override { return "checkpoint_bptt(" + std::to_string(s_) + ")"; }
    std::size_t checkpoint_segment() const override { return s_; }

private:
    std::size_t s_;
};

// The gradient with respect to a state's values. A state that is a view (h' as a block of an LSTM
// step record) may also be read through its base (the fused layer's next step reads the whole
// record), so its block of the base's gradient is what the loss sees; when only the view is read,
// the two are equal. The base is the furthest view ancestor with a gradient of its own: a record
// may itself be a view of a node that takes none (lstm_run's records, nn/lstm_layer.cpp).
gradient_ref state_gradient(const tape& t, std::uint32_t id) {
    // A state read from a record (lstm_rows): its block of the record's, as tape::grad shows it
    // (an LSTM's c with the path through h' inside the step).
    if (const auto* op = t.node_at(id).op; op && op->record_reader)
        if (const gradient_ref g = t.gradient_at(id); g.data) return g;
    std::uint32_t base = id;
    for (std::uint32_t a = id; t.node_at(a).view;) {
        a = t.inputs_of(a)[0];
        if (t.gradient_at(a).data) base = a;
    }
    if (base == id) return t.gradient_at(id);
    gradient_ref g = t.gradient_at(base);
    const auto *v = static_cast<const std::byte*>(t.node_at(id).value),
               *b = static_cast<const std::byte*>(t.node_at(base).value);
    const std::size_t elem = g.dt == dtype::f32 ? sizeof(float) : sizeof(double), n = t.node_at(id).shp.size();
    // (With checkpointing a base may have been copied away from its views' memory.)
    if (!g.data || !v || !b || v < b || v + n * elem > b + g.size * elem) return t.gradient_at(id);
    g.data = static_cast<std::byte*>(g.data) + (v - b);
    g.size = n;
    return g;
}

class flow_record final : public transform {
public:
    explicit flow_record(gradient_flow& out) : out_(&out) {}
    std::string name() const override { return "record_gradient_flow"; }
    bool reads_step_gradients() const override { return true; }
    void after_sweep(const tape& t) const override {
        auto& norm = out_->norm;
        norm.clear();
        for (std::uint32_t i = 0; i < t.size(); ++i) {
            const auto& n = t.node_at(i);
            if (!n.is_state || n.step < 0) continue;
            if (norm.size() <= static_cast<std::size_t>(n.step)) norm.resize(n.step + 1, 0.0);
            const gradient_ref g = state_gradient(t, i);
            if (!g.data) continue;
            norm[n.step] += g.visit([](auto span) {
                double s = 0;
                for (auto v : span) s += double(v) * v;
                return s;
            });
        }
        for (auto& v : norm) v = std::sqrt(v);
    }

private:
    gradient_flow* out_;
};

/// Sum of squares of one buffer in double, in lane_sum's fixed order: its lanes of partial sums
/// hide the adds' latency (four lanes took 52 us for char_b1's 140K gradients per step, 3.5% of
/// its training step, against 13-16).
double squared_norm(const gradient_ref& g) {
    return g.visit([](auto span) {
        return detail::lane_sum<double>(span.size(), [&](std::size_t i) { return double(span[i]) * span[i]; });
    });
}
/// That of g / m, for gradients whose squares overflow.
double squared_norm_over(const gradient_ref& g, double m) {
    return g.visit([m](auto span) {
        return detail::lane_sum<double>(span.size(), [&](std::size_t i) { return (span[i] / m) * (span[i] / m); });
    });
}
}  // namespace

// Defined with the transforms whose windows and edges it declares: a step below -1 was taken for
// an untimed node (truncate_bptt then cut nothing, silently), and a state read from the step itself
// made every edge inside the step a state edge.
void tape::set_step(int s, int state_from) {
    if (s < -1 || state_from < -1 || (state_from >= 0 && (s < 0 || state_from == s)))
        throw value_error("step_scope (tape::set_step): step " + std::to_string(s) + ", state_from " +
                          std::to_string(state_from) +
                          " (expected a step >= 0, or -1 for none, and state_from -1 or the step >= 0, "
                          "other than this one, whose state this step reads)");
    step_ = s;
    state_from_ = state_from;
}

backward_plan truncate_bptt(std::size_t k1, std::size_t k2) {
    if (k1 == 0) throw value_error("truncate_bptt: k1 must be at least 1");
    if (k2 == 0) k2 = k1;
    if (k2 < k1)
        throw value_error("truncate_bptt(" + std::to_string(k1) + ", " + std::to_string(k2) +
                          "): expected k2 >= k1 (gradients from every k1 steps flow back k2 steps)");
    return make_transform<truncation>(k1, k2);
}
backward_plan clip_global_norm(double max_norm) {
    require_threshold("clip_global_norm", max_norm);
    return make_transform<global_norm_clip>(max_norm);
}
backward_plan clip_value(double c) {
    require_threshold("clip_value", c);
    return make_transform<value_clip>(c);
}
backward_plan clip_state_gradient(double c) {
    require_threshold("clip_state_gradient", c);
    return make_transform<state_clip>(c);
}
backward_plan record_gradient_flow(gradient_flow& out) { return make_transform<flow_record>(out); }
backward_plan checkpoint_bptt(std::size_t segment) {
    if (segment == 0) throw value_error("checkpoint_bptt: expected at least 1 step per segment");
    return make_transform<checkpointing>(segment);
}

backward_plan operator|(backward_plan a, const backward_plan& b) {
    for (const auto& x : b.steps_) {
        if (x->checkpoint_segment())
            for (const auto& y : a.steps_)
                if (y->checkpoint_segment())
                    throw value_error("backward plan: " + y->name() + " | " + x->name() + ": checkpointing set twice");
        if (x->windows().first)
            for (const auto& y : a.steps_)
                if (y->windows().first)
                    throw value_error("backward plan: " + y->name() + " | " + x->name() +
                                      ": two transforms partition the graph into windows (at most one may)");
        a.steps_.push_back(x);
    }
    return a;
}

clip_result clip_by_global_norm(std::span<const gradient_ref> grads, double max_norm, const char* who) {
    require_threshold(who, max_norm);
    // One partial sum per buffer (in parallel when they are large), then the partials in order:
    // the same bits for any thread count.
    std::size_t total = 0;
    for (const auto& g : grads) total += g.size;
    std::vector<double> partial(grads.size(), 0.0);
    auto one = [&](std::size_t k) { partial[k] = squared_norm(grads[k]); };
    detail::parallel_for_entries(grads.size(), total, one);
    double sq = 0;
    for (double v : partial) sq += v;
    clip_result r;
    r.norm = std::sqrt(sq);
    double scale = max_norm / (r.norm + 1e-6);
    if (std::isinf(sq)) {
        // Finite double gradients above 1.3e154 square past double's range: their norm is summed
        // again over g / m, m = max |g| (terms in [0, 1]), and clips as its exact value would. It
        // reads inf only when the norm itself is beyond double's range.
        double m = 0;
        bool finite = true;
        for (const auto& g : grads)
            g.visit([&](auto span) {
                for (const auto v : span) {
                    finite = finite && std::isfinite(v);
                    m = std::max(m, std::abs(double(v)));
                }
            });
        if (!finite) return r;  // an inf or NaN gradient: left as it is
        double sq_m = 0;
        for (const auto& g : grads) sq_m += squared_norm_over(g, m);
        const double root = std::sqrt(sq_m);  // the norm over m, at least 1
        r.norm = m * root;
        if (!(root > max_norm / m)) return r;
        scale = max_norm / m / root;
    } else if (!(r.norm > max_norm) || !std::isfinite(r.norm)) return r;
    auto apply = [&](std::size_t k) {
        grads[k].visit([scale](auto span) {
            using T = typename decltype(span)::value_type;
            const T s = static_cast<T>(scale);
            for (auto& v : span) v *= s;
        });
    };
    detail::parallel_for_entries(grads.size(), total, apply);
    r.clipped = true;
    return r;
}

bool clip_by_value(std::span<const gradient_ref> grads, double c, const char* who) {
    require_threshold(who, c);
    bool changed = false;
    for (const auto& g : grads)
        g.visit([&](auto span) {
            using T = typename decltype(span)::value_type;
            const T hi = static_cast<T>(c), lo = -hi;
            for (auto& v : span) {
                if (v > hi) {
                    v = hi;
                    changed = true;
                } else if (v < lo) {
                    v = lo;
                    changed = true;
                }
            }
        });
    return changed;
}

}  // namespace seqgrad
