/* 2x2 max-pooling with stride 2 (VGG's) for MindSpore graphs on the CPU (a custom operator), on
 * plain NCHW float32. The forward also writes which of the four inputs was the largest (the first
 * of equal ones, as MindSpore's pooling gradient chooses), so the backward is one scatter; MindSpore's
 * own gradient recomputes the forward to find them.
 *
 * Entry points (MindSpore's kernel signature, entry.h; parameters are the inputs, then the outputs):
 *   ats_maxpool_forward  (x) -> y, where                 where: uint8, 0..3 = top-left .. bottom-right
 *   ats_maxpool_backward (x, dy, where) -> dx            x: for its shape only
 * x, dx [N,C,H,W]; y, dy, where [N,C,H/2,W/2] (a last odd row or column is not pooled); or all in
 * oneDNN's blocked layout, [N,C/B,H,W,B] and [N,C/B,H/2,W/2,B] (B 8 or 16, as the convolution kernel
 * gives it). */
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "entry.h"
#include "threadpool.h"

namespace {

struct Planes {
    int64_t planes, h, w, oh, ow;   // planes: N * C (N * C/B, blocked)
    int64_t block;                  // B, 1 if plain
};

bool read_planes(int nparam, int expected, int *ndims, int64_t **shapes, int full, Planes *p) {
    if (nparam != expected) {
        std::fprintf(stderr, "ats max-pool: expected %d parameters, got %d\n", expected, nparam);
        return false;
    }
    const int rank = ndims[full];
    p->block = rank == 5 ? shapes[full][4] : 1;
    for (int i = 0; i < nparam; ++i) {
        if (ndims[i] != rank || (rank == 5 && shapes[i][4] != p->block) || (rank != 4 && rank != 5)) {
            std::fprintf(stderr, "ats max-pool: parameter %d is neither 4-D nor blocked as the input\n", i);
            return false;
        }
    }
    if (rank == 5 && p->block != 8 && p->block != 16) return false;
    p->planes = shapes[full][0] * shapes[full][1];
    p->h = shapes[full][2];
    p->w = shapes[full][3];
    p->oh = p->h / 2;
    p->ow = p->w / 2;
    return p->oh > 0 && p->ow > 0;
}

/* B: the channels interleaved in a row (1: plain). */
template <int B>
void forward(const Planes &p, const float *x, float *y, uint8_t *where) {
    ats::parallel_ranges(p.planes, [&](int64_t first, int64_t end) {
        for (int64_t q = first; q < end; ++q) {
            for (int64_t r = 0; r < p.oh; ++r) {
                const float *top = x + (q * p.h + 2 * r) * p.w * B, *bottom = top + p.w * B;
                float *out = y + (q * p.oh + r) * p.ow * B;
                uint8_t *at = where + (q * p.oh + r) * p.ow * B;
                for (int64_t c = 0; c < p.ow; ++c) {
#pragma omp simd
                    for (int j = 0; j < B; ++j) {
                        const int64_t left = 2 * c * B + j, right = left + B;
                        float best = top[left];
                        uint8_t k = 0;
                        // Strictly greater: the first of equal values wins.
                        if (top[right] > best) best = top[right], k = 1;
                        if (bottom[left] > best) best = bottom[left], k = 2;
                        if (bottom[right] > best) best = bottom[right], k = 3;
                        out[c * B + j] = best;
                        at[c * B + j] = k;
                    }
                }
            }
        }
    });
}

template <int B>
void backward(const Planes &p, const float *dy, const uint8_t *where, float *dx) {
    ats::parallel_ranges(p.planes, [&](int64_t first, int64_t end) {
        std::memset(dx + first * p.h * p.w * B, 0, sizeof(float) * (end - first) * p.h * p.w * B);
        for (int64_t q = first; q < end; ++q) {
            for (int64_t r = 0; r < p.oh; ++r) {
                float *top = dx + (q * p.h + 2 * r) * p.w * B;
                const float *g = dy + (q * p.oh + r) * p.ow * B;
                const uint8_t *at = where + (q * p.oh + r) * p.ow * B;
                for (int64_t c = 0; c < p.ow; ++c) {
                    for (int j = 0; j < B; ++j) {
                        const uint8_t k = at[c * B + j];
                        top[((k >> 1) * p.w + 2 * c + (k & 1)) * B + j] = g[c * B + j];
                    }
                }
            }
        }
    });
}

}  // namespace

ATS_OPERATOR(ats_maxpool_forward) {
    Planes p;
    if (!read_planes(nparam, 3, ndims, shapes, 0, &p) || std::strcmp(dtypes[0], "float32") != 0) return 1;
    std::lock_guard<std::mutex> lock(ats::shared().mutex);
    const auto *x = static_cast<const float *>(params[0]);
    auto *y = static_cast<float *>(params[1]);
    auto *where = static_cast<uint8_t *>(params[2]);
    if (p.block == 16) forward<16>(p, x, y, where);
    else if (p.block == 8) forward<8>(p, x, y, where);
    else forward<1>(p, x, y, where);
    return 0;
}

ATS_OPERATOR(ats_maxpool_backward) {
    Planes p;
    if (!read_planes(nparam, 4, ndims, shapes, 0, &p) || std::strcmp(dtypes[1], "float32") != 0) return 1;
    std::lock_guard<std::mutex> lock(ats::shared().mutex);
    const auto *dy = static_cast<const float *>(params[1]);
    const auto *where = static_cast<const uint8_t *>(params[2]);
    auto *dx = static_cast<float *>(params[3]);
    if (p.block == 16) backward<16>(p, dy, where, dx);
    else if (p.block == 8) backward<8>(p, dy, where, dx);
    else backward<1>(p, dy, where, dx);
    return 0;
}
