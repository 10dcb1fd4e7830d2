#pragma once
// Neural-network modules built from ops: linear and embedding layers, initialisers, recurrent
// cells, and unrolling over time (many-to-many/one, one-to-many, encoder-decoder, masks for
// variable-length batches, stacked and bidirectional layers). Namespace seqgrad::nn.
#include "adaptive_softmax.hpp"
#include "attention.hpp"
#include "cells.hpp"
#include "decoding.hpp"
#include "dropout.hpp"
#include "init.hpp"
#include "linear.hpp"
#include "norm_cells.hpp"
#include "seq2seq.hpp"
#include "torch_state.hpp"
#include "unroll.hpp"
