"""The nogil time loops of fastrnn: one compiled module, written as include files by concern (fastrnn/engine/).

One `Layer` holds one layer's weights (both directions) in the engine's layout, built once at load time by
fastrnn._layout. `Layer.forward` runs the whole sequence:

  per direction, block by block of timesteps (tuning block_bytes bounds the scratch whatever T is):
  1. the input projection of the block (engine/projection.pxi):
         gates (rows, G*H) = bias + x (rows, I) @ W_ih^T
     through the dense panel kernel over W_ih's panels; with variable lengths the padded rows are skipped;
  2. the block's steps (engine/timeloop.pxi): per step the previous hidden state against W_hh and the gate math
     that writes the state and the output row in place, in one fused C kernel over W_hh's panels (then one over
     W_hn's for a GRU with the reset before it, or W_hr's for an LSTM's projection).
The whole call runs with the GIL released. Every product runs on fastrnn's own kernels over weights packed once at
load (src_c/); no BLAS.

Rows of x/out/gates are (t, b) pairs in the caller's order: time-major (t*B + b) or batch-major (b*T + t); the
loop only sees strides, so batch_first costs no transpose. The output of direction d lives at column offset d*P
of `out`, which is the next layer's input as it stands. With `active` (variable lengths, rows sorted by
decreasing length), step t only touches the first active[t] rows.

Threads (engine/schedule.pxi): with a budget of 2 or more the two directions of a bidirectional layer run at
once, one on fastrnn's persistent worker thread; or one direction whose steps are large enough is split by
hidden units across the caller and the worker, which claim chunks of each phase from one counter
(src_c/worker.c). Each unit's arithmetic is the same as on one thread. `Stack` (engine/stack.pxi) steps every
layer of a unidirectional module for streaming.

The files, in the order they are included:
  isa.pxi         which kernel tier runs (chosen at import, FASTRNN_ISA caps it)
  tuning.pxi      the thread budget and every tuning threshold (tuning(), set_tuning())
  kernels.pxi     trampolines from the fused type `floating` to the active tier's C kernels
  buffers.pxi     checked raw pointers into the caller's arrays
  spec.pxi        LayerSpec: what the time loop knows of one layer
  timeloop.pxi    one direction's time loop (and one side of a split one)
  projection.pxi  the input projection
  schedule.pxi    which thread runs which direction or half
  layer.pxi       Layer: packing and the forward call
  calls.pxi       a module's call: its layers in turn, work buffers from the module's pool
  stack.pxi       Stack: streaming
  testing.pxi     the gate kernels called directly, for the tests
One module, not several: the time loop, projection and schedule call each other's cdef functions inline, which
separate extension modules could only do through .pxd inline bodies or capsules.
"""
import os
import warnings

import numpy as np
cimport numpy as cnp

cnp.import_array()

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBUF_FORMAT
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.math cimport ceil
from libc.string cimport memcpy, memmove, memset
from cython cimport floating
from libc.stdint cimport int8_t, int32_t, uint16_t

from fastrnn._kernels cimport (
    FRNN_ACT_IDENTITY, FRNN_ACT_RELU, FRNN_ACT_TANH, FRNN_ACT_SIGMOID, FRNN_ACT_AFFINE, FRNN_ACT_LEAKY_RELU,
    FRNN_ACT_THRESHOLDED_RELU, FRNN_ACT_SCALED_TANH, FRNN_ACT_HARD_SIGMOID, FRNN_ACT_ELU, FRNN_ACT_SOFTSIGN,
    FRNN_ACT_SOFTPLUS, FRNN_ACT_STEP, frnn_act, frnn_cell, frnn_kernels, frnn_tier_count, frnn_tier_name,
    frnn_tier_supported, frnn_tier_selectable, frnn_use_tier, frnn_active_tier, frnn_active_kernels, frnn_lanes,
    frnn_widen_bf16, frnn_cpu_widens_bf16,
    FRNN_FMT_FLOAT, FRNN_FMT_BF16, FRNN_FMT_I8, frnn_mat, frnn_rows, FRNN_HUGE_PAGE, frnn_advise_huge_pages,
    FRNN_WIDE_COPY_BYTES, frnn_widen_bf16_panels, frnn_packed_bytes, frnn_pack_f32, frnn_pack_f64,
    frnn_pack_bf16, frnn_pack_i8, frnn_converted_ld, frnn_converted_bytes, FRNN_TILE_ROWS, frnn_convert_rows, frnn_copy_rows,
    frnn_chunk_fn, frnn_team_begin, frnn_team_run,
    frnn_team_end, frnn_team_shared_phases, frnn_team_backoffs, frnn_team_forgive,
)
from fastrnn._kinds import NUM_GATES

cdef extern from *:
    """
    #ifndef FASTRNN_DEBUG_BUILD
    #define FASTRNN_DEBUG_BUILD 0
    #endif
    """
    const int FASTRNN_DEBUG_BUILD

# Built with FASTRNN_DEBUG=1 (setup.py): -O0 -g and Cython's bounds, wraparound and None checks.
DEBUG_BUILD = bool(FASTRNN_DEBUG_BUILD)

include "engine/isa.pxi"
include "engine/tuning.pxi"
include "engine/kernels.pxi"
include "engine/buffers.pxi"
include "engine/spec.pxi"
include "engine/projection.pxi"
include "engine/timeloop.pxi"
include "engine/schedule.pxi"
include "engine/layer.pxi"
include "engine/calls.pxi"
include "engine/stack.pxi"
include "engine/testing.pxi"
