#pragma once
// Checkpoints of the language-model examples (char_lm, word_lm): PATH, an .npz of every parameter by name
// plus a frozen one-entry parameter holding the steps done; PATH.vocab, the vocabulary; PATH.optim,
// the optimiser's state (optimizer::save_state: moments, per-parameter step counts, steps());
// PATH.carry, the state carried from one batch to the next ("train.step", then "state.0", ... as
// '<f8'). With all four a resumed run takes the same steps as an uninterrupted one. Each file is
// written atomically, PATH last: a save cut short between them leaves PATH at the older step;
// load_optimizer_state then refuses a PATH.optim of another step rather than mix the two, and
// load_carried starts from zeros, saying so.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <seqgrad/core/io.hpp>
#include <seqgrad/nn/text.hpp>
#include <seqgrad/optim/optimizer.hpp>

namespace seqgrad::examples {

/// `carried`: the state carried between batches, saved to PATH.carry; null saves none (under
/// mpirun, where rank 0 holds only its own streams' state).
inline void save_checkpoint(parameter_store& ps, const parameter& step_param, const optim::optimizer& opt,
                            const nn::vocab& voc, const std::string& path, std::size_t step,
                            const std::vector<xt::xarray<double>>* carried) {
    voc.save(path + ".vocab");
    opt.save_state(path + ".optim");
    if (carried) {
        std::map<std::string, xt::xarray<double>> a{{"train.step", xt::xarray<double>({double(step)})}};
        for (std::size_t i = 0; i < carried->size(); ++i) a.emplace("state." + std::to_string(i), (*carried)[i]);
        write_npz(path + ".carry", a);  // '<f8': float values exactly
    }
    step_param.assign(xt::xarray<double>({static_cast<double>(step)}));
    save_npz(ps, path);  // atomic: a crash leaves the previous checkpoint whole
}

/// The saved step; io_error ("--resume: ...") if the files are missing, corrupt or unfit for this
/// model (vocabulary, names, shapes).
inline std::size_t load_checkpoint(parameter_store& ps, const parameter& step_param, const nn::vocab& voc,
                                   const std::string& path) {
    try {
        if (!std::filesystem::is_regular_file(path)) throw io_error("no checkpoint file '" + path + "'");
        const nn::vocab saved = nn::vocab::load(path + ".vocab");
        if (!(saved == voc))
            throw io_error("the vocabulary of '" + path + "' (" + std::to_string(saved.size()) + " tokens, in " + path +
                           ".vocab) differs from that of the data (" + std::to_string(voc.size()) +
                           " tokens); resume with the same --data");
        load_npz(ps, path);                                // names and shapes must match: the same model options
        const double s = step_param.value_as_double()(0);  // float32; an edited -1 or NaN resumed at step 2^63
        if (!(s >= 0 && s <= 16777216.0 && s == std::floor(s)))
            throw io_error("'" + path + "': " + step_param.name() + " " + std::to_string(s) +
                           " is not a count in [0, 2^24]");
        return static_cast<std::size_t>(s);
    } catch (const io_error& e) {
        throw io_error(std::string("--resume: ") + e.what());
    }
}

/// The optimiser's state from PATH.optim, which must be that of `step` (io_error otherwise), then
/// this run's learning rate `lr`. A checkpoint without PATH.optim (written before the examples
/// saved it) still resumes, with fresh moments, and a note on stdout says so.
inline void load_optimizer_state(optim::optimizer& opt, const std::string& path, std::size_t step, double lr,
                                 const std::string& program) {
    const std::string file = path + ".optim";
    if (!std::filesystem::exists(file)) {
        std::cout << "note: no " << file << " (a checkpoint of an older " << program << "): the optimiser's "
                  << "moments restart from zero, so the run differs slightly from an uninterrupted one\n";
        opt.set_steps(step);
    } else {
        try {
            opt.load_state(file);
        } catch (const io_error& e) {
            throw io_error(std::string("--resume: ") + e.what());
        }
        if (opt.steps() != step)
            throw io_error("--resume: '" + file + "' holds the optimiser's state after " + std::to_string(opt.steps()) +
                           " steps, '" + path + "' is at step " + std::to_string(step) +
                           " (a save cut short?); remove " + file + " to resume with fresh moments");
    }
    opt.set_learning_rate(lr);  // this run's --lr, not the saved one
}

/// The carried state saved in PATH.carry if it is that of `step` and holds `count` arrays of shape
/// `dims`; otherwise, with a note on stdout saying why, none (the stream starts from zeros). Does
/// nothing at step 0 of an epoch (`wraps`), where the stream restarts from zeros anyway.
inline std::vector<xt::xarray<double>> load_carried(const std::string& path, std::size_t step, bool wraps,
                                                    std::size_t count, const std::vector<std::size_t>& dims) {
    const std::string file = path + ".carry";
    const auto none = [&](const std::string& why) {
        std::cout << "note: " << why << ": the state carried between batches restarts from zeros at step " << step
                  << ", so the run differs slightly from an uninterrupted one\n";
        return std::vector<xt::xarray<double>>{};
    };
    if (wraps) return {};
    if (!std::filesystem::exists(file)) return none("no " + file);
    std::map<std::string, xt::xarray<double>> a;
    try {
        a = read_npz(file);
    } catch (const io_error& e) {
        return none(e.what());
    }
    if (!a.count("train.step") || a.at("train.step").size() != 1 || a.at("train.step")(0) != double(step))
        return none("'" + file + "' is not of step " + std::to_string(step));
    std::vector<xt::xarray<double>> out;
    for (std::size_t i = 0; i < count; ++i) {
        const auto it = a.find("state." + std::to_string(i));
        if (it == a.end() || std::vector<std::size_t>(it->second.shape().begin(), it->second.shape().end()) != dims)
            return none("'" + file + "' does not hold this model's state (other --batch, --hidden, --layers?)");
        out.push_back(it->second);
    }
    if (a.size() != count + 1) return none("'" + file + "' holds more arrays than this model's state");
    return out;
}

}  // namespace seqgrad::examples
