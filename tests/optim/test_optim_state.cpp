// optimizer::save_state / load_state: a run interrupted, saved and loaded into a fresh store and
// optimiser goes on bit for bit as the uninterrupted run; every malformed state file is refused,
// naming the function, the file, the parameter and what was expected, with nothing changed.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/io.hpp"
#include "optim/optim.hpp"
#include "seqgrad.hpp"

namespace sg = seqgrad;
namespace so = seqgrad::optim;
namespace fs = std::filesystem;

namespace {

using factory = std::function<std::unique_ptr<so::optimizer>(sg::parameter_store&)>;

template <class O, class Opt>
factory make(Opt o) {
    return [o](sg::parameter_store& ps) { return std::make_unique<O>(ps, o); };
}

// Every optimiser with the options that keep the most state and read the per-parameter count.
std::vector<std::pair<std::string, factory>> optimizers() {
    return {{"sgd", make<so::sgd>(so::sgd_options{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01})},
            {"adam", make<so::adam>(so::adam_options{.lr = 0.02, .weight_decay = 0.01})},
            {"adagrad",
             make<so::adagrad>(so::adagrad_options{.lr = 0.1, .lr_decay = 0.05, .initial_accumulator_value = 0.1})},
            {"rmsprop", make<so::rmsprop>(so::rmsprop_options{.lr = 0.01, .momentum = 0.9, .centered = true})}};
}

// A small model: y = tanh(x w + b), and a frozen parameter that never gets state. `salt` changes
// the initial values, so a fresh store must take every value from the files to match.
struct model {
    sg::parameter_store ps;
    sg::parameter w, b, frozen;
    explicit model(sg::dtype dt, double salt = 0) : ps(dt) {
        xt::xarray<double> w0 = xt::zeros<double>({3, 4}), b0 = xt::zeros<double>({4});
        for (std::size_t i = 0; i < w0.size(); ++i) w0.data()[i] = 0.3 * std::sin(double(i) + 1 + salt);
        for (std::size_t i = 0; i < b0.size(); ++i) b0.data()[i] = 0.1 * std::cos(double(i) + salt);
        w = ps.add("layer.w", w0);
        b = ps.add("layer.b", b0);
        frozen = ps.add("frozen", xt::xarray<double>{2.0});
        frozen.set_trainable(false);
    }
};

// Steps [from, to) of training, each on its own batch, the rate lr0 * 0.9^opt.steps() from a
// schedule: a resumed optimiser must have its step count back for the rates to match.
void train(model& m, so::optimizer& opt, std::size_t from, std::size_t to, double lr0 = 0.01) {
    const so::exponential_decay schedule(lr0, 0.9);
    for (std::size_t k = from; k < to; ++k) {
        xt::xarray<double> x = xt::zeros<double>({5, 3}), y = xt::zeros<double>({5, 4});
        for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = std::cos(0.7 * double(k) + double(i));
        for (std::size_t i = 0; i < y.size(); ++i) y.data()[i] = 0.5 * std::sin(1.3 * double(k) + double(i));
        sg::tape t(m.ps.scalar_type());
        const sg::expr out = sg::tanh(sg::matmul(t.input(x), t.param(m.w)) + t.param(m.b));
        t.backward(sg::sum(sg::square(out - t.input(y))));
        so::apply_schedule(opt, schedule);
        opt.step();
    }
}

struct temp_dir {
    fs::path dir = fs::temp_directory_path() / ("seqgrad_optim_state_" + std::to_string(::getpid()));
    temp_dir() { fs::create_directories(dir); }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

// True if f throws E whose message holds every one of parts (each reported when missing).
template <class E, class F>
bool throws(F&& f, const std::vector<std::string>& parts) {
    try {
        f();
    } catch (const E& e) {
        const std::string m = e.what();
        bool all = true;
        for (const auto& p : parts)
            if (m.find(p) == std::string::npos) {
                BOOST_TEST_MESSAGE("'" << p << "' not in: " << m);
                all = false;
            }
        return all;
    }
    return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optimizer_state)

BOOST_AUTO_TEST_CASE(resumed_run_equals_uninterrupted_run) {
    const temp_dir tmp;
    for (const auto& [name, make_opt] : optimizers())
        for (const sg::dtype dt : {sg::dtype::f32, sg::dtype::f64}) {
            const std::string what = name + (dt == sg::dtype::f32 ? " f32" : " f64");
            model whole(dt);
            auto o_whole = make_opt(whole.ps);
            const double lr0 = o_whole->learning_rate();
            train(whole, *o_whole, 0, 8, lr0);

            model first(dt);
            auto o_first = make_opt(first.ps);
            train(first, *o_first, 0, 4, lr0);
            sg::save_npz(first.ps, tmp / "m.npz");
            o_first->save_state(tmp / "m.optim");

            model second(dt, 1.0);  // other initial values: only the files make it equal
            auto o_second = make_opt(second.ps);
            sg::load_npz(second.ps, tmp / "m.npz");
            o_second->load_state(tmp / "m.optim");
            BOOST_TEST(o_second->steps() == 4u, what);
            BOOST_TEST(o_second->learning_rate() == o_first->learning_rate(), what);
            BOOST_TEST(o_second->state(2) == nullptr, what);  // frozen: no state saved, none made
            train(second, *o_second, 4, 8, lr0);
            for (std::size_t i = 0; i < whole.ps.size(); ++i) {
                const auto a = whole.ps[i].value_as_double(), b = second.ps[i].value_as_double();
                for (std::size_t k = 0; k < a.size(); ++k)
                    BOOST_TEST(a.data()[k] == b.data()[k], what << " " << whole.ps[i].name() << "[" << k << "]");
            }
            // Without the state the moments and counts restart: the runs part (the test can fail).
            model fresh(dt, 1.0);
            auto o_fresh = make_opt(fresh.ps);
            sg::load_npz(fresh.ps, tmp / "m.npz");
            train(fresh, *o_fresh, 4, 8, lr0);
            BOOST_TEST(xt::amax(xt::abs(fresh.w.value_as_double() - whole.w.value_as_double()))() > 1e-4, what);
        }
}

BOOST_AUTO_TEST_CASE(state_converts_between_float_and_double_stores) {
    const temp_dir tmp;
    for (const sg::dtype from : {sg::dtype::f32, sg::dtype::f64}) {
        const sg::dtype to = from == sg::dtype::f32 ? sg::dtype::f64 : sg::dtype::f32;
        model a(from), b(to);
        so::adam oa(a.ps, 0.01), ob(b.ps, 0.01);
        train(a, oa, 0, 3);
        oa.save_state(tmp / "s.optim");
        ob.load_state(tmp / "s.optim");
        for (std::size_t i = 0; i < 2; ++i) {
            const sg::detail::optim_state* sa = oa.state(i);
            const sg::detail::optim_state* sb = ob.state(i);
            BOOST_REQUIRE(sb != nullptr);
            BOOST_TEST((sb->dt == to));
            BOOST_TEST(sb->steps == 3u);
            BOOST_REQUIRE(sa->size * 2 == (to == sg::dtype::f64 ? sb->d.size() : sb->f.size()));
            for (std::size_t k = 0; k < 2 * sa->size; ++k) {
                const double va = from == sg::dtype::f32 ? double(sa->f[k]) : sa->d[k];
                const double vb = to == sg::dtype::f32 ? double(sb->f[k]) : sb->d[k];
                BOOST_TEST(vb == (to == sg::dtype::f32 ? double(float(va)) : va), "buffer entry " << k);
            }
        }
        train(b, ob, 3, 4);  // the loaded state is used as it is, not remade
        BOOST_TEST(ob.state(0)->steps == 4u);
    }
}

// A parameter added after the last step (or frozen) has no state: save_state names it with an
// update count of 0, load_state gives it none, and the run goes on as the uninterrupted one.
BOOST_AUTO_TEST_CASE(a_parameter_added_after_the_last_step_resumes) {
    const temp_dir tmp;
    model a(sg::dtype::f64), b(sg::dtype::f64);
    so::adam oa(a.ps, 0.01);
    train(a, oa, 0, 2);
    a.ps.add("late", xt::xarray<double>{0.5, -0.25});
    b.ps.add("late", sg::shape{2});
    oa.save_state(tmp / "late.optim");
    sg::save_npz(a.ps, tmp / "late.npz");
    sg::load_npz(b.ps, tmp / "late.npz");
    so::adam ob(b.ps, 0.01);
    ob.load_state(tmp / "late.optim");
    const std::size_t late = 3;  // after layer.w, layer.b and frozen
    BOOST_TEST(ob.state(late) == nullptr);
    train(a, oa, 2, 4);
    train(b, ob, 2, 4);
    for (const char* name : {"layer.w", "layer.b", "late", "frozen"})
        BOOST_TEST((a.ps.get(name).value_as_double() == b.ps.get(name).value_as_double()), name);
    BOOST_REQUIRE(ob.state(late) != nullptr);
    BOOST_TEST(ob.state(late)->steps == oa.state(late)->steps);
    BOOST_TEST(ob.state(late)->d == oa.state(late)->d);
    // The same file into a store without that parameter: a member naming no parameter of it.
    model c(sg::dtype::f64);
    so::adam oc(c.ps, 0.01);
    BOOST_TEST(throws<sg::io_error>([&] { oc.load_state(tmp / "late.optim"); },
                                    {"'late/steps'", "name no parameter of the store"}));
}

BOOST_AUTO_TEST_CASE(state_before_the_first_step_and_sgd_without_buffers) {
    const temp_dir tmp;
    model a(sg::dtype::f64), b(sg::dtype::f64, 1.0);
    so::sgd plain(a.ps, 0.1), plain2(b.ps, 0.5);
    plain.save_state(tmp / "none.optim");  // nothing stepped yet: a header only
    plain2.load_state(tmp / "none.optim");
    BOOST_TEST(plain2.steps() == 0u);
    BOOST_TEST(plain2.learning_rate() == 0.1);
    BOOST_TEST(plain2.state(0) == nullptr);
    train(a, plain, 0, 2);  // no momentum: zero buffers, the counts only
    plain.save_state(tmp / "plain.optim");
    plain2.load_state(tmp / "plain.optim");
    BOOST_REQUIRE(plain2.state(0) != nullptr);
    BOOST_TEST(plain2.state(0)->steps == 2u);
    BOOST_TEST(plain2.state(0)->d.empty());
}

// Every check, each with nothing changed after the failure.
BOOST_AUTO_TEST_CASE(bad_state_files_are_refused_before_anything_changes) {
    const temp_dir tmp;
    model m(sg::dtype::f32);
    so::adam opt(m.ps, 0.01);
    train(m, opt, 0, 2);
    const std::string good = tmp / "good.optim";
    opt.save_state(good);
    train(m, opt, 2, 3);  // the state now differs from every file's: a partial load would show
    opt.set_learning_rate(0.5);
    const std::vector<float> before = opt.state(0)->f;
    const auto unchanged = [&] {
        BOOST_TEST(opt.steps() == 3u);
        BOOST_TEST(opt.learning_rate() == 0.5);
        BOOST_TEST(opt.state(0)->f == before);
        BOOST_TEST(opt.state(1)->steps == 3u);
    };
    const auto refused = [&](const std::string& path, const std::vector<std::string>& parts) {
        std::vector<std::string> all = {"optimizer::load_state (adam)", "'" + path + "'"};
        all.insert(all.end(), parts.begin(), parts.end());
        BOOST_TEST(throws<sg::io_error>([&] { opt.load_state(path); }, all), path);
        unchanged();
    };
    // An edited copy of the good file (every member '<f8').
    const auto edited = [&](const std::string& name,
                            const std::function<void(std::map<std::string, xt::xarray<double>>&)>& f) {
        auto arrays = sg::read_npz(good);
        f(arrays);
        sg::write_npz(tmp / name, arrays, sg::dtype::f64);
        return tmp / name;
    };

    refused(tmp / "absent.optim", {});
    {
        const std::string cut = tmp / "cut.optim";
        const auto size = fs::file_size(good);
        fs::copy_file(good, cut);
        fs::resize_file(cut, size / 2);
        refused(cut, {});
    }
    // Another kind's state, and the same kind with other options (a different buffer count).
    {
        model other(sg::dtype::f32);
        so::sgd s(other.ps, so::sgd_options{.lr = 0.1, .momentum = 0.9});
        train(other, s, 0, 1);
        s.save_state(tmp / "sgd.optim");
        refused(tmp / "sgd.optim", {"holds the state of 'sgd'", "expected a member 'optimizer/adam'"});
        so::rmsprop centered(other.ps, so::rmsprop_options{.centered = true});
        train(other, centered, 0, 1);
        centered.save_state(tmp / "centered.optim");
        so::rmsprop plain(m.ps);
        BOOST_TEST(throws<sg::io_error>([&] { plain.load_state(tmp / "centered.optim"); },
                                        {"optimizer::load_state (rmsprop)", "optimizer/rmsprop.npy",
                                         "2 buffer(s) per parameter, rmsprop with these options keeps 1"}));
        BOOST_TEST(plain.state(0) == nullptr);
    }
    refused(edited("header.optim", [](auto& a) { a.erase("optimizer/adam"); }),
            {"no member 'optimizer/adam'", "adam's save_state"});
    refused(edited("unknown.optim", [](auto& a) { a["encoder.w/state"] = a.at("layer.w/state"); }),
            {"'encoder.w/state'", "name no parameter of the store"});
    refused(edited("missing.optim",
                   [](auto& a) {
                       a.erase("layer.b/state");
                       a.erase("layer.b/steps");
                   }),
            {"trainable parameter(s) 'layer.b' have no state", "which names 2 other parameter(s)"});
    refused(edited("half.optim", [](auto& a) { a.erase("layer.w/state"); }),
            {"parameter 'layer.w' has member 'layer.w/steps' but no 'layer.w/state'"});
    refused(edited("size.optim",
                   [](auto& a) {
                       a["layer.b/state"] = xt::zeros<double>({2, 5});
                   }),
            {"member 'layer.b/state.npy'", "shape [2, 5] for parameter 'layer.b' of shape [4]", "expected [2, 4]"});
    refused(edited("buffers.optim",
                   [](auto& a) {
                       a["layer.b/state"] = xt::zeros<double>({3, 4});
                   }),
            {"shape [3, 4] for parameter 'layer.b'", "expected [2, 4]: 2 buffer(s) of adam"});
    for (const double bad : {-1.0, 0.0, 2.5, std::nan(""), HUGE_VAL, 1e300}) {
        refused(edited("steps.optim", [&](auto& a) { a["layer.w/steps"] = xt::xarray<double>{bad}; }),
                {"member 'layer.w/steps.npy'", "of parameter 'layer.w' is not a whole number in [1, 2^53]"});
        if (bad == 0.0) continue;  // 0 steps in all is a file saved before the first step
        refused(edited("head.optim", [&](auto& a) { a["optimizer/adam"](0) = bad; }),
                {"member 'optimizer/adam.npy'", "is not a whole number in [0, 2^53]"});
    }
    refused(edited("lr.optim", [](auto& a) { a["optimizer/adam"](1) = -0.5; }),
            {"learning rate -0.5, expected finite and >= 0"});
    refused(edited("headshape.optim",
                   [](auto& a) {
                       a["optimizer/adam"] = xt::xarray<double>{2.0, 0.01};
                   }),
            {"shape [2], expected [3]"});
    // Adam's second moment is a sum of squares: below 0 (or NaN anywhere) the next step was NaN.
    refused(edited("negv.optim", [](auto& a) { a["layer.w/state"](1, 3) = -1.0; }),
            {"value -1 at index 3 of buffer 1 of parameter 'layer.w' (expected a sum of squares, >= 0)"});
    refused(edited("nanm.optim", [](auto& a) { a["layer.b/state"](0, 2) = std::nan(""); }),
            {"value nan at index 2 of buffer 0 of parameter 'layer.b' (expected a number)"});
    refused(edited("big.optim", [](auto& a) { a["layer.w/state"](0, 7) = 1e300; }),
            {"value 1e+300 at index 7 does not fit parameter 'layer.w' of type f32"});
    {
        std::string npy = "\x93NUMPY\x01";  // an integer member: not a state array
        npy += '\0';
        std::string dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }";
        dict.append(117 - dict.size(), ' ');
        npy += static_cast<char>(dict.size() + 1);
        npy += '\0';
        npy += dict + "\n" + std::string(8, '\0');
        sg::detail::write_zip(tmp / "int.optim", {{"layer.w/steps.npy", npy}});
        refused(tmp / "int.optim", {"member 'layer.w/steps.npy'", "integer or bool data (expected '<f4' or '<f8')"});
    }
    opt.load_state(good);  // the good file still loads after all that
    BOOST_TEST(opt.steps() == 2u);
    BOOST_TEST(opt.state(1)->steps == 2u);
    BOOST_TEST(opt.learning_rate() != 0.5);
}

BOOST_AUTO_TEST_CASE(save_state_is_atomic_and_names_itself) {
    const temp_dir tmp;
    model m(sg::dtype::f64);
    so::adam opt(m.ps);
    train(m, opt, 0, 1);
    BOOST_TEST(throws<sg::io_error>([&] { opt.save_state(tmp / "no/such/dir/s.optim"); },
                                    {"optimizer::save_state", "no/such/dir/s.optim"}));
    // A destination that cannot be replaced (a non-empty directory): the save fails whole, the
    // directory and its contents stay, no temporary is left.
    fs::create_directories(tmp.dir / "d.optim");
    opt.save_state(tmp / "d.optim/inside");
    BOOST_TEST(throws<sg::io_error>([&] { opt.save_state(tmp / "d.optim"); }, {"optimizer::save_state", "rename"}));
    BOOST_TEST(fs::is_regular_file(tmp.dir / "d.optim" / "inside"));
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(tmp.dir)) files += e.path().filename() != "d.optim";
    BOOST_TEST(files == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
