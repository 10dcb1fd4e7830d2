#include "parallel.hpp"

#include <memory>
#include <string>

namespace seqgrad {

double data_parallel(std::size_t parts, const std::function<expr(tape&, std::size_t)>& f, dtype dt,
                     const backward_plan& plan) {
    if (parts == 0) throw value_error("data_parallel: expected at least one part");
    for (const auto& x : plan.transforms()) {
        if (x->edits_parameters())
            throw value_error("data_parallel: " + x->name() +
                              " changes parameter gradients, which belongs to the "
                              "summed gradient; call optim::clip_global_norm or optim::clip_value after "
                              "data_parallel instead of passing it in the plan");
        // Its after_sweep would run on every part's tape, concurrently, each writing one output:
        // a data race, and at best one part's steps instead of the batch's.
        if (x->reads_step_gradients())
            throw value_error("data_parallel: " + x->name() + " reads the time steps' gradients of one tape (each of " +
                              std::to_string(parts) +
                              " parts would write its own, concurrently); record it on one tape over the whole "
                              "batch instead of passing it in the plan");
    }
    std::vector<std::unique_ptr<tape>> tapes(parts);
    std::vector<double> losses(parts, 0.0);
    auto run = [&](std::size_t i) {
        tapes[i] = std::make_unique<tape>(dt);
        tape& t = *tapes[i];
        t.set_accumulate_into_parameters(false);
        expr loss = f(t, i);
        losses[i] = t.item(loss);
        t.backward(loss, plan);
    };
    detail::parallel_for(parts, run);
    double total = 0;
    for (std::size_t i = 0; i < parts; ++i) {
        tapes[i]->accumulate_param_grads();
        total += losses[i];
    }
    return total;
}

std::vector<expr> tbptt_stream::begin() {
    tape_.clear();
    ++chunks_;
    std::vector<expr> out;
    for (const auto& v : carried_) out.push_back(tape_.input(v));
    return out;
}

void tbptt_stream::carry(std::span<const expr> state) {
    // All or nothing: an expr that fails (stale, another tape's) leaves the carried state as it was.
    std::vector<xt::xarray<double>> next;
    for (const expr& e : state) next.push_back(tape_.value(e));
    carried_ = std::move(next);
}

}  // namespace seqgrad
