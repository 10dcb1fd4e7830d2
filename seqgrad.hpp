#pragma once
// seqgrad: autodiff computation graphs for recurrent neural networks.
// One include for everything public: #include <seqgrad/seqgrad.hpp>, namespace seqgrad.
#include "core/blas.hpp"
#include "core/errors.hpp"
#include "core/gradcheck.hpp"
#include "core/io.hpp"
#include "core/op.hpp"
#include "core/parallel.hpp"
#include "core/parameter.hpp"
#include "core/shape.hpp"
#include "core/tape.hpp"
#include "core/transforms.hpp"
#include "ops/activation.hpp"
#include "ops/elementwise.hpp"
#include "ops/linalg.hpp"
#include "ops/loss.hpp"
#include "ops/reduce.hpp"
#include "ops/shape_ops.hpp"
