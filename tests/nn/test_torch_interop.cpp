// LSTM and GRU weights exported from PyTorch (tests/nn/torch_export.py, run with Debian's
// python3-torch) load into seqgrad's cells by name and give PyTorch's outputs and gradients
// (weights, inputs, initial states) within 1e-5 in float32. Skipped when torch is absent.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>

#include <unistd.h>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/seqgrad.hpp>
#include <xtensor/xview.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

namespace {

bool have_torch() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

// |a - b| <= 1e-5 * max(1, |b|) for every entry.
void expect_close(const A& got, const A& want, const std::string& what) {
    BOOST_TEST_REQUIRE(got.shape() == want.shape(), what << ": shape");
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(got.data()[i] - want.data()[i]) / std::max(1.0, std::abs(want.data()[i])));
    BOOST_TEST(worst <= 1e-5, what << ": worst scaled difference " << worst);
}

std::map<std::string, A> export_from_torch() {
    const auto dir = std::filesystem::temp_directory_path() / ("seqgrad_torch_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = (dir / "rnn.npz").string();
    const std::string cmd = "/usr/bin/python3 " SEQGRAD_SOURCE_DIR "/tests/nn/torch_export.py " + file;
    BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "torch_export.py failed");
    auto arrays = sg::read_npz(file);
    std::filesystem::remove_all(dir);
    return arrays;
}

// Runs a cell over x from the exported weights and compares outputs and gradients.
template <class Cell, class MakeState>
void compare(const std::string& name, std::map<std::string, A>& ref, MakeState make_state) {
    sg::parameter_store weights, inputs;
    Cell cell(sg::parameter_scope(weights, name), ref["x"].shape()[2], ref[name + ".h0"].shape()[1]);
    for (const char* p : {"w_ih", "w_hh", "b_ih", "b_hh"}) weights.get(name + "." + p).assign(ref[name + "." + p]);
    const std::size_t T = ref["x"].shape()[0];
    std::vector<sg::parameter> xs;
    for (std::size_t t = 0; t < T; ++t) xs.push_back(inputs.add("x" + std::to_string(t), A(xt::view(ref["x"], t))));
    auto h0 = inputs.add("h0", ref[name + ".h0"]);
    sg::parameter c0;
    if (ref.count(name + ".c0")) c0 = inputs.add("c0", ref[name + ".c0"]);

    sg::tape t;  // float32, as PyTorch ran
    std::vector<sg::expr> xe;
    for (auto& p : xs) xe.push_back(t.param(p));
    auto states = nn::unroll(t, cell, std::span<const sg::expr>(xe), make_state(t, h0, c0));
    sg::expr loss = t.constant(0.0);
    for (std::size_t s = 0; s < T; ++s) {
        expect_close(t.value(nn::hidden(states[s])), A(xt::view(ref[name + ".y"], s)), name + " output at step " + std::to_string(s));
        loss = loss + sg::sum(nn::hidden(states[s]) * t.input(A(xt::view(ref["r"], s))));
    }
    t.backward(loss);
    for (const char* p : {"w_ih", "w_hh", "b_ih", "b_hh"})
        expect_close(weights.get(name + "." + p).grad_as_double(), ref[name + ".grad." + p], name + " grad " + p);
    for (std::size_t s = 0; s < T; ++s)
        expect_close(xs[s].grad_as_double(), A(xt::view(ref[name + ".grad.x"], s)), name + " grad x" + std::to_string(s));
    expect_close(h0.grad_as_double(), ref[name + ".grad.h0"], name + " grad h0");
    if (c0.valid()) expect_close(c0.grad_as_double(), ref[name + ".grad.c0"], name + " grad c0");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_interop)

BOOST_AUTO_TEST_CASE(lstm_and_gru_match_pytorch) {
    if (!have_torch()) {
        BOOST_TEST_MESSAGE("skipped: python3-torch is not installed (/usr/bin/python3 -c 'import torch' failed)");
        return;
    }
    auto ref = export_from_torch();
    compare<nn::lstm_cell>("lstm", ref, [](sg::tape& t, const sg::parameter& h0, const sg::parameter& c0) {
        return nn::lstm_state{t.param(h0), t.param(c0)};
    });
    compare<nn::gru_cell>("gru", ref, [](sg::tape& t, const sg::parameter& h0, const sg::parameter&) { return t.param(h0); });
}

BOOST_AUTO_TEST_SUITE_END()
