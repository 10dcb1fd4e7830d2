// seq2seq_attention: an encoder-decoder with attention (nn::seq2seq); teacher forcing; greedy and beam-search decoding.
//
//     seq2seq_attention                                  # dates: "tuesday 9 may 1995" -> "1995-05-09"
//     seq2seq_attention --data ../shared/data/eng-fra-5k.tsv          # English -> French, words
//     seq2seq_attention --data ../shared/data/eng-fra-5k.tsv --level char
//     seq2seq_attention --minutes 1 --out /tmp/att       # a short run, pictures elsewhere
//
// Dates (no data argument): generated in code, character level. A date between 1950-01-01 and 2049-12-31 is written in
// one of 14 human formats ("tuesday 9 may 1995", "09.05.95", "May 9, 1995", "9th of may 1995", "19950509", ...;
// two-digit years mean 1950-2049) and the model writes it as ISO 8601 ("1995-05-09"). Dates are split by a hash of the
// day: 80% train, 10% validation (progress and early stopping), 10% test, so test dates are never seen in training.
// Training draws fresh examples and stops when greedy decoding gets all 300 validation dates right at two evaluations
// in a row (every 250 steps), or after --minutes (default 9). Reports exact match on 1,000 test dates with greedy and
// beam search: `result dates.exact_match <fraction>` is the beam's.
//
// English -> French (--data FILE): tab-separated lines "english<TAB>french<TAB>attribution" (only the first two columns
// are read; the attribution column stays in the file). Sentences are lowercased and split into words (nn::words) or
// characters (--level char). English sentences are split by a seeded hash: 90% train, 10% test; every French
// translation of a test sentence is a reference for BLEU. Trains for --epochs (default 20) or --minutes. Reports corpus
// BLEU-4 (with brevity penalty, multiple references) of greedy and beam outputs, token accuracy (teacher forced argmax,
// <eos> included) on the test pairs, and teacher-forced cross-entropy per target token on the test and on the training
// pairs (test_loss, train_loss: less seed noise than BLEU). bench/torch_seq2seq.py trains the same model in PyTorch
// with the same settings, split and metrics (bench/engfra_seeds.py runs both over several seeds).
//
// --save FILE writes the trained weights as .npz (numpy.load reads them; bench/torch_seq2seq.py --load takes them, and
// this example's --load takes the twin's --save, so one set of weights can be decoded both ways); --load FILE starts
// from such weights (with --epochs 0: decode only); with --data, --hyps FILE writes each test sentence's source, greedy
// and beam output, tab-separated, and --batches FILE each training step's pairs (their positions among the training
// pairs, a line a step), which the twin's --batches replays: with --load of the same weights both then take the same
// steps, and their weights after --steps N can be compared.
//
// Both tasks write the attention weights of four test examples as <task>_attention_<k>.svg (a heat map: rows = output
// tokens, columns = input tokens) and .csv, in the current directory or --out DIR. Exit codes: 0 done, 1 data missing
// or unreadable, 2 bad command line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/seq2seq.hpp>
#include <seqgrad/nn/text.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

#include "cli.hpp"
#include "plot.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace plot = seqgrad::plot;
namespace cli = seqgrad::cli;
namespace {

using tokens = std::vector<std::string>;

struct options {
    std::string data, level = "word", cell = "lstm", score = "general", out = ".", dtype = "f32";
    std::string save, load, hyps, batches;  // see "--save" in the notes at the top
    std::size_t embedding = 0, hidden = 0, decoder_hidden = 0, layers = 1, batch = 0, beam = 5;
    std::size_t epochs = 20, steps = 0, eval_every = 0;
    int input_feeding = -1, bidirectional = 1, threads = 1;
    double lr = 2e-3, minutes = 9, clip = 5, alpha = 0;
    std::uint64_t seed = 1;
};

struct example {
    tokens src, tgt;
    std::vector<int> src_ids, tgt_ids;
    std::vector<tokens> refs;  // BLEU references (eng-fra)
    std::size_t index = 0;     // position among the training pairs (eng-fra), for --batches
};

std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

// ---- dates -------------------------------------------------------------------------------------

const char* month_names[] = {"january", "february", "march",     "april",   "may",      "june",
                             "july",    "august",   "september", "october", "november", "december"};
const char* day_names[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

// Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms).
long days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const long era = (y >= 0 ? y : y - 399) / 400;
    const long yoe = y - era * 400, doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}
void civil_from_days(long z, int& y, int& m, int& d) {
    z += 719468;
    const long era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    const long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365,
               doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const long mp = (5 * doy + 2) / 153;
    d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    y = static_cast<int>(yoe + era * 400 + (m <= 2));
}

std::string cap(std::string s) { return s[0] = static_cast<char>(std::toupper(s[0])), s; }
std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(c));
    return s;
}
std::string two(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }
std::string ordinal(int d) {
    const char* sfx = (d % 10 == 1 && d != 11)   ? "st"
                      : (d % 10 == 2 && d != 12) ? "nd"
                      : (d % 10 == 3 && d != 13) ? "rd"
                                                 : "th";
    return std::to_string(d) + sfx;
}

constexpr int date_formats = 14;
std::string format_date(long day, int f) {
    int y, m, d;
    civil_from_days(day, y, m, d);
    const std::string mon = month_names[m - 1], wd = day_names[((day % 7) + 11) % 7];  // 1970-01-01: thursday
    const std::string D = std::to_string(d), Y = std::to_string(y), yy = two(y % 100);
    switch (f) {
    case 0: return wd + " " + D + " " + mon + " " + Y;                                       // tuesday 9 may 1995
    case 1: return two(d) + "." + two(m) + "." + yy;                                         // 09.05.95
    case 2: return cap(mon) + " " + D + ", " + Y;                                            // May 9, 1995
    case 3: return D + " " + cap(mon) + " " + Y;                                             // 9 May 1995
    case 4: return cap(wd) + ", " + cap(mon) + " " + D + ", " + Y;                           // Tuesday, May 9, 1995
    case 5: return two(d) + "/" + two(m) + "/" + Y;                                          // 09/05/1995
    case 6: return ordinal(d) + " of " + mon + " " + Y;                                      // 9th of may 1995
    case 7: return Y + "/" + two(m) + "/" + two(d);                                          // 1995/05/09
    case 8: return upper(mon.substr(0, 3)) + " " + two(d) + " " + Y;                         // MAY 09 1995
    case 9: return D + " " + mon.substr(0, 3) + " " + yy;                                    // 9 may 95
    case 10: return mon.substr(0, 3) + " " + D + " '" + yy;                                  // may 9 '95
    case 11: return cap(wd.substr(0, 3)) + " " + D + " " + cap(mon.substr(0, 3)) + " " + Y;  // Tue 9 May 1995
    case 12: return D + "-" + mon.substr(0, 3) + "-" + Y;                                    // 9-may-1995
    default: return Y + two(m) + two(d);                                                     // 19950509
    }
}
std::string iso_date(long day) {
    int y, m, d;
    civil_from_days(day, y, m, d);
    return std::to_string(y) + "-" + two(m) + "-" + two(d);
}

const long first_day = days_from_civil(1950, 1, 1), last_day = days_from_civil(2049, 12, 31);
// 0..7 train, 8 validation, 9 test.
int date_split(long day) { return static_cast<int>(fnv1a("date:" + std::to_string(day)) % 10); }

example date_example(long day, int f) {
    return {nn::utf8_chars(format_date(day, f)), nn::utf8_chars(iso_date(day)), {}, {}, {}};
}
std::vector<example> date_set(int split, std::size_t n, std::mt19937_64& rng) {
    std::uniform_int_distribution<long> day(first_day, last_day);
    std::uniform_int_distribution<int> fmt(0, date_formats - 1);
    std::vector<example> out;
    while (out.size() < n) {
        const long d = day(rng);
        const int s = date_split(d);
        if ((split == 0 && s < 8) || (split == 8 && s == 8) || (split == 9 && s == 9))
            out.push_back(date_example(d, fmt(rng)));
    }
    return out;
}

// ---- English -> French -------------------------------------------------------------------------

tokens tokenise(std::string s, bool chars) {
    for (const char* nbsp : {"\xE2\x80\xAF", "\xC2\xA0"})  // narrow and ordinary no-break spaces
        for (std::size_t p; (p = s.find(nbsp)) != std::string::npos;) s.replace(p, std::string(nbsp).size(), " ");
    if (!chars) return nn::words(s, true);
    for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return nn::utf8_chars(s);
}

// Train pairs, and test pairs with every translation of their English sentence as references.
void read_pairs(const options& o, std::vector<example>& train, std::vector<example>& test) {
    std::ifstream in(o.data);
    if (!in || std::filesystem::is_directory(o.data)) throw sg::io_error("cannot read pairs from '" + o.data + "'");
    std::map<std::string, std::vector<tokens>> refs;
    std::vector<std::string> test_keys;
    std::string line;
    while (std::getline(in, line)) {
        const auto a = line.find('\t');
        if (a == std::string::npos) continue;
        const auto b = line.find('\t', a + 1);
        const std::string en = line.substr(0, a), fr = line.substr(a + 1, b == std::string::npos ? b : b - a - 1);
        example e{tokenise(en, o.level == "char"), tokenise(fr, o.level == "char"), {}, {}, {}};
        if (e.src.empty() || e.tgt.empty()) continue;
        if (fnv1a(std::to_string(o.seed) + ":" + en) % 10 == 0) {
            refs[en].push_back(e.tgt);
            test_keys.push_back(en);
            test.push_back(std::move(e));
        } else {
            e.index = train.size();
            train.push_back(std::move(e));
        }
    }
    for (std::size_t i = 0; i < test.size(); ++i) test[i].refs = refs[test_keys[i]];
    const std::string n = std::to_string(train.size()) + " training and " + std::to_string(test.size()) + " test";
    if (train.empty() || test.empty())  // read: say what is missing (a test sentence is 1 in 10, by a hash)
        throw sg::io_error("'" + o.data + "': " + n + " pairs (expected 'english<TAB>french' lines, some of each)");
}

// ---- metrics -----------------------------------------------------------------------------------

// Corpus BLEU-4 (Papineni et al. 2002): clipped n-gram precisions over the corpus, geometric mean,
// brevity penalty exp(1 - r/c) with r the closest reference length (ties: the shorter). 0..100.
double corpus_bleu(const std::vector<tokens>& hyps, const std::vector<std::vector<tokens>>& refs) {
    double match[4] = {}, total[4] = {}, c = 0, r = 0;
    for (std::size_t i = 0; i < hyps.size(); ++i) {
        const tokens& h = hyps[i];
        c += h.size();
        std::size_t best = 0;
        for (const auto& ref : refs[i]) {
            const long dh = std::labs(long(ref.size()) - long(h.size())), db = std::labs(long(best) - long(h.size()));
            if (best == 0 || dh < db || (dh == db && ref.size() < best)) best = ref.size();
        }
        r += best;
        for (std::size_t n = 1; n <= 4; ++n) {
            auto grams = [n](const tokens& t) {
                std::map<tokens, int> g;
                for (std::size_t k = 0; k + n <= t.size(); ++k) ++g[tokens(t.begin() + k, t.begin() + k + n)];
                return g;
            };
            const auto hg = grams(h);
            std::map<tokens, int> maxref;
            for (const auto& ref : refs[i])
                for (const auto& [g, k] : grams(ref)) maxref[g] = std::max(maxref[g], k);
            for (const auto& [g, k] : hg) {
                match[n - 1] += std::min(k, maxref.count(g) ? maxref[g] : 0);
                total[n - 1] += k;
            }
        }
    }
    double logp = 0;
    for (int n = 0; n < 4; ++n) {
        if (match[n] == 0 || total[n] == 0) return 0.0;
        logp += std::log(match[n] / total[n]) / 4;
    }
    const double bp = c >= r ? 1.0 : std::exp(1.0 - r / std::max(c, 1.0));
    return 100.0 * bp * std::exp(logp);
}

std::string label(const std::string& tok) { return tok == " " ? "\xE2\x90\xA3" : tok; }  // space as U+2423

// ---- training and evaluation -------------------------------------------------------------------

double minutes_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60.0;
}

template <class Cell>
int run(const options& o, const nn::seq2seq_options& mo, const nn::vocab& sv, const nn::vocab& tv,
        const std::function<std::vector<example>(std::mt19937_64&)>& next_pool, std::vector<example> train_set,
        std::vector<example>& valid, std::vector<example>& test, bool dates) {
    const std::string task = dates ? "dates" : "engfra";
    const bool chars = dates || o.level == "char";
    for (auto* set : {&train_set, &valid, &test})
        for (auto& e : *set) e.src_ids = sv.encode(e.src), e.tgt_ids = tv.encode(e.tgt);
    const sg::dtype dt = o.dtype == "f64" ? sg::dtype::f64 : sg::dtype::f32;
    sg::parameter_store ps(dt);
    nn::seq2seq<Cell> model(sg::parameter_scope(ps, "s2s"), mo);
    std::mt19937_64 rng(o.seed);
    model.reset_parameters(rng);
    if (!o.load.empty()) sg::load_npz(ps, o.load);
    std::cout << task << ": " << o.cell << " encoder " << mo.encoder_layers << "x" << mo.encoder_size
              << (mo.bidirectional ? " bidirectional" : "") << ", decoder " << mo.decoder_size << ", "
              << nn::to_string(mo.score) << " attention" << (mo.input_feeding ? ", input feeding" : "") << "; vocab "
              << sv.size() << " -> " << tv.size() << ", " << ps.num_elements() << " parameters; batch " << o.batch
              << ", adam " << o.lr << std::endl;

    auto decode = [&](const example& e, bool beam) {
        auto dec = model.decoder(e.src_ids);
        const std::size_t L = 2 * e.src.size() + 10;
        const auto h =
            beam ? nn::beam_search(*dec, {.width = o.beam, .max_length = L, .length_penalty = o.alpha}).front()
                 : nn::greedy(*dec, {.max_length = L});
        return tv.decode(h.output());
    };
    auto exact = [&](const std::vector<example>& set, std::size_t n, bool beam) {
        std::size_t ok = 0;
        for (std::size_t i = 0; i < std::min(n, set.size()); ++i) ok += decode(set[i], beam) == set[i].tgt;
        return double(ok) / double(std::min(n, set.size()));
    };
    sg::tape t(dt);
    struct scored {                          // teacher forced over a set, 64 pairs at a time
        std::size_t right = 0, counted = 0;  // argmax right, target tokens
        double nll = 0;                      // summed cross-entropy
        double accuracy() const { return double(right) / double(counted); }
    };
    auto teacher_forced = [&](const std::vector<example>& set) {
        scored s;
        for (std::size_t i = 0; i < set.size(); i += 64) {
            std::vector<std::vector<int>> src, tgt;
            for (std::size_t k = i; k < std::min(i + 64, set.size()); ++k)
                src.push_back(set[k].src_ids), tgt.push_back(set[k].tgt_ids);
            t.clear();
            const auto out = model.forward(t, src, tgt);
            const auto [r, c] = out.correct_tokens(t);
            s.right += r, s.counted += c, s.nll += t.item(out.loss);
        }
        return s;
    };

    sg::optim::adam adam(ps, o.lr);
    std::ofstream batch_log;
    if (!o.batches.empty() && !dates) {
        batch_log.open(o.batches);
        if (!batch_log.is_open()) throw sg::io_error("cannot write '" + o.batches + "'");
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t eval_every = o.eval_every ? o.eval_every : dates ? 250 : 200;
    std::vector<std::vector<const example*>> batches;
    std::vector<example> pool;
    std::size_t step = 0, seen = 0, epoch = 0;
    double run_loss = 0;
    // Loss summed over an epoch's target tokens (printed per epoch, as the twin prints it).
    double epoch_loss = 0, epoch_tokens = 0;
    int perfect = 0;  // consecutive evaluations with every validation date right
    while (true) {
        if (batches.empty()) {
            if (!dates && epoch > 0)
                std::cout << "epoch " << epoch << "  " << std::fixed << std::setprecision(2) << minutes_since(t0)
                          << " min  loss " << std::setprecision(4) << epoch_loss / epoch_tokens << std::endl;
            epoch_loss = epoch_tokens = 0;
            if ((!dates || o.epochs == 0) && epoch++ == o.epochs) break;  // dates: only 0 counts
            pool = next_pool(rng);
            for (auto& e : pool) e.src_ids = sv.encode(e.src), e.tgt_ids = tv.encode(e.tgt);
            std::vector<const example*> order;
            for (const auto& e : pool) order.push_back(&e);
            // Pools of 16 batches sorted by length, so a batch holds sequences of similar length.
            const std::size_t batch = std::min(o.batch, order.size() + 1);  // 16 * --batch may wrap around
            for (std::size_t p = 0; p < order.size(); p += 16 * batch) {
                const auto end = order.begin() + std::min(order.size(), p + 16 * batch);
                std::stable_sort(order.begin() + p, end,
                                 [](auto* a, auto* b) { return a->src.size() < b->src.size(); });
            }
            for (std::size_t p = 0; p < order.size(); p += batch)
                batches.emplace_back(order.begin() + p, order.begin() + std::min(order.size(), p + batch));
            std::shuffle(batches.begin(), batches.end(), rng);
        }
        std::vector<std::vector<int>> src, tgt;
        for (const example* e : batches.back()) src.push_back(e->src_ids), tgt.push_back(e->tgt_ids);
        if (batch_log.is_open()) {
            for (const example* e : batches.back()) batch_log << e->index << (e == batches.back().back() ? '\n' : ' ');
            if (!batch_log) throw sg::io_error("cannot write '" + o.batches + "'");
        }
        batches.pop_back();
        t.clear();
        const auto out = model.forward(t, src, tgt);
        const sg::expr loss = out.loss * (1.0 / double(out.tokens));
        t.backward(loss);
        if (o.clip > 0) sg::optim::clip_global_norm(ps, o.clip);
        adam.step();
        ++step, seen += src.size();
        epoch_loss += t.item(loss) * double(out.tokens), epoch_tokens += double(out.tokens);
        run_loss = step == 1 ? t.item(loss) : 0.98 * run_loss + 0.02 * t.item(loss);
        const bool out_of_time = minutes_since(t0) >= o.minutes || (o.steps && step >= o.steps);
        if (step % eval_every == 0 || out_of_time) {
            std::cout << "step " << std::setw(5) << step << "  " << std::fixed << std::setprecision(2)
                      << minutes_since(t0) << " min  " << std::setprecision(0) << seen / (minutes_since(t0) * 60)
                      << " pairs/s  loss " << std::setprecision(4) << run_loss;
            if (dates) {
                const double v = exact(valid, 300, false);
                std::cout << "  valid greedy exact " << std::setprecision(3) << v << std::endl;
                perfect = v == 1.0 ? perfect + 1 : 0;
                if (perfect == 2) break;
            } else {
                std::cout << "  epoch " << epoch << "  test token accuracy " << std::setprecision(3)
                          << teacher_forced(test).accuracy() << std::endl;
            }
        }
        if (out_of_time) break;
    }
    const double train_min = minutes_since(t0);
    // A write error shows when the buffer goes out: at the latest, when the file is closed.
    if (batch_log.is_open() && (batch_log.close(), !batch_log)) throw sg::io_error("cannot write '" + o.batches + "'");
    if (!o.save.empty()) sg::save_npz(ps, o.save);
    std::cout << std::defaultfloat << std::setprecision(6) << "result " << task << ".train_minutes " << train_min
              << " min\nresult " << task << ".train_steps " << step << " steps\n";

    if (dates) {
        const double g = exact(test, test.size(), false), b = exact(test, test.size(), true);
        std::cout << "result dates.exact_match_greedy " << g << " fraction\n";
        std::cout << "result dates.exact_match " << b << " fraction\n";
    } else {
        std::vector<tokens> greedy_out, beam_out;
        std::vector<std::vector<tokens>> refs;
        std::map<tokens, bool> done;  // each English test sentence once
        for (const auto& e : test) {
            if (done[e.src]) continue;
            done[e.src] = true;
            greedy_out.push_back(decode(e, false));
            beam_out.push_back(decode(e, true));
            refs.push_back(e.refs);
        }
        auto to_words = [&](std::vector<tokens> v) {  // BLEU over words at the character level too
            if (!chars) return v;
            for (auto& s : v) s = nn::words(nn::join_chars(s));
            return v;
        };
        std::vector<std::vector<tokens>> word_refs;
        for (const auto& r : refs) word_refs.push_back(to_words(r));
        if (!o.hyps.empty()) {  // one line per test sentence: source, greedy, beam (tokens joined by spaces)
            std::ofstream h(o.hyps);
            auto line = [](const tokens& t) {
                std::string s;
                for (const auto& w : t) s += (s.empty() ? "" : " ") + w;
                return s;
            };
            std::map<tokens, bool> written;
            std::size_t k = 0;
            for (const auto& e : test) {
                if (written[e.src]) continue;
                written[e.src] = true;
                h << line(e.src) << '\t' << line(greedy_out[k]) << '\t' << line(beam_out[k]) << '\n';
                ++k;
            }
            if (h.close(), !h) throw sg::io_error("cannot write '" + o.hyps + "'");  // flushed, as for --batches
        }
        std::cout << "result engfra.bleu_greedy " << corpus_bleu(to_words(greedy_out), word_refs) << " bleu\n";
        std::cout << "result engfra.bleu " << corpus_bleu(to_words(beam_out), word_refs) << " bleu\n";
        const scored on_test = teacher_forced(test), on_train = teacher_forced(train_set);
        std::cout << "result engfra.token_accuracy " << on_test.accuracy() << " fraction\n";
        std::cout << "result engfra.test_loss " << on_test.nll / double(on_test.counted) << " nats\n";
        std::cout << "result engfra.train_loss " << on_train.nll / double(on_train.counted) << " nats\n";
        std::cout << "test sentences " << refs.size() << ", test pairs " << test.size() << "\n";
    }

    // Attention heat maps of four test examples, beam-decoded.
    std::vector<const example*> shown;
    for (const auto& e : test)
        if (shown.size() < 4 && e.src.size() >= 4 && (dates || e.src.size() <= 12) &&
            std::none_of(shown.begin(), shown.end(), [&](const example* x) { return x->src == e.src; }))
            shown.push_back(&e);
    for (std::size_t k = 0; k < shown.size(); ++k) {
        const example& e = *shown[k];
        const tokens out = decode(e, true);
        t.clear();
        const auto fw = model.forward(t, std::vector<std::vector<int>>{e.src_ids},
                                      std::vector<std::vector<int>>{tv.encode(out)});
        const auto w = fw.alignment(t, 0);
        std::vector<std::vector<double>> m(w.shape()[0], std::vector<double>(w.shape()[1]));
        for (std::size_t i = 0; i < w.shape()[0]; ++i)
            for (std::size_t j = 0; j < w.shape()[1]; ++j) m[i][j] = w(i, j);
        tokens rows, cols;
        for (const auto& s : out) rows.push_back(label(s));
        rows.push_back("<eos>");
        for (const auto& s : e.src) cols.push_back(label(s));
        const std::string join = chars ? nn::join_chars(e.src) : nn::join_words(e.src);
        const std::string stem =
            (std::filesystem::path(o.out) / (task + "_attention_" + std::to_string(k + 1))).string();
        plot::heatmap_svg(stem + ".svg", m, rows, cols, "attention: " + join, {.annotate = 0});
        plot::write_csv(stem + ".csv", m, rows, cols, "output\\input");
        std::cout << "wrote " << stem << ".svg/.csv: \"" << join << "\" -> \""
                  << (chars ? nn::join_chars(out) : nn::join_words(out)) << "\"\n";
    }
    return 0;
}

const char* const usage = R"(usage: seq2seq_attention [options]
Trains an encoder-decoder with attention, decodes greedily and with beam search, writes attention maps.
  --data FILE           eng-fra pairs (tab-separated); without it: dates to ISO 8601, generated
  --level word|char     tokens of --data (word)
  --cell lstm|gru       recurrent cell (lstm)
  --score S             attention score: additive, dot, general, concat or scaled_dot (general)
  --embedding N         embedding size; 0: 128 for words, 32 for characters (0)
  --hidden N            encoder size per direction; 0: 128 for words, 64 for characters (0)
  --decoder-hidden N    decoder size; 0: twice --hidden (0)
  --layers N            layers of encoder and decoder (1)
  --bidirectional 0|1   bidirectional encoder (1)
  --input-feeding 0|1   feed the attentional vector to the next decoder step (default: 1 for --data, 0 for dates)
  --batch N             pairs per step; 0: 64 for dates (at most 4096), 32 for --data (0)
  --lr X                Adam learning rate (2e-3)
  --clip X              clip the global gradient norm to X; 0 turns clipping off (5)
  --epochs N            epochs over --data (20); 0 (either task): no training, decode only
  --steps N             stop after N steps; 0: no limit (0)
  --minutes X           stop after X minutes of training (9)
  --eval-every N        steps between evaluations; 0: 250 for dates, 200 for --data (0)
  --beam N              beam width (5)
  --alpha X             beam length penalty (0)
  --threads N           OpenBLAS threads (1)
  --seed N              seed of weights and batches (1)
  --dtype f32|f64       precision of weights and arithmetic (f32)
  --out DIR             where to write the attention maps (.)
  --save FILE           write the trained weights (.npz)
  --load FILE           start from saved weights (with --epochs 0: decode only)
  --hyps FILE           write each test sentence's source, greedy and beam output (--data only)
  --batches FILE        write each step's training pairs (positions), for the PyTorch twin (--data only)
  --help                this text
)";

options parse_args(int argc, char** argv) {
    options o;
    const std::size_t zero = 0, one = 1;
    const auto zero_one = [](int& field) -> cli::setter {
        return [&field](const std::string& n, const std::string& v) {
            field = cli::parse_number(n, v, 0);
            if (field > 1) throw cli::usage_error{n + ": expected 0 or 1, got '" + v + "'"};
        };
    };
    cli::parse_options(argc, argv,
                       {{"--data", cli::text(o.data)},
                        {"--level", cli::one_of(o.level, {"word", "char"})},
                        {"--cell", cli::one_of(o.cell, {"lstm", "gru"})},
                        {"--score",
                         [&](const std::string& n, const std::string& v) {
                             try {
                                 (void)nn::attention_score_from_string(v);
                             } catch (const std::exception& e) {
                                 throw cli::usage_error{n + ": " + e.what()};
                             }
                             o.score = v;
                         }},
                        {"--out", cli::text(o.out)},
                        {"--save", cli::text(o.save)},
                        {"--load", cli::text(o.load)},
                        {"--hyps", cli::text(o.hyps)},
                        {"--batches", cli::text(o.batches)},
                        {"--embedding", cli::number(o.embedding, zero)},
                        {"--hidden", cli::number(o.hidden, zero)},
                        {"--decoder-hidden", cli::number(o.decoder_hidden, zero)},
                        {"--layers", cli::number(o.layers, one)},
                        {"--batch", cli::number(o.batch, zero)},
                        {"--beam", cli::number(o.beam, one)},
                        {"--epochs", cli::number(o.epochs, zero)},
                        {"--steps", cli::number(o.steps, zero)},
                        {"--eval-every", cli::number(o.eval_every, zero)},
                        {"--input-feeding", zero_one(o.input_feeding)},
                        {"--bidirectional", zero_one(o.bidirectional)},
                        {"--threads", cli::number(o.threads, 1)},
                        {"--lr", cli::number(o.lr, 0.0, true)},
                        {"--minutes", cli::number(o.minutes, 0.0, true)},
                        {"--clip", cli::number(o.clip, 0.0)},
                        {"--alpha", cli::number(o.alpha, 0.0)},
                        {"--seed", cli::number(o.seed, std::uint64_t{0})},
                        {"--dtype", cli::one_of(o.dtype, {"f32", "f64"})}},
                       usage);
    if (o.batch == 0) o.batch = o.data.empty() ? 64 : 32;
    if (o.data.empty() && o.batch > 4096)  // the dates task draws 64 batches of fresh dates at a time
        throw cli::usage_error{"--batch: expected at most 4096 for the dates task, got " + std::to_string(o.batch)};
    if (o.data.empty() && !(o.hyps + o.batches).empty())  // the dates task writes neither: refused, not ignored
        throw cli::usage_error{(o.hyps.empty() ? "--batches" : "--hyps") + std::string(": only with --data")};
    cli::check_outputs({{"--save", o.save}, {"--hyps", o.hyps}, {"--batches", o.batches}}, "--data", o.data);
    return o;
}

int run_task(const options& o) {
    const bool dates = o.data.empty();
    sg::set_blas_threads(o.threads);
    std::vector<example> train, valid, test;
    std::function<std::vector<example>(std::mt19937_64&)> next_pool;
    if (dates) {
        std::mt19937_64 held(12345);
        valid = date_set(8, 300, held);
        test = date_set(9, 1000, held);
        next_pool = [&](std::mt19937_64& rng) { return date_set(0, 16 * o.batch * 4, rng); };
        std::mt19937_64 all(7);
        for (auto& e : date_set(0, 20000, all)) train.push_back(std::move(e));  // for the vocabularies
    } else {
        read_pairs(o, train, test);
        next_pool = [&](std::mt19937_64& rng) {
            std::vector<example> p = train;
            std::shuffle(p.begin(), p.end(), rng);
            return p;
        };
    }
    tokens all_src, all_tgt;
    for (const auto& e : train)
        all_src.insert(all_src.end(), e.src.begin(), e.src.end()),
            all_tgt.insert(all_tgt.end(), e.tgt.begin(), e.tgt.end());
    const nn::vocab sv = nn::vocab::build(all_src), tv = nn::vocab::build(all_tgt);
    if (dates) train.clear();
    const bool words = !dates && o.level == "word";
    nn::seq2seq_options mo{.source_vocab = sv.size(), .target_vocab = tv.size()};
    mo.embedding_size = o.embedding ? o.embedding : words ? 128 : 32;
    mo.encoder_size = o.hidden ? o.hidden : words ? 128 : 64;
    mo.decoder_size = o.decoder_hidden ? o.decoder_hidden : 2 * mo.encoder_size;
    mo.encoder_layers = mo.decoder_layers = o.layers;
    mo.bidirectional = o.bidirectional != 0;
    mo.score = nn::attention_score_from_string(o.score);
    mo.input_feeding = o.input_feeding < 0 ? !dates : o.input_feeding != 0;
    cli::make_output_folder(o.out, cli::numbered(dates ? "dates_attention" : "engfra_attention", 4, {".svg", ".csv"}));
    return o.cell == "gru" ? run<nn::gru_cell>(o, mo, sv, tv, next_pool, train, valid, test, dates)
                           : run<nn::lstm_cell>(o, mo, sv, tv, next_pool, train, valid, test, dates);
}

}  // namespace

int main(int argc, char** argv) { return cli::main("seq2seq_attention", argc, argv, parse_args, run_task); }
