// timeseries: next-value regression on a generated signal, with the least-squares loss.
//
//     x_t -> LSTM or GRU (H) -> linear(H, 1) -> prediction of x_{t+1}, at every step (many-to-many)
//
// Each sequence is a noisy sum of three sines, with periods, amplitudes and phases drawn afresh
// for every sequence:
//
//     x_t = sum_k a_k sin(2 pi t / p_k + phi_k) + noise,   p_k in [6, 40], a_k in [0.2, 1],
//                                                          noise ~ N(0, sigma^2), sigma = 0.1
//
// so the model cannot memorise one curve: it has to infer the periods and phases of the sequence
// it is reading, and keep refining them as it reads. Training draws a new batch of sequences at
// every step (there is no fixed training set to overfit); the test set is a fixed set drawn from
// a separate seed. No data files are needed.
//
//     timeseries                       # LSTM: ~20 s of CPU, under a minute on 2 busy cores
//     timeseries --cell gru            # the composed cell, step by step: ~3x slower
//     timeseries --steps 100 --hidden 16   # a smoke test (seconds)
//
// The loss is mse_loss over every step of every sequence of the batch. The baseline is the naive
// last-value forecast (predict x_{t+1} = x_t), whose error on this signal is about the variance of
// one step's change plus twice the noise variance; the best any model can do is about sigma^2
// (the noise is unpredictable), which is printed as the noise floor.
//
// After training the example also forecasts free-running: it reads the first --seq minus
// --horizon values of each test sequence, then feeds its own predictions back as inputs for
// --horizon steps (nn::generate), and compares with holding the last observed value.
//
// --cell lstm (the default) or gru: the cell through nn::unroll over the whole [T, B, 1] sequence,
// the output layer over all steps one GEMM. For nn::lstm_cell the library runs the unroll as one
// fused layer (the input projections of all steps one GEMM, each step one fused node); any cell
// you write plugs in the same way.
//
// Output: progress every --eval-every steps, `result` lines, and for test sequence 0 a chart of
// truth vs one-step predictions vs the free-running forecast (timeseries_prediction.svg/.csv) and
// the learning curve (timeseries_loss.svg), written to the current directory or --out DIR.
// Exit codes: 0 done, 1 cannot write the output or the training diverged, 2 bad command line.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numbers>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

#include "cli.hpp"
#include "plot.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace fs = std::filesystem;
namespace cli = seqgrad::cli;

namespace {

// ---- command line ----------------------------------------------------------------------------

struct options {
    std::string out = ".", cell = "lstm";
    std::size_t hidden = 64, batch = 32, seq = 100, steps = 3000, test = 256, horizon = 30, eval_every = 250;
    double lr = 5e-3, clip = 5, noise = 0.1;
    std::uint64_t seed = 1;
    int threads = 1;
};

const char* const usage = R"(usage: timeseries [options]
Trains an RNN to predict the next value of noisy sums of sines; compares with the last-value forecast.
  --out DIR           where to write timeseries_prediction.svg/.csv and timeseries_loss.svg (.)
  --cell lstm|gru     recurrent cell (lstm: the fused layer; gru: the composed cell)
  --hidden N          hidden units (64)
  --seq T             values per sequence (100)
  --batch N           sequences per training step (32)
  --steps N           training steps, each on freshly drawn sequences (3000)
  --lr X              Adam learning rate, decayed linearly to a tenth of it over the run (5e-3)
  --clip X            clip the global gradient norm to X; 0 turns clipping off (5)
  --noise X           standard deviation of the noise added to the signal (0.1)
  --test N            test sequences (256)
  --horizon N         steps of the free-running forecast at the end of each test sequence, < T (30)
  --eval-every N      report progress every N steps (250)
  --seed N            seed of the weights and the training sequences (1); the test set is fixed
  --threads N         OpenBLAS threads (1: fastest for these small products)
  --help              this text
)";

options parse_args(int argc, char** argv) {
    options o;
    const std::size_t one = 1;
    cli::parse_options(argc, argv,
                       {{"--out", cli::text(o.out)},
                        {"--cell", cli::one_of(o.cell, {"lstm", "gru"})},
                        {"--hidden", cli::number(o.hidden, one)},
                        {"--seq", cli::number(o.seq, std::size_t{2})},
                        {"--batch", cli::number(o.batch, one)},
                        {"--steps", cli::number(o.steps, one)},
                        {"--test", cli::number(o.test, one)},
                        {"--horizon", cli::number(o.horizon, one)},
                        {"--eval-every", cli::number(o.eval_every, one)},
                        {"--lr", cli::number(o.lr, 0.0, true)},
                        {"--clip", cli::number(o.clip, 0.0)},
                        {"--noise", cli::number(o.noise, 0.0)},
                        {"--seed", cli::number(o.seed, std::uint64_t{0})},
                        {"--threads", cli::number(o.threads, 1)}},
                       usage);
    if (o.noise > 1e18)  // the samples, their squares and the noise floor are floats: 1e300 printed a NaN MSE
        throw cli::usage_error{
            "--noise: expected at most 1e18 (its variance, the noise floor, must fit a float), got " +
            (std::ostringstream() << o.noise).str()};
    if (o.horizon >= o.seq)
        throw cli::usage_error{"--horizon: must be less than --seq (" + std::to_string(o.seq) + ")"};
    cli::check_count("--batch", o.batch, o.seq, "--seq " + std::to_string(o.seq));  // sequences of --seq values
    cli::check_count("--test", o.test, o.seq, "--seq " + std::to_string(o.seq));
    return o;
}

// ---- data ------------------------------------------------------------------------------------

// A batch of B sequences of T values, time-major: entry (t, b) at index t * B + b.
struct sequences {
    std::size_t steps = 0, batch = 0;
    std::vector<float> observed, clean;  // with and without the noise
    float at(std::size_t t, std::size_t b) const { return observed[t * batch + b]; }
};

sequences draw(std::size_t batch, std::size_t steps, double noise, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> period(6, 40), amplitude(0.2, 1), phase(0, 2 * std::numbers::pi);
    std::normal_distribution<double> eps(0, noise > 0 ? noise : 1);
    sequences s{steps, batch, std::vector<float>(steps * batch), std::vector<float>(steps * batch)};
    for (std::size_t b = 0; b < batch; ++b) {
        double p[3], a[3], phi[3];
        for (int k = 0; k < 3; ++k) p[k] = period(rng), a[k] = amplitude(rng), phi[k] = phase(rng);
        for (std::size_t t = 0; t < steps; ++t) {
            double v = 0;
            for (int k = 0; k < 3; ++k)
                v += a[k] * std::sin(2 * std::numbers::pi * static_cast<double>(t) / p[k] + phi[k]);
            s.clean[t * batch + b] = static_cast<float>(v);
            s.observed[t * batch + b] = static_cast<float>(v + (noise > 0 ? eps(rng) : 0.0));
        }
    }
    return s;
}

// Steps [first, last) of every sequence as a [(last - first) * B, 1] input on t (time-major).
sg::expr steps_input(sg::tape& t, const sequences& s, std::size_t first, std::size_t last) {
    const std::span<const float> rows(s.observed.data() + first * s.batch, (last - first) * s.batch);
    return t.input<float>(sg::shape{(last - first) * s.batch, 1}, rows);
}

// ---- the model -------------------------------------------------------------------------------

template <class Cell>
struct regressor {
    Cell cell;
    nn::linear out;

    regressor(sg::parameter_store& ps, const options& o, std::mt19937_64& rng)
        : cell(sg::parameter_scope(ps, o.cell), 1, o.hidden, rng),
          out(sg::parameter_scope(ps, "out"), o.hidden, 1, true, rng) {}

    // Predictions of steps 1 .. steps-1 from steps 0 .. steps-2, as [(T-1) * B, 1] (time-major).
    sg::expr one_step(sg::tape& t, const sequences& s) const {
        const std::size_t steps = s.steps - 1;
        const sg::expr x = sg::reshape(steps_input(t, s, 0, steps), {steps, s.batch, 1});
        const auto states = nn::unroll(t, cell, x, cell.initial_state(t, s.batch));
        const sg::expr hs = nn::stack_steps(nn::hiddens(states));  // [T, B, H]
        return out(sg::reshape(hs, {steps * s.batch, hs.shape()[2]}));
    }

    // Free-running forecast of the last `horizon` steps: read the others, then feed predictions
    // back as inputs. Returns [horizon, B, 1] predictions of steps T - horizon .. T - 1.
    sg::expr forecast(sg::tape& t, const sequences& s, std::size_t horizon) const {
        const std::size_t warm = s.steps - horizon;
        const sg::expr x = steps_input(t, s, 0, warm);
        const auto xs = nn::unstack_steps(sg::reshape(x, {warm, s.batch, 1}));
        const auto states = nn::unroll(t, cell, std::span<const sg::expr>(xs));
        const sg::expr first = out(nn::hidden(states.back()));  // prediction of step `warm`
        using state = nn::cell_state_t<Cell>;
        const auto gen = nn::generate(t, cell, first, states.back(), horizon - 1,
                                      [&](const state& previous) { return out(nn::hidden(previous)); });
        std::vector<sg::expr> ys{first};
        for (const auto& state : gen) ys.push_back(out(nn::hidden(state)));
        return nn::stack_steps(ys);
    }
};

double mse(std::span<const double> a, std::span<const float> b) {
    double sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
    return sum / static_cast<double>(a.size());
}

template <class Cell>
int run(const options& o) {
    std::mt19937_64 rng(o.seed), test_rng(20240601);
    const sequences test = draw(o.test, o.seq, o.noise, test_rng);
    const std::size_t T = o.seq, B = o.test;
    // The naive forecast of step t + 1 is the value at step t.
    double naive_mse = 0;
    for (std::size_t t = 0; t + 1 < T; ++t)
        for (std::size_t b = 0; b < B; ++b) naive_mse += std::pow(test.at(t + 1, b) - test.at(t, b), 2);
    naive_mse /= static_cast<double>((T - 1) * B);
    const std::span<const float> targets(test.observed.data() + B, (T - 1) * B);  // steps 1 .. T-1
    std::printf("%s, hidden %zu; sequences of %zu values, batch %zu, %zu steps; test: %zu sequences\n", o.cell.c_str(),
                o.hidden, T, o.batch, o.steps, B);
    std::printf("naive last-value test MSE %.5f, noise floor %.5f\n", naive_mse, o.noise * o.noise);

    sg::parameter_store ps;
    const regressor<Cell> model(ps, o, rng);
    sg::optim::adam opt(ps, o.lr);
    sg::tape t;
    auto test_mse = [&] {
        t.clear();
        const xt::xarray<double> p = t.value(model.one_step(t, test));
        return mse(std::span<const double>(p.data(), p.size()), targets);
    };

    std::vector<double> curve_x, curve_train, curve_test;
    double loss_sum = 0;
    std::size_t loss_n = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t step = 1; step <= o.steps; ++step) {
        const sequences s = draw(o.batch, T, o.noise, rng);
        t.clear();
        const sg::expr prediction = model.one_step(t, s);
        const sg::expr loss = sg::mse_loss(prediction, steps_input(t, s, 1, T));
        t.backward(loss);
        // A diverged run is an error (exit 1), not results and charts of nan (as char_lm and word_lm).
        if (!std::isfinite(t.item(loss)))
            throw sg::numeric_error("training diverged at step " + std::to_string(step) + ": train mse " +
                                    std::to_string(t.item(loss)) + " (try a smaller --lr or --noise)");
        if (o.clip > 0) sg::optim::clip_global_norm(ps, o.clip);
        opt.set_learning_rate(o.lr * (1 - 0.9 * static_cast<double>(step - 1) / static_cast<double>(o.steps)));
        opt.step();
        loss_sum += t.item(loss);
        ++loss_n;
        if (step % o.eval_every == 0 || step == o.steps) {
            const double m = test_mse();
            curve_x.push_back(static_cast<double>(step));
            curve_train.push_back(loss_sum / static_cast<double>(loss_n));
            curve_test.push_back(m);
            std::printf("step %5zu  train mse %.5f  test mse %.5f  ratio to naive %.3f  (%.1f s)\n", step,
                        loss_sum / static_cast<double>(loss_n), m, m / naive_mse,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
            std::fflush(stdout);
            loss_sum = 0;
            loss_n = 0;
        }
    }
    const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double final_mse = curve_test.back();

    // Free-running forecast of the last `horizon` steps of every test sequence, against holding
    // the last observed value.
    t.clear();
    const xt::xarray<double> fc = t.value(model.forecast(t, test, o.horizon));  // [horizon, B, 1]
    const std::size_t warm = T - o.horizon;
    double fc_mse = 0, fc_naive = 0;
    for (std::size_t k = 0; k < o.horizon; ++k)
        for (std::size_t b = 0; b < B; ++b) {
            fc_mse += std::pow(fc(k, b, 0) - test.at(warm + k, b), 2);
            fc_naive += std::pow(test.at(warm - 1, b) - test.at(warm + k, b), 2);
        }
    fc_mse /= static_cast<double>(o.horizon * B);
    fc_naive /= static_cast<double>(o.horizon * B);

    // One-step error over the second half of the sequences only, once the model has seen enough
    // of each to pin its periods and phases down.
    t.clear();
    const xt::xarray<double> one = t.value(model.one_step(t, test));  // [(T-1) * B, 1]
    double late_mse = 0, late_naive = 0;
    for (std::size_t k = T / 2; k < T; ++k)
        for (std::size_t b = 0; b < B; ++b) {
            late_mse += std::pow(one((k - 1) * B + b, 0) - test.at(k, b), 2);
            late_naive += std::pow(test.at(k - 1, b) - test.at(k, b), 2);
        }
    late_mse /= static_cast<double>((T - T / 2) * B);
    late_naive /= static_cast<double>((T - T / 2) * B);
    std::printf("steps %zu..%zu only: test mse %.5f, naive %.5f, noise floor %.5f\n", T / 2, T - 1, late_mse,
                late_naive, o.noise * o.noise);

    // Pictures: test sequence 0, and the learning curve.
    sg::plot::series observed{"observed (noisy)", {}, {}}, clean{"signal without noise", {}, {}},
        predicted{"one-step prediction", {}, {}}, free_run{"free-running forecast", {}, {}};
    auto add = [](sg::plot::series& s, std::size_t x, double y) {
        s.x.push_back(static_cast<double>(x));
        s.y.push_back(y);
    };
    for (std::size_t k = 0; k < T; ++k) {
        add(observed, k, test.at(k, 0));
        add(clean, k, test.clean[k * B]);
        if (k >= 1) add(predicted, k, one((k - 1) * B, 0));
        if (k >= warm) add(free_run, k, fc(k - warm, 0, 0));
    }
    const std::vector<sg::plot::series> chart{observed, clean, predicted, free_run};
    const std::string svg = (fs::path(o.out) / "timeseries_prediction.svg").string();
    const std::string csv = (fs::path(o.out) / "timeseries_prediction.csv").string();
    const std::string loss_svg = (fs::path(o.out) / "timeseries_loss.svg").string();
    sg::plot::line_chart_svg(svg, chart,
                             "Test sequence 0 (" + o.cell +
                                 "): one-step predictions; free-running forecast from step " + std::to_string(warm),
                             "step", "value");
    sg::plot::write_csv(csv, chart);
    sg::plot::line_chart_svg(loss_svg,
                             {{"train mse", curve_x, curve_train},
                              {"test mse", curve_x, curve_test},
                              {"naive last-value mse", {curve_x.front(), curve_x.back()}, {naive_mse, naive_mse}},
                              {"noise floor",
                               {curve_x.front(), curve_x.back()},
                               {o.noise * o.noise, o.noise * o.noise}}},
                             "Learning curve (" + o.cell + ")", "training step", "mean squared error", true);
    std::printf("wrote %s, %s and %s\n\n", svg.c_str(), csv.c_str(), loss_svg.c_str());

    std::printf("result timeseries.mse %.5f mse\n", final_mse);
    std::printf("result timeseries.naive_mse %.5f mse\n", naive_mse);
    std::printf("result timeseries.ratio %.3f fraction\n", final_mse / naive_mse);
    std::printf("result timeseries.noise_floor %.5f mse\n", o.noise * o.noise);
    std::printf("result timeseries.forecast_mse %.5f mse\n", fc_mse);
    std::printf("result timeseries.forecast_naive_mse %.5f mse\n", fc_naive);
    std::printf("result timeseries.train_seconds %.1f s\n", train_seconds);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::main("timeseries", argc, argv, parse_args, [](const options& o) {
        sg::set_blas_threads(o.threads);  // one thread is fastest for products this small
        // Fail now, not after training.
        cli::make_output_folder(o.out,
                                {"timeseries_prediction.svg", "timeseries_prediction.csv", "timeseries_loss.svg"});
        return o.cell == "gru" ? run<nn::gru_cell>(o) : run<nn::lstm_cell>(o);
    });
}
