#pragma once
// Sequence-to-sequence with attention (Luong et al. 2015), over any cell.
//
//   encoder   source embedding -> `encoder_layers` layers of EncCell, each optionally
//             bidirectional (layer l > 0 reads both directions of layer l - 1), masked by the
//             source lengths (nn::unroll_masked / nn::bidirectional); the top layer's outputs
//             are the attention memory [B, S, Dm], Dm = encoder_size * directions.
//   decoder   a stack of `decoder_layers` DecCells from its zero state. At step k it reads
//             the embedding of the previous target token (the first step reads <eos>, the start
//             token: a vocab has no separate begin token) and, with input feeding, the previous
//             step's attentional state h~ as well. Its hidden h_k is the query:
//                 c_k, alpha_k = attention(memory, h_k)
//                 h~_k = tanh(W_c [c_k; h_k])                   combine.weight [Dq, Dm + Dq]
//                 p(y_k | y_<k, x) = softmax(W_out h~_k + b)  out.weight [V, Dq], out.bias [V]
//   training  teacher forcing over a minibatch of ragged pairs: target y_1 .. y_n is scored as
//             y_1 .. y_n <eos> (n + 1 predictions); positions past a row's end get target -1,
//             which cross_entropy ignores, so padding adds no loss and no gradient.
//
// What is hoisted out of the loops: the memory's projection for the score is done once per
// batch (attention::prepare); the output layer over all steps and rows is one GEMM over
// [B*T, Dq]. Without input feeding every decoder query is known before attention runs, so the
// decoder RNN runs first and the scores and contexts of all steps are one batched product each
// (attention::all_steps); with it, attention runs step by step. Embeddings are looked up per step
// (B rows each), so backward scatters B rows per step rather than slicing one [T*B, E] lookup T
// times. Decoding (nn/decoding.hpp) is forward-only, on one tape per decoder that clear()
// recycles: the source is encoded once and its memory reused by every hypothesis.
//
//     nn::seq2seq_options o{.source_vocab = sv.size(), .target_vocab = tv.size()};
//     nn::seq2seq<nn::lstm_cell> model(sg::parameter_scope(ps, "s2s"), o);
//     sg::tape t;
//     auto out = model.forward(t, sources, targets);          // ragged id sequences
//     t.backward(out.loss * (1.0 / out.tokens));
//     auto dec = model.decoder(sources[0]);
//     auto best = nn::beam_search(*dec, {.width = 5}).front().output();
//
// Any cell: EncCell and DecCell are built as Cell(parameter_scope, input_size, hidden_size) (as
// rnn_cell, lstm_cell, gru_cell and cells written the same way), and a beam reorders decoder states
// with select_rows(state, rows), defined here for expr, lstm_state and stacked_state; declare one
// next to a state type of your own, as for blend().
#include <cstddef>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "../core/tape.hpp"
#include "../ops/activation.hpp"
#include "../ops/loss.hpp"
#include "../ops/shape_ops.hpp"
#include "attention.hpp"
#include "decoding.hpp"
#include "linear.hpp"
#include "unroll.hpp"

namespace seqgrad::nn {

// ---- select_rows: keep some rows of a state (beam search) ------------------------------------------

/// Rows of a state: new row i is old row rows[i].
inline expr select_rows(const expr& s, std::span<const int> rows) { return gather_rows(s, rows); }
lstm_state select_rows(const lstm_state& s, std::span<const int> rows);
template <class State>
stacked_state<State> select_rows(const stacked_state<State>& s, std::span<const int> rows) {
    stacked_state<State> r;
    r.layers.reserve(s.layers.size());
    for (const State& l : s.layers) r.layers.push_back(select_rows(l, rows));
    r.output = select_rows(s.output, rows);
    return r;
}

// ---- options, batches, outputs -----------------------------------------------------------------------

struct seq2seq_options {
    std::size_t source_vocab = 0, target_vocab = 0;  ///< both >= 2 (<unk>, <eos>)
    std::size_t embedding_size = 32;                 ///< source and target embeddings
    std::size_t encoder_size = 64;                   ///< hidden size per direction
    std::size_t encoder_layers = 1;
    bool bidirectional = true;
    std::size_t decoder_size = 128;  ///< Dq: decoder hidden and attentional state
    std::size_t decoder_layers = 1;
    attention_score score = attention_score::general;
    std::size_t attention_size = 0;  ///< A for additive / concat (0: decoder_size)
    bool input_feeding = true;

    std::size_t memory_size() const { return encoder_size * (bidirectional ? 2 : 1); }
    /// value_error naming the option otherwise.
    void check() const;
};

/// A minibatch of ragged pairs laid out for the model (no tape involved).
struct seq2seq_batch {
    std::size_t batch = 0, source_steps = 0, target_steps = 0;  ///< B, S = longest source, T = longest target + 1
    std::vector<std::size_t> source_lengths;                    ///< B
    std::vector<int> source_ids;                                ///< [S*B] time-major, 0 past a row's end (masked)
    std::vector<int> decoder_inputs;   ///< [T*B] time-major: <eos>, y_1, .., y_{T-1}; 0 past the end
    std::vector<int> decoder_targets;  ///< [B*T] batch-major: y_1, .., y_n, <eos>, then -1
    std::size_t target_tokens = 0;     ///< sum of (n_b + 1)

    /// Throws value_error for an empty batch, an empty source or a size mismatch.
    static seq2seq_batch make(std::span<const std::vector<int>> sources, std::span<const std::vector<int>> targets);
};

/// What a teacher-forced forward pass leaves on the tape.
struct seq2seq_output {
    expr loss;                       ///< summed cross-entropy over every target token (EOS included)
    std::size_t tokens = 0;          ///< how many: divide for the per-token mean
    expr logits;                     ///< [B*T, V], batch-major (row b*T + k: step k of row b)
    std::vector<int> targets;        ///< [B*T] the targets of those rows (-1: padding)
    std::vector<expr> step_weights;  ///< attention weights per decoder step, [B, S] (input feeding)
    expr all_weights;                ///< or of all steps, [B, T, S] (without input feeding)
    std::size_t batch = 0, target_steps = 0;

    /// Attention weights of batch row `row` as [T, S]: rows = decoder steps, columns = source
    /// positions (cut them to the row's own lengths for a plot).
    xt::xarray<double> alignment(const tape& t, std::size_t row) const;
    /// Targets whose logit argmax equals them, and targets counted (padding excluded).
    std::pair<std::size_t, std::size_t> correct_tokens(const tape& t) const;
};

namespace detail {
/// The rows of a [B, D] matrix for a std::size_t index list, as ints for gather_rows.
std::vector<int> row_ids(std::span<const std::size_t> rows);
/// value_error "nn::seq2seq::<who>: <what> r, position k: id i (expected ids in [0, vocab))" for
/// the first id out of range (the embeddings, looking ids up step by step, know neither r nor k).
void check_ids(const char* who, const char* what, std::span<const std::vector<int>> seqs, std::size_t vocab);
/// Attention memory tiled to `rows` copies of row 0 (one source decoded as a beam).
attention_memory tile_memory(const expr& values, const expr& keys, std::size_t rows);
}  // namespace detail

// ---- the model ---------------------------------------------------------------------------------------

template <class EncCell, class DecCell = EncCell>
class seq2seq {
public:
    using dec_state = stacked_state<cell_state_t<DecCell>>;

    seq2seq_options options;
    embedding source_embedding, target_embedding;
    std::vector<EncCell> forward_layers, backward_layers;  ///< encoder; backward empty unless bidirectional
    stacked<DecCell> decoder_cell;
    nn::attention attention;
    linear combine, out;

    /// Parameters under scope: source_embedding.weight, target_embedding.weight, encoder.l<k>.fwd.*,
    /// encoder.l<k>.bwd.*, decoder.l<k>.*, attention.*, combine.weight, out.weight, out.bias.
    seq2seq(const parameter_scope& scope, const seq2seq_options& o)
        : seq2seq(scope, o, seqgrad::detail::store_transaction(scope.store())) {}
    /// The constructor above inside a store_transaction (it lasts while this one runs).
    seq2seq(const parameter_scope& scope, const seq2seq_options& o, const seqgrad::detail::store_transaction&)
        : options((o.check(), o)),
          source_embedding(scope.sub("source_embedding"), o.source_vocab, o.embedding_size),
          target_embedding(scope.sub("target_embedding"), o.target_vocab, o.embedding_size),
          forward_layers(encoder_layers(scope, o, "fwd")),
          backward_layers(o.bidirectional ? encoder_layers(scope, o, "bwd") : std::vector<EncCell>{}),
          decoder_cell(make_stacked<DecCell>(scope.sub("decoder"), o.decoder_layers,
                                             o.embedding_size + (o.input_feeding ? o.decoder_size : 0),
                                             o.decoder_size)),
          attention(scope.sub("attention"), o.score, o.decoder_size, o.memory_size(), o.attention_size),
          combine(scope.sub("combine"), o.memory_size() + o.decoder_size, o.decoder_size, false),
          out(scope.sub("out"), o.decoder_size, o.target_vocab) {}

    /// Re-draw every parameter with each module's own default initialisation from rng.
    void reset_parameters(std::mt19937_64& rng) const {
        source_embedding.reset_parameters(rng);
        target_embedding.reset_parameters(rng);
        for (const auto& c : forward_layers) c.reset_parameters(rng);
        for (const auto& c : backward_layers) c.reset_parameters(rng);
        for (const auto& c : decoder_cell.layers) c.reset_parameters(rng);
        attention.reset_parameters(rng);
        combine.reset_parameters(rng);
        out.reset_parameters(rng);
    }

    /// The encoder's top-layer outputs as the attention memory [B, S, Dm] (steps marked 0 .. S-1).
    expr encode(tape& t, const seq2seq_batch& b) const {
        std::vector<expr> xs;
        xs.reserve(b.source_steps);
        for (std::size_t k = 0; k < b.source_steps; ++k) {
            step_scope mark(t, static_cast<int>(k));
            xs.push_back(source_embedding(t, step_ids(b.source_ids, k, b.batch)));
        }
        for (std::size_t l = 0; l < forward_layers.size(); ++l) {
            const EncCell& f = forward_layers[l];
            if (options.bidirectional)
                xs = bidirectional<EncCell>{f, backward_layers[l]}(t, xs, b.source_lengths).outputs;
            else xs = hiddens(unroll_masked(t, f, xs, f.initial_state(t, b.batch), b.source_lengths));
        }
        return memory_from_steps(xs);
    }

    /// Teacher-forced forward pass over ragged pairs (ids; targets without their <eos>).
    seq2seq_output forward(tape& t, std::span<const std::vector<int>> sources,
                           std::span<const std::vector<int>> targets) const {
        detail::check_ids("forward", "source", sources, options.source_vocab);
        detail::check_ids("forward", "target", targets, options.target_vocab);
        return forward(t, seq2seq_batch::make(sources, targets));
    }
    seq2seq_output forward(tape& t, const seq2seq_batch& b) const {
        const attention_memory mem = attention.prepare(encode(t, b), b.source_lengths);
        const std::size_t B = b.batch, T = b.target_steps, Dq = options.decoder_size;
        seq2seq_output r;
        r.batch = B;
        r.target_steps = T;
        const int first = static_cast<int>(b.source_steps);
        dec_state s = decoder_cell.initial_state(t, B);
        expr ht;  // [B*T, Dq] attentional states, batch-major
        if (options.input_feeding) {
            expr feed = t.constant(0.0, {B, Dq});
            std::vector<expr> hts;
            for (std::size_t k = 0; k < T; ++k) {
                step_scope mark(t, first + static_cast<int>(k), k > 0 ? first + static_cast<int>(k) - 1 : -1);
                const expr x = concat({target_embedding(t, step_ids(b.decoder_inputs, k, B)), feed}, 1);
                s = decoder_cell(x, s);
                const expr h = hidden(s);
                t.mark_state(flow_state(s));  // for record_gradient_flow, as unroll marks the steps without feeding
                const attention_output o = attention(mem, h);
                feed = tanh(combine(concat({o.context, h}, 1)));
                r.step_weights.push_back(o.weights);
                hts.push_back(feed);
            }
            ht = reshape(memory_from_steps(hts), {B * T, Dq});
        } else {
            std::vector<expr> xs;
            for (std::size_t k = 0; k < T; ++k) {
                step_scope mark(t, first + static_cast<int>(k));
                xs.push_back(target_embedding(t, step_ids(b.decoder_inputs, k, B)));
            }
            const expr q = memory_from_steps(hiddens(unroll(t, decoder_cell, xs, s, first)));  // [B, T, Dq]
            const attention_output o = attention.all_steps(mem, q);
            r.all_weights = o.weights;
            ht = tanh(combine(reshape(concat({o.context, q}, 2), {B * T, options.memory_size() + Dq})));
        }
        r.logits = out(ht);
        r.targets = b.decoder_targets;
        r.tokens = b.target_tokens;
        r.loss = cross_entropy(r.logits, r.targets, reduction::sum);
        return r;
    }

    /// A decoder_model over one source, for greedy / sample / beam_search / exhaustive_search.
    /// It holds a tape of its own (the store's scalar type) and refers to this model.
    std::unique_ptr<decoder_model> decoder(const std::vector<int>& source) const {
        detail::check_ids("decoder", "source", std::span<const std::vector<int>>(&source, 1), options.source_vocab);
        return std::make_unique<session>(*this, source);
    }

private:
    // Step k of time-major ids (one lookup per step; see the notes at the top).
    static std::span<const int> step_ids(const std::vector<int>& ids, std::size_t k, std::size_t batch) {
        return std::span<const int>(ids).subspan(k * batch, batch);
    }
    static std::vector<EncCell> encoder_layers(const parameter_scope& scope, const seq2seq_options& o,
                                               const char* dir) {
        std::vector<EncCell> cells;
        for (std::size_t l = 0; l < o.encoder_layers; ++l)
            cells.emplace_back(scope.sub("encoder").sub("l" + std::to_string(l)).sub(dir),
                               l == 0 ? o.embedding_size : o.memory_size(), o.encoder_size);
        return cells;
    }

    class session : public decoder_model {
    public:
        session(const seq2seq& m, const std::vector<int>& source) : m_(m), t_(m.out.weight.scalar_type()) {
            const std::vector<int> none;
            const seq2seq_batch b = seq2seq_batch::make(std::span<const std::vector<int>>(&source, 1),
                                                        std::span<const std::vector<int>>(&none, 1));
            const attention_memory mem = m.attention.prepare(m.encode(t_, b));
            values_ = t_.value(mem.values);
            keys_ = t_.value(mem.keys);
        }
        std::size_t vocab_size() const override { return m_.options.target_vocab; }
        void begin(std::size_t rows) override {
            t_.clear();
            values0_ = t_.input(values_);
            keys0_ = t_.input(keys_);
            mem_ = detail::tile_memory(values0_, keys0_, rows);
            s_ = m_.decoder_cell.initial_state(t_, rows);
            feed_ = t_.constant(0.0, {rows, m_.options.decoder_size});
            rows_ = rows;
        }
        xt::xarray<double> step(std::span<const int> previous) override {
            if (previous.size() != rows_)
                throw value_error("nn::seq2seq decoder: step got " + std::to_string(previous.size()) +
                                  " previous tokens for " + std::to_string(rows_) +
                                  " rows (expected one per row, as set by begin or reorder)");
            const expr e = m_.target_embedding(t_, previous);
            s_ = m_.decoder_cell(m_.options.input_feeding ? concat({e, feed_}, 1) : e, s_);
            const expr h = hidden(s_);
            const attention_output o = m_.attention(mem_, h);
            feed_ = tanh(m_.combine(concat({o.context, h}, 1)));
            return t_.value(log_softmax(m_.out(feed_)));
        }
        void reorder(std::span<const std::size_t> parents) override {
            const std::vector<int> rows = detail::row_ids(parents);
            s_ = select_rows(s_, rows);
            feed_ = gather_rows(feed_, rows);
            if (parents.size() != mem_.batch) mem_ = detail::tile_memory(values0_, keys0_, parents.size());
            rows_ = parents.size();
        }

    private:
        const seq2seq& m_;
        tape t_;
        xt::xarray<double> values_, keys_;
        expr values0_, keys0_, feed_;
        attention_memory mem_;
        std::size_t rows_ = 0;
        dec_state s_;
    };
};

}  // namespace seqgrad::nn
