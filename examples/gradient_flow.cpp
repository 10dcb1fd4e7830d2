// gradient_flow: vanishing and exploding gradients made visible, on the adding problem.
//
// The task (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015): each sequence is T pairs
// (value in [0, 1], marker in {0, 1}); exactly two markers are 1, one in each half of the
// sequence; the target is the sum of the two marked values. The model reads the whole sequence and
// predicts the sum from its last state through a linear head; the loss is the mean squared error.
// Predicting 1 (the mean of the target) for every sequence scores 1/6 = 0.167 (the variance of a
// sum of two U(0, 1)), so anything near 0.167 has learnt nothing.
//
// Four models, hidden size --hidden (100):
//   tanh       tanh RNN with small recurrent weights: W_hh ~ N(0, 0.5^2 / H), spectral radius ~0.5
//   lstm       LSTM, PyTorch's default initialisation, forget-gate bias 1
//   irnn       relu RNN with W_hh = I and zero biases, W_ih ~ N(0, 0.001^2) (Le et al. 2015)
//   exploding  tanh RNN with large recurrent weights: W_hh ~ N(0, g^2 / H), g = --gain (2), so
//              spectral radius ~2 (circular law; the program prints the measured value)
//
// (a) At initialisation, one backward pass per model records ||dL/dh_t|| for every step t
//     (sg::record_gradient_flow over the states marked with tape::mark_state), on 100 held-out
//     sequences: the gradient that reaches step t from the loss at the last step. Written to
//     adding_gradient_flow.csv/.svg (log scale), and again after training to
//     adding_gradient_flow_trained.csv/.svg. The ratio ||dL/dh_0|| / ||dL/dh_{T-1}|| is printed as
//     `result grad_flow_ratio.<model>`: tiny for the small tanh RNN (vanishing), huge for the
//     large one (exploding), near 1 for the IRNN (its identity matrix passes gradients unchanged).
//     The LSTM's forget gates start near sigmoid(1) = 0.73, so at initialisation its curve decays
//     too, though by far less than the small tanh RNN's; training opens the gates (see the
//     trained curves).
// (b) Every model is trained twice on freshly drawn batches, without and with gradient clipping
//     (optim::clip_global_norm(--clip) on the step's gradient), and its MSE on --test held-out
//     sequences is reported: `result adding_mse.<model> <v> mse` and `result
//     adding_mse.<model>_clipped <v> mse` (nan if the run diverged). Learning curves go to
//     adding_test_mse.csv/.svg. All four use Adam, the learning rate decayed linearly to a tenth
//     over the run: 2e-3 for the LSTM, 5e-4 for the IRNN, 1e-3 for the tanh RNNs (--lr and --optim
//     override). The IRNN is the fragile one: with these settings it learns only when clipped
//     (single large gradients otherwise inflate Adam's second-moment estimate for hundreds of
//     steps), and when it learns depends on the seed.
//
//     gradient_flow                       # the full run: 8 trainings of 10,000 steps, T = 100
//     gradient_flow --quick               # a smoke test (seconds)
//     gradient_flow --models lstm,irnn --steps 3000 --out results/
//
// Every model is a cell run with nn::unroll (nn::lstm_cell, nn::rnn_cell); the gradient-flow pass
// marks each step's h. The engine makes the weight gradients of all steps one GEMM per weight, and
// the LSTM cell's pointwise part is one fused node: 6.5 ms per LSTM training step (H 100, B 20,
// T 100, one thread) against 6.3 ms through the hand-fused nn::lstm_layer this example used before.
//
// Parallelism: the 8 trainings are independent, so they run side by side on --jobs threads (each
// its own parameter store and tape; BLAS on one thread each, the products here are small). That
// uses the cores far better than splitting a batch of 20 across threads. Every run is seeded on
// its own, so the numbers do not depend on --jobs.
//
// Exit codes: 0 done, 1 cannot write the output or a run failed, 2 bad command line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <xtensor/xview.hpp>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/init.hpp>
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
    std::string out = ".";
    std::vector<std::string> models = {"lstm", "irnn", "tanh", "exploding"};
    std::size_t T = 100, steps = 10000, batch = 20, hidden = 100, test = 1000, eval_every = 500, jobs = 0;
    double clip = 1.0, lr = 0;  // lr 0: each model's own default
    double gain = 2.0;          // the exploding RNN's W_hh ~ N(0, gain^2 / H)
    std::string optimiser;      // empty: each model's own
    std::string runs = "both";  // plain, clipped or both
    std::uint64_t seed = 1;
    bool quick = false;
};

const char* const usage = R"(usage: gradient_flow [options]
The adding problem: gradient flow at initialisation and test MSE after training, for a tanh RNN,
an LSTM, an IRNN and an RNN with exploding gradients, each trained with and without clipping.
  --T N             sequence length (100)
  --steps N         training steps per run, a fresh batch each (10000)
  --batch N         sequences per training step (20)
  --hidden N        hidden units of every model (100)
  --models LIST     comma-separated, from lstm,irnn,tanh,exploding (all four)
  --clip X          max global gradient norm of the clipped runs (1)
  --gain X          the exploding RNN's W_hh ~ N(0, X^2 / H), spectral radius ~X (2)
  --lr X            learning rate for every model (default: each model's own, see the table)
  --optim NAME      adam, sgd (momentum 0.9) or rmsprop for every model (default: each model's own)
  --runs WHICH      plain, clipped or both (both)
  --test N          held-out test sequences (1000)
  --eval-every N    test and report every N steps (500)
  --jobs N          trainings run side by side (default: the number of cores)
  --seed N          seed of weights and training data (1); the test set is fixed
  --out DIR         where to write the CSV and SVG files (.)
  --quick           smoke test: T 30, 300 steps, 200 test sequences (options given later win)
  --help            this text
)";

const std::vector<std::string> all_models = {"lstm", "irnn", "tanh", "exploding"};

options parse_args(int argc, char** argv) {
    options o;
    const std::size_t one = 1;
    cli::parse_options(argc, argv,
                       {{"--out", cli::text(o.out)},
                        {"--models", cli::list_of(o.models, all_models)},
                        {"--T", cli::number(o.T, std::size_t{2})},
                        {"--steps", cli::number(o.steps, one)},
                        {"--batch", cli::number(o.batch, one)},
                        {"--hidden", cli::number(o.hidden, one)},
                        {"--test", cli::number(o.test, one)},
                        {"--eval-every", cli::number(o.eval_every, one)},
                        {"--jobs", cli::number(o.jobs, one)},
                        {"--clip", cli::number(o.clip, 0.0, true)},
                        {"--lr", cli::number(o.lr, 0.0, true)},
                        {"--gain", cli::number(o.gain, 0.0, true)},
                        {"--optim", cli::one_of(o.optimiser, {"adam", "sgd", "rmsprop"})},
                        {"--runs", cli::one_of(o.runs, {"plain", "clipped", "both"})},
                        {"--seed", cli::number(o.seed, std::uint64_t{0})}},
                       usage, {{"--quick", [&] {
                                    o.quick = true;
                                    o.T = 30, o.steps = 300, o.test = 200, o.eval_every = 100;
                                }}});
    if (o.jobs == 0) o.jobs = std::max(1u, std::thread::hardware_concurrency());
    // Sequences of --T steps of 2 values.
    cli::check_count("--T", o.T, 2, "2 values a step");
    cli::check_count("--batch", o.batch, 2 * o.T, "--T " + std::to_string(o.T));
    cli::check_count("--test", o.test, 2 * o.T, "--T " + std::to_string(o.T));
    return o;
}

// ---- data ------------------------------------------------------------------------------------

// A batch of B adding-problem sequences, time-major: step t of sequence b is
// (x[(t * B + b) * 2], x[(t * B + b) * 2 + 1]) = (value, marker); y[b] is the target.
struct batch_data {
    std::size_t T = 0, B = 0;
    std::vector<float> x, y;
};

batch_data draw(std::size_t B, std::size_t T, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> value(0.0f, 1.0f);
    std::uniform_int_distribution<std::size_t> first(0, T / 2 - 1), second(T / 2, T - 1);
    batch_data d{T, B, std::vector<float>(T * B * 2), std::vector<float>(B)};
    for (std::size_t b = 0; b < B; ++b) {
        const std::size_t m1 = first(rng), m2 = second(rng);
        for (std::size_t t = 0; t < T; ++t) {
            float* p = &d.x[(t * B + b) * 2];
            p[0] = value(rng);
            p[1] = t == m1 || t == m2 ? 1.0f : 0.0f;
        }
        d.y[b] = d.x[(m1 * B + b) * 2] + d.x[(m2 * B + b) * 2];
    }
    return d;
}

// Steps as T inputs [B, 2] (what nn::unroll takes), views of one [T, B, 2] input.
std::vector<sg::expr> step_inputs(sg::tape& t, const batch_data& d) {
    return nn::unstack_steps(t.input<float>(sg::shape{d.T, d.B, 2}, std::span<const float>(d.x)));
}
sg::expr targets(sg::tape& t, const batch_data& d) {
    return t.input<float>(sg::shape{d.B, 1}, std::span<const float>(d.y));
}

// ---- models ----------------------------------------------------------------------------------

struct model_info {
    const char* name;
    const char* description;
    const char* optimiser;
    double lr;
};

model_info info(const std::string& name) {
    if (name == "lstm") return {"lstm", "LSTM, forget-gate bias 1", "adam", 2e-3};
    if (name == "irnn") return {"irnn", "relu RNN, W_hh = I (IRNN)", "adam", 5e-4};
    if (name == "tanh") return {"tanh", "tanh RNN, small W_hh", "adam", 1e-3};
    return {"exploding", "tanh RNN, large W_hh", "adam", 1e-3};
}

std::unique_ptr<sg::optim::optimizer> make_optimiser(const options& o, const std::string& kind, double lr,
                                                     sg::parameter_store& ps) {
    const std::string name = o.optimiser.empty() ? info(kind).optimiser : o.optimiser;
    if (name == "sgd") return std::make_unique<sg::optim::sgd>(ps, sg::optim::sgd_options{.lr = lr, .momentum = 0.9});
    if (name == "rmsprop") return std::make_unique<sg::optim::rmsprop>(ps, sg::optim::rmsprop_options{.lr = lr});
    return std::make_unique<sg::optim::adam>(ps, lr);
}

// Spectral radius of a square matrix by Gelfand's formula, rho = lim ||W^k v||^(1/k): the mean
// log growth of a vector multiplied by W again and again (robust to complex eigenvalue pairs,
// unlike plain power iteration's eigenvalue estimate).
double spectral_radius(const xt::xarray<double>& w) {
    const std::size_t n = w.shape()[0];
    std::vector<double> v(n, 1.0 / std::sqrt(static_cast<double>(n))), u(n);
    for (std::size_t i = 0; i < n; ++i) v[i] *= 1.0 + 0.37 * std::sin(1.0 + static_cast<double>(i));
    double log_growth = 0;
    const int warm = 100, iters = 1000;
    for (int k = 0; k < warm + iters; ++k) {
        double norm = 0;
        for (std::size_t i = 0; i < n; ++i) {
            double s = 0;
            for (std::size_t j = 0; j < n; ++j) s += w(i, j) * v[j];
            u[i] = s;
            norm += s * s;
        }
        norm = std::sqrt(norm);
        if (norm == 0) return 0;
        for (std::size_t i = 0; i < n; ++i) v[i] = u[i] / norm;
        if (k >= warm) log_growth += std::log(norm);
    }
    return std::exp(log_growth / iters);
}

// One of the four models, with its own parameter store: an LSTM or an Elman cell, and a linear
// head from the last hidden state to the prediction.
struct model {
    std::string name;
    sg::parameter_store ps;
    std::optional<nn::lstm_cell> lstm;
    std::optional<nn::rnn_cell> rnn;
    std::optional<nn::linear> head;

    model(const std::string& kind, std::size_t hidden, double gain, std::mt19937_64& rng) : name(kind) {
        const std::size_t H = hidden;
        if (kind == "lstm") {
            lstm.emplace(sg::parameter_scope(ps, "lstm"), 2, H, rng);  // U(-1/sqrt(H), 1/sqrt(H))
            nn::lstm_forget_bias(lstm->b_ih, 1.0);                     // effective forget bias:
            nn::lstm_forget_bias(lstm->b_hh, 0.0);                     // b_ih + b_hh = 1 exactly
        } else {
            rnn.emplace(sg::parameter_scope(ps, "rnn"), 2, H,
                        kind == "irnn" ? nn::rnn_activation::relu : nn::rnn_activation::tanh, rng);
            if (kind == "irnn") {
                nn::identity(rnn->w_hh);
                nn::normal(rnn->w_ih, 0.0, 1e-3, rng);
                nn::zeros(rnn->b_ih);
                nn::zeros(rnn->b_hh);
            } else {
                const double g = kind == "tanh" ? 0.5 : gain;  // spectral radius ~g (circular law)
                nn::normal(rnn->w_hh, 0.0, g / std::sqrt(static_cast<double>(H)), rng);
            }
        }
        head.emplace(sg::parameter_scope(ps, "head"), H, 1, true, rng);
    }

    double recurrent_spectral_radius() const {
        if (rnn) return spectral_radius(rnn->w_hh.value_as_double());
        // The LSTM's candidate block; its gradient path is the cell state, gated by f.
        const auto w = lstm->w_hh.value_as_double();
        const std::size_t H = lstm->hidden_size;
        return spectral_radius(xt::xarray<double>(xt::view(w, xt::range(2 * H, 3 * H), xt::all())));
    }

    // The prediction [B, 1] for training and testing.
    sg::expr predict(sg::tape& t, const batch_data& d) const {
        const auto xs = step_inputs(t, d);
        const std::span<const sg::expr> steps(xs);
        if (lstm) return (*head)(nn::unroll(t, *lstm, steps).back().h);
        return (*head)(nn::unroll(t, *rnn, steps).back());
    }

    // The prediction through the composed cells, marking each step's hidden state h_t so that
    // record_gradient_flow reports ||dL/dh_t||.
    sg::expr predict_marked(sg::tape& t, const batch_data& d) const {
        const auto xs = step_inputs(t, d);
        const std::span<const sg::expr> steps(xs);
        if (lstm) {
            const auto states = nn::unroll(t, *lstm, steps);
            for (const auto& s : states) t.mark_state(s.h);
            return (*head)(states.back().h);
        }
        const auto states = nn::unroll(t, *rnn, steps);
        for (const auto& h : states) t.mark_state(h);
        return (*head)(states.back());
    }

    // ||dL/dh_t|| for t = 0 .. T-1 on batch d (parameter gradients are left at zero).
    std::vector<double> gradient_flow(const batch_data& d) {
        sg::tape t;
        const sg::expr loss = sg::mse_loss(predict_marked(t, d), targets(t, d));
        sg::gradient_flow flow;
        t.backward(loss, sg::record_gradient_flow(flow));
        ps.zero_grad();
        return flow.norm;
    }

    double test_mse(const batch_data& test) const {
        sg::tape t;
        return t.item(sg::mse_loss(predict(t, test), targets(t, test)));
    }
};

// ---- one training run ------------------------------------------------------------------------

struct run_result {
    std::string model, label;
    bool clipped = false;
    double mse = NAN, seconds = 0, mean_grad_norm = 0, clipped_fraction = 0;
    std::size_t steps_done = 0;
    bool diverged = false;
    std::vector<double> curve_x, curve_mse, flow_trained;
    std::string error;
};

std::mutex print_mu;
template <class... A>
void say(const char* fmt, A... a) {
    std::lock_guard<std::mutex> lock(print_mu);
    std::printf(fmt, a...);
    std::fflush(stdout);
}

run_result train(const options& o, const std::string& kind, bool clipped, const batch_data& test,
                 const batch_data& flow_batch) {
    run_result r;
    r.model = kind;
    r.clipped = clipped;
    r.label = kind + (clipped ? "_clipped" : "");
    // Weights: the same for the clipped and the unclipped run of a model; data: likewise.
    const std::size_t index = static_cast<std::size_t>(std::find(all_models.begin(), all_models.end(), kind) -
                                                       all_models.begin());
    std::mt19937_64 init_rng(o.seed * 1000 + index), data_rng(o.seed * 1000 + 500 + index);
    model m(kind, o.hidden, o.gain, init_rng);
    const double lr = o.lr > 0 ? o.lr : info(kind).lr;  // decayed linearly to a tenth over the run
    const auto opt = make_optimiser(o, kind, lr, m.ps);
    sg::tape t;
    double grad_norm_sum = 0;
    std::size_t clipped_steps = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t step = 1; step <= o.steps; ++step) {
        const batch_data d = draw(o.batch, o.T, data_rng);
        t.clear();
        const sg::expr loss = sg::mse_loss(m.predict(t, d), targets(t, d));
        t.backward(loss);
        // The store's gradients are this step's alone (step() zeroes them): clip there, or only
        // measure (an infinite threshold), with the same kernel either way.
        const double grad_norm = sg::optim::clip_global_norm(m.ps, clipped ? o.clip
                                                                           : std::numeric_limits<double>::infinity());
        if (!std::isfinite(t.item(loss)) || !std::isfinite(grad_norm)) {
            r.diverged = true;
            say("%-18s step %5zu  diverged: loss %g, gradient norm %g\n", r.label.c_str(), step, t.item(loss),
                grad_norm);
            break;
        }
        opt->set_learning_rate(lr * (1 - 0.9 * static_cast<double>(step - 1) / static_cast<double>(o.steps)));
        opt->step();
        r.steps_done = step;
        grad_norm_sum += grad_norm;
        clipped_steps += clipped && grad_norm > o.clip;
        if (step % o.eval_every == 0 || step == o.steps) {
            const double mse = m.test_mse(test);
            r.curve_x.push_back(static_cast<double>(step));
            r.curve_mse.push_back(mse);
            say("%-18s step %5zu  test mse %.5f  train loss %.5f  grad norm %.3g  (%.0f s)\n", r.label.c_str(), step,
                mse, t.item(loss), grad_norm,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.mse = r.diverged ? NAN : m.test_mse(test);
    if (!std::isfinite(r.mse)) r.diverged = true;
    r.mean_grad_norm = r.steps_done ? grad_norm_sum / static_cast<double>(r.steps_done) : NAN;
    r.clipped_fraction = r.steps_done ? static_cast<double>(clipped_steps) / static_cast<double>(r.steps_done) : 0;
    if (!r.diverged) r.flow_trained = m.gradient_flow(flow_batch);
    return r;
}

// ---- output ----------------------------------------------------------------------------------

// The flow curves as one CSV (step, one column per model) and one log-scale chart.
void write_flow(const options& o, const std::string& stem, const std::vector<std::string>& names,
                const std::vector<std::vector<double>>& curves, const std::string& title) {
    std::vector<std::string> header{"step"};
    header.insert(header.end(), names.begin(), names.end());
    std::vector<std::vector<double>> rows(o.T);
    std::vector<sg::plot::series> chart;
    for (std::size_t s = 0; s < o.T; ++s) rows[s].push_back(static_cast<double>(s));
    for (std::size_t k = 0; k < names.size(); ++k) {
        sg::plot::series ser{names[k], {}, {}};
        for (std::size_t s = 0; s < o.T; ++s) {
            const double v = s < curves[k].size() ? curves[k][s] : NAN;
            rows[s].push_back(v);
            ser.x.push_back(static_cast<double>(s));
            ser.y.push_back(v);
        }
        chart.push_back(std::move(ser));
    }
    const std::string csv = (fs::path(o.out) / (stem + ".csv")).string(),
                      svg = (fs::path(o.out) / (stem + ".svg")).string();
    sg::plot::write_csv(csv, header, rows);
    sg::plot::line_chart_svg(svg, chart, title,
                             "time step t (the loss reads the last step, t = " + std::to_string(o.T - 1) + ")",
                             "||dL/dh_t||", true);
    std::printf("wrote %s and %s\n", csv.c_str(), svg.c_str());
}

int run(const options& o) {
    sg::set_blas_threads(1);  // products of [20, 100] x [100, 100]: one thread is fastest
    sg::set_num_threads(1);   // each training is serial; the runs themselves are spread over --jobs threads
    const auto wall = std::chrono::steady_clock::now();
    cli::make_output_folder(o.out, {"adding_gradient_flow.csv", "adding_gradient_flow.svg", "adding_test_mse.csv",
                                    "adding_test_mse.svg", "adding_gradient_flow_trained.csv",
                                    "adding_gradient_flow_trained.svg"});  // fail now, not after training
    std::mt19937_64 test_rng(20240917);
    const batch_data test = draw(o.test, o.T, test_rng);
    const batch_data flow_batch = draw(std::min<std::size_t>(o.test, 100), o.T, test_rng);
    double baseline = 0;  // predict 1 for every sequence
    for (float y : test.y) baseline += (y - 1.0) * (y - 1.0);
    baseline /= static_cast<double>(test.y.size());
    std::printf(
        "adding problem: T %zu, batch %zu, %zu steps per run, hidden %zu, %zu test sequences; clip %g; %zu jobs\n", o.T,
        o.batch, o.steps, o.hidden, o.test, o.clip, o.jobs);

    // (a) Gradient flow at initialisation.
    std::vector<std::vector<double>> flows;
    std::printf("\n%-10s %-28s %8s %12s %12s %12s  %s\n", "model", "", "rho(W)", "|dL/dh_T-1|", "|dL/dh_T/2|",
                "|dL/dh_0|", "first/last");
    for (const auto& kind : o.models) {
        std::mt19937_64 init_rng(
            o.seed * 1000 +
            static_cast<std::size_t>(std::find(all_models.begin(), all_models.end(), kind) - all_models.begin()));
        model m(kind, o.hidden, o.gain, init_rng);
        flows.push_back(m.gradient_flow(flow_batch));
        const auto& f = flows.back();
        std::printf("%-10s %-28s %8.3f %12.3g %12.3g %12.3g  %.3g\n", kind.c_str(), info(kind).description,
                    m.recurrent_spectral_radius(), f.back(), f[o.T / 2], f.front(), f.front() / f.back());
    }
    std::printf("(rho: spectral radius of W_hh; for the LSTM, of its candidate block)\n");
    write_flow(o, "adding_gradient_flow", o.models, flows,
               "Adding problem, T = " + std::to_string(o.T) + ": gradient reaching step t at initialisation");
    for (std::size_t k = 0; k < o.models.size(); ++k)
        std::printf("result grad_flow_ratio.%s %.4g ratio\n", o.models[k].c_str(), flows[k].front() / flows[k].back());

    // (b) Training, with and without clipping, on o.jobs threads.
    std::printf("\n");
    std::vector<std::pair<std::string, bool>> jobs;
    for (bool clip : {false, true})
        if (o.runs == "both" || (o.runs == "clipped") == clip)
            for (const auto& kind : o.models) jobs.emplace_back(kind, clip);
    std::vector<run_result> results(jobs.size());
    std::vector<std::exception_ptr> out_of_memory(jobs.size());  // rethrown after the join, for cli::main to report
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
        for (std::size_t i; (i = next++) < jobs.size();) {
            try {
                results[i] = train(o, jobs[i].first, jobs[i].second, test, flow_batch);
            } catch (const std::bad_alloc&) {  // the sizes, not this run: "failed: std::bad_alloc" would say little
                out_of_memory[i] = std::current_exception();
            } catch (const std::exception& e) {
                results[i].label = jobs[i].first + (jobs[i].second ? "_clipped" : "");
                results[i].error = e.what();
            }
        }
    };
    std::vector<std::thread> threads;
    for (std::size_t j = 0; j < std::min(o.jobs, jobs.size()); ++j) threads.emplace_back(worker);
    for (auto& th : threads) th.join();
    for (const auto& e : out_of_memory)
        if (e) std::rethrow_exception(e);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count();

    // Learning curves and gradient flow after training.
    std::vector<sg::plot::series> curves;
    std::vector<std::string> trained_names;
    std::vector<std::vector<double>> trained_flows;
    for (const auto& r : results) {
        if (!r.error.empty()) continue;
        curves.push_back({r.label, r.curve_x, r.curve_mse});
        if (!r.flow_trained.empty()) {
            trained_names.push_back(r.label);
            trained_flows.push_back(r.flow_trained);
        }
    }
    if (!curves.empty()) {
        const double last = static_cast<double>(o.steps);
        curves.push_back({"predict 1 (baseline)", {0, last}, {baseline, baseline}});
        const std::string csv = (fs::path(o.out) / "adding_test_mse.csv").string(),
                          svg = (fs::path(o.out) / "adding_test_mse.svg").string();
        sg::plot::write_csv(csv, curves);
        sg::plot::line_chart_svg(svg, curves,
                                 "Adding problem, T = " + std::to_string(o.T) + ": test MSE during training",
                                 "training step (batch " + std::to_string(o.batch) + ")", "test MSE", true);
        std::printf("\nwrote %s and %s\n", csv.c_str(), svg.c_str());
    }
    if (!trained_flows.empty())
        write_flow(o, "adding_gradient_flow_trained", trained_names, trained_flows,
                   "Adding problem, T = " + std::to_string(o.T) + ": gradient reaching step t after training");

    std::printf("\n%-18s %10s %8s %12s %10s %8s\n", "run", "test mse", "steps", "mean |grad|", "clipped", "seconds");
    int status = 0;
    for (const auto& r : results) {
        if (!r.error.empty()) {
            std::printf("%-18s failed: %s\n", r.label.c_str(), r.error.c_str());
            status = 1;
            continue;
        }
        std::printf("%-18s %10.5f %8zu %12.3g %9.0f%% %8.0f%s\n", r.label.c_str(), r.mse, r.steps_done,
                    r.mean_grad_norm, 100 * r.clipped_fraction, r.seconds, r.diverged ? "  (diverged)" : "");
    }
    std::printf("\n");
    for (const auto& r : results)
        if (r.error.empty()) std::printf("result adding_mse.%s %.5f mse\n", r.label.c_str(), r.mse);
    std::printf("result adding_mse.baseline_predict_1 %.5f mse\n", baseline);
    std::printf("result adding.wall_seconds %.0f s\n", seconds);
    return status;
}

}  // namespace

int main(int argc, char** argv) { return cli::main("gradient_flow", argc, argv, parse_args, run); }
