#include "gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <numeric>
#include <ostream>
#include <random>
#include <sstream>

namespace seqgrad {
namespace {

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
    store_guard guard(stores);
    std::vector<parameter> params;
    for (auto* s : stores)
        for (auto& p : s->parameters())
            if (p.trainable()) params.push_back(p);

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
            v.data()[i] = x + opts.eps;
            const double fp = evaluate();
            v.data()[i] = x - opts.eps;
            const double fm = evaluate();
            v.data()[i] = x;
            gradcheck_entry e;
            e.tensor = p.name();
            e.index = unravel(i, p.shape());
            e.numeric = (fp - fm) / (2 * opts.eps);
            e.analytic = grads[pi].data()[i];
            e.abs_err = std::abs(e.analytic - e.numeric);
            e.rel_err = e.abs_err / std::max({std::abs(e.analytic), std::abs(e.numeric), 1e-300});
            e.passed = e.abs_err <= opts.atol + opts.rtol * std::abs(e.numeric);
            diff2 += e.abs_err * e.abs_err;
            sum2 += (e.analytic + e.numeric) * (e.analytic + e.numeric);
            ++tr.checked;
            tr.failed += !e.passed;
            tr.max_abs_err = std::max(tr.max_abs_err, e.abs_err);
            if (e.abs_err > opts.atol) tr.max_rel_err = std::max(tr.max_rel_err, e.rel_err);
            entries.push_back(std::move(e));
        }
        r.checked += tr.checked;
        r.failed += tr.failed;
        r.max_abs_err = std::max(r.max_abs_err, tr.max_abs_err);
        r.max_rel_err = std::max(r.max_rel_err, tr.max_rel_err);
        r.tensors.push_back(tr);
    }
    r.global_rel_err = sum2 > 0 ? std::sqrt(diff2 / sum2) : std::sqrt(diff2);
    auto excess = [&](const gradcheck_entry& e) { return e.abs_err - (opts.atol + opts.rtol * std::abs(e.numeric)); };
    std::sort(entries.begin(), entries.end(), [&](auto& a, auto& b) { return excess(a) > excess(b); });
    if (entries.size() > opts.worst) entries.resize(opts.worst);
    r.worst = std::move(entries);
    r.passed = r.failed == 0 && r.deterministic;
    return r;
}

gradcheck_report gradcheck(parameter_store& store, const std::function<expr(tape&)>& loss,
                           const gradcheck_options& opts) {
    parameter_store* s[] = {&store};
    return gradcheck(std::span<parameter_store* const>(s, 1), loss, opts);
}

std::ostream& operator<<(std::ostream& os, const gradcheck_report& r) {
    std::ostringstream o;
    o << std::setprecision(3);
    o << "gradcheck: " << (r.passed ? "PASS" : "FAIL") << "  (" << r.checked << " entries, " << r.failed
      << " failed, loss " << std::setprecision(8) << r.loss << std::setprecision(3) << ")\n";
    o << "  " << std::left << std::setw(28) << "tensor" << std::setw(14) << "shape" << std::setw(9) << "checked"
      << std::setw(12) << "max abs" << std::setw(12) << "max rel" << "\n";
    for (const auto& t : r.tensors)
        o << "  " << std::setw(28) << t.name << std::setw(14) << t.shape.str() << std::setw(9) << t.checked
          << std::setw(12) << t.max_abs_err << std::setw(12) << t.max_rel_err << (t.failed ? "FAIL" : "ok") << "\n";
    o << "  global relative error " << r.global_rel_err << ", backward "
      << (r.deterministic ? "deterministic" : "NOT deterministic (two runs differ)") << "\n";
    if (!r.worst.empty()) {
        o << "  worst entries (analytic vs numeric):\n";
        for (const auto& e : r.worst)
            o << "    " << e.tensor << index_str(e.index) << ": " << std::setprecision(10) << e.analytic << " vs "
              << e.numeric << std::setprecision(3) << "  abs " << e.abs_err << (e.passed ? "" : "  FAIL") << "\n";
    }
    return os << o.str();
}

}  // namespace seqgrad
