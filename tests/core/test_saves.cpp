// saves made real: values no backward reads are released and their memory reused; reading one
// again recomputes it; gradients do not change. And the accumulate contract: ops write plain
// contributions, only ops that declare .accumulates() may read accumulate().
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

namespace {
// h_{s+1} = tanh(h_s w + b) over `steps` steps; matmul's and add's outputs are read by ops that do
// not save their inputs (add, tanh saves its output), so only the h's are needed by backward.
struct chain {
    sg::parameter_store ps{sg::dtype::f32};
    sg::parameter w, b;
    chain(std::size_t hidden) {
        xt::xarray<float> wv = xt::zeros<float>({hidden, hidden});
        for (std::size_t i = 0; i < wv.size(); ++i) wv.data()[i] = 0.5f * std::sin(0.37f * static_cast<float>(i));
        w = ps.add("w", wv / std::sqrt(static_cast<float>(hidden)));
        b = ps.add("b", xt::xarray<float>(xt::ones<float>({hidden}) * 0.1f));
    }
    sg::expr run(sg::tape& t, std::size_t batch, std::size_t steps, std::vector<sg::expr>* pre = nullptr) {
        auto h = t.input(xt::xarray<float>(xt::ones<float>({batch, w.shape()[0]}) * 0.3f));
        sg::expr loss;
        for (std::size_t s = 0; s < steps; ++s) {
            sg::step_scope scope(t, static_cast<int>(s), s ? static_cast<int>(s) - 1 : -1);
            auto p = sg::matmul(h, t.param(w));
            if (pre) pre->push_back(p);
            h = sg::tanh(p + t.param(b));
        }
        return sg::sum(sg::square(h));
    }
};

std::size_t value_bytes(const sg::tape& t) {
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < t.size(); ++i) n += t.node_at(i).shp.size() * sizeof(float);
    return n;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(saves_release)

BOOST_AUTO_TEST_CASE(unsaved_values_are_released_and_reused_with_bitwise_equal_gradients) {
    chain m(128);
    std::vector<xt::xarray<float>> grads;
    std::size_t reserved[2] = {0, 0}, released[2] = {0, 0}, total = 0;
    for (bool on : {false, true}) {
        sg::tape t;
        t.set_release_unsaved(on);
        m.ps.zero_grad();
        auto loss = m.run(t, 16, 200);
        reserved[on] = t.bytes_reserved();  // values only: no gradient yet
        released[on] = t.values_released();
        total = value_bytes(t);
        t.backward(loss);
        grads.push_back(m.w.grad<float>());
        grads.push_back(m.b.grad<float>());
        BOOST_TEST(t.values_recomputed() == 0u);
    }
    BOOST_TEST(released[0] == 0u);
    BOOST_TEST(released[1] >= 2u * 197u);         // matmul and add of every step but the last two
    BOOST_TEST(total > std::size_t(4800) << 10);  // 600 values of 16 x 128 floats, and a few more
    BOOST_TEST(reserved[0] >= total);
    BOOST_TEST(reserved[1] * 2 < reserved[0], "with " << reserved[1] << " without " << reserved[0]);
    BOOST_TEST(std::memcmp(grads[0].data(), grads[2].data(), grads[0].size() * sizeof(float)) == 0);
    BOOST_TEST(std::memcmp(grads[1].data(), grads[3].data(), grads[1].size() * sizeof(float)) == 0);
    BOOST_TEST(std::abs(grads[1](0)) > 1e-6);
}

BOOST_AUTO_TEST_CASE(a_released_value_read_again_is_recomputed_exactly) {
    chain m(64);  // [4, 64] floats: values under 1 KB are not worth releasing
    sg::tape t;
    std::vector<sg::expr> pre;
    m.run(t, 4, 6, &pre);
    // Nodes of step 0 read by later ops (a fresh consumer) or by value(): recomputed, same bits.
    sg::tape ref;
    ref.set_release_unsaved(false);
    std::vector<sg::expr> pre_ref;
    m.run(ref, 4, 6, &pre_ref);
    BOOST_TEST(t.values_released() > 0u);
    const auto before = t.values_recomputed();
    const xt::xarray<double> v = t.value(pre[0]);
    BOOST_TEST(t.values_recomputed() == before + 1);
    BOOST_TEST(v == ref.value(pre_ref[0]));
    const xt::xarray<double> twice = t.value(sg::mul_scalar(pre[1], 2.0));
    BOOST_TEST(twice == ref.value(pre_ref[1]) * 2.0);
}

BOOST_AUTO_TEST_CASE(a_released_value_cannot_be_recomputed_after_its_parameter_changed) {
    chain m(64);  // [4, 64] floats: values under 1 KB are not worth releasing
    sg::tape t;
    std::vector<sg::expr> pre;
    auto loss = m.run(t, 4, 6, &pre);
    t.backward(loss);
    m.w.mark_modified();  // an optimiser step
    try {
        t.value(pre[0]);
        BOOST_FAIL("expected graph_error");
    } catch (const sg::graph_error& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("released") != std::string::npos, what);
        BOOST_TEST(what.find("'w'") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the accumulate contract ---------------------------------------------------------------------

// y = 3 x, written through target() with overwrite semantics (no .accumulates()).
SEQGRAD_REGISTER_OP(test_triple) = sg::op_builder("test_triple")
                                       .shape(sg::same_shape)
                                       .saves(sg::saves::nothing)
                                       .forward([](auto& c) {
                                           auto x = c.in(0);
                                           auto y = c.out();
                                           for (std::size_t i = 0; i < y.size(); ++i) y[i] = 3 * x[i];
                                       })
                                       .backward([](auto& c) {
                                           auto t = c.target(0);
                                           auto g = c.grad_out();
                                           if (!t.data) return;
                                           for (std::size_t i = 0; i < t.size(); ++i) t[i] = 3 * g[i];
                                       })
                                       .sample({{2, 3}});

// The same op reading accumulate() without declaring .accumulates().
SEQGRAD_REGISTER_OP(test_undeclared) = sg::op_builder("test_undeclared")
                                           .shape(sg::same_shape)
                                           .saves(sg::saves::nothing)
                                           .forward([](auto& c) {
                                               for (std::size_t i = 0; i < c.out().size(); ++i) c.out()[i] = c.in(0)[i];
                                           })
                                           .backward([](auto& c) {
                                               auto t = c.target(0);
                                               auto g = c.grad_out();
                                               const bool acc = c.accumulate(0);
                                               for (std::size_t i = 0; i < t.size(); ++i)
                                                   t[i] = acc ? t[i] + g[i] : g[i];
                                           })
                                           .sample({{2}});

BOOST_AUTO_TEST_SUITE(accumulate_contract)

BOOST_AUTO_TEST_CASE(the_engine_adds_contributions_written_with_overwrite_semantics) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{1.0, -2.0}, true);
    // d/dx of sum(3x * 1) + sum(3x * 2) + sum(x * 5) = 3 + 6 + 5, whatever order the contributions come in.
    auto y = sg::sum(sg::apply(test_triple, {x})) + sg::sum(sg::apply(test_triple, {x}) * 2.0) + sg::sum(x * 5.0);
    t.backward(y);
    BOOST_TEST(t.grad(x)(0) == 14.0);
    BOOST_TEST(t.grad(x)(1) == 14.0);
    // A chain: b's gradient arrives from two consumers before test_triple writes a's.
    sg::tape u(sg::dtype::f64);
    auto a = u.input(xt::xarray<double>{0.5}, true);
    auto b = sg::apply(test_triple, {a});
    u.backward(sg::sum(b * b) + sg::sum(a));  // 9 a^2 + a: 18 a + 1
    BOOST_TEST(u.grad(a)(0) == 10.0);
}

BOOST_AUTO_TEST_CASE(an_op_reading_accumulate_without_declaring_it_is_refused) {
    BOOST_TEST(!test_undeclared.accumulates);
    BOOST_TEST(sg::find_op("matmul").accumulates);
    BOOST_TEST(!sg::find_op("mul").accumulates);
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{1.0, 2.0}, true);
    auto y = sg::sum(sg::apply(test_undeclared, {x}));
    try {
        t.backward(y);
        BOOST_FAIL("expected op_error");
    } catch (const sg::op_error& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("test_undeclared") != std::string::npos, what);
        BOOST_TEST(what.find(".accumulates()") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_SUITE_END()
