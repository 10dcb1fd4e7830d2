// char_lm: a character-level language model, trained and sampled, from top to bottom.
//
//     embedding(V, E) -> LSTM(E, H) x layers -> linear(H, V) -> softmax cross-entropy
//
// It reads a text (by default the ~55 KB corpus compiled into this example, examples/data/, so the
// first run needs no download), splits it into UTF-8 characters, trains with Adam on the first 90%
// and reports the loss per character on the last 10%, then writes a sample of generated text.
//
//     char_lm                                                  # built-in corpus, ~1 minute
//     char_lm --data tinyshakespeare.txt --steps 1500          # the classic char-rnn set
//     char_lm --steps 20 --hidden 16 --sample 40               # a few seconds: a smoke test
//     char_lm --checkpoint lm.npz --save-every 500             # lm.npz + lm.npz.vocab
//     char_lm --resume lm.npz --checkpoint lm.npz --steps 3000 # go on from the saved step
//     mpirun -np 2 char_lm --batch 64                          # data-parallel: 32 streams per rank
//
// Training follows the classic recipe (PyTorch's word_language_model, Karpathy's char-rnn): the
// training text is cut into B parallel streams (nn::lm_batcher), each step reads the next T
// characters of every stream, and the state at the end of one batch is the initial state of the
// next: truncated BPTT with k = T on an sg::tbptt_stream, which carries the state as values, so
// gradients stop at the batch boundary. When the batches wrap around the state restarts from
// zeros. The loss is the mean cross-entropy over the T*B characters, as in PyTorch, so the Adam
// learning rate means the same; bench/torch_char_lm.py is this model, data split and batching in
// PyTorch, without dropout (char_lm --dropout 0 --keep-best no).
//
// The recurrent layers are one nn::stacked<nn::any_cell> of --cell lstm, rnn or gru cells, run by
// nn::unroll over the whole [T, B, E] sequence. The engine batches what does not depend on the
// recurrence (the input products of all T steps are one GEMM, each weight gradient one GEMM) and
// nn::lstm_cell's pointwise part is one fused node; an LSTM first layer runs as one fused layer
// (its whole-sequence path, which the input-dropout wrapper below forwards when it draws no mask),
// whose steps split across --threads in one parallel region. A cell of your own plugs in the same
// way.
//
// Regularisation (training only): --dropout P on the embeddings and every layer's output, with one
// mask per stream for the whole batch (--dropout-kind variational, Gal & Ghahramani 2016) or a
// fresh mask per character (standard); --weight-drop P, DropConnect on the recurrent weights, one
// mask per batch (AWD-LSTM); --tie yes, the output layer reuses the embedding (Press & Wolf 2017).
// With --keep-best yes (the default) the run ends with the parameters of its best validation (the
// final figures, checkpoint and sample are the best model's; result last_val_loss_nats is the last).
//
// Checkpoints. --checkpoint PATH saves every --save-every steps and at the end: PATH is an .npz (numpy.load reads it)
// with every parameter by name plus "train.step", the steps done (a whole number up to 2^24); PATH.vocab holds the
// vocabulary, PATH.optim Adam's state (optimizer::save_state: moments, step counts), PATH.carry the state carried
// between batches. Each is written atomically, PATH last. --resume PATH loads them (the vocabulary must equal the
// data's, the options must give the same parameter names and shapes, PATH.optim's step count must be PATH's) and trains
// on from the saved step up to --steps, the same steps an uninterrupted run takes. Under mpirun each rank carries only
// its share of the streams, so no PATH.carry is saved, and a resume mid-epoch starts the carried state from zeros. A
// checkpoint of an older char_lm (no PATH.optim, PATH.carry) resumes with fresh moments and state, and a note says so.
// --keep-best weighs only the resumed part's validations; its final checkpoint holds the best parameters beside the
// last step's Adam state and carried state.
//
// Output: progress (one updating line on a terminal, else a line every --eval-every steps), then
// `result <name> <value> <unit>` lines (val_loss_nats, val_loss_bits, tokens_per_s: training
// characters per second, evaluation excluded) and a sample drawn by nn::sample. Exit codes: 0
// done, 1 unreadable data or checkpoint, 2 bad command line.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <seqgrad/core/distributed.hpp>
#include <seqgrad/core/parallel.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/decoding.hpp>
#include <seqgrad/nn/dropout.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/text.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

#include "cli.hpp"
#include "data/builtin_corpus.hpp"
#include "lm_checkpoint.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace cli = seqgrad::cli;

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
    int threads = 0;  // not given: 1, or under mpirun what dist::environment set (cores / ranks on the machine)
    double dropout = 0.25, weight_drop = 0;
    std::string dropout_kind = "variational";
    bool tie = false, keep_best = true;
};

const char* const usage = R"(usage: char_lm [options]
Trains a character-level language model, reports validation loss, prints a sample.
  --data FILE         UTF-8 text to learn (default: the built-in ~55 KB corpus)
  --cell lstm|rnn|gru recurrent cell (lstm)
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
  --checkpoint PATH   save parameters and step to PATH (.npz), the vocabulary, Adam's state and the carried state
                      to PATH.vocab, PATH.optim and PATH.carry
  --save-every N      checkpoint every N steps, and always at the end (500)
  --resume PATH       load a checkpoint (PATH and the files beside it) and go on from its step as if never stopped
  --sample N          characters to generate after training; 0: none (300)
  --temperature X     sampling temperature, > 0 (0.8)
  --prime TEXT        text fed to the model before sampling ("The ")
  --threads N         threads (1; under mpirun cores / ranks on the machine): the executor splits products,
                      softmax rows and steps
  --dropout P         dropout on the embeddings and on every layer's output, training only (0.25)
  --dropout-kind K    variational: one mask per stream for the whole T-step batch (Gal & Ghahramani);
                      standard: a fresh mask per character (variational)
  --weight-drop P     DropConnect on the recurrent weights, one mask per batch (AWD-LSTM; --cell lstm) (0)
  --tie yes|no        output layer reuses the embedding matrix (needs --embed equal to --hidden) (no)
  --keep-best yes|no  end with the parameters of the best validation (yes)
  --help              this text
)";

options parse_args(int argc, char** argv) {
    options o;
    const std::size_t one = 1, zero = 0;
    cli::parse_options(argc, argv,
                       {{"--data", cli::text(o.data)},
                        {"--hidden", cli::number(o.hidden, one)},
                        {"--embed", cli::number(o.embed, one)},
                        {"--layers", cli::number(o.layers, one)},
                        {"--seq", cli::number(o.seq, one)},
                        {"--batch", cli::number(o.batch, one)},
                        {"--steps", cli::number(o.steps, zero)},
                        {"--save-every", cli::number(o.save_every, one)},
                        {"--sample", cli::number(o.sample, zero)},
                        {"--eval-every", cli::number(o.eval_every, zero)},
                        {"--seed", cli::number(o.seed, std::uint64_t{0})},
                        {"--threads", cli::number(o.threads, 1)},
                        {"--lr", cli::number(o.lr, 0.0, true)},
                        {"--temperature", cli::number(o.temperature, 0.0, true)},
                        {"--clip", cli::number(o.clip, 0.0)},
                        {"--cell", cli::one_of(o.cell, {"lstm", "rnn", "gru"})},
                        {"--dropout", cli::probability(o.dropout)},
                        {"--weight-drop", cli::probability(o.weight_drop)},
                        {"--dropout-kind", cli::one_of(o.dropout_kind, {"standard", "variational"})},
                        {"--tie", cli::yes_no(o.tie)},
                        {"--keep-best", cli::yes_no(o.keep_best)},
                        {"--checkpoint", cli::text(o.checkpoint)},
                        {"--resume", cli::text(o.resume)},
                        {"--prime", cli::text(o.prime)}},
                       usage);
    cli::check_outputs("--checkpoint", o.checkpoint, {"", ".vocab", ".optim", ".carry"}, "--data",
                       o.data);  // before any training
    if (o.tie && o.embed != o.hidden)
        throw cli::usage_error{"--tie: the output layer reuses the [V, E] embedding, so --embed (" +
                               std::to_string(o.embed) + ") must equal --hidden (" + std::to_string(o.hidden) + ")"};
    if (o.weight_drop > 0 && o.cell != "lstm") throw cli::usage_error{"--weight-drop: only with --cell lstm"};
    return o;
}

// ---- the model -------------------------------------------------------------------------------

// A cell reading its input through a variational dropout mask (between layers; identity when
// default-constructed).
template <class Cell>
struct dropped_input {
    Cell cell;
    nn::locked_dropout drop;
    using state = nn::cell_state_t<Cell>;
    state operator()(const sg::expr& x, const state& s) const { return cell(drop(x), s); }
    state initial_state(sg::tape& t, std::size_t batch) const { return cell.initial_state(t, batch); }
    // Without a mask, the wrapped cell's whole-sequence path (nn::unroll over [T, B, I]; for
    // nn::lstm_cell one fused layer), found by argument-dependent lookup as hidden() is.
    friend bool sequence_path_applies(const sg::tape& t, const dropped_input& c, const sg::shape& x, const state& s0) {
        return !c.drop.active() && nn::sequence_path_applies(t, c.cell, x, s0);
    }
    friend std::vector<state> sequence_path(sg::tape& t, const dropped_input& c, const sg::expr& x, const state& s0,
                                            int first_step) {
        return nn::sequence_path(t, c.cell, x, s0, first_step);
    }
};

// The state carried from one batch to the next, as exprs: per layer h, and c for an LSTM.
std::vector<sg::expr> carried_exprs(const nn::stacked_state<nn::any_state>& s) {
    std::vector<sg::expr> out;
    for (const nn::any_state& l : s.layers)
        if (l.type() == typeid(nn::lstm_state)) out.insert(out.end(), {hidden(l), l.get<nn::lstm_state>().c});
        else out.push_back(nn::hidden(l));
    return out;
}

struct chunk {
    sg::expr logits;              // [T*B, V]
    std::vector<sg::expr> state;  // after the last step, to carry
};

struct char_model {
    sg::parameter_store ps;  // float32: every weight of the model, by name
    std::size_t vocab_size, hidden;
    nn::embedding emb;
    std::vector<std::variant<nn::lstm_cell, nn::rnn_cell, nn::gru_cell>> cells;  // one per layer
    std::optional<nn::linear> out;  // absent with --tie: the logits reuse emb.weight
    sg::parameter out_bias;
    double dropout, weight_drop;
    bool variational;
    sg::parameter step;  // training steps done: frozen (never trained), saved in checkpoints

    char_model(std::size_t V, const options& o, std::mt19937_64& rng)
        : vocab_size(V),
          hidden(o.hidden),
          emb(sg::parameter_scope(ps, "emb"), V, o.embed, rng),
          dropout(o.dropout),
          weight_drop(o.weight_drop),
          variational(o.dropout_kind == "variational") {
        if (!o.tie) out.emplace(sg::parameter_scope(ps, "out"), o.hidden, V, true, rng);
        for (std::size_t l = 0; l < o.layers; ++l) {
            const sg::parameter_scope scope(ps, o.cell + std::to_string(l));  // "lstm0.w_ih", ...
            const std::size_t in = l == 0 ? o.embed : o.hidden, h = o.hidden;
            if (o.cell == "lstm") cells.emplace_back(nn::lstm_cell(scope, in, h, rng));
            else if (o.cell == "rnn") cells.emplace_back(nn::rnn_cell(scope, in, h, nn::rnn_activation::tanh, rng));
            else cells.emplace_back(nn::gru_cell(scope, in, h, rng));
        }
        // Tied: the output layer's weight is the embedding, its bias a parameter of its own.
        out_bias = out ? out->bias : ps.add("out.bias", xt::xarray<double>(xt::zeros<double>({V})));
        step = ps.add("train.step", sg::shape{1});
        step.set_trainable(false);
    }

    // Dropout on x [T*B, W] (training tapes only): variational draws one [B, W] mask, so a stream
    // keeps its mask for all T steps of the batch.
    sg::expr drop(sg::tape& t, const sg::expr& x, std::size_t batch) const {
        if (!variational) return nn::dropout(x, dropout);
        return nn::locked_dropout(t, dropout, {batch, x.shape()[1]})(x);
    }

    // The layers as one stacked cell for tape t: masks (weight drop, variational dropout between
    // layers) are drawn once per tape, so once per batch.
    nn::stacked<nn::any_cell> stack(sg::tape& t, std::size_t batch) const {
        std::vector<nn::any_cell> layers;
        for (std::size_t l = 0; l < cells.size(); ++l) {
            const nn::locked_dropout in = l > 0 && variational ? nn::locked_dropout(t, dropout, {batch, hidden})
                                                               : nn::locked_dropout();
            layers.push_back(std::visit(
                [&]<class Cell>(const Cell& cell) -> nn::any_cell {
                    if constexpr (std::is_same_v<Cell, nn::lstm_cell>)
                        if (weight_drop > 0) {
                            nn::weight_dropped_lstm dropped(t, cell, weight_drop);
                            return dropped_input<nn::weight_dropped_lstm>{dropped, in};
                        }
                    return dropped_input<Cell>{cell, in};
                },
                cells[l]));
        }
        nn::stacked<nn::any_cell> rnn(std::move(layers));
        rnn.dropout = variational ? 0 : dropout;  // standard: a fresh mask per step between layers
        return rnn;
    }

    // The stack's state from carried exprs (laid out as carried_exprs does); zeros when none.
    static nn::stacked_state<nn::any_state> initial(const nn::stacked<nn::any_cell>& rnn, sg::tape& t,
                                                    std::span<const sg::expr> carried, std::size_t batch) {
        if (carried.empty()) return rnn.initial_state(t, batch);
        const std::size_t n = rnn.layers.size();
        std::vector<nn::any_state> layers;
        for (std::size_t l = 0; l < n; ++l)
            layers.push_back(carried.size() == 2 * n ? nn::any_state(nn::lstm_state{carried[2 * l], carried[2 * l + 1]})
                                                     : nn::any_state(carried[l]));
        return rnn.make_state(std::move(layers));
    }

    // Logits for ids (T*B of them, time-major: entry k*B + b is step k of stream b) from the
    // carried state (empty: zeros), and the state after the last step.
    chunk forward(sg::tape& t, std::span<const int> ids, std::size_t batch, std::span<const sg::expr> carried) const {
        const sg::expr x = drop(t, emb(t, ids), batch);  // [T*B, E]
        const nn::stacked<nn::any_cell> rnn = stack(t, batch);
        // The whole sequence [T, B, E]: the first layer runs as one fused layer where it can.
        const sg::expr seq = sg::reshape(x, {ids.size() / batch, batch, x.shape()[1]});
        const auto states = nn::unroll(t, rnn, seq, initial(rnn, t, carried, batch));
        const std::vector<sg::expr> hs = nn::hiddens(states);
        const sg::expr h = drop(t, sg::concat(hs, 0), batch);  // [T*B, H], time-major again
        // The output layer over every step at once, one GEMM. Tied: the embedding is its weight.
        return {out ? (*out)(h) : sg::matmul_add(out_bias, h, sg::T(emb.weight)), carried_exprs(states.back())};
    }
};

// One step of training on the stream's tape: forward from the carried state, backward (the
// gradients summed across ranks by reduce), clipping, Adam. Returns the loss over b, this rank's streams.
double train_step(char_model& m, sg::tbptt_stream& stream, const nn::lm_batch& b, sg::dist::reducer& reduce,
                  sg::optim::adam& opt, double clip, std::uint64_t seed) {
    const std::vector<sg::expr> carried = stream.begin();
    sg::tape& t = stream.tape();
    t.set_seed(seed);  // new dropout masks every step, reproducible
    const chunk c = m.forward(t, b.inputs, b.batch, carried);
    const sg::expr loss = sg::cross_entropy(c.logits, b.targets, sg::reduction::mean);
    reduce.attach(t);
    t.backward(loss);
    stream.carry(c.state);
    reduce.finish();  // the mean gradient of the global batch, the same bits on every rank
    if (clip > 0) sg::optim::clip_global_norm(m.ps, clip);
    opt.step();  // also zeroes the gradients
    return t.item(loss);
}

// ---- evaluation and sampling -----------------------------------------------------------------

// Mean cross-entropy per character (nats) over a whole stream, batched, state carried, no backward.
double evaluate(const char_model& m, const nn::lm_batcher& data) {
    sg::tbptt_stream stream;  // evaluation mode: no dropout
    double total = 0;
    std::size_t count = 0;
    for (std::size_t k = 0; k < data.num_batches(); ++k) {
        const nn::lm_batch b = data.get(k);
        const std::vector<sg::expr> carried = stream.begin();
        const chunk c = m.forward(stream.tape(), b.inputs, b.batch, carried);
        total += stream.tape().item(sg::cross_entropy(c.logits, b.targets, sg::reduction::sum));
        stream.carry(c.state);
        count += b.targets.size();
    }
    return total / static_cast<double>(count);
}

// The model as the decoders of nn/decoding.hpp see it: begin() reads the prime but its last
// character, which is the start token; each step() reads one character per row.
class char_decoder final : public nn::decoder_model {
public:
    char_decoder(const char_model& m, std::vector<int> prime) : m_(m), prime_(std::move(prime)) {}
    std::size_t vocab_size() const override { return m_.vocab_size; }
    int start_token() const override { return prime_.back(); }
    void begin(std::size_t rows) override {
        stream_.reset();
        parents_.clear();
        rows_ = rows;
        std::vector<int> ids;  // time-major: every row reads the same prime
        for (std::size_t k = 0; k + 1 < prime_.size(); ++k) ids.insert(ids.end(), rows, prime_[k]);
        if (!ids.empty()) read(ids);
    }
    xt::xarray<double> step(std::span<const int> previous) override {
        xt::xarray<double> lp = stream_.tape().value(sg::log_softmax(read(previous)));
        // Ids 0 and 1 are <unk> and <eos>, never targets in character data: never drawn.
        for (std::size_t r = 0; r < rows_; ++r) lp(r, 0) = lp(r, 1) = -std::numeric_limits<double>::infinity();
        return lp;
    }
    void reorder(std::span<const std::size_t> parents) override {
        parents_.clear();
        for (std::size_t p : parents) parents_.push_back(static_cast<int>(p));
    }

private:
    sg::expr read(std::span<const int> ids) {
        std::vector<sg::expr> carried = stream_.begin();
        if (!parents_.empty()) {  // the rows kept by the last reorder()
            for (sg::expr& s : carried) s = sg::gather_rows(s, parents_);
            rows_ = parents_.size();
            parents_.clear();
        }
        const chunk c = m_.forward(stream_.tape(), ids, rows_, carried);
        stream_.carry(c.state);
        return c.logits;
    }
    const char_model& m_;
    std::vector<int> prime_, parents_;
    sg::tbptt_stream stream_;
    std::size_t rows_ = 1;
};

std::string sample(const char_model& m, const nn::vocab& voc, const std::string& prime, std::size_t n,
                   double temperature, std::mt19937_64& rng) {
    std::vector<int> ids = voc.encode(nn::utf8_chars(prime));
    if (ids.empty()) ids = {voc.contains("\n") ? voc.id("\n") : 2};  // no prime: as after a line break
    char_decoder dec(m, ids);
    std::string text;
    for (int id : nn::sample(dec, {.temperature = temperature, .max_length = n}, rng).tokens) text += voc.token(id);
    return text;
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
    // The executor splits the work (BLAS too); with several ranks, dist::environment's share of the cores.
    const std::size_t threads = o.threads > 0                        ? static_cast<std::size_t>(o.threads)
                                : sg::dist::comm::world().size() > 1 ? sg::dist::threads_per_rank()
                                                                     : 1;
    sg::set_num_threads(threads);
    using clock = std::chrono::steady_clock;
    const bool tty = isatty(STDOUT_FILENO) != 0;

    // Data: characters -> ids; first 90% to train on, the rest to validate.
    const std::string text = o.data.empty() ? std::string(sg::examples::builtin_corpus()) : read_file(o.data);
    const std::vector<std::string> chars = nn::utf8_chars(text);
    const nn::vocab voc = nn::vocab::build(chars);
    const auto [train_ids, val_ids] = nn::split_ids(voc.encode(chars), 0.9);
    if (train_ids.size() <= o.batch || val_ids.size() < 2)
        throw sg::io_error("--data '" + o.data + "': too short for --batch " + std::to_string(o.batch) +
                           ": its first 90% has " + std::to_string(train_ids.size()) + " characters (needs more than " +
                           std::to_string(o.batch) + "), its last 10% " + std::to_string(val_ids.size()) +
                           " (needs 2)");
    const nn::lm_batcher train(train_ids, o.batch, o.seq);
    const nn::lm_batcher val(val_ids, std::min(o.batch, val_ids.size() - 1), o.seq);

    std::mt19937_64 rng(o.seed);
    char_model model(voc.size(), o, rng);
    std::size_t step = 0;
    if (!o.resume.empty()) step = sg::examples::load_checkpoint(model.ps, model.step, voc, o.resume);
    // Under mpirun: rank 0's parameters everywhere, each rank a share of the B streams (dealt anew
    // every epoch), gradients summed across ranks while backward runs; rank 0 prints and saves.
    // One process: all the streams, unshuffled, as without MPI.
    const sg::dist::comm world = sg::dist::comm::world();
    const bool lead = world.rank() == 0;
    if (!lead) std::cout.setstate(std::ios::failbit);
    sg::dist::broadcast(model.ps, world);
    const sg::dist::sampler streams(o.batch, world, o.seed, world.size() > 1);
    std::vector<std::size_t> mine = streams.indices(step / train.num_batches());
    sg::dist::reducer reduce(model.ps, world);
    const double share = static_cast<double>(mine.size()) / static_cast<double>(o.batch);
    reduce.set_weight(share);
    const std::uint64_t rank_seed = static_cast<std::uint64_t>(world.rank()) * 0x9E3779B97F4A7C15ull;

    std::cout << "data: " << (o.data.empty() ? "built-in corpus" : o.data) << ", " << chars.size()
              << " characters, vocabulary " << voc.size() << ", train " << train_ids.size() << ", validation "
              << val_ids.size() << "\nmodel: " << o.cell << " x" << o.layers << ", embed " << o.embed << ", hidden "
              << o.hidden << ", " << model.ps.num_elements() - 1 << " parameters; batch " << o.batch << " x seq "
              << o.seq << ", Adam lr " << o.lr << ", clip " << o.clip << ", threads " << threads
              << "\nregularisation: dropout " << o.dropout << " (" << o.dropout_kind << ")"
              << ", weight drop " << o.weight_drop << (o.tie ? ", tied embedding" : "")
              << (o.keep_best ? ", keep best" : "") << "\n";
    if (!o.resume.empty()) std::cout << "resumed from " << o.resume << " at step " << step << "\n";
    std::cout << std::flush;

    if (!o.checkpoint.empty() && lead) voc.save(o.checkpoint + ".vocab");  // if unwritable, fails before training
    sg::optim::adam opt(model.ps, o.lr);
    sg::tbptt_stream stream;  // one tape, reused step after step; the state carried as values
    stream.tape().set_training(true);
    const bool one = world.size() == 1;  // holds every stream's carried state (a rank holds its share)
    if (!o.resume.empty()) {
        sg::examples::load_optimizer_state(opt, o.resume, step, o.lr, "char_lm");
        const std::size_t carried = o.layers * (o.cell == "lstm" ? 2 : 1);  // h, and c for an LSTM, per layer
        if (one)
            stream.set_carried(sg::examples::load_carried(o.resume, step, step % train.num_batches() == 0, carried,
                                                          {o.batch, o.hidden}));
        else if (lead && step % train.num_batches() != 0)  // a rank holds its share: no PATH.carry is saved
            std::cout << "note: under mpirun the state carried between batches restarts from zeros at step " << step
                      << ", so the run differs slightly from an uninterrupted one\n";
    }
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
        if (with_val) line += "  val " + fixed(last_val, 4) + " nats " + fixed(last_val / std::log(2.0), 4) + " bits";
        if (train_seconds > 0) line += "  " + fixed(static_cast<double>(tokens) / train_seconds, 0) + " tok/s";
        if (step < o.steps) line += "  ETA " + duration(per_step * static_cast<double>(o.steps - step));
        if (tty) std::cout << "\r\033[K" << line << (with_val ? "\n" : "") << std::flush;
        else if (with_val) std::cout << line << std::endl;
    };

    while (step < o.steps) {
        const std::size_t k = step % train.num_batches();
        if (k == 0) {  // wrapped around: a fresh start from zeros, the streams dealt anew
            stream.reset();
            mine = streams.indices(step / train.num_batches());
        }
        const nn::lm_batch all = train.get(k);
        const nn::lm_batch b{sg::dist::select_streams(all.inputs, all.batch, mine),
                             sg::dist::select_streams(all.targets, all.batch, mine), all.steps, mine.size()};
        const auto start = clock::now();
        // New dropout masks every step and rank (rank 0's as in one process), reproducible.
        const double loss = train_step(model, stream, b, reduce, opt, o.clip, o.seed * 1000003 + step + rank_seed);
        loss_sum += world.size() > 1 ? sg::dist::sum(loss * share, world) : loss;  // the global batch's mean
        ++loss_count;
        train_seconds += std::chrono::duration<double>(clock::now() - start).count();
        tokens += all.inputs.size();
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
            sg::examples::save_checkpoint(model.ps, model.step, opt, voc, o.checkpoint, step,
                                          one ? &stream.carried() : nullptr);
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
        sg::examples::save_checkpoint(model.ps, model.step, opt, voc, o.checkpoint, step,
                                      one ? &stream.carried() : nullptr);
        std::cout << "saved " << o.checkpoint << " (+ .vocab, .optim" << (one ? ", .carry" : "") << ") at step " << step
                  << "\n";
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
    const bool many = sg::dist::comm::world().size() > 1;
    return cli::main("char_lm", argc, argv, parse_args, [&](const options& o) {
        return many ? sg::dist::guard([&] { return run(o); }) : run(o);  // a rank that fails stops them all
    });
}
