// Builds a graph with the installed library and checks one gradient by hand: d/dw sum(tanh(w x)).
#include <cmath>
#include <cstdio>

#include <seqgrad/seqgrad.hpp>

int main() {
    namespace sg = seqgrad;
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", xt::xarray<double>(xt::ones<double>({1, 1}) * 0.5));
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>(xt::ones<double>({1, 1}) * 2.0));
    t.backward(sg::sum(sg::tanh(sg::matmul(x, t.param(w)))));
    const double want = 2.0 * (1.0 - std::tanh(1.0) * std::tanh(1.0));
    const double got = w.grad<double>()(0, 0);
    std::printf("consumer: gradient %.12f, expected %.12f\n", got, want);
    return std::abs(got - want) < 1e-12 ? 0 : 1;
}
