// The executor with several threads each training a tape of their own: every thread's result must
// be bitwise the one the same training gives alone, while their backward passes open parallel
// regions (truncation windows) concurrently and share the BLAS thread count.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>
#include <thread>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
using A = xt::xarray<double>;

namespace {

// A tanh RNN trained for a few SGD steps with truncate_bptt(4) (three windows: a parallel region
// per backward when the executor has 2 threads). Returns the final parameters.
std::vector<A> train(unsigned seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> d(0.0, 0.5);
    auto random = [&](std::vector<std::size_t> s) {
        A a = xt::zeros<double>(s);
        for (auto& v : a) v = d(rng);
        return a;
    };
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", random({6, 16})), u = ps.add("u", random({16, 16})), b = ps.add("b", random({16}));
    std::vector<A> xs, rs;
    for (int k = 0; k < 12; ++k) {
        xs.push_back(random({8, 6}));
        rs.push_back(random({8, 16}));
    }
    sg::optim::sgd opt(ps, 0.05);
    for (int step = 0; step < 15; ++step) {
        sg::tape t(sg::dtype::f64);
        sg::expr h = t.constant(0.0, {8, 16}), loss = t.constant(0.0);
        for (int k = 0; k < 12; ++k) {
            sg::expr term;
            {
                sg::step_scope s(t, k, k - 1);
                h = sg::tanh(sg::matmul(t.input(xs[k]), t.param(w)) + sg::matmul(h, t.param(u)) + t.param(b));
                term = sg::sum(h * t.input(rs[k]));
            }
            loss = loss + term;
        }
        t.backward(loss, sg::truncate_bptt(4));
        opt.step();
    }
    return {w.value<double>(), u.value<double>(), b.value<double>()};
}

bool bitwise(const std::vector<A>& a, const std::vector<A>& b) {
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].size() != b[i].size() || std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(double)) != 0)
            return false;
    return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(executor)

BOOST_AUTO_TEST_CASE(four_threads_each_training_a_tape_match_their_serial_runs) {
    sg::set_num_threads(2);
    std::vector<std::vector<A>> alone;
    for (unsigned s = 0; s < 4; ++s) alone.push_back(train(s + 1));
    for (int round = 0; round < 3; ++round) {
        std::vector<std::vector<A>> together(4);
        std::vector<std::thread> threads;
        for (unsigned s = 0; s < 4; ++s) threads.emplace_back([&, s] { together[s] = train(s + 1); });
        for (auto& th : threads) th.join();
        for (unsigned s = 0; s < 4; ++s)
            BOOST_TEST(bitwise(together[s], alone[s]), "thread " << s << ", round " << round);
    }
    BOOST_TEST(sg::blas_threads() >= 1);
}

BOOST_AUTO_TEST_CASE(parallel_for_runs_inline_when_there_is_nothing_to_share) {
    sg::set_num_threads(2);
    std::vector<int> hit(5, 0);
    const auto caller = std::this_thread::get_id();
    bool inline_only = true;
    BOOST_TEST(!sg::detail::parallel_for(1, [&](std::size_t i) {
        hit[i]++;
        inline_only = inline_only && std::this_thread::get_id() == caller;
    }));
    BOOST_TEST(inline_only);
    BOOST_TEST(sg::detail::parallel_for(5, [&](std::size_t i) { hit[i]++; }));
    sg::set_num_threads(1);
    BOOST_TEST(!sg::detail::parallel_for(5, [&](std::size_t i) { hit[i]++; }));
    BOOST_TEST(hit == std::vector<int>({3, 2, 2, 2, 2}));
    sg::set_num_threads(2);
}

BOOST_AUTO_TEST_SUITE_END()
