#include "clip.hpp"

#include <vector>

#include "../core/transforms.hpp"

#include "optimizer.hpp"

namespace seqgrad::optim {

namespace {
// The trainable parameters' gradients, for the shared kernels in core/transforms.
std::vector<gradient_ref> trainable_grads(parameter_store& ps) {
    std::vector<gradient_ref> out;
    for (std::size_t i = 0; i < ps.size(); ++i) {
        auto& d = ps[i].data();
        if (!d.trainable) continue;
        if (d.dt == dtype::f32) out.push_back({dtype::f32, d.gf.data(), d.gf.size()});
        else out.push_back({dtype::f64, d.gd.data(), d.gd.size()});
    }
    return out;
}
}  // namespace

double clip_global_norm(parameter_store& ps, double max_norm) {
    return clip_by_global_norm(trainable_grads(ps), max_norm, "optim::clip_global_norm").norm;
}

void clip_value(parameter_store& ps, double c) { clip_by_value(trainable_grads(ps), c, "optim::clip_value"); }

}  // namespace seqgrad::optim
