// char_lm: a character-level language model, trained and sampled, from top to bottom.
//
//     embedding(V, E) -> LSTM(E, H) x layers -> linear(H, V) -> softmax cross-entropy
//
// It reads a text (by default the ~55 KB corpus built into the library, so the first run needs no
// download), splits it into UTF-8 characters, trains with Adam on the first 90% and reports the
// loss per character on the last 10%, then writes a sample of generated text.
//
//     char_lm                                                  # built-in corpus, ~1 minute
//     char_lm --data tinyshakespeare.txt --steps 1500          # the classic char-rnn set
//     char_lm --steps 20 --hidden 16 --sample 40               # a few seconds: a smoke test
//     char_lm --checkpoint lm.npz --save-every 500             # lm.npz + lm.npz.vocab
//     char_lm --resume lm.npz --checkpoint lm.npz --steps 3000 # go on from the saved step
//
// Training follows the classic recipe (PyTorch's word_language_model, Karpathy's char-rnn): the
// training text is cut into B parallel streams (nn::lm_batcher), each step reads the next T
// characters of every stream, and the hidden state at the end of one batch is the initial state of
// the next one. The state is carried as values, not as graph: every step builds a new tape and
// copies the state in as a constant input, so gradients stop at the batch boundary (truncated
// backpropagation through time with k = T). At the end of the stream the batches wrap around and
// the state restarts from zeros. The loss is the mean cross-entropy over the T*B characters, as
// torch.nn.CrossEntropyLoss, so the Adam learning rate means what it means in PyTorch.
// bench/torch_char_lm.py is the same model, data split and batching in PyTorch, without dropout
// (char_lm --dropout 0 --keep-best no).
//
// --cell lstm (the default) runs each layer through nn::lstm_layer: the input projections of all T
// steps are one GEMM, each step one fused node, and all hidden states come out as one [T*B, H]
// matrix for the output layer. --cell rnn and --cell gru run the composed cells of nn/cells.hpp
// step by step with nn::unroll: slower, but any cell you write yourself plugs in the same way.
//
// Regularisation. --dropout P drops the embeddings and every layer's output (training tapes only;
// evaluation and sampling run without it). --dropout-kind variational (the default) draws one mask
// per stream for the whole batch of T steps (Gal & Ghahramani 2016); standard draws a fresh mask
// per character. --weight-drop P is DropConnect on the recurrent weights, one mask per batch
// (AWD-LSTM). --tie yes makes the output layer reuse the embedding matrix (Press & Wolf 2017;
// needs --embed = --hidden). With --keep-best yes (the default) the run ends with the parameters of
// its best validation: the final figures, checkpoint and sample are those of the best model, and
// the last evaluation is reported beside it (result last_val_loss_nats).
//
// Checkpoints. --checkpoint PATH saves every --save-every steps and at the end: PATH is an .npz
// (numpy.load reads it) holding every parameter by name plus "train.step", the number of training
// steps done; PATH.vocab holds the character vocabulary (nn::vocab::save). Both are written
// atomically. --resume PATH loads them and training goes on from the saved step up to --steps.
// Restored: the parameters, the step count (hence the position in the training stream, since
// batches are deterministic) and the vocabulary (checked against the data's: it must be equal, and
// the model options must give the same parameter names and shapes). Not restored: Adam's moment
// estimates and its bias-correction count (they restart from zero, so the first updates after a
// resume are as large as those at the very start of training) and the carried hidden state (it
// restarts from zeros). A resumed run therefore differs slightly from an uninterrupted one.
//
// Output: progress on one updating line when stdout is a terminal (otherwise a line every
// --eval-every steps), the validation loss at each evaluation, then the headline figures as
// `result <name> <value> <unit>` lines (val_loss_nats, val_loss_bits, and tokens_per_s: training
// characters per second of training time, evaluation excluded) and the sample. Exit codes: 0 done, 1 unreadable data or
// checkpoint, 2 bad command line.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <seqgrad/core/distributed.hpp>
#include <seqgrad/nn/builtin_corpus.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/dropout.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/nn/text.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/ops/recurrent.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

#include "cli.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;

namespace {

// ---- command line ----------------------------------------------------------------------------

struct options {
    std::string data;  // empty: the built-in corpus
    std::size_t hidden = 128, embed = 64, layers = 1, seq = 64, batch = 32;
    double lr = 2e-3, clip = 5;
    std::size_t steps = 1500;
    std::uint64_t seed = 1;
    std::string cell = "lstm";
    std::string checkpoint, resume;
    std::size_t save_every = 500;
    std::size_t sample = 300;
    double temperature = 0.8;
    std::string prime = "The ";
    std::size_t eval_every = 250;
    int threads = 1;
    double dropout = 0.25, weight_drop = 0;
    bool variational = true, tie = false, keep_best = true;
};

const char* const usage = R"(usage: char_lm [options]
Trains a character-level language model, reports validation loss, prints a sample.
  --data FILE         UTF-8 text to learn (default: the built-in ~55 KB corpus)
  --cell lstm|rnn|gru recurrent cell (default lstm: the fused layer; rnn, gru: composed cells)
  --layers N          stacked recurrent layers (1)
  --hidden N          hidden units per layer (128)
  --embed N           embedding size (64)
  --seq T             characters per stream per step, the BPTT length (64)
  --batch B           parallel streams (32)
  --steps N           training steps in all, counting those of a resumed checkpoint (1500)
  --lr X              Adam learning rate (2e-3)
  --clip X            clip the global gradient norm to X; 0 turns clipping off (5)
  --seed N            seed of the initial weights and of sampling (1)
  --eval-every N      validate (and, when not on a terminal, report) every N steps; 0: only at the end (250)
  --checkpoint PATH   save parameters and step to PATH (.npz) and the vocabulary to PATH.vocab
  --save-every N      checkpoint every N steps, and always at the end (500)
  --resume PATH       load a checkpoint and go on from its step
  --sample N          characters to generate after training; 0: none (300)
  --temperature X     sampling temperature, > 0 (0.8)
  --prime TEXT        text fed to the model before sampling ("The ")
  --threads N         OpenBLAS threads (1)
  --dropout P         dropout on the embeddings and on every layer's output, training only (0.25)
  --dropout-kind K    variational: one mask per stream for the whole T-step batch (Gal & Ghahramani);
                      standard: a fresh mask per character (variational)
  --weight-drop P     DropConnect on the recurrent weights, one mask per batch (AWD-LSTM; --cell lstm) (0)
  --tie yes|no        output layer reuses the embedding matrix (needs --embed equal to --hidden) (no)
  --keep-best yes|no  end with the parameters of the best validation (yes)
  --help              this text
)";

using seqgrad::cli::parse_number;
using seqgrad::cli::usage_error;

options parse_args(int argc, char** argv) {
    options o;
    using setter = std::function<void(const std::string& name, const std::string& value)>;
    const auto at_least = [](auto& field, auto min) -> setter {
        return [&field, min](const std::string& n, const std::string& v) { field = parse_number(n, v, min); };
    };
    const auto above_zero = [](double& field) -> setter {
        return [&field](const std::string& n, const std::string& v) { field = parse_number(n, v, 0.0, true); };
    };
    const auto yes_no = [](bool& field) -> setter {
        return [&field](const std::string& n, const std::string& v) {
            if (v != "yes" && v != "no") throw usage_error{n + ": expected yes or no, got '" + v + "'"};
            field = v == "yes";
        };
    };
    const auto text = [](std::string& field) -> setter {
        return [&field](const std::string&, const std::string& v) { field = v; };
    };
    const std::map<std::string, setter> table = {
        {"--data", text(o.data)},
        {"--hidden", at_least(o.hidden, std::size_t{1})},
        {"--embed", at_least(o.embed, std::size_t{1})},
        {"--layers", at_least(o.layers, std::size_t{1})},
        {"--seq", at_least(o.seq, std::size_t{1})},
        {"--batch", at_least(o.batch, std::size_t{1})},
        {"--steps", at_least(o.steps, std::size_t{0})},
        {"--save-every", at_least(o.save_every, std::size_t{1})},
        {"--sample", at_least(o.sample, std::size_t{0})},
        {"--eval-every", at_least(o.eval_every, std::size_t{0})},
        {"--seed", at_least(o.seed, std::uint64_t{0})},
        {"--threads", at_least(o.threads, 1)},
        {"--lr", above_zero(o.lr)},
        {"--temperature", above_zero(o.temperature)},
        {"--clip", at_least(o.clip, 0.0)},
        {"--cell", [&](const std::string& n, const std::string& v) {
             if (v != "lstm" && v != "rnn" && v != "gru")
                 throw usage_error{n + ": expected lstm, rnn or gru, got '" + v + "'"};
             o.cell = v;
         }},
        {"--dropout", [&](const std::string& n, const std::string& v) {
             o.dropout = parse_number(n, v, 0.0);
             if (o.dropout >= 1) throw usage_error{n + ": expected a probability in [0, 1), got " + v};
         }},
        {"--weight-drop", [&](const std::string& n, const std::string& v) {
             o.weight_drop = parse_number(n, v, 0.0);
             if (o.weight_drop >= 1) throw usage_error{n + ": expected a probability in [0, 1), got " + v};
         }},
        {"--dropout-kind", [&](const std::string& n, const std::string& v) {
             if (v != "standard" && v != "variational")
                 throw usage_error{n + ": expected standard or variational, got '" + v + "'"};
             o.variational = v == "variational";
         }},
        {"--tie", yes_no(o.tie)},
        {"--keep-best", yes_no(o.keep_best)},
        {"--checkpoint", text(o.checkpoint)},
        {"--resume", text(o.resume)},
        {"--prime", text(o.prime)},
    };
    seqgrad::cli::parse_options(argc, argv, table, usage);
    if (!o.data.empty() && o.data == o.checkpoint) throw usage_error{"--checkpoint: would overwrite --data"};
    if (o.tie && o.embed != o.hidden)
        throw usage_error{"--tie: the output layer reuses the [V, E] embedding, so --embed (" + std::to_string(o.embed) +
                          ") must equal --hidden (" + std::to_string(o.hidden) + ")"};
    if (o.weight_drop > 0 && o.cell != "lstm") throw usage_error{"--weight-drop: only with --cell lstm"};
    return o;
}

// ---- the model -------------------------------------------------------------------------------

// The recurrent state carried from one batch to the next, as plain values (no graph): per layer,
// h [B, H] and, for an LSTM, c [B, H].
struct carried_state {
    std::vector<xt::xarray<double>> h, c;
};

struct char_model {
    sg::parameter_store ps;  // float32: every weight of the model, by name
    std::size_t vocab_size, embed, hidden, layers;
    std::string cell;
    nn::embedding emb;
    std::vector<nn::lstm_cell> lstm;  // the layers of whichever cell was chosen
    std::vector<nn::rnn_cell> rnn;
    std::vector<nn::gru_cell> gru;
    std::optional<nn::linear> out;  // absent with --tie: the logits reuse emb.weight
    sg::parameter out_bias;
    double dropout, weight_drop;
    bool variational;
    sg::parameter step;  // training steps done: frozen (never trained), saved in checkpoints

    char_model(std::size_t V, const options& o, std::mt19937_64& rng)
        : vocab_size(V), embed(o.embed), hidden(o.hidden), layers(o.layers), cell(o.cell),
          emb(sg::parameter_scope(ps, "emb"), V, o.embed, rng), dropout(o.dropout), weight_drop(o.weight_drop),
          variational(o.variational) {
        if (!o.tie) out.emplace(sg::parameter_scope(ps, "out"), o.hidden, V, true, rng);
        for (std::size_t l = 0; l < layers; ++l) {
            const sg::parameter_scope scope(ps, o.cell + std::to_string(l));  // "lstm0.w_ih", ...
            const std::size_t in = l == 0 ? embed : hidden;
            if (cell == "lstm") lstm.emplace_back(scope, in, hidden, rng);
            else if (cell == "rnn") rnn.emplace_back(scope, in, hidden, nn::rnn_activation::tanh, rng);
            else gru.emplace_back(scope, in, hidden, rng);
        }
        // Tied: the output layer's weight is the embedding, its bias a parameter of its own.
        out_bias = out ? out->bias : ps.add("out.bias", xt::xarray<double>(xt::zeros<double>({V})));
        step = ps.add("train.step", sg::shape{1});
        step.set_trainable(false);
    }

    carried_state zero_state(std::size_t batch) const {
        carried_state s;
        for (std::size_t l = 0; l < layers; ++l) {
            s.h.push_back(xt::zeros<double>({batch, hidden}));
            if (cell == "lstm") s.c.push_back(xt::zeros<double>({batch, hidden}));
        }
        return s;
    }

    // Logits [T*B, V] for ids (T*B of them, time-major: entry t*B + b is step t of stream b),
    // starting from `state`, which is then overwritten with the state after the last step.
    // Dropout (training tapes only; the identity on evaluation tapes) on x [T*B, W]: variational
    // draws one [B, W] mask, so a stream keeps its mask for all T steps of the batch.
    sg::expr drop(sg::tape& t, const sg::expr& x, std::size_t batch) const {
        if (!variational) return nn::dropout(x, dropout);
        return nn::locked_dropout(t, dropout, {batch, x.shape()[1]})(x);
    }

    sg::expr forward(sg::tape& t, std::span<const int> ids, std::size_t batch, carried_state& state) const {
        const std::size_t steps = ids.size() / batch;
        sg::expr x = drop(t, emb(t, ids), batch);  // [T*B, E]
        if (cell == "lstm") {
            for (std::size_t l = 0; l < layers; ++l) {
                const nn::lstm_state s0{t.input(state.h[l]), t.input(state.c[l])};
                const nn::lstm_sequence seq = nn::lstm_layer(lstm[l], weight_drop)(x, s0);
                x = drop(t, seq.hidden_all(), batch);  // [T*B, H]
                const nn::lstm_state last = seq.final_state();
                state.h[l] = t.value(last.h);
                state.c[l] = t.value(last.c);
            }
        } else {
            std::vector<sg::expr> xs;  // step k: rows [k*B, (k+1)*B) of x, [B, E]
            for (std::size_t k = 0; k < steps; ++k) xs.push_back(sg::slice(x, 0, k * batch, (k + 1) * batch));
            for (std::size_t l = 0; l < layers; ++l) {
                const sg::expr h0 = t.input(state.h[l]);
                if (l > 0) {
                    const nn::locked_dropout locked(t, variational ? dropout : 0, {batch, hidden});
                    for (auto& x_k : xs) x_k = variational ? locked(x_k) : nn::dropout(x_k, dropout);
                }
                xs = cell == "rnn" ? nn::unroll(t, rnn[l], std::span<const sg::expr>(xs), h0)
                                   : nn::unroll(t, gru[l], std::span<const sg::expr>(xs), h0);
                state.h[l] = t.value(xs.back());
            }
            x = drop(t, sg::concat(xs, 0), batch);  // [T*B, H], time-major again
        }
        // The output layer over every step at once: x W^T + b as one GEMM node.
        const sg::parameter& w = out ? out->weight : emb.weight;
        return sg::matmul_add(t.param(out_bias), x, t.param(w), false, true);
    }
};

// ---- evaluation and sampling -----------------------------------------------------------------

// Mean cross-entropy per character (nats) over a whole stream, batched, state carried, no backward.
double evaluate(const char_model& m, const nn::lm_batcher& data) {
    carried_state state = m.zero_state(data.batch_size());
    double total = 0;
    std::size_t count = 0;
    for (std::size_t k = 0; k < data.num_batches(); ++k) {
        const nn::lm_batch b = data.get(k);
        sg::tape t;
        const sg::expr logits = m.forward(t, b.inputs, b.batch, state);
        total += t.item(sg::cross_entropy(logits, b.targets, sg::reduction::sum));
        count += b.targets.size();
    }
    return total / static_cast<double>(count);
}

// Feed `prime` through the model, then draw n characters from softmax(logits / temperature).
std::string sample(const char_model& m, const nn::vocab& voc, const std::string& prime, std::size_t n,
                   double temperature, std::mt19937_64& rng) {
    std::vector<int> ids = voc.encode(nn::utf8_chars(prime));
    if (ids.empty()) ids = {voc.contains("\n") ? voc.id("\n") : 2};  // no prime: as after a line break
    carried_state state = m.zero_state(1);
    std::string text;
    std::vector<double> p(m.vocab_size);
    for (std::size_t k = 0; k < n; ++k) {
        sg::tape t;
        const xt::xarray<double> logits = t.value(m.forward(t, ids, 1, state));
        const double* last = logits.data() + (logits.size() - m.vocab_size);  // the last step's row
        // Ids 0 and 1 are <unk> and <eos>, never targets in character data: they are never drawn.
        const std::size_t first = 2;
        const double top = *std::max_element(last + first, last + m.vocab_size);
        double total = 0;
        for (std::size_t v = first; v < m.vocab_size; ++v) total += p[v] = std::exp((last[v] - top) / temperature);
        double u = std::uniform_real_distribution<double>(0.0, total)(rng);
        std::size_t next = first;
        for (std::size_t v = first; v < m.vocab_size; ++v) {
            next = v;
            if ((u -= p[v]) < 0) break;
        }
        text += voc.token(static_cast<int>(next));
        ids = {static_cast<int>(next)};
    }
    return text;
}

// ---- checkpoints -----------------------------------------------------------------------------

void save_checkpoint(char_model& m, const nn::vocab& voc, const std::string& path, std::size_t step) {
    voc.save(path + ".vocab");
    m.step.assign(xt::xarray<double>({static_cast<double>(step)}));
    sg::save_npz(m.ps, path);  // atomic: a crash leaves the previous checkpoint whole
}

// Returns the saved step count. Throws io_error if the files are missing or corrupt, or do not fit
// this model (vocabulary, parameter names or shapes).
std::size_t load_checkpoint(char_model& m, const nn::vocab& voc, const std::string& path) {
    try {
        if (!std::filesystem::is_regular_file(path)) throw sg::io_error("no checkpoint file '" + path + "'");
        const nn::vocab saved = nn::vocab::load(path + ".vocab");
        if (!(saved == voc))
            throw sg::io_error("the vocabulary of '" + path + "' (" + std::to_string(saved.size()) + " tokens, in " +
                               path + ".vocab) differs from that of the data (" + std::to_string(voc.size()) +
                               " tokens); resume with the same --data");
        sg::load_npz(m.ps, path);  // names and shapes must match: the same --cell, --layers, --hidden, --embed
    } catch (const sg::io_error& e) {
        throw sg::io_error(std::string("--resume: ") + e.what());
    }
    return static_cast<std::size_t>(std::llround(m.step.value_as_double()(0)));
}

// ---- progress --------------------------------------------------------------------------------

std::string duration(double seconds) {
    const long s = std::lround(std::max(0.0, seconds));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

std::string fixed(double v, int digits) {
    std::ostringstream os;
    os.setf(std::ios::fixed);
    os.precision(digits);
    os << v;
    return os.str();
}

std::string read_file(const std::string& path) {
    if (std::filesystem::is_directory(path)) throw sg::io_error("cannot read --data '" + path + "': it is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw sg::io_error("cannot read --data '" + path + "': " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw sg::io_error("cannot read --data '" + path + "': read error");
    return ss.str();
}

int run(const options& o) {
    sg::set_blas_threads(o.threads);
    using clock = std::chrono::steady_clock;
    const bool tty = isatty(STDOUT_FILENO) != 0;

    // Data: characters -> ids; first 90% to train on, the rest to validate.
    const std::string text = o.data.empty() ? std::string(nn::builtin_corpus()) : read_file(o.data);
    const std::vector<std::string> chars = nn::utf8_chars(text);
    const nn::vocab voc = nn::vocab::build(chars);
    const auto [train_ids, val_ids] = nn::split_ids(voc.encode(chars), 0.9);
    if (train_ids.size() < o.batch + 1 || val_ids.size() < 2)
        throw sg::io_error("--data '" + o.data + "': too short for --batch " + std::to_string(o.batch) +
                           ": its first 90% has " + std::to_string(train_ids.size()) + " characters (needs " +
                           std::to_string(o.batch + 1) + "), its last 10% " + std::to_string(val_ids.size()) +
                           " (needs 2)");
    const nn::lm_batcher train(train_ids, o.batch, o.seq);
    const nn::lm_batcher val(val_ids, std::min(o.batch, val_ids.size() - 1), o.seq);

    std::mt19937_64 rng(o.seed);
    char_model model(voc.size(), o, rng);
    std::size_t step = 0;
    if (!o.resume.empty()) step = load_checkpoint(model, voc, o.resume);
    // Under mpirun: rank 0's parameters everywhere, each rank a share of the B streams (dealt anew
    // every epoch), gradients summed across ranks while backward runs; rank 0 prints and saves.
    const sg::dist::comm world = sg::dist::comm::world();
    const bool lead = world.rank() == 0;
    if (!lead) std::cout.setstate(std::ios::failbit);
    sg::dist::broadcast(model.ps, world);
    const sg::dist::sampler streams(o.batch, world, o.seed, world.size() > 1);
    std::vector<std::size_t> mine = streams.indices(step / train.num_batches());
    sg::dist::reducer reduce(model.ps, world);
    reduce.set_weight(static_cast<double>(mine.size()) / static_cast<double>(o.batch));

    std::cout << "data: " << (o.data.empty() ? "built-in corpus" : o.data) << ", " << chars.size()
              << " characters, vocabulary " << voc.size() << ", train " << train_ids.size() << ", validation "
              << val_ids.size() << "\nmodel: " << o.cell << " x" << o.layers << ", embed " << o.embed << ", hidden "
              << o.hidden << ", " << model.ps.num_elements() - 1 << " parameters; batch " << o.batch << " x seq "
              << o.seq << ", Adam lr " << o.lr << ", clip " << o.clip << ", BLAS threads " << o.threads
              << "\nregularisation: dropout " << o.dropout << (o.variational ? " (variational)" : " (standard)")
              << ", weight drop " << o.weight_drop << (o.tie ? ", tied embedding" : "")
              << (o.keep_best ? ", keep best" : "") << "\n";
    if (!o.resume.empty()) std::cout << "resumed from " << o.resume << " at step " << step << "\n";
    std::cout << std::flush;

    if (!o.checkpoint.empty() && lead) voc.save(o.checkpoint + ".vocab");  // fails now, not after training, if unwritable
    sg::optim::adam opt(model.ps, o.lr);
    carried_state state = model.zero_state(mine.size());
    double train_seconds = 0, loss_sum = 0, last_val = -1;
    double best_val = std::numeric_limits<double>::infinity();
    std::size_t best_step = 0;
    std::vector<xt::xarray<float>> best_params;  // --keep-best: the parameters at best_val
    const auto note_best = [&] {
        if (!(last_val < best_val)) return;
        best_val = last_val;
        best_step = step;
        if (!o.keep_best) return;
        best_params.clear();
        for (const sg::parameter& p : model.ps.parameters()) best_params.push_back(p.value<float>());
    };
    std::size_t tokens = 0, loss_count = 0;
    const std::size_t first_step = step;
    auto last_draw = clock::now() - std::chrono::seconds(1);

    const auto report = [&](bool with_val) {
        const double done = static_cast<double>(step - first_step);
        const double per_step = done > 0 ? train_seconds / done : 0;
        std::string line = "step " + std::to_string(step) + "/" + std::to_string(o.steps);
        if (loss_count) line += "  loss " + fixed(loss_sum / static_cast<double>(loss_count), 3);
        if (with_val)
            line += "  val " + fixed(last_val, 4) + " nats " + fixed(last_val / std::log(2.0), 4) + " bits";
        if (train_seconds > 0) line += "  " + fixed(static_cast<double>(tokens) / train_seconds, 0) + " tok/s";
        if (step < o.steps) line += "  ETA " + duration(per_step * static_cast<double>(o.steps - step));
        if (tty) std::cout << "\r\033[K" << line << (with_val ? "\n" : "") << std::flush;
        else if (with_val) std::cout << line << std::endl;
    };

    while (step < o.steps) {
        const std::size_t k = step % train.num_batches();
        if (k == 0) {  // wrapped around: a fresh start
            if (step > 0) mine = streams.indices(step / train.num_batches());
            state = model.zero_state(mine.size());
        }
        const nn::lm_batch b = train.get(k);
        const auto start = clock::now();
        {
            sg::tape t;  // a new graph every step: the carried state enters as a constant
            t.set_training(true);
            // New dropout masks every step (and rank), reproducible.
            t.set_seed(o.seed * 1000003 + step + static_cast<std::uint64_t>(world.rank()) * 0x9E3779B97F4A7C15ull);
            const auto inputs = sg::dist::select_streams(b.inputs, b.batch, mine);
            const sg::expr logits = model.forward(t, inputs, mine.size(), state);
            const auto targets = sg::dist::select_streams(b.targets, b.batch, mine);
            const sg::expr loss = sg::cross_entropy(logits, targets, sg::reduction::mean);
            reduce.attach(t);
            t.backward(loss);
            reduce.finish();  // the mean gradient of the global batch, the same bits on every rank
            if (o.clip > 0) sg::optim::clip_global_norm(model.ps, o.clip);
            opt.step();  // also zeroes the gradients
            const double share = static_cast<double>(mine.size()) / static_cast<double>(o.batch);
            loss_sum += world.size() > 1 ? sg::dist::sum(t.item(loss) * share, world) : t.item(loss);
            ++loss_count;
        }
        train_seconds += std::chrono::duration<double>(clock::now() - start).count();
        tokens += b.inputs.size();
        ++step;
        if (!std::isfinite(loss_sum)) throw sg::numeric_error("training diverged at step " + std::to_string(step));

        const bool eval_now = o.eval_every > 0 && step % o.eval_every == 0 && step < o.steps;
        if (eval_now) {
            last_val = evaluate(model, val);
            report(true);
            note_best();
            loss_sum = 0;
            loss_count = 0;
        } else if (tty && clock::now() - last_draw > std::chrono::milliseconds(100)) {
            report(false);
            last_draw = clock::now();
        }
        if (!o.checkpoint.empty() && lead && step % o.save_every == 0 && step < o.steps)
            save_checkpoint(model, voc, o.checkpoint, step);
    }
    last_val = evaluate(model, val);
    report(true);
    const double end_val = last_val;
    if (o.keep_best && !best_params.empty() && best_val < last_val) {
        const auto params = model.ps.parameters();
        for (std::size_t i = 0; i < params.size(); ++i) params[i].value<float>() = best_params[i];
        last_val = best_val;
        std::cout << "kept the best parameters: step " << best_step << ", val " << fixed(best_val, 4) << " nats (step "
                  << step << " had " << fixed(end_val, 4) << ")\n";
    }
    if (!o.checkpoint.empty() && lead) {
        save_checkpoint(model, voc, o.checkpoint, step);
        std::cout << "saved " << o.checkpoint << " (+ .vocab) at step " << step << "\n";
    }

    const double tok_s = train_seconds > 0 ? static_cast<double>(tokens) / train_seconds : 0;
    std::cout << "result best_val_loss_nats " << fixed(std::min(best_val, end_val), 4) << " nats\n"
              << "result last_val_loss_nats " << fixed(end_val, 4) << " nats\n"
              << "result val_loss_nats " << fixed(last_val, 4) << " nats\n"
              << "result val_loss_bits " << fixed(last_val / std::log(2.0), 4) << " bits\n"
              << "result tokens_per_s " << fixed(tok_s, 0) << " tok/s\n";
    if (o.sample > 0) {
        std::mt19937_64 sample_rng(o.seed);
        const std::string s = sample(model, voc, o.prime, o.sample, o.temperature, sample_rng);
        std::cout << "--- sample: " << o.sample << " characters after \"" << o.prime << "\", temperature "
                  << o.temperature << " ---\n"
                  << o.prime << s << "\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    sg::dist::environment mpi(argc, argv);  // MPI under mpirun; nothing to do for one process
    options o;
    try {
        o = parse_args(argc, argv);
    } catch (const usage_error& e) {
        std::cerr << "char_lm: " << e.message << "\n(char_lm --help lists the options)\n";
        return 2;
    }
    if (sg::dist::comm::world().size() > 1) return sg::dist::guard([&] { return run(o); });  // one fails: all stop
    try {
        return run(o);
    } catch (const sg::io_error& e) {
        std::cout << std::flush;
        std::cerr << "char_lm: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cout << std::flush;
        std::cerr << "char_lm: error: " << e.what() << "\n";
        return 1;
    }
}
