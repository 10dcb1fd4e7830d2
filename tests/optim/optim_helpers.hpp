#pragma once
// Helpers shared by the optimiser, schedule and clipping tests.
#include <string>
#include <vector>

#include "optim/optim.hpp"

namespace seqgrad_test {

inline void set_grad(const seqgrad::parameter& p, const xt::xarray<double>& g) {
    if (p.scalar_type() == seqgrad::dtype::f64) p.grad<double>() = g;
    else p.grad<float>() = xt::cast<float>(g);
}

// True if f throws value_error whose message contains every one of `parts`.
template <class F>
bool throws_value_error(F&& f, std::vector<std::string> parts = {}) {
    try {
        f();
    } catch (const seqgrad::value_error& e) {
        const std::string m = e.what();
        for (auto& p : parts)
            if (m.find(p) == std::string::npos) return false;
        return true;
    }
    return false;
}

}  // namespace seqgrad_test
