// The recurrent part alone against oneDNN's LSTM primitive (vanilla_lstm, f32,
// unidirectional_left2right, forward_training + backward), side by side in one process, on the
// LSTM of bench/lstm_lm's three configs (I = E, H, T, B). Built only where CMake finds oneDNN
// (Debian libdnnl-dev); adapted from ../shared/peers/lstm_layer_bench.cpp.
//
// One step = zero the weight gradients, forward, backward computing dx, dW_ih, dW_hh and the
// bias gradient, from a zero initial state; input x [T*B, I] (time-major) and output gradient dy
// [T*B, H] fixed random, the same weights on every side.
//   onednn:  lstm_forward (workspace) + lstm_backward, weights in the layouts the primitives pick
//            (format_tag::any), reordered once at set-up; oneDNN adds into its diff weights, so
//            they are zeroed each step. The zero initial state is passed as explicit zero
//            src_iter/src_iter_c memories: with oneDNN 2.6.3, leaving them out (an empty memory
//            descriptor, the documented way) gives a wrong diff_weights_iter.
//   layer:   seqgrad's nn::detail::lstm_layer (fused: one GEMM for the input projections of all steps,
//            at B >= 8 the forward of all steps one lstm_run node and the steps' backward one
//            call, else one lstm_step node per step); tape.backward(hidden_all, dy).
//   layer_nochains (--ab-chains): the same with detail::set_recurrence_chains(false), in the same
//            rounds, for an A/B on this noisy kind of machine; --no-chains turns them off throughout.
//   unroll:  nn::lstm_cell through nn::unroll over the sequence (a cell as a user writes one; the
//            library runs it as the fused layer), the same backward.
//   onednn_reorder (--with-reorder): oneDNN with the user's weights reordered into the primitives'
//            layouts in every step, as training pays after each update (the floors of issue 12 and
//            ../shared/peers read oneDNN without it).
//   onednn_forward, layer_forward (--forward): the forward pass alone (oneDNN's forward_training,
//            which writes the workspace backward reads; seqgrad's tape built and run to hidden_all,
//            keeping what backward reads), in the same rounds: with the full steps, which side's
//            lead or lag is in the forward and which in the backward.
// Threads: omp_set_num_threads(n) for oneDNN, sg::set_num_threads(n) for seqgrad (the executor
// decides what to split). Sides alternate in windows (0.3 s pauses so idle OpenMP spinners sleep);
// figures are medians over windows; every ratio is seqgrad / oneDNN (> 1: seqgrad faster).
//
//     lstm_onednn [--config char_b1,char_b32,word_b20] [--threads 1,2] [--seconds 1] [--windows 3]
//                 [--no-unroll] [--no-chains] [--ab-chains] [--with-reorder] [--forward]
//
// First a check per config: seqgrad's h and gradients against oneDNN's (max relative error).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/seqgrad.hpp>

#include "bench/median.hpp"
#include "examples/cli.hpp"

using seqgrad::bench::median;

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace cli = seqgrad::cli;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

struct config {
    std::string name;
    std::size_t I, H, T, B;
};
const config configs[] = {{"char_b1", 128, 128, 64, 1}, {"char_b32", 128, 128, 64, 32}, {"word_b20", 256, 256, 35, 20}};

// The weights (a seqgrad cell: w_ih [4H, I], w_hh [4H, H], gates i, f, g, o = oneDNN's ldgoi), x, dy.
struct problem {
    config c;
    sg::parameter_store ps{sg::dtype::f32};
    nn::lstm_cell cell;
    sg::parameter px;
    xt::xarray<float> dy;  // float, as oneDNN's diff_dst: the seed an f32 tape takes unconverted

    problem(const config& cfg, std::mt19937_64& rng)
        : c(cfg),
          cell(sg::parameter_scope(ps, "lstm"), cfg.I, cfg.H, rng),
          px(ps.add("x", sg::shape{cfg.T * cfg.B, cfg.I})) {
        std::uniform_real_distribution<float> u(-1, 1);
        for (float& v : px.value<float>()) v = u(rng);
        dy = xt::zeros<float>({c.T * c.B, c.H});
        for (float& v : dy) v = u(rng);
    }
    void zero_grads() {
        for (const sg::parameter& q : ps.parameters()) std::fill(q.grad<float>().begin(), q.grad<float>().end(), 0.0f);
    }
};

struct onednn_lstm {
    dnnl::engine eng{dnnl::engine::kind::cpu, 0};
    dnnl::stream s{eng};
    dnnl::lstm_forward fwd;
    dnnl::lstm_backward bwd;
    memory dst, diff_src, diff_wl, diff_wi, diff_bias;
    std::vector<float> wl_user, wi_user, bias_user;
    std::unordered_map<int, memory> fwd_args, bwd_args;
    memory::dims wl_dims, wi_dims, bias_dims;
    memory user[3], in_layout[6];  // weights: the user's (ldgoi, ldgo), the forward's and backward's layouts
    dnnl::reorder reorders[6];

    explicit onednn_lstm(const problem& p) {
        const memory::dim T = memory::dim(p.c.T), B = memory::dim(p.c.B), I = memory::dim(p.c.I),
                          H = memory::dim(p.c.H);
        wl_dims = {1, 1, I, 4, H};
        wi_dims = {1, 1, H, 4, H};
        bias_dims = {1, 1, 4, H};
        const memory::desc src_md({T, B, I}, dt::f32, tag::tnc), dst_md({T, B, H}, dt::f32, tag::tnc);
        const memory::desc wl_any(wl_dims, dt::f32, tag::any), wi_any(wi_dims, dt::f32, tag::any);
        const memory::desc bias_any(bias_dims, dt::f32, tag::any), iter_md({1, 1, B, H}, dt::f32, tag::ldnc), none;
        const auto dir = dnnl::rnn_direction::unidirectional_left2right;
        dnnl::lstm_forward::desc fd(dnnl::prop_kind::forward_training, dir, src_md, iter_md, iter_md, wl_any, wi_any,
                                    bias_any, dst_md, none, none);
        const dnnl::lstm_forward::primitive_desc fpd(fd, eng);
        dnnl::lstm_backward::desc bd(dnnl::prop_kind::backward, dir, src_md, iter_md, iter_md, wl_any, wi_any, bias_any,
                                     dst_md, none, none, src_md, iter_md, iter_md, wl_any, wi_any, bias_any, dst_md,
                                     none, none);
        const dnnl::lstm_backward::primitive_desc bpd(bd, eng, fpd);
        fwd = dnnl::lstm_forward(fpd);
        bwd = dnnl::lstm_backward(bpd);
        if (fpd.dst_layer_desc() != dst_md || bpd.diff_src_layer_desc() != src_md)
            throw std::runtime_error("oneDNN chose a non-tnc activation layout");

        wl_user.assign(p.cell.w_ih.value<float>().begin(), p.cell.w_ih.value<float>().end());
        wi_user.assign(p.cell.w_hh.value<float>().begin(), p.cell.w_hh.value<float>().end());
        for (std::size_t i = 0; i < 4 * p.c.H; ++i)
            bias_user.push_back(p.cell.b_ih.value<float>().data()[i] + p.cell.b_hh.value<float>().data()[i]);
        user[0] = memory({wl_dims, dt::f32, tag::ldgoi}, eng, wl_user.data());
        user[1] = memory({wi_dims, dt::f32, tag::ldgoi}, eng, wi_user.data());
        user[2] = memory({bias_dims, dt::f32, tag::ldgo}, eng, bias_user.data());
        const memory::desc layouts[6] = {fpd.weights_layer_desc(), fpd.weights_iter_desc(), fpd.bias_desc(),
                                         bpd.weights_layer_desc(), bpd.weights_iter_desc(), bpd.bias_desc()};
        for (int i = 0; i < 6; ++i) {
            in_layout[i] = memory(layouts[i], eng);
            reorders[i] = dnnl::reorder(user[i % 3], in_layout[i]);
        }
        reorder_weights_in();
        memory src(src_md, eng), iter(iter_md, eng), iter_c(iter_md, eng), diff_dst(dst_md, eng);
        std::memcpy(src.get_data_handle(), p.px.value<float>().data(), src_md.get_size());
        std::memset(iter.get_data_handle(), 0, iter_md.get_size());
        std::memset(iter_c.get_data_handle(), 0, iter_md.get_size());
        float* dd = static_cast<float*>(diff_dst.get_data_handle());
        std::copy(p.dy.begin(), p.dy.end(), dd);
        dst = memory(dst_md, eng);
        diff_src = memory(src_md, eng);
        diff_wl = memory(bpd.diff_weights_layer_desc(), eng);
        diff_wi = memory(bpd.diff_weights_iter_desc(), eng);
        diff_bias = memory(bpd.diff_bias_desc(), eng);
        memory ws(fpd.workspace_desc(), eng);
        fwd_args = {{DNNL_ARG_SRC_LAYER, src},
                    {DNNL_ARG_SRC_ITER, iter},
                    {DNNL_ARG_SRC_ITER_C, iter_c},
                    {DNNL_ARG_WEIGHTS_LAYER, in_layout[0]},
                    {DNNL_ARG_WEIGHTS_ITER, in_layout[1]},
                    {DNNL_ARG_BIAS, in_layout[2]},
                    {DNNL_ARG_DST_LAYER, dst},
                    {DNNL_ARG_WORKSPACE, ws}};
        bwd_args = {{DNNL_ARG_SRC_LAYER, src},
                    {DNNL_ARG_SRC_ITER, iter},
                    {DNNL_ARG_SRC_ITER_C, iter_c},
                    {DNNL_ARG_DIFF_SRC_ITER, memory(iter_md, eng)},
                    {DNNL_ARG_DIFF_SRC_ITER_C, memory(iter_md, eng)},
                    {DNNL_ARG_WEIGHTS_LAYER, in_layout[3]},
                    {DNNL_ARG_WEIGHTS_ITER, in_layout[4]},
                    {DNNL_ARG_BIAS, in_layout[5]},
                    {DNNL_ARG_DST_LAYER, dst},
                    {DNNL_ARG_DIFF_DST_LAYER, diff_dst},
                    {DNNL_ARG_DIFF_SRC_LAYER, diff_src},
                    {DNNL_ARG_DIFF_WEIGHTS_LAYER, diff_wl},
                    {DNNL_ARG_DIFF_WEIGHTS_ITER, diff_wi},
                    {DNNL_ARG_DIFF_BIAS, diff_bias},
                    {DNNL_ARG_WORKSPACE, ws}};
        s.wait();
    }

    // User weights -> the primitives' layouts: what training pays after each update of the weights
    // (--with-reorder); the figures the floors are read against leave it out, as ../shared/peers does.
    void reorder_weights_in() {
        for (int i = 0; i < 6; ++i) reorders[i].execute(s, user[i % 3], in_layout[i]);
        s.wait();
    }

    void forward() {
        fwd.execute(s, fwd_args);
        s.wait();
    }

    void step() {
        for (memory* m : {&diff_wl, &diff_wi, &diff_bias})
            std::memset(m->get_data_handle(), 0, m->get_desc().get_size());
        fwd.execute(s, fwd_args);
        bwd.execute(s, bwd_args);
        s.wait();
    }

    // A diff weight in the user's plain layout (ldgoi / ldgo).
    std::vector<float> plain(memory& m, const memory::dims& dims, tag t, std::size_t n) {
        std::vector<float> out(n);
        memory to({dims, dt::f32, t}, eng, out.data());
        dnnl::reorder(m, to).execute(s, m, to);
        s.wait();
        return out;
    }
};

// seqgrad's side: the fused layer, or the cell through unroll.
struct seqgrad_lstm {
    problem& p;
    bool unrolled;
    nn::detail::lstm_layer layer;
    sg::tape t{sg::dtype::f32};
    sg::expr out;

    seqgrad_lstm(problem& prob, bool through_unroll) : p(prob), unrolled(through_unroll), layer(prob.cell) {}
    void forward() {
        t.clear();
        const std::size_t T = p.c.T, B = p.c.B;
        if (!unrolled) out = layer(t.param(p.px), B).hidden_all();
        else {
            const sg::expr seq = sg::reshape(t.param(p.px), {T, B, p.c.I});
            const sg::expr zero = t.constant(0.0, {B, p.c.H});
            std::vector<sg::expr> hs;
            for (const auto& s : nn::unroll(t, p.cell, seq, nn::lstm_state{zero, zero})) hs.push_back(s.h);
            out = sg::reshape(nn::stack_steps(hs), {T * B, p.c.H});
        }
    }
    void step() {
        p.zero_grads();
        forward();
        t.backward(out, p.dy);
    }
};

double max_rel(const float* a, const float* ref, std::size_t n) {
    double d = 0, m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        d = std::max(d, std::abs(double(a[i]) - double(ref[i])));
        m = std::max(m, std::abs(double(ref[i])));
    }
    return m > 0 ? d / m : d;
}

// seqgrad (both paths) against oneDNN on the same data; true when all agree within 1e-4.
bool check(const config& c) {
    std::mt19937_64 rng(7);
    problem p(c, rng);
    onednn_lstm o(p);
    o.step();
    const std::size_t G = 4 * c.H;
    const auto dwl = o.plain(o.diff_wl, o.wl_dims, tag::ldgoi, G * c.I);
    const auto dwi = o.plain(o.diff_wi, o.wi_dims, tag::ldgoi, G * c.H);
    const auto db = o.plain(o.diff_bias, o.bias_dims, tag::ldgo, G);
    bool ok = true;
    for (bool unrolled : {false, true}) {
        seqgrad_lstm s(p, unrolled);
        s.step();
        const auto y = s.t.data<float>(s.out);
        const double e[5] = {max_rel(y.data, static_cast<const float*>(o.dst.get_data_handle()), c.T * c.B * c.H),
                             max_rel(p.px.grad<float>().data(), static_cast<const float*>(o.diff_src.get_data_handle()),
                                     c.T * c.B * c.I),
                             max_rel(p.cell.w_ih.grad<float>().data(), dwl.data(), dwl.size()),
                             max_rel(p.cell.w_hh.grad<float>().data(), dwi.data(), dwi.size()),
                             max_rel(p.cell.b_ih.grad<float>().data(), db.data(), db.size())};
        const bool good = *std::max_element(e, e + 5) < 1e-4;
        ok = ok && good;
        std::printf(
            "check lstm_onednn.%s.%s vs oneDNN max rel. error: h %.1e, dx %.1e, dW_ih %.1e, dW_hh %.1e, "
            "db %.1e: %s\n",
            c.name.c_str(), unrolled ? "unroll" : "layer", e[0], e[1], e[2], e[3], e[4], good ? "ok" : "FAILED");
    }
    return ok;
}

using clock_type = std::chrono::steady_clock;

// tokens/s of `step` over a window of at least `seconds` and 3 steps.
double window(const std::function<void()>& step, double tokens, double seconds) {
    const auto t0 = clock_type::now();
    std::size_t n = 0;
    double dt = 0;
    while (n < 3 || dt < seconds) {
        step();
        ++n;
        dt = std::chrono::duration<double>(clock_type::now() - t0).count();
    }
    return tokens * double(n) / dt;
}

const char* const usage =
    "usage: lstm_onednn [--config char_b1,char_b32,word_b20] [--threads 1,2] [--seconds 1] [--windows 3]\n"
    "                   [--no-unroll] [--no-chains] [--ab-chains] [--with-reorder] [--forward]\n";

struct options {
    std::vector<std::string> names{"char_b1", "char_b32", "word_b20"};
    std::vector<int> threads = {1, 2};
    double seconds = 1;
    int windows = 3;
    bool with_unroll = true;
    bool ab_chains = false;     // also the layer without its sequence-level paths, in the same rounds
    bool with_reorder = false;  // also oneDNN with its weights reordered in every step
    bool forward = false;       // also the forward pass alone, on both sides
};

options parse_args(int argc, char** argv) {
    options o;
    const std::vector<std::string> all = o.names;
    cli::parse_options(argc, argv,
                       {{"--config", cli::list_of(o.names, all)},
                        {"--threads", cli::number_list(o.threads, 1)},
                        {"--seconds", cli::number(o.seconds, 0.0)},
                        {"--windows", cli::number(o.windows, 1)}},
                       usage,
                       {{"--no-unroll", [&] { o.with_unroll = false; }},
                        {"--no-chains", [] { sg::detail::set_recurrence_chains(false); }},  // per-node backward
                        {"--ab-chains", [&] { o.ab_chains = true; }},
                        {"--with-reorder", [&] { o.with_reorder = true; }},
                        {"--forward", [&] { o.forward = true; }}});
    for (std::size_t i = 0; i < o.threads.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (o.threads[i] == o.threads[j])
                throw cli::usage_error{"--threads: " + std::to_string(o.threads[i]) + " given twice"};
    return o;
}

int run(const options& o) {
    const std::vector<int>& threads = o.threads;
    const double seconds = o.seconds;
    const int windows = o.windows;
    const bool with_unroll = o.with_unroll, ab_chains = o.ab_chains, with_reorder = o.with_reorder;
    const dnnl_version_t* v = dnnl_version();
    std::printf("bench blas.core %s\nbench onednn.version %d.%d.%d\n", sg::blas_core_name(), v->major, v->minor,
                v->patch);
    // Before oneDNN's first region: a team of the default size would leave idle spinners behind.
    omp_set_num_threads(threads[0]);
    const std::vector<std::string>& names = o.names;
    int rc = 0;
    try {
        for (const config& c : configs) {
            if (std::find(names.begin(), names.end(), c.name) == names.end()) continue;
            rc |= check(c) ? 0 : 1;
            std::mt19937_64 rng(7);
            problem p(c, rng);
            onednn_lstm od(p);
            seqgrad_lstm layer(p, false), unrolled(p, true);
            std::vector<std::pair<std::string, std::function<void()>>> sides = {{"onednn", [&] { od.step(); }},
                                                                                {"layer", [&] { layer.step(); }}};
            if (with_unroll) sides.push_back({"unroll", [&] { unrolled.step(); }});
            if (ab_chains)
                sides.push_back({"layer_nochains", [&] {
                                     sg::detail::set_recurrence_chains(false);
                                     layer.step();
                                     sg::detail::set_recurrence_chains(true);
                                 }});
            if (with_reorder)
                sides.push_back({"onednn_reorder", [&] {
                                     od.reorder_weights_in();
                                     od.step();
                                 }});
            if (o.forward) {
                sides.push_back({"onednn_forward", [&] { od.forward(); }});
                sides.push_back({"layer_forward", [&] { layer.forward(); }});
            }
            auto side = [&](const std::string& name) {
                std::size_t j = 0;
                while (sides[j].first != name) ++j;
                return j;
            };
            const double tokens = double(c.T * c.B);
            for (int n : threads) {
                omp_set_num_threads(n);
                sg::set_num_threads(static_cast<std::size_t>(n));
                std::vector<std::vector<double>> rates(sides.size());
                for (auto& s : sides) window(s.second, tokens, 0.3);  // warm-up
                // Windows alternate the order of the sides; ratios are taken within a window round.
                std::vector<std::vector<double>> ratios(sides.size());
                for (int w = 0; w < windows; ++w) {
                    std::vector<double> r(sides.size());
                    for (std::size_t k = 0; k < sides.size(); ++k) {
                        const std::size_t j = w % 2 ? sides.size() - 1 - k : k;
                        std::this_thread::sleep_for(std::chrono::milliseconds(300));
                        r[j] = window(sides[j].second, tokens, seconds);
                    }
                    for (std::size_t j = 0; j < sides.size(); ++j) {
                        rates[j].push_back(r[j]);
                        ratios[j].push_back(r[j] / r[0]);
                    }
                }
                const std::string key = "bench lstm_onednn." + c.name + ".t" + std::to_string(n) + ".";
                for (std::size_t j = 0; j < sides.size(); ++j)
                    std::printf("%s%s_tokens_per_s %.0f tok/s\n", key.c_str(), sides[j].first.c_str(),
                                median(rates[j]));
                for (std::size_t j = 1; j < sides.size(); ++j)
                    if (!sides[j].first.ends_with("_forward"))  // a forward over a whole step means nothing
                        std::printf("%s%s_over_onednn %.3f x\n", key.c_str(), sides[j].first.c_str(),
                                    median(ratios[j]));
                if (ab_chains) {  // within each round: the layer over itself without the chains
                    std::vector<double> ab;
                    const auto& off = ratios[side("layer_nochains")];
                    for (std::size_t w = 0; w < ratios[1].size(); ++w) ab.push_back(ratios[1][w] / off[w]);
                    std::printf("%slayer_over_nochains %.3f x\n", key.c_str(), median(ab));
                }
                if (with_reorder) {  // the layer over oneDNN paying a reorder of its weights each step
                    std::vector<double> rr;
                    const auto& re = ratios[side("onednn_reorder")];
                    for (std::size_t w = 0; w < ratios[1].size(); ++w) rr.push_back(ratios[1][w] / re[w]);
                    std::printf("%slayer_over_onednn_reorder %.3f x\n", key.c_str(), median(rr));
                }
                if (o.forward) {  // forward against forward, and what is left: the backward's share
                    std::vector<double> ff, bb;
                    const auto& of = rates[side("onednn_forward")];
                    const auto& lf = rates[side("layer_forward")];
                    for (std::size_t w = 0; w < of.size(); ++w) {
                        ff.push_back(lf[w] / of[w]);
                        // seconds per token of the whole step less the forward's: the backward's
                        const double ob = 1 / rates[0][w] - 1 / of[w], lb = 1 / rates[1][w] - 1 / lf[w];
                        bb.push_back(ob / lb);
                    }
                    std::printf("%slayer_forward_over_onednn_forward %.3f x\n", key.c_str(), median(ff));
                    std::printf("%slayer_backward_over_onednn_backward %.3f x (step less forward)\n", key.c_str(),
                                median(bb));
                }
                std::fflush(stdout);
            }
        }
    } catch (const dnnl::error& e) {
        std::cerr << "lstm_onednn: oneDNN error " << e.status << ": " << e.what() << "\n";
        return 1;
    }
    return rc;
}

}  // namespace

int main(int argc, char** argv) { return cli::main("lstm_onednn", argc, argv, parse_args, run); }
