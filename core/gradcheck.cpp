#include "gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <limits>
#include <numeric>
#include <ostream>
#include <random>
#include <sstream>

namespace seqgrad {
namespace {

// The larger error, NaN if either is (std::max keeps its first argument against a NaN: a report
// of a NaN gradient read "max abs 0").
double worse(double a, double b) {
    return std::isnan(a) || std::isnan(b) ? std::numeric_limits<double>::quiet_NaN() : std::max(a, b);
}

// Switches stores to double for the check and puts values, gradients and dtype back afterwards,
// also when the loss function throws.
class store_guard {
public:
    explicit store_guard(std::span<parameter_store* const> stores) : stores_(stores.begin(), stores.end()) {
        for (auto* s : stores_) {
            saved_.push_back({s->scalar_type(), {}});
            for (auto& p : s->parameters()) saved_.back().grads.push_back(p.grad_as_double());
            s->to(dtype::f64);
        }
    }
    ~store_guard() {
        for (std::size_t i = 0; i < stores_.size(); ++i) {
            auto* s = stores_[i];
            s->to(saved_[i].dt);
            auto ps = s->parameters();
            for (std::size_t j = 0; j < ps.size(); ++j) {
                if (saved_[i].dt == dtype::f64) ps[j].grad<double>() = saved_[i].grads[j];
                else ps[j].grad<float>() = xt::cast<float>(saved_[i].grads[j]);
            }
        }
    }

private:
    struct saved {
        dtype dt;
        std::vector<xt::xarray<double>> grads;
    };
    std::vector<parameter_store*> stores_;
    std::vector<saved> saved_;
};

// Puts a perturbed entry back, also when the loss function throws on the perturbed value.
struct entry_guard {
    parameter& p;
    double* at;
    double x;
    ~entry_guard() {
        *at = x;
        p.mark_modified();
    }
};

std::vector<std::size_t> unravel(std::size_t flat, const shape& s) {
    std::vector<std::size_t> idx(s.rank());
    for (std::size_t k = s.rank(); k-- > 0;) {
        idx[k] = flat % s[k];
        flat /= s[k];
    }
    return idx;
}

std::string index_str(const std::vector<std::size_t>& idx) {
    std::string s = "[";
    for (std::size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
    return s + "]";
}

}  // namespace

gradcheck_report gradcheck(std::span<parameter_store* const> stores, const std::function<expr(tape&)>& loss,
                           const gradcheck_options& opts) {
    if (!(opts.eps > 0) || !std::isfinite(opts.eps) || !(opts.atol >= 0) || !(opts.rtol >= 0))
        throw value_error("gradcheck: eps " + detail::number(opts.eps) + ", atol " + detail::number(opts.atol) +
                          ", rtol " + detail::number(opts.rtol) + " (expected a finite eps > 0 and tolerances >= 0)");
    for (std::size_t k = 0; k < stores.size(); ++k)
        if (!stores[k])
            throw value_error("gradcheck: store " + std::to_string(k) + " of " + std::to_string(stores.size()) +
                              " is a null pointer (expected a parameter_store)");
    std::vector<parameter> params;
    std::size_t entries_to_check = 0;
    for (auto* s : stores)
        for (auto& p : s->parameters())
            if (p.trainable()) params.push_back(p), entries_to_check += p.size();
    // A PASS over zero entries would vouch for nothing.
    if (entries_to_check == 0)
        throw value_error("gradcheck: nothing to check (" + std::to_string(params.size()) +
                          " trainable parameters with 0 entries in all); give it a store whose trainable "
                          "parameters the loss depends on");
    store_guard guard(stores);

    tape t(dtype::f64);
    auto evaluate = [&]() {
        t.clear();
        expr e = loss(t);
        if (e.shape().size() != 1)
            throw graph_error("gradcheck: the loss function returned " + t.describe(e.id()) + " of shape " +
                              e.shape().str() + " (expected a one-element loss)");
        return t.item(e);
    };
    auto analytic = [&]() {
        for (auto* s : stores) s->zero_grad();
        t.clear();
        expr e = loss(t);
        t.backward(e);
        std::vector<xt::xarray<double>> g;
        for (auto& p : params) g.push_back(p.grad<double>());
        return std::pair{t.item(e), g};
    };

    gradcheck_report r;
    auto [loss0, grads] = analytic();
    auto [loss1, grads2] = analytic();
    r.loss = loss0;
    for (std::size_t i = 0; i < grads.size(); ++i)
        r.deterministic = r.deterministic &&
                          std::memcmp(grads[i].data(), grads2[i].data(), grads[i].size() * sizeof(double)) == 0;
    r.deterministic = r.deterministic && std::memcmp(&loss0, &loss1, sizeof(double)) == 0;

    std::mt19937_64 rng(opts.seed);
    double diff2 = 0, sum2 = 0;
    bool any_above_atol = false;
    std::vector<gradcheck_entry> entries;
    for (std::size_t pi = 0; pi < params.size(); ++pi) {
        parameter& p = params[pi];
        auto& v = p.value<double>();
        const std::size_t n = v.size();
        std::vector<std::size_t> idx(n);
        std::iota(idx.begin(), idx.end(), 0);
        if (opts.max_entries_per_tensor && n > opts.max_entries_per_tensor) {
            std::shuffle(idx.begin(), idx.end(), rng);
            idx.resize(opts.max_entries_per_tensor);
            std::sort(idx.begin(), idx.end());
        }
        gradcheck_tensor tr{p.name(), p.shape(), 0, 0, 0, 0};
        for (std::size_t i : idx) {
            const double x = v.data()[i];
            // The step grows with |x| above 1 and the difference is divided by the step taken: x + 1e-6
            // rounds to x from |x| ~ 1e10 (a numeric gradient of 0), and inexactly well before.
            const double h = opts.eps * std::max(1.0, std::abs(x)), xp = x + h, xm = x - h;
            double fp = 0, fm = 0;
            {
                const entry_guard restore{p, v.data() + i, x};
                v.data()[i] = xp;
                p.mark_modified();
                fp = evaluate();
                v.data()[i] = xm;
                p.mark_modified();
                fm = evaluate();
            }
            gradcheck_entry e;
            e.tensor = p.name();
            e.index = unravel(i, p.shape());
            e.numeric = (fp - fm) / (xp - xm);
            e.analytic = grads[pi].data()[i];
            e.abs_err = std::abs(e.analytic - e.numeric);
            e.rel_err = e.abs_err / std::max({std::abs(e.analytic), std::abs(e.numeric), 1e-300});
            e.passed = e.abs_err <= opts.atol + opts.rtol * std::abs(e.numeric);
            diff2 += e.abs_err * e.abs_err;
            sum2 += (e.analytic + e.numeric) * (e.analytic + e.numeric);
            ++tr.checked;
            tr.failed += !e.passed;
            tr.max_abs_err = worse(tr.max_abs_err, e.abs_err);
            // Relative error only where the gradient is not itself below the absolute tolerance.
            const bool above = !(std::max(std::abs(e.analytic), std::abs(e.numeric)) <= opts.atol);
            any_above_atol = any_above_atol || above;
            if (above) tr.max_rel_err = worse(tr.max_rel_err, e.rel_err);
            entries.push_back(std::move(e));
        }
        r.checked += tr.checked;
        r.failed += tr.failed;
        r.max_abs_err = worse(r.max_abs_err, tr.max_abs_err);
        r.max_rel_err = worse(r.max_rel_err, tr.max_rel_err);
        r.tensors.push_back(tr);
    }
    r.global_rel_err = sum2 > 0 ? std::sqrt(diff2 / sum2) : std::sqrt(diff2);
    // Every entry passing through atol alone while the two gradients disagree as a whole (a
    // gradient twice the true one, of a loss scaled by 1e-6) proves nothing: not a pass.
    r.inconclusive = !any_above_atol && !(r.global_rel_err <= opts.rtol);
    // Failures: the largest violations of the tolerance. A pass: the largest errors, so the report
    // shows how close it came; exact entries (often 0 vs 0) say nothing and are left out.
    auto excess = [&](const gradcheck_entry& e) {  // NaN first (a strict weak order)
        const double x = e.abs_err - (opts.atol + opts.rtol * std::abs(e.numeric));
        return std::isnan(x) ? std::numeric_limits<double>::infinity() : x;
    };
    if (r.failed) {
        std::erase_if(entries, [](const gradcheck_entry& e) { return e.passed; });
        std::stable_sort(entries.begin(), entries.end(), [&](auto& a, auto& b) { return excess(a) > excess(b); });
    } else {
        std::erase_if(entries, [](const gradcheck_entry& e) { return e.abs_err == 0; });
        std::stable_sort(entries.begin(), entries.end(), [](auto& a, auto& b) { return a.abs_err > b.abs_err; });
    }
    if (entries.size() > opts.worst) entries.resize(opts.worst);
    r.worst = std::move(entries);
    r.passed = r.failed == 0 && r.deterministic && !r.inconclusive;
    return r;
}

gradcheck_report gradcheck(parameter_store& store, const std::function<expr(tape&)>& loss,
                           const gradcheck_options& opts) {
    parameter_store* s[] = {&store};
    return gradcheck(std::span<parameter_store* const>(s, 1), loss, opts);
}

namespace {
xt::xarray<double> sample_values(const shape& s, domain d, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    xt::xarray<double> v = xt::zeros<double>(s.to_vector());
    for (auto& x : v) {
        x = u(rng);
        if (d == domain::positive) x = 0.5 + std::abs(x) * 1.5;
        if (d == domain::away_from_zero) x = (x < 0 ? -0.2 : 0.2) + x * 0.8;
    }
    return v;
}
}  // namespace

// Float kernels' gradients against the double kernels', relative to 1 + the largest: float
// rounding over a sample's few entries stays near 1e-6; a wrong float path is off by O(1).
constexpr double float_kernel_tol = 1e-4;

op_check gradcheck_op(const op_def& op, const gradcheck_options& opts, std::uint64_t seed) {
    op_check r;
    r.op = op.name;
    r.samples = op.samples.size();
    r.how = op.constant_output                              ? "constant output"
            : op.differentiable()                           ? "gradcheck"
            : op.gradient == gradient_kind::not_implemented ? "gradient not implemented: backward throws"
                                                            : "no gradient: backward throws";
    if (op.samples.empty()) {
        r.passed = false;
        r.how = "no samples: add .sample(...) to its registration";
        return r;
    }
    std::mt19937_64 rng(seed);
    for (const op_sample& s : op.samples) {
        parameter_store inputs(dtype::f64);
        std::vector<parameter> ps;
        for (std::size_t i = 0; i < s.inputs.size(); ++i)
            ps.push_back(
                inputs.add("x" + std::to_string(i),
                           sample_values(s.inputs[i], i < s.domains.size() ? s.domains[i] : domain::any, rng)));
        attrs at = s.at;
        at.ints = s.ints;
        xt::xarray<double> weights;
        // Random weights make every output entry matter (sum(softmax(x)) alone is constant).
        auto loss_of = [&](tape& t, const std::vector<parameter>& in) {
            // The inputs through -(-x), a value the tape may release, poisoned when released: a
            // backward reading what its saves() declaration leaves out then sees NaN and fails
            // here (from parameter leaves, never released, it passed, then crashed in a model).
            t.set_poison_released(true);
            std::vector<expr> xs;
            for (auto& p : in) xs.push_back(t.apply(find_op("neg"), {t.apply(find_op("neg"), {t.param(p)})}));
            expr y = t.apply(op, xs, at);
            if (weights.size() != y.shape().size()) weights = sample_values(y.shape(), domain::any, rng);
            return t.apply(find_op("sum"), {t.apply(find_op("mul"), {y, t.input(weights)})});
        };
        auto loss = [&](tape& t) { return loss_of(t, ps); };
        if (op.constant_output || !op.differentiable()) {
            tape t(dtype::f64);
            expr l = loss(t);
            bool threw = false;
            try {
                t.backward(l);
            } catch (const graph_error&) {
                threw = true;
            }
            bool zero = true;
            for (auto& p : ps) zero = zero && xt::all(xt::equal(p.grad<double>(), 0.0));
            if (op.constant_output ? (threw || !zero) : !threw) {
                r.passed = false;
                r.how = op.constant_output ? "constant output passed a gradient"
                                           : "no gradient, but backward did not throw";
            }
            r.reports.emplace_back();
            continue;
        }
        r.reports.push_back(gradcheck(inputs, loss, opts));
        const auto& g = r.reports.back();
        r.passed = r.passed && g.passed;
        r.max_abs_err = worse(r.max_abs_err, g.max_abs_err);
        r.max_rel_err = worse(r.max_rel_err, g.max_rel_err);
        // The float kernels (what training runs; gradcheck runs the double ones) against the
        // double ones on the same float-rounded inputs and weights.
        std::vector<xt::xarray<double>> by_type[2];
        weights = xt::cast<double>(xt::cast<float>(weights));
        for (const dtype dt : {dtype::f64, dtype::f32}) {
            parameter_store st(dt);
            std::vector<parameter> qs;
            for (std::size_t i = 0; i < ps.size(); ++i)
                qs.push_back(
                    st.add(ps[i].name(), xt::xarray<double>(xt::cast<double>(xt::cast<float>(ps[i].value<double>())))));
            tape t(dt);
            t.backward(loss_of(t, qs));
            for (auto& q : qs) by_type[dt == dtype::f32].push_back(q.grad_as_double());
        }
        for (std::size_t i = 0; i < ps.size(); ++i) {
            const double scale = 1 + xt::amax(xt::abs(by_type[0][i]))(),
                         err = xt::amax(xt::abs(by_type[1][i] - by_type[0][i]))();
            if (!(err <= float_kernel_tol * scale)) {
                r.passed = false;
                r.how = "float kernel: gradient of input " + std::to_string(i) +
                        " differs from the double kernel's by " + detail::number(err) + " (scale " +
                        detail::number(scale) + ")";
            }
        }
    }
    return r;
}

std::ostream& operator<<(std::ostream& os, const gradcheck_report& r) {
    std::ostringstream o;
    o << std::setprecision(3);
    o << "gradcheck: " << (r.passed ? "PASS" : "FAIL") << "  (" << r.checked << " entries, " << r.failed
      << " failed, loss " << std::setprecision(8) << r.loss << std::setprecision(3) << ")\n";
    o << "  " << std::left << std::setw(28) << "tensor" << std::setw(14) << "shape" << std::setw(9) << "checked"
      << std::setw(12) << "max abs" << std::setw(12) << "max rel"
      << "\n";
    for (const auto& t : r.tensors)
        o << "  " << std::setw(28) << t.name << std::setw(14) << t.shape.str() << std::setw(9) << t.checked
          << std::setw(12) << t.max_abs_err << std::setw(12) << t.max_rel_err << (t.failed ? "FAIL" : "ok") << "\n";
    o << "  global relative error " << r.global_rel_err << ", backward "
      << (r.deterministic ? "deterministic" : "NOT deterministic (two runs differ)") << "\n";
    if (r.inconclusive)
        o << "  INCONCLUSIVE: every gradient is within atol of 0, so each entry passed through atol alone, while "
             "the global relative error exceeds rtol; scale the loss up or lower atol\n";
    if (!r.worst.empty()) {
        o << (r.failed ? "  failed entries, worst first" : "  largest errors") << " (analytic vs numeric):\n";
        for (const auto& e : r.worst)
            o << "    " << e.tensor << index_str(e.index) << ": " << std::setprecision(10) << e.analytic << " vs "
              << e.numeric << std::setprecision(3) << "  abs " << e.abs_err << (e.passed ? "" : "  FAIL") << "\n";
    }
    return os << o.str();
}

}  // namespace seqgrad
