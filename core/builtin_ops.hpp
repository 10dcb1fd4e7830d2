#pragma once
// Registration entry points of the built-in op families (internal). Each family registers its ops
// the first time the registry is enumerated or searched by name, or one of its functions is used.
namespace seqgrad::detail {
void register_elementwise_ops();
void register_activation_ops();
void register_linalg_ops();
void register_reduce_ops();
void register_shape_ops();
void register_loss_ops();
void register_recurrent_ops();
void register_math_ops();
void register_norm_ops();
void register_conv_ops();
void register_random_ops();
}  // namespace seqgrad::detail
