#pragma once
// Neural-network modules built from ops: linear and embedding layers, initialisers, recurrent
// cells, and unrolling over time (many-to-many/one, one-to-many, encoder-decoder, masks for
// variable-length batches, stacked and bidirectional layers). Namespace seqgrad::nn.
#include "cells.hpp"
#include "dropout.hpp"
#include "norm_cells.hpp"
#include "init.hpp"
#include "linear.hpp"
#include "lstm_layer.hpp"
#include "unroll.hpp"
#include "attention.hpp"
#include "decoding.hpp"
#include "seq2seq.hpp"
#include "torch_state.hpp"
#include "adaptive_softmax.hpp"
