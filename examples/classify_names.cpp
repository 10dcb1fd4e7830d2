// classify_names: which language does a surname come from? A many-to-one character RNN.
//
//     embedding(V, E) -> LSTM or GRU (H) over the characters -> last state -> linear(H, C) -> softmax
//
// The data is the classic surname set of ../shared/data/names: one file per language ("Czech.txt"),
// one surname per line, UTF-8. The label of a name is its file's name. Each name is read as a
// sequence of Unicode characters (nn::utf8_chars: "Dvořák" is 6 characters, not 8 bytes).
//
//     classify_names                                   # LSTM, hidden 128: ~20 s of CPU, about a minute on 2 busy cores
//     classify_names --cell gru --epochs 6
//     classify_names --predict "Nakamura,Dostoevsky,O'Brien"   # top-3 languages after training
//     classify_names --epochs 1 --hidden 16            # a smoke test (seconds)
//
// Held-out split: within each language, names are deduplicated, ordered by a seeded hash
// (FNV-1a 64 of "<seed>:<name>") and the first 10% (at least one) are held out, so the split is
// stratified, reproducible and independent of file order; bench/torch_classify_names.py makes the
// same split. Classes are very unequal (Russian ~9,300 names, Vietnamese 70): held-out accuracy
// is dominated by the large classes, so the balanced accuracy (mean recall per class) is
// printed as well.
//
// Variable lengths: names are 1 to ~26 characters. Each epoch shuffles the training names, sorts
// pools of 32 batches by length and cuts them into batches, so a batch holds names of similar
// length (little padding); nn::unroll_masked then runs the batch for its longest name, and a row
// whose name has ended keeps its state (no gradient flows through the padding), so
// states.back() holds every name's state at its own last character: exactly what a
// one-name-at-a-time loop computes, at batch speed.
//
// Output: one line per epoch (loss, training and held-out accuracy), then `result` lines, the
// per-language recall, and a confusion matrix of the held-out names as names_confusion.svg (rows:
// true language, columns: predicted, each row normalised to sum to 1) and names_confusion.csv
// (the counts), written to the current directory or --out DIR.
// Exit codes: 0 done, 1 data missing or unreadable, output not writable or the training diverged,
// 2 bad command line.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/text.hpp>
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
    std::string data, out = ".", cell = "lstm", predict;
    std::size_t hidden = 128, embed = 32, batch = 64, epochs = 8;
    double lr = 2e-3, lr_decay = 0.8, clip = 5, held_out = 0.1;
    std::uint64_t seed = 1;
    int threads = 1;
};

const char* const usage = R"(usage: classify_names [options]
Trains a character RNN to tell a surname's language, reports held-out accuracy, draws a confusion matrix.
  --data DIR          folder of <language>.txt files (default: ../shared/data/names, then the
                      data folder this example was built with)
  --out DIR           where to write names_confusion.svg and .csv (.)
  --cell lstm|gru     recurrent cell (lstm)
  --hidden N          hidden units (128)
  --embed N           character embedding size (32)
  --batch N           names per batch (64)
  --epochs N          passes over the training names (8)
  --lr X              Adam learning rate (2e-3)
  --lr-decay X        multiply the learning rate by X after every epoch, in (0, 1] (0.8)
  --clip X            clip the global gradient norm to X; 0 turns clipping off (5)
  --held-out X        fraction of each language held out for testing, in (0, 1) (0.1)
  --seed N            seed of the split, the initial weights and the batch order (1)
  --predict LIST      comma-separated surnames to classify after training (top 3 each)
  --threads N         OpenBLAS threads (1: fastest for these small products)
  --help              this text
)";

options parse_args(int argc, char** argv) {
    options o;
    const std::size_t one = 1;
    cli::parse_options(argc, argv,
                       {{"--data", cli::text(o.data)},
                        {"--out", cli::text(o.out)},
                        {"--predict", cli::text(o.predict)},
                        {"--hidden", cli::number(o.hidden, one)},
                        {"--embed", cli::number(o.embed, one)},
                        {"--batch", cli::number(o.batch, one)},
                        {"--epochs", cli::number(o.epochs, one)},
                        {"--lr", cli::number(o.lr, 0.0, true)},
                        {"--lr-decay",
                         [&](const std::string& n, const std::string& v) {
                             o.lr_decay = cli::parse_number(n, v, 0.0, true);
                             if (o.lr_decay > 1)
                                 throw cli::usage_error{n + ": expected a number in (0, 1], got '" + v + "'"};
                         }},
                        {"--clip", cli::number(o.clip, 0.0)},
                        {"--held-out",
                         [&](const std::string& n, const std::string& v) {
                             o.held_out = cli::parse_number(n, v, 0.0, true);
                             if (o.held_out >= 1)
                                 throw cli::usage_error{n + ": expected a number in (0, 1), got '" + v + "'"};
                         }},
                        {"--seed", cli::number(o.seed, std::uint64_t{0})},
                        {"--threads", cli::number(o.threads, 1)},
                        {"--cell", cli::one_of(o.cell, {"lstm", "gru"})}},
                       usage);
    return o;
}

// ---- data ------------------------------------------------------------------------------------

struct name_set {
    std::vector<std::string> languages;    // class id -> language (file name without .txt)
    std::vector<std::string> train, test;  // surnames
    std::vector<int> train_label, test_label;
};

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

// s without the spaces, tabs and carriage returns around it: a name as the model reads it, from
// the data files and from --predict ("Nakamura, Dostoevsky").
std::string trimmed(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The folder of <language>.txt files: --data if given, else the usual places.
fs::path find_data(const std::string& given) {
    std::vector<fs::path> candidates;
    if (!given.empty()) candidates.push_back(given);
    else {
        candidates.push_back("../shared/data/names");
#ifdef SEQGRAD_SHARED_DATA
        candidates.push_back(fs::path(SEQGRAD_SHARED_DATA) / "names");
#endif
    }
    for (const auto& c : candidates) {
        std::error_code ec;
        if (fs::is_directory(c, ec)) return c.lexically_normal();
        // A file given as --data (one language's list, say) is there, just not a folder: "no data found" misleads.
        if (!given.empty() && fs::exists(c, ec))
            throw sg::io_error("--data '" + given + "' is not a folder; pass the folder of <language>.txt files");
    }
    std::string tried;
    for (const auto& c : candidates) tried += "\n  " + c.string();
    throw sg::io_error("no names data found; looked in:" + tried +
                       "\nthis example needs the surname lists (one <language>.txt per language, one name per line);"
                       " pass their folder with --data DIR");
}

name_set load_names(const fs::path& dir, double held_out, std::uint64_t seed) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.size() < 2) throw sg::io_error(dir.string() + ": expected at least two <language>.txt files");
    name_set d;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) throw sg::io_error(f.string() + ": cannot read");
        std::vector<std::string> names;
        std::unordered_set<std::string> seen;
        for (std::string line; std::getline(in, line);) {
            std::string n = trimmed(line);
            if (n.empty()) continue;
            if (seen.insert(n).second) names.push_back(std::move(n));
        }
        if (names.empty()) continue;
        const int label = static_cast<int>(d.languages.size());
        d.languages.push_back(f.stem().string());
        // Seeded, stratified split: order by hash, hold out the first round(fraction * n).
        const std::string salt = std::to_string(seed) + ":";
        std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
            const std::uint64_t ha = fnv1a(salt + a), hb = fnv1a(salt + b);
            return ha != hb ? ha < hb : a < b;
        });
        const std::size_t n_test =
            std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(held_out * names.size())));
        for (std::size_t i = 0; i < names.size(); ++i) {
            auto [set, labels] = i < n_test ? std::tie(d.test, d.test_label) : std::tie(d.train, d.train_label);
            set.push_back(names[i]);
            labels.push_back(label);
        }
    }
    // Empty files name no language, and a language whose names are all held out trains on none.
    if (d.languages.size() < 2)
        throw sg::io_error(dir.string() + ": expected at least two <language>.txt files with names, found " +
                           std::to_string(d.languages.size()));
    if (d.train.empty())
        throw sg::io_error(dir.string() + ": no names left to train on (--held-out " + std::to_string(held_out) +
                           " holds out every name)");
    return d;
}

// A batch laid out per step: ids[k][b] is character k of name b (0 past its end).
struct batch {
    std::vector<std::vector<int>> ids;
    std::vector<std::size_t> lengths;
    std::vector<int> labels;
    std::vector<std::size_t> rows;  // which examples, for reading predictions back
};

batch make_batch(const std::vector<std::vector<int>>& seqs, const std::vector<int>& labels,
                 std::span<const std::size_t> rows) {
    batch b;
    std::size_t steps = 0;
    for (std::size_t r : rows) steps = std::max(steps, seqs[r].size());
    b.ids.assign(steps, std::vector<int>(rows.size(), 0));
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& s = seqs[rows[i]];
        for (std::size_t k = 0; k < s.size(); ++k) b.ids[k][i] = s[k];
        b.lengths.push_back(s.size());
        b.labels.push_back(labels[rows[i]]);
    }
    b.rows.assign(rows.begin(), rows.end());
    return b;
}

// Batches of similar lengths: pools of 32 batches are sorted by length, cut up, and the batches
// of all pools are shuffled (with rng; without one, the order is kept: evaluation).
std::vector<batch> make_batches(const std::vector<std::vector<int>>& seqs, const std::vector<int>& labels,
                                std::size_t batch_size, std::mt19937_64* rng) {
    std::vector<std::size_t> order(seqs.size());
    std::iota(order.begin(), order.end(), 0);
    if (rng) std::shuffle(order.begin(), order.end(), *rng);
    // 32 batches, or all the names when that is fewer (32 * batch_size may wrap around to 0).
    const std::size_t pool = batch_size > order.size() / 32 ? order.size() : 32 * batch_size;
    std::vector<batch> out;
    for (std::size_t p = 0; p < order.size(); p += pool) {
        const std::size_t end = std::min(order.size(), p + pool);
        std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(p),
                         order.begin() + static_cast<std::ptrdiff_t>(end),
                         [&](std::size_t a, std::size_t b) { return seqs[a].size() < seqs[b].size(); });
        for (std::size_t i = p; i < end; i += batch_size)
            out.push_back(make_batch(seqs, labels, std::span(order).subspan(i, std::min(batch_size, end - i))));
    }
    if (rng) std::shuffle(out.begin(), out.end(), *rng);
    return out;
}

// ---- the model -------------------------------------------------------------------------------

template <class Cell>
struct classifier {
    nn::embedding emb;
    Cell cell;
    nn::linear out;

    classifier(sg::parameter_store& ps, std::size_t vocab, std::size_t classes, const options& o, std::mt19937_64& rng)
        : emb(sg::parameter_scope(ps, "emb"), vocab, o.embed, rng),
          cell(sg::parameter_scope(ps, o.cell), o.embed, o.hidden, rng),
          out(sg::parameter_scope(ps, "out"), o.hidden, classes, true, rng) {}

    // Logits [B, C]: the state at each name's last character, through the output layer.
    sg::expr logits(sg::tape& t, const batch& b) const {
        std::vector<sg::expr> xs;
        for (const auto& step : b.ids) xs.push_back(emb(t, step));  // [B, E] per character
        const auto states = nn::unroll_masked(t, cell, xs, cell.initial_state(t, b.lengths.size()), b.lengths);
        return out(nn::hidden(states.back()));
    }
};

std::vector<int> argmax_rows(const xt::xarray<double>& logits) {
    std::vector<int> best(logits.shape()[0], 0);
    for (std::size_t r = 0; r < best.size(); ++r)
        for (std::size_t c = 1; c < logits.shape()[1]; ++c)
            if (logits(r, c) > logits(r, best[r])) best[r] = static_cast<int>(c);
    return best;
}

// Predicted class of every example, in example order.
template <class Cell>
std::vector<int> predict(const classifier<Cell>& model, const std::vector<std::vector<int>>& seqs) {
    std::vector<int> labels(seqs.size(), 0), pred(seqs.size());
    sg::tape t;
    for (const batch& b : make_batches(seqs, labels, 512, nullptr)) {
        t.clear();
        const std::vector<int> best = argmax_rows(t.value(model.logits(t, b)));
        for (std::size_t i = 0; i < b.rows.size(); ++i) pred[b.rows[i]] = best[i];
    }
    return pred;
}

double accuracy(const std::vector<int>& pred, const std::vector<int>& truth) {
    std::size_t ok = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) ok += pred[i] == truth[i];
    return pred.empty() ? 0.0 : static_cast<double>(ok) / static_cast<double>(pred.size());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class Cell>
int run(const options& o, const name_set& d) {
    // Characters of the training names make the vocabulary; unseen ones map to <unk>.
    std::vector<std::string> chars;
    for (const auto& n : d.train)
        for (auto& c : nn::utf8_chars(n)) chars.push_back(std::move(c));
    const nn::vocab voc = nn::vocab::build(chars);
    auto encode = [&](const std::vector<std::string>& names) {
        std::vector<std::vector<int>> out;
        for (const auto& n : names) out.push_back(voc.encode(nn::utf8_chars(n)));
        return out;
    };
    const auto train = encode(d.train), test = encode(d.test);
    const std::size_t C = d.languages.size();
    std::printf("%zu languages, %zu training and %zu held-out names, %zu characters; %s, hidden %zu\n", C, train.size(),
                test.size(), voc.size(), o.cell.c_str(), o.hidden);

    std::mt19937_64 rng(o.seed);
    sg::parameter_store ps;
    const classifier<Cell> model(ps, voc.size(), C, o, rng);
    sg::optim::adam opt(ps, o.lr);
    const bool tty = ::isatty(STDOUT_FILENO);
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t start_cpu = std::clock();
    sg::tape t;
    for (std::size_t epoch = 1; epoch <= o.epochs; ++epoch) {
        const auto batches = make_batches(train, d.train_label, o.batch, &rng);
        opt.set_learning_rate(o.lr * std::pow(o.lr_decay, static_cast<double>(epoch - 1)));
        double loss_sum = 0;
        std::size_t correct = 0, seen = 0;
        for (std::size_t i = 0; i < batches.size(); ++i) {
            const batch& b = batches[i];
            t.clear();
            const sg::expr logits = model.logits(t, b);
            const sg::expr loss = sg::cross_entropy(logits, b.labels, sg::reduction::mean);
            t.backward(loss);
            // A diverged run is an error (exit 1), not results of nan (as char_lm and word_lm).
            if (!std::isfinite(t.item(loss)))
                throw sg::numeric_error("training diverged in epoch " + std::to_string(epoch) + ", batch " +
                                        std::to_string(i + 1) + ": loss " + std::to_string(t.item(loss)) +
                                        " (try a smaller --lr)");
            if (o.clip > 0) sg::optim::clip_global_norm(ps, o.clip);
            opt.step();
            loss_sum += t.item(loss) * static_cast<double>(b.labels.size());
            const std::vector<int> best = argmax_rows(t.value(logits));
            for (std::size_t r = 0; r < best.size(); ++r) correct += best[r] == b.labels[r];
            seen += b.labels.size();
            if (tty && i % 20 == 0) {
                std::printf("\repoch %zu/%zu  batch %zu/%zu  loss %.3f ", epoch, o.epochs, i + 1, batches.size(),
                            loss_sum / static_cast<double>(seen));
                std::fflush(stdout);
            }
        }
        const double test_acc = accuracy(predict(model, test), d.test_label);
        std::printf("%sepoch %zu/%zu  loss %.4f  train acc %.4f  held-out acc %.4f  (%.1f s)\n", tty ? "\r" : "", epoch,
                    o.epochs, loss_sum / static_cast<double>(seen),
                    static_cast<double>(correct) / static_cast<double>(seen), test_acc, seconds_since(start));
        std::fflush(stdout);
    }
    const double train_seconds = seconds_since(start);
    const double train_cpu_seconds = static_cast<double>(std::clock() - start_cpu) / CLOCKS_PER_SEC;

    // Held-out evaluation: accuracy, recall per language, confusion matrix.
    const std::vector<int> pred = predict(model, test);
    std::vector<std::vector<double>> counts(C, std::vector<double>(C, 0.0)), norm = counts;
    for (std::size_t i = 0; i < pred.size(); ++i) counts[d.test_label[i]][pred[i]] += 1;
    double recall_sum = 0;
    std::printf("\n%-12s %6s %8s\n", "language", "names", "recall");
    for (std::size_t r = 0; r < C; ++r) {
        const double n = std::accumulate(counts[r].begin(), counts[r].end(), 0.0);
        for (std::size_t c = 0; c < C; ++c) norm[r][c] = n > 0 ? counts[r][c] / n : 0.0;
        recall_sum += norm[r][r];
        std::printf("%-12s %6.0f %8.3f\n", d.languages[r].c_str(), n, norm[r][r]);
    }
    const std::string svg = (fs::path(o.out) / "names_confusion.svg").string();
    const std::string csv = (fs::path(o.out) / "names_confusion.csv").string();
    sg::plot::heatmap_svg(svg, norm, d.languages, d.languages,
                          "Held-out surnames: true language (rows) vs predicted (columns), fraction of each row",
                          {.vmin = 0, .vmax = 1, .annotate_zeros = false});
    sg::plot::write_csv(csv, counts, d.languages, d.languages, "true\\predicted (counts)");
    std::printf("wrote %s and %s\n\n", svg.c_str(), csv.c_str());

    std::printf("result names.accuracy %.4f fraction\n", accuracy(pred, d.test_label));
    std::printf("result names.balanced_accuracy %.4f fraction\n", recall_sum / static_cast<double>(C));
    std::printf("result names.held_out %zu names\n", test.size());
    std::printf("result names.train_seconds %.1f s\n", train_seconds);
    std::printf("result names.train_cpu_seconds %.1f s\n", train_cpu_seconds);  // steadier on a busy machine

    // Classify the names given with --predict: the three most likely languages of each.
    std::stringstream list(o.predict);
    for (std::string item; std::getline(list, item, ',');) {
        const std::string name = trimmed(item);
        if (name.empty()) continue;
        t.clear();
        const std::vector<std::vector<int>> one = {voc.encode(nn::utf8_chars(name))};
        if (one[0].empty()) continue;
        const xt::xarray<double> p = t.value(
            sg::softmax(model.logits(t, make_batch(one, {0}, std::vector<std::size_t>{0}))));
        std::vector<std::size_t> idx(C);
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + std::min<std::size_t>(3, C), idx.end(),
                          [&](std::size_t a, std::size_t b) { return p(0, a) > p(0, b); });
        std::printf("%s%*s", name.c_str(),
                    static_cast<int>(16 - std::min<std::size_t>(16, nn::utf8_chars(name).size())), "");
        for (std::size_t k = 0; k < std::min<std::size_t>(3, C); ++k)
            std::printf("  %s %.2f", d.languages[idx[k]].c_str(), p(0, idx[k]));
        std::printf("\n");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::main("classify_names", argc, argv, parse_args, [](const options& o) {
        sg::set_blas_threads(o.threads);  // one thread is fastest for products this small
        cli::make_output_folder(o.out, {"names_confusion.svg", "names_confusion.csv"});  // fail now, not after training
        const fs::path dir = find_data(o.data);
        std::printf("reading %s\n", dir.string().c_str());
        const name_set d = load_names(dir, o.held_out, o.seed);
        return o.cell == "gru" ? run<nn::gru_cell>(o, d) : run<nn::lstm_cell>(o, d);
    });
}
