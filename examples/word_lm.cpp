// word_lm: a word-level LSTM language model with a full or an adaptive softmax.
//
//     embedding(V, E) -> LSTM(E, H) -> full softmax over V words | adaptive softmax (head + clusters)
//
// It reads a text (by default the ~55 KB corpus built into the library), splits each line into words
// (nn::words: punctuation marks are words of their own) followed by <eos>, builds a vocabulary of
// the words seen at least --min-count times (the others become <unk>), ids sorted by frequency as
// the adaptive softmax needs, trains with Adam on the first 90% and reports the validation
// perplexity on the last 10%. Batching and truncated BPTT are char_lm's (nn::lm_batcher, state
// carried as values from one batch to the next).
//
//     word_lm --steps 40 --hidden 32 --embed 32                        # a smoke test, seconds
//     word_lm --data ../shared/data/tinyshakespeare.txt --seconds 300 --softmax full
//     word_lm --data ../shared/data/tinyshakespeare.txt --seconds 300 --softmax adaptive
//
// --softmax adaptive uses nn::adaptive_softmax (PyTorch's AdaptiveLogSoftmaxWithLoss) with the
// --cutoffs given (cutoffs at or beyond the vocabulary size are dropped; when none is left, one
// cutoff at a quarter of the vocabulary is used): training evaluates the head and only the clusters that hold targets; validation uses
// the exact log-probabilities of the targets, so the two softmaxes' perplexities compare.
// --seconds stops training after that much training time (evaluation excluded): the way to compare
// the two at equal time. The LSTM is nn::lstm_cell through nn::unroll over the whole sequence,
// which the library runs as one fused layer (its whole-sequence path; a user's own cell runs step
// by step with the input products of all steps batched into one GEMM by the engine).
//
// Checkpoints are char_lm's (examples/lm_checkpoint.hpp): --checkpoint PATH saves every --save-every
// steps and at the end PATH (every parameter by name plus "train.step"), PATH.vocab, PATH.optim
// (Adam's state: moments, step counts) and PATH.carry (the LSTM state carried between batches);
// --resume PATH loads them and trains on from the saved step up to --steps, taking exactly the
// steps of an uninterrupted run (--seconds counts the resumed run's time only).
//
// Output: a line per evaluation, then `result <name> <value> <unit>` lines: val_ppl, val_loss_nats
// (at the end), best_val_ppl and best_val_loss_nats (the best evaluation: early stopping's figure),
// tokens_per_s (training tokens per second of training time), steps, train_seconds.
// Exit codes: 0 done, 1 unreadable data or checkpoint, 2 bad command line.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <seqgrad/nn/adaptive_softmax.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/dropout.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/text.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/ops/recurrent.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>
#include "data/builtin_corpus.hpp"

#include "cli.hpp"
#include "lm_checkpoint.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
using seqgrad::cli::usage_error;

namespace {

struct options {
    std::string data;
    std::size_t embed = 256, hidden = 256, seq = 35, batch = 20, min_count = 2, max_vocab = 0;
    std::size_t steps = 1000000, eval_every = 500, save_every = 500;
    std::string checkpoint, resume;
    double seconds = 0, lr = 2e-3, clip = 1, dropout = 0.3, div_value = 4;
    std::string softmax = "full";
    std::vector<std::size_t> cutoffs = {2000, 10000};
    bool lowercase = false;
    int threads = 1;
    std::uint64_t seed = 1;
};

const char* const usage = R"(usage: word_lm [options]
Trains a word-level LSTM language model and reports validation perplexity.
  --data FILE              UTF-8 text (default: the built-in ~55 KB corpus)
  --softmax full|adaptive  output layer (full)
  --cutoffs A,B,...        adaptive softmax cluster boundaries; those >= the vocabulary size are dropped (2000,10000)
  --div-value X            adaptive softmax: cluster i projects to hidden / X^(i+1) features (4)
  --min-count N            words seen fewer times become <unk> (2)
  --max-vocab N            at most N words, <unk> and <eos> included; 0: no limit (0)
  --lowercase yes|no       lower-case ASCII letters first (no)
  --embed N --hidden N     sizes (256, 256)
  --seq T --batch B        BPTT length and parallel streams (35, 20)
  --steps N                stop after N training steps in all, counting a resumed checkpoint's (1000000)
  --seconds S              stop after S seconds of training time; 0: no limit (0)
  --eval-every N           validate every N steps; 0: only at the end (500)
  --lr X --clip X          Adam learning rate, global-norm clip (0 = off) (2e-3, 1)
  --dropout P              dropout on the embeddings and the LSTM output, training only (0.3)
  --threads N              threads (1): the executor splits products, softmax rows and steps
  --seed N                 initial weights and dropout masks (1)
  --checkpoint PATH        save parameters and step to PATH (.npz), the vocabulary, Adam's state and the carried
                           state to PATH.vocab, PATH.optim and PATH.carry
  --save-every N           checkpoint every N steps, and always at the end (500)
  --resume PATH            load a checkpoint and go on from its step as if never stopped
)";

options parse_args(int argc, char** argv) {
    options o;
    namespace cli = sg::cli;
    const std::map<std::string, cli::setter> table = {
        {"--data", cli::text(o.data)},
        {"--softmax", cli::one_of(o.softmax, {"full", "adaptive"})},
        {"--lowercase", cli::yes_no(o.lowercase)},
        {"--cutoffs",
         [&](const std::string& n, const std::string& v) {
             cli::number_list(o.cutoffs, std::size_t{1})(n, v);
             if (!std::is_sorted(o.cutoffs.begin(), o.cutoffs.end()) ||
                 std::adjacent_find(o.cutoffs.begin(), o.cutoffs.end()) != o.cutoffs.end())
                 throw usage_error{n + ": expected increasing integers separated by commas, got '" + v + "'"};
         }},
        {"--div-value", cli::number(o.div_value, 1.0)},
        {"--min-count", cli::number<std::size_t>(o.min_count, 1)},
        {"--max-vocab", cli::number<std::size_t>(o.max_vocab, 0)},
        {"--embed", cli::number<std::size_t>(o.embed, 1)},
        {"--hidden", cli::number<std::size_t>(o.hidden, 1)},
        {"--seq", cli::number<std::size_t>(o.seq, 1)},
        {"--batch", cli::number<std::size_t>(o.batch, 1)},
        {"--steps", cli::number<std::size_t>(o.steps, 0)},
        {"--seconds", cli::number(o.seconds, 0.0)},
        {"--eval-every", cli::number<std::size_t>(o.eval_every, 0)},
        {"--lr", cli::number(o.lr, 0.0, true)},
        {"--clip", cli::number(o.clip, 0.0)},
        {"--dropout", cli::probability(o.dropout)},
        {"--threads", cli::number(o.threads, decltype(o.threads){1})},
        {"--seed", cli::number<std::uint64_t>(o.seed, 0)},
        {"--checkpoint", cli::text(o.checkpoint)},
        {"--save-every", cli::number<std::size_t>(o.save_every, 1)},
        {"--resume", cli::text(o.resume)},
    };
    cli::parse_options(argc, argv, table, usage);
    cli::check_outputs("--checkpoint", o.checkpoint, {"", ".vocab", ".optim", ".carry"}, "--data", o.data);
    if (o.max_vocab == 1) throw usage_error{"--max-vocab: expected 0 or >= 2 (<unk> and <eos> always count), got 1"};
    return o;
}

// Words of each non-empty line, then <eos>.
std::vector<std::string> tokenize(const std::string& text, bool lowercase) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> w = nn::words(line, lowercase);
        if (w.empty()) continue;
        out.insert(out.end(), w.begin(), w.end());
        out.emplace_back("<eos>");
    }
    return out;
}

std::string read_file(const std::string& path) {
    if (std::filesystem::is_directory(path)) throw sg::io_error("cannot read --data '" + path + "': it is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw sg::io_error("cannot read --data '" + path + "': " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct carried_state {
    xt::xarray<double> h, c;
};

struct word_model {
    sg::parameter_store ps;  // float32
    const options& o;
    std::size_t V;
    nn::embedding emb;
    nn::lstm_cell cell;
    std::optional<nn::linear> full;
    std::optional<nn::adaptive_softmax> adaptive;
    sg::parameter step;  // training steps done: frozen (never trained), saved in checkpoints

    word_model(std::size_t vocab_size, const options& opt, std::mt19937_64& rng)
        : o(opt),
          V(vocab_size),
          emb(sg::parameter_scope(ps, "emb"), V, o.embed, rng),
          cell(sg::parameter_scope(ps, "lstm"), o.embed, o.hidden, rng) {
        if (o.softmax == "full") {
            full.emplace(sg::parameter_scope(ps, "out"), o.hidden, V, true, rng);
        } else {
            std::vector<std::size_t> c;
            for (std::size_t x : o.cutoffs)
                if (x < V) c.push_back(x);
            // A vocabulary smaller than every cutoff (the built-in corpus has ~950 words): a shortlist
            // of the most frequent quarter and one tail cluster.
            if (c.empty()) c.push_back(std::max<std::size_t>(1, V / 4));
            adaptive.emplace(sg::parameter_scope(ps, "out"), o.hidden, V, c, o.div_value, false, rng);
        }
        step = ps.add("train.step", sg::shape{1});
        step.set_trainable(false);
    }

    carried_state zero_state() const {
        return {xt::zeros<double>({o.batch, o.hidden}), xt::zeros<double>({o.batch, o.hidden})};
    }

    // Hidden states [T*B, H] for ids (time-major), from `state`, which becomes the state after the
    // last step.
    sg::expr hidden(sg::tape& t, std::span<const int> ids, std::size_t batch, carried_state& state) const {
        sg::expr x = nn::dropout(emb(t, ids), o.dropout);
        const nn::lstm_state s0{t.input(state.h), t.input(state.c)};
        // The whole [T, B, E] sequence: nn::lstm_cell's whole-sequence path (one fused layer).
        const auto states = nn::unroll(t, cell, sg::reshape(x, {ids.size() / batch, batch, x.shape()[1]}), s0);
        const sg::expr h = sg::concat(nn::hiddens(states), 0);
        const nn::lstm_state& last = states.back();
        state.h = t.value(last.h);
        state.c = t.value(last.c);
        return nn::dropout(h, o.dropout);
    }

    // Summed negative log-likelihood of the targets.
    sg::expr nll(sg::tape&, const sg::expr& h, std::span<const int> targets) const {
        if (adaptive) return adaptive->loss(h, targets, sg::reduction::sum);
        return sg::cross_entropy(sg::matmul_add(full->bias, h, sg::T(full->weight)), targets, sg::reduction::sum);
    }
};

// Mean negative log-likelihood per token (nats) over a stream, state carried, no backward.
double evaluate(const word_model& m, const nn::lm_batcher& data) {
    const std::size_t b = data.batch_size(), h = m.o.hidden;
    carried_state state{xt::zeros<double>({b, h}), xt::zeros<double>({b, h})};
    double total = 0;
    std::size_t count = 0;
    for (std::size_t k = 0; k < data.num_batches(); ++k) {
        const nn::lm_batch b = data.get(k);
        sg::tape t;
        total += t.item(m.nll(t, m.hidden(t, b.inputs, b.batch, state), b.targets));
        count += b.targets.size();
    }
    return total / static_cast<double>(count);
}

int run(const options& o) {
    sg::set_num_threads(static_cast<std::size_t>(o.threads));  // the executor splits the work (BLAS too)
    using clock = std::chrono::steady_clock;
    const std::string text = o.data.empty() ? std::string(sg::examples::builtin_corpus()) : read_file(o.data);
    const std::vector<std::string> tokens = tokenize(text, o.lowercase);
    const nn::vocab voc = nn::vocab::build(tokens, o.min_count, o.max_vocab);
    const auto [train_ids, val_ids] = nn::split_ids(voc.encode(tokens), 0.9);
    const std::string words = std::to_string(tokens.size()) + " words";
    if (train_ids.size() <= o.batch)
        throw sg::io_error("--data '" + o.data + "': too short for --batch " + std::to_string(o.batch) + " (" + words +
                           ", " + std::to_string(train_ids.size()) + " to train on: expected more than the batch)");
    if (val_ids.size() < 2)
        throw sg::io_error("--data '" + o.data + "': too short to validate (" + words + ": the last 10%, " +
                           std::to_string(val_ids.size()) + " word(s), is less than the 2 a prediction needs)");
    const nn::lm_batcher train(train_ids, o.batch, o.seq);
    const nn::lm_batcher valid(val_ids, std::min(o.batch, val_ids.size() - 1), o.seq);
    std::size_t unk = 0;
    for (int id : train_ids) unk += id == nn::vocab::unk_id;

    std::mt19937_64 rng(o.seed);
    word_model model(voc.size(), o, rng);
    std::size_t step = 0;
    if (!o.resume.empty()) step = sg::examples::load_checkpoint(model.ps, model.step, voc, o.resume);
    std::cout << "data: " << (o.data.empty() ? "built-in corpus" : o.data) << ", " << tokens.size()
              << " words (with <eos>), vocabulary " << voc.size() << " (min count " << o.min_count << "), train "
              << train_ids.size() << " (" << std::fixed << std::setprecision(1)
              << 100.0 * double(unk) / double(train_ids.size()) << "% <unk>), validation " << val_ids.size()
              << std::defaultfloat << std::setprecision(6) << "\nmodel: embed " << o.embed << ", lstm " << o.hidden
              << ", softmax " << o.softmax;
    if (model.adaptive) {
        std::cout << " (cutoffs";
        for (std::size_t c : model.adaptive->cutoffs) std::cout << " " << c;
        std::cout << ", div " << o.div_value << ")";
    }
    std::cout << ", " << model.ps.num_elements() - 1 << " parameters; batch " << o.batch << " x seq " << o.seq
              << ", Adam lr " << o.lr << ", clip " << o.clip << ", dropout " << o.dropout << ", threads " << o.threads
              << std::endl;
    if (!o.resume.empty()) std::cout << "resumed from " << o.resume << " at step " << step << std::endl;

    if (!o.checkpoint.empty()) voc.save(o.checkpoint + ".vocab");  // if unwritable, fails before training
    sg::optim::adam opt(model.ps, o.lr);
    carried_state state = model.zero_state();
    if (!o.resume.empty()) {
        sg::examples::load_optimizer_state(opt, o.resume, step, o.lr, "word_lm");
        const auto c = sg::examples::load_carried(o.resume, step, step % train.num_batches() == 0, 2,
                                                  {o.batch, o.hidden});
        if (!c.empty()) state = {c[0], c[1]};
    }
    const auto save = [&] {
        const std::vector<xt::xarray<double>> carried = {state.h, state.c};
        sg::examples::save_checkpoint(model.ps, model.step, opt, voc, o.checkpoint, step, &carried);
    };
    double train_seconds = 0, loss_sum = 0, val = 0, best_val = std::numeric_limits<double>::infinity();
    std::size_t best_step = 0;
    std::size_t tokens_done = 0, loss_count = 0, reported_at = std::numeric_limits<std::size_t>::max();
    const auto report = [&] {
        reported_at = step;
        val = evaluate(model, valid);
        if (val < best_val) {
            best_val = val;
            best_step = step;
        }
        // Before any training step (--steps 0) there is no train loss and no speed: not "ppl 1.0", "-nan tok/s".
        std::cout << "step " << step << "  " << std::fixed << std::setprecision(1) << train_seconds << " s";
        if (loss_count > 0) std::cout << "  train ppl " << std::exp(loss_sum / double(loss_count));
        std::cout << "  val ppl " << std::exp(val);
        if (train_seconds > 0)
            std::cout << "  " << std::setprecision(0) << double(tokens_done) / train_seconds << " tok/s";
        std::cout << std::defaultfloat << std::setprecision(6) << std::endl;
        loss_sum = 0;
        loss_count = 0;
    };
    while (step < o.steps && (o.seconds <= 0 || train_seconds < o.seconds)) {
        const std::size_t k = step % train.num_batches();
        if (k == 0) state = model.zero_state();
        const nn::lm_batch b = train.get(k);
        const auto start = clock::now();
        {
            sg::tape t;
            t.set_training(true);
            t.set_seed(o.seed * 1000003 + step);
            const sg::expr nll = model.nll(t, model.hidden(t, b.inputs, b.batch, state), b.targets);
            const sg::expr loss = sg::mul_scalar(nll, 1.0 / double(b.targets.size()));  // mean, as PyTorch's
            t.backward(loss);
            if (o.clip > 0) sg::optim::clip_global_norm(model.ps, o.clip);
            opt.step();
            loss_sum += t.item(loss);
            ++loss_count;
        }
        train_seconds += std::chrono::duration<double>(clock::now() - start).count();
        tokens_done += b.targets.size();
        ++step;
        if (!std::isfinite(loss_sum)) throw sg::numeric_error("training diverged at step " + std::to_string(step));
        if (o.eval_every > 0 && step % o.eval_every == 0) report();
        if (!o.checkpoint.empty() && step % o.save_every == 0 && step < o.steps) save();
    }
    if (reported_at != step) report();  // unless the last step reported (--steps 0 or a finished resume: no step)
    if (!o.checkpoint.empty()) {
        save();
        std::cout << "saved " << o.checkpoint << " (+ .vocab, .optim, .carry) at step " << step << "\n";
    }
    std::cout << "result val_ppl " << std::exp(val) << " ppl\nresult val_loss_nats " << val
              << " nats\nresult best_val_ppl " << std::exp(best_val) << " ppl (step " << best_step
              << ")\nresult best_val_loss_nats " << best_val << " nats\nresult tokens_per_s "
              << (train_seconds > 0 ? double(tokens_done) / train_seconds : 0.0) << " tok/s\nresult steps " << step
              << " steps\nresult train_seconds " << train_seconds << " s\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return sg::cli::main("word_lm", argc, argv, parse_args, run); }
