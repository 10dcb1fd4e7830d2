// nn::torch_names / load_torch_state / save_torch_state without torch: the names per kind, a
// round trip, and every mismatch (name, shape, kind, dtype, nothing matched) as a clear error.
#include <boost/test/unit_test.hpp>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <string>

#include <seqgrad/nn/torch_state.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace fs = std::filesystem;
using A = xt::xarray<double>;

namespace {
struct tiny {
    sg::parameter_store ps;
    nn::gru_cell cell{sg::parameter_scope(ps, "dec"), 2, 3};
    nn::stacked<nn::lstm_cell> deep = nn::make_stacked<nn::lstm_cell>(sg::parameter_scope(ps, "deep"), 2, 2, 3);
    nn::lstm_cell f{sg::parameter_scope(ps, "enc.l0.fwd"), 2, 3}, b{sg::parameter_scope(ps, "enc.l0.bwd"), 2, 3};
    nn::linear out{sg::parameter_scope(ps, "out"), 3, 4};
    nn::embedding emb{sg::parameter_scope(ps, "emb"), 5, 2};
    std::vector<nn::torch_mapping> mapping = {{"decoder", "dec", nn::torch_module::rnn_cell},
                                              {"deep", "deep", nn::torch_module::rnn_stacked},
                                              {"encoder.rnn", "enc", nn::torch_module::rnn_bidirectional},
                                              {"proj", "out", nn::torch_module::linear},
                                              {"", "emb", nn::torch_module::embedding}};
};

std::string temp(const char* name) {
    return (fs::temp_directory_path() / ("seqgrad_torch_state_" + std::to_string(::getpid()) + "_" + name)).string();
}

template <class E, class F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
    try {
        f();
        BOOST_FAIL("expected an error mentioning '" + needles.front() + "'");
    } catch (const E& e) {
        const std::string msg = e.what();
        BOOST_TEST_INFO(msg);
        for (auto& n : needles) BOOST_TEST(msg.find(n) != std::string::npos, "'" << n << "' in " << msg);
    }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(torch_state)

BOOST_AUTO_TEST_CASE(names_follow_pytorch_per_kind) {
    tiny m;
    std::map<std::string, std::string> names;
    for (auto& [ours, theirs] : nn::torch_names(m.ps, m.mapping)) names[ours] = theirs;
    BOOST_TEST(names.size() == m.ps.size());
    BOOST_TEST(names["dec.w_ih"] == "decoder.weight_ih_l0");
    BOOST_TEST(names["dec.b_hh"] == "decoder.bias_hh_l0");
    BOOST_TEST(names["deep.l1.w_hh"] == "deep.weight_hh_l1");
    BOOST_TEST(names["enc.l0.fwd.b_ih"] == "encoder.rnn.bias_ih_l0");
    BOOST_TEST(names["enc.l0.bwd.w_ih"] == "encoder.rnn.weight_ih_l0_reverse");
    BOOST_TEST(names["out.weight"] == "proj.weight");
    BOOST_TEST(names["out.bias"] == "proj.bias");
    BOOST_TEST(names["emb.weight"] == "weight");
}

BOOST_AUTO_TEST_CASE(save_then_load_round_trips_under_torch_names) {
    tiny a, b;
    const auto path = temp("rt.npz");
    nn::save_torch_state(a.ps, path, a.mapping);
    const auto file = sg::read_npz(path);
    BOOST_TEST(file.count("encoder.rnn.weight_hh_l0_reverse") == 1u);
    BOOST_TEST(file.count("enc.l0.bwd.w_hh") == 0u);
    nn::load_torch_state(b.ps, path, b.mapping);  // b was initialised differently (other seeds? same names)
    for (std::size_t i = 0; i < a.ps.size(); ++i)
        BOOST_TEST((a.ps[i].value_as_double() == b.ps[i].value_as_double()), a.ps[i].name());
    fs::remove(path);
}

BOOST_AUTO_TEST_CASE(mismatches_are_clear_errors_and_change_nothing) {
    tiny m;
    const auto path = temp("bad.npz");
    std::map<std::string, A> good;
    for (auto& [ours, theirs] : nn::torch_names(m.ps, m.mapping)) good[theirs] = m.ps.get(ours).value_as_double() + 1.0;
    const auto before = m.ps.get("out.weight").value_as_double();

    auto bad_shape = good;
    bad_shape["proj.weight"] = xt::zeros<double>({3, 4});
    sg::write_npz(path, bad_shape);
    expect_error<sg::io_error>([&] { nn::load_torch_state(m.ps, path, m.mapping); },
                               {"member 'proj.weight' has shape [3, 4]", "parameter 'out.weight' has [4, 3]"});
    BOOST_TEST((m.ps.get("out.weight").value_as_double() == before));

    auto extra = good;
    extra["proj.weight_typo"] = A{1.0};
    sg::write_npz(path, extra);
    expect_error<sg::io_error>([&] { nn::load_torch_state(m.ps, path, m.mapping); },
                               {"'proj.weight_typo'", "map to no parameter"});
    auto r = nn::load_torch_state(m.ps, path, m.mapping, {.strict = false});
    BOOST_TEST(r.loaded.size() == m.ps.size());
    BOOST_TEST(r.ignored == std::vector<std::string>{"proj.weight_typo"});
    BOOST_TEST(xt::allclose(m.ps.get("out.weight").value_as_double(), before + 1.0, 1e-6, 1e-6));

    auto missing = good;
    missing.erase("encoder.rnn.bias_hh_l0_reverse");
    sg::write_npz(path, missing);
    expect_error<sg::io_error>([&] { nn::load_torch_state(m.ps, path, m.mapping); },
                               {"'enc.l0.bwd.b_hh (torch 'encoder.rnn.bias_hh_l0_reverse')'", "missing"});
    r = nn::load_torch_state(m.ps, path, m.mapping, {.strict = false});
    BOOST_TEST(r.missing.size() == 1u);

    // Non-strict with the wrong prefix loads nothing: an error, not silence.
    std::map<std::string, A> renamed;
    for (auto& [k, v] : good) renamed["model." + k] = v;
    sg::write_npz(path, renamed);
    expect_error<sg::io_error>([&] { nn::load_torch_state(m.ps, path, m.mapping, {.strict = false}); },
                               {"none of the file's members", "'model.decoder.bias_hh_l0'"});
    // And the same for load_npz given PyTorch names.
    expect_error<sg::io_error>([&] { sg::load_npz(m.ps, path, {.strict = false}); },
                               {"names a parameter of the store", "nn::load_torch_state"});

    // A non-float member for a parameter.
    std::string h = "{'descr': '<i8', 'fortran_order': False, 'shape': (5, 2), }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    const std::string npy = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(h.size()) + '\0' + h +
                            std::string(80, '\0');
    sg::detail::write_zip(path, {{"weight.npy", npy}});
    const std::vector<nn::torch_mapping> just_emb = {{"", "emb", nn::torch_module::embedding}};
    expect_error<sg::io_error>([&] { nn::load_torch_state(m.ps, path, just_emb, {.strict = false}); },
                               {"member 'weight' (for parameter 'emb.weight')", "expected '<f4' or '<f8'"});
    fs::remove(path);
}

// nn.LSTM(3, 4, proj_size=2) has weight_hh_l0 [16, 2] and weight_hr_l0 [2, 4]: refused by name,
// strict or not (the error used to name only weight_hh's shape).
BOOST_AUTO_TEST_CASE(a_projected_torch_lstm_is_refused_by_name) {
    sg::parameter_store ps;
    nn::lstm_cell cell{sg::parameter_scope(ps, "lstm"), 3, 4};
    const std::vector<nn::torch_mapping> mapping = {{"rnn", "lstm", nn::torch_module::rnn_cell}};
    const auto path = temp("proj.npz");
    const A before = cell.w_ih.value_as_double();
    sg::write_npz(path, {{"rnn.weight_ih_l0", xt::zeros<double>({16, 3})},
                         {"rnn.weight_hh_l0", xt::zeros<double>({16, 2})},
                         {"rnn.bias_ih_l0", xt::zeros<double>({16})},
                         {"rnn.bias_hh_l0", xt::zeros<double>({16})},
                         {"rnn.weight_hr_l0", xt::zeros<double>({2, 4})}});
    for (const bool strict : {true, false})
        expect_error<sg::io_error>([&] { nn::load_torch_state(ps, path, mapping, {.strict = strict}); },
                                   {"member 'rnn.weight_hr_l0'", "proj_size > 0", "rnn_cell 'lstm'"});
    BOOST_TEST((cell.w_ih.value_as_double() == before));
    fs::remove(path);
}

// nn.LSTM(3, 4, bias=False) has no biases: the strict error says how to load it (it used to
// suggest strict = false alone, which keeps the cell's random biases: outputs off by ~0.7 against
// torch's).
BOOST_AUTO_TEST_CASE(a_bias_free_torch_module_gets_an_error_that_says_how) {
    sg::parameter_store ps;
    nn::lstm_cell cell{sg::parameter_scope(ps, "lstm"), 3, 4};
    const std::vector<nn::torch_mapping> mapping = {{"rnn", "lstm", nn::torch_module::rnn_cell}};
    const auto path = temp("no_bias.npz");
    const A w_ih = xt::ones<double>({16, 3}) * 0.25, w_hh = xt::ones<double>({16, 4}) * 0.5;
    sg::write_npz(path, {{"rnn.weight_ih_l0", w_ih}, {"rnn.weight_hh_l0", w_hh}});
    expect_error<sg::io_error>([&] { nn::load_torch_state(ps, path, mapping); },
                               {"'lstm.b_ih (torch 'rnn.bias_ih_l0')'", "bias=False", "nn::zeros"});
    // Following the message gives torch's bias-free cell.
    nn::zeros(cell.b_ih);
    nn::zeros(cell.b_hh);
    const auto r = nn::load_torch_state(ps, path, mapping, {.strict = false});
    BOOST_TEST(r.loaded.size() == 2u);
    BOOST_TEST(r.missing.size() == 2u);
    sg::tape t;
    const sg::expr h = cell(t.constant(1.0, {1, 3}), cell.initial_state(t, 1)).h;
    // Every gate pre-activation is 3 * 0.25 = 0.75: h = sigmoid(.75) * tanh(sigmoid(.75) * tanh(.75)).
    const double s = 1.0 / (1.0 + std::exp(-0.75));
    BOOST_TEST(t.value(h)(0, 2) == s * std::tanh(s * std::tanh(0.75)), boost::test_tools::tolerance(1e-6));

    // Biases missing with one of their layer's weights missing too are not called bias=False.
    sg::write_npz(path, {{"rnn.weight_ih_l0", w_ih}});
    try {
        nn::load_torch_state(ps, path, mapping);
        BOOST_FAIL("expected an io_error");
    } catch (const sg::io_error& e) {
        BOOST_TEST(std::string(e.what()).find("bias=False") == std::string::npos, e.what());
    }
    fs::remove(path);
}

BOOST_AUTO_TEST_CASE(bad_mappings_are_value_errors) {
    tiny m;
    const std::vector<nn::torch_mapping> no_scope = {{"lstm", "nothing_here", nn::torch_module::rnn_cell}};
    expect_error<sg::value_error>([&] { nn::torch_names(m.ps, no_scope); }, {"no parameter named 'nothing_here.*'"});
    const std::vector<nn::torch_mapping> wrong_kind = {{"lstm", "deep", nn::torch_module::rnn_cell}};
    expect_error<sg::value_error>([&] { nn::torch_names(m.ps, wrong_kind); },
                                  {"'deep.l0.w_ih'", "not one of rnn_cell's"});
    const std::vector<nn::torch_mapping> twice = {{"a", "out", nn::torch_module::linear},
                                                  {"b", "out", nn::torch_module::linear}};
    expect_error<sg::value_error>([&] { nn::torch_names(m.ps, twice); }, {"under two mappings"});
    const std::vector<nn::torch_mapping> clash = {{"x", "out", nn::torch_module::linear},
                                                  {"x", "emb", nn::torch_module::embedding}};
    expect_error<sg::value_error>([&] { nn::torch_names(m.ps, clash); }, {"both map to torch name 'x.weight'"});
}

BOOST_AUTO_TEST_CASE(a_double_beyond_float_range_is_an_error_not_inf) {
    tiny m;  // float32 parameters, as load_npz refuses such a value
    const auto path = temp("big.npz");
    std::map<std::string, A> file;
    for (auto& [ours, theirs] : nn::torch_names(m.ps, m.mapping)) file[theirs] = m.ps.get(ours).value_as_double();
    file["proj.weight"](1, 2) = 1e300;
    sg::write_npz(path, file);  // '<f8', as numpy.savez of a float64 state_dict
    const auto before = m.ps.get("out.weight").value_as_double();
    expect_error<sg::io_error>([&] { nn::load_torch_state(m.ps, path, m.mapping); },
                               {"member 'proj.weight'", "1e+300 at index 5", "'out.weight' of type f32"});
    BOOST_TEST((m.ps.get("out.weight").value_as_double() == before));
    fs::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()
