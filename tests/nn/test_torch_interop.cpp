// A PyTorch state_dict (tests/nn/torch_export.py, run with Debian's python3-torch; PyTorch's own
// names, saved with numpy.savez) loads into seqgrad models with nn::load_torch_state: LSTM and GRU
// cells give PyTorch's outputs and gradients (weights, inputs, initial states) within 1e-5 in
// float32, and so do a 2-layer bidirectional LSTM, a 2-layer RNN, a Linear and an Embedding;
// save_torch_state writes a file PyTorch loads with strict=True. Name and shape errors are checked
// in test_torch_state.cpp without torch. Skipped when torch is absent.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/torch_state.hpp>
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

// Runs torch_export.py into a fresh directory: state.npz (a state_dict under PyTorch's names) and
// ref.npz (inputs, outputs, gradients).
struct exported {
    std::filesystem::path dir;
    std::map<std::string, A> ref;
    exported() {
        dir = std::filesystem::temp_directory_path() / ("seqgrad_torch_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        const std::string cmd = "/usr/bin/python3 " SEQGRAD_SOURCE_DIR "/tests/nn/torch_export.py export " +
                                dir.string();
        BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "torch_export.py failed");
        ref = sg::read_npz((dir / "ref.npz").string());
    }
    ~exported() { std::filesystem::remove_all(dir); }
    std::string state() const { return (dir / "state.npz").string(); }
};

constexpr std::size_t T = 5, I = 4, H = 6, V = 7;  // as torch_export.py (B = 3 comes with the data)

// The seqgrad twin of torch_export.py's Model, and the one mapping between them.
struct model {
    sg::parameter_store ps;
    nn::lstm_cell lstm{sg::parameter_scope(ps, "lstm"), I, H};
    nn::gru_cell gru{sg::parameter_scope(ps, "gru"), I, H};
    nn::lstm_cell bi0f{sg::parameter_scope(ps, "enc.l0.fwd"), I, H}, bi0b{sg::parameter_scope(ps, "enc.l0.bwd"), I, H};
    nn::lstm_cell bi1f{sg::parameter_scope(ps, "enc.l1.fwd"), 2 * H, H};
    nn::lstm_cell bi1b{sg::parameter_scope(ps, "enc.l1.bwd"), 2 * H, H};
    nn::stacked<nn::rnn_cell> rnn = nn::make_stacked<nn::rnn_cell>(sg::parameter_scope(ps, "rnn"), 2, I, H);
    nn::linear out{sg::parameter_scope(ps, "head"), 2 * H, 3};
    nn::embedding emb{sg::parameter_scope(ps, "emb"), V, I};
    std::vector<nn::torch_mapping> mapping = {{"lstm", "lstm", nn::torch_module::rnn_cell},
                                              {"gru", "gru", nn::torch_module::rnn_cell},
                                              {"bilstm", "enc", nn::torch_module::rnn_bidirectional},
                                              {"rnn", "rnn", nn::torch_module::rnn_stacked},
                                              {"out", "head", nn::torch_module::linear},
                                              {"emb", "emb", nn::torch_module::embedding}};
};

std::vector<sg::expr> steps_of(sg::tape& t, const A& x) {
    std::vector<sg::expr> xs;
    for (std::size_t s = 0; s < x.shape()[0]; ++s) xs.push_back(t.input(A(xt::view(x, s))));
    return xs;
}

// bilstm's output [T, B, 2H] as T exprs [B, 2H].
std::vector<sg::expr> run_bilstm(sg::tape& t, const model& m, const A& x) {
    const auto xs = steps_of(t, x);
    const auto l0 = nn::bidirectional<nn::lstm_cell>{m.bi0f, m.bi0b}(t, std::span<const sg::expr>(xs));
    return nn::bidirectional<nn::lstm_cell>{m.bi1f, m.bi1b}(t, std::span<const sg::expr>(l0.outputs)).outputs;
}

// Runs a cell over x from the loaded weights and compares outputs and gradients.
template <class Cell, class MakeState>
void compare(const std::string& name, const Cell& cell, model& m, std::map<std::string, A>& ref, MakeState make_state) {
    sg::parameter_store inputs;
    std::vector<sg::parameter> xs;
    for (std::size_t t = 0; t < T; ++t) xs.push_back(inputs.add("x" + std::to_string(t), A(xt::view(ref["x"], t))));
    auto h0 = inputs.add("h0", ref[name + ".h0"]);
    sg::parameter c0;
    if (ref.count(name + ".c0")) c0 = inputs.add("c0", ref[name + ".c0"]);

    m.ps.zero_grad();
    sg::tape t;  // float32, as PyTorch ran
    std::vector<sg::expr> xe;
    for (auto& p : xs) xe.push_back(t.param(p));
    auto states = nn::unroll(t, cell, std::span<const sg::expr>(xe), make_state(t, h0, c0));
    sg::expr loss = t.constant(0.0);
    for (std::size_t s = 0; s < T; ++s) {
        expect_close(t.value(nn::hidden(states[s])), A(xt::view(ref[name + ".y"], s)),
                     name + " output at step " + std::to_string(s));
        loss = loss + sg::sum(nn::hidden(states[s]) * t.input(A(xt::view(ref["r"], s))));
    }
    t.backward(loss);
    for (auto& [ours, theirs] : nn::torch_names(m.ps, m.mapping))
        if (ours.rfind(name + ".", 0) == 0)
            expect_close(m.ps.get(ours).grad_as_double(), ref["grad." + theirs], name + " grad " + ours);
    for (std::size_t s = 0; s < T; ++s)
        expect_close(xs[s].grad_as_double(), A(xt::view(ref[name + ".grad.x"], s)),
                     name + " grad x" + std::to_string(s));
    expect_close(h0.grad_as_double(), ref[name + ".grad.h0"], name + " grad h0");
    if (c0.valid()) expect_close(c0.grad_as_double(), ref[name + ".grad.c0"], name + " grad c0");
}

bool skip_without_torch() {
    if (have_torch()) return false;
    BOOST_TEST_MESSAGE("skipped: python3-torch is not installed (/usr/bin/python3 -c 'import torch' failed)");
    return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_interop)

BOOST_AUTO_TEST_CASE(a_pytorch_state_dict_loads_by_name_and_matches_pytorch) {
    if (skip_without_torch()) return;
    exported e;
    model m;
    const auto report = nn::load_torch_state(m.ps, e.state(), m.mapping);
    BOOST_TEST(report.loaded.size() == m.ps.size());
    compare("lstm", m.lstm, m, e.ref, [](sg::tape& t, const sg::parameter& h0, const sg::parameter& c0) {
        return nn::lstm_state{t.param(h0), t.param(c0)};
    });
    compare("gru", m.gru, m, e.ref,
            [](sg::tape& t, const sg::parameter& h0, const sg::parameter&) { return t.param(h0); });

    // Two layers, bidirectional: layer 1 reads the concatenated directions of layer 0.
    sg::tape t;
    const auto ys = run_bilstm(t, m, e.ref["x"]);
    for (std::size_t s = 0; s < T; ++s) {
        expect_close(t.value(ys[s]), A(xt::view(e.ref["bilstm.y"], s)), "bilstm output at step " + std::to_string(s));
        expect_close(t.value(m.out(ys[s])), A(xt::view(e.ref["out.y"], s)),
                     "linear output at step " + std::to_string(s));
    }
    // Two stacked tanh RNN layers.
    const auto xs = steps_of(t, e.ref["x"]);
    const auto h1 = nn::unroll(t, m.rnn.layers[0], std::span<const sg::expr>(xs));
    const auto h2 = nn::unroll(t, m.rnn.layers[1], std::span<const sg::expr>(h1));
    for (std::size_t s = 0; s < T; ++s)
        expect_close(t.value(h2[s]), A(xt::view(e.ref["rnn.y"], s)), "rnn output at step " + std::to_string(s));
    std::vector<int> ids;
    for (double id : e.ref["emb.ids"]) ids.push_back(static_cast<int>(id));
    expect_close(t.value(m.emb(t, ids)), e.ref["emb.y"], "embedding rows");
}

BOOST_AUTO_TEST_CASE(save_torch_state_loads_into_pytorch_strictly) {
    if (skip_without_torch()) return;
    exported e;
    model m;
    nn::load_torch_state(m.ps, e.state(), m.mapping);
    const std::string back = (e.dir / "back.npz").string();
    nn::save_torch_state(m.ps, back, m.mapping);
    // The same names and values as PyTorch's own file.
    const auto theirs = sg::read_npz(e.state()), ours = sg::read_npz(back);
    BOOST_TEST(ours.size() == theirs.size());
    for (auto& [k, v] : theirs) {
        BOOST_TEST_REQUIRE(ours.count(k) == 1u, k);
        BOOST_TEST((ours.at(k) == v), k);
    }
    // PyTorch's load_state_dict(strict=True) accepts it and computes the same bilstm output.
    const std::string cmd = "/usr/bin/python3 " SEQGRAD_SOURCE_DIR "/tests/nn/torch_export.py check " + back + " " +
                            e.dir.string() + " > " + (e.dir / "check.txt").string();
    BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "torch load_state_dict(strict=True) failed");
    std::ifstream in(e.dir / "check.txt");
    std::string label;
    double torch_sum = 0;
    in >> label >> torch_sum;
    BOOST_TEST(label == "bilstm_sum");
    sg::tape t;
    double ours_sum = 0;
    for (auto& y : run_bilstm(t, m, e.ref["x"])) ours_sum += t.item(sg::sum(y));
    BOOST_TEST(std::abs(ours_sum - torch_sum) < 1e-4 * std::max(1.0, std::abs(torch_sum)));
}

BOOST_AUTO_TEST_SUITE_END()
