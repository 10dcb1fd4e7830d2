#include "seq2seq.hpp"

#include <algorithm>
#include <string>

namespace seqgrad::nn {

lstm_state select_rows(const lstm_state& s, std::span<const int> rows) {
    return {gather_rows(s.h, rows), gather_rows(s.c, rows)};
}

void seq2seq_options::check() const {
    auto require = [](bool ok, const std::string& what) {
        if (!ok) throw value_error("nn::seq2seq: " + what);
    };
    require(source_vocab >= 2 && target_vocab >= 2, "source_vocab " + std::to_string(source_vocab) + ", target_vocab " +
                                                        std::to_string(target_vocab) +
                                                        " (expected both >= 2: <unk> and <eos> at least)");
    require(embedding_size > 0 && encoder_size > 0 && decoder_size > 0,
            "embedding_size " + std::to_string(embedding_size) + ", encoder_size " + std::to_string(encoder_size) +
                ", decoder_size " + std::to_string(decoder_size) + " (expected all > 0)");
    require(encoder_layers > 0 && decoder_layers > 0, "encoder_layers " + std::to_string(encoder_layers) +
                                                          ", decoder_layers " + std::to_string(decoder_layers) +
                                                          " (expected both >= 1)");
    // Here, before any member adds its parameters (nn::attention's own check came after the
    // encoder and decoder had added theirs, and left them in the store).
    require((score != attention_score::dot && score != attention_score::scaled_dot) || decoder_size == memory_size(),
            std::string(to_string(score)) + " attention: decoder_size " + std::to_string(decoder_size) +
                ", memory size " + std::to_string(memory_size()) + " (encoder_size" +
                (bidirectional ? " x 2, bidirectional" : "") +
                "; expected equal sizes, or general or additive attention)");
}

seq2seq_batch seq2seq_batch::make(std::span<const std::vector<int>> sources,
                                  std::span<const std::vector<int>> targets) {
    if (sources.empty() || sources.size() != targets.size())
        throw value_error("nn::seq2seq_batch: " + std::to_string(sources.size()) + " sources and " +
                          std::to_string(targets.size()) + " targets (expected the same number, at least one)");
    seq2seq_batch b;
    const std::size_t B = sources.size();
    b.batch = B;
    for (std::size_t r = 0; r < B; ++r) {
        if (sources[r].empty())
            throw value_error("nn::seq2seq_batch: source " + std::to_string(r) + " is empty (expected >= 1 token)");
        b.source_lengths.push_back(sources[r].size());
        b.source_steps = std::max(b.source_steps, sources[r].size());
        b.target_steps = std::max(b.target_steps, targets[r].size() + 1);
        b.target_tokens += targets[r].size() + 1;
    }
    const std::size_t S = b.source_steps, T = b.target_steps;
    b.source_ids.assign(S * B, 0);
    b.decoder_inputs.assign(T * B, 0);
    b.decoder_targets.assign(B * T, -1);
    for (std::size_t r = 0; r < B; ++r) {
        const auto& src = sources[r];
        const auto& tgt = targets[r];
        for (std::size_t k = 0; k < src.size(); ++k) b.source_ids[k * B + r] = src[k];
        b.decoder_inputs[r] = vocab::eos_id;
        for (std::size_t k = 0; k < tgt.size(); ++k) {
            b.decoder_inputs[(k + 1) * B + r] = tgt[k];
            b.decoder_targets[r * T + k] = tgt[k];
        }
        b.decoder_targets[r * T + tgt.size()] = vocab::eos_id;
    }
    return b;
}

xt::xarray<double> seq2seq_output::alignment(const tape& t, std::size_t row) const {
    return all_weights.valid() ? weights_of_row(t, all_weights, row) : weights_of_row(t, step_weights, row);
}

std::pair<std::size_t, std::size_t> seq2seq_output::correct_tokens(const tape& t) const {
    const xt::xarray<double> z = t.value(logits);
    const std::size_t V = z.shape()[1];
    std::size_t right = 0, counted = 0;
    for (std::size_t r = 0; r < targets.size(); ++r) {
        if (targets[r] < 0) continue;
        std::size_t best = 0;
        for (std::size_t v = 1; v < V; ++v)
            if (z(r, v) > z(r, best)) best = v;
        right += static_cast<int>(best) == targets[r];
        ++counted;
    }
    return {right, counted};
}

namespace detail {

std::vector<int> row_ids(std::span<const std::size_t> rows) { return {rows.begin(), rows.end()}; }

void check_ids(const char* who, const char* what, std::span<const std::vector<int>> seqs, std::size_t vocab) {
    for (std::size_t r = 0; r < seqs.size(); ++r)
        for (std::size_t k = 0; k < seqs[r].size(); ++k)
            if (seqs[r][k] < 0 || static_cast<std::size_t>(seqs[r][k]) >= vocab)
                throw value_error(std::string("nn::seq2seq::") + who + ": " + what + " " + std::to_string(r) +
                                  ", position " + std::to_string(k) + ": id " + std::to_string(seqs[r][k]) +
                                  " (expected ids in [0, " + std::to_string(vocab) + "))");
}

attention_memory tile_memory(const expr& values, const expr& keys, std::size_t rows) {
    attention_memory m;
    const shape& v = values.shape();
    const shape& k = keys.shape();
    m.batch = rows;
    m.steps = v[1];
    m.values = rows == v[0] ? values : broadcast_to(values, {rows, v[1], v[2]});
    m.keys = rows == k[0] ? keys : broadcast_to(keys, {rows, k[1], k[2]});
    return m;
}

}  // namespace detail
}  // namespace seqgrad::nn
