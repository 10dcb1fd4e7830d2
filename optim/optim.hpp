#pragma once
// All of seqgrad::optim: optimisers, learning-rate schedules and gradient clipping.
#include "adagrad.hpp"
#include "adam.hpp"
#include "clip.hpp"
#include "optimizer.hpp"
#include "rmsprop.hpp"
#include "schedule.hpp"
#include "sgd.hpp"
