/* 2x2 max-pooling with stride 2 (VGG's) for MindSpore graphs on the CPU (a custom operator), on
 * plain NCHW float32. The forward also writes which of the four inputs was the largest (the first
 * of equal ones, as MindSpore's pooling gradient chooses), so the backward is one scatter; MindSpore's
 * own gradient recomputes the forward to find them.
 *
 * Entry points (MindSpore's kernel signature, entry.h; parameters are the inputs, then the outputs):
 *   ats_maxpool_forward  (x) -> y, where                 where: uint8, 0..3 = top-left .. bottom-right
 *   ats_maxpool_backward (x, dy, where) -> dx            x: for its shape only
 * x, dx [N,C,H,W]; y, dy, where [N,C,H/2,W/2] (a last odd row or column is not pooled). */
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "entry.h"
#include "threadpool.h"

namespace {

struct Planes {
    int64_t planes, h, w, oh, ow;   // planes: N * C
};

bool read_planes(int nparam, int expected, int *ndims, int64_t **shapes, int full, Planes *p) {
    if (nparam != expected) {
        std::fprintf(stderr, "ats max-pool: expected %d parameters, got %d\n", expected, nparam);
        return false;
    }
    for (int i = 0; i < nparam; ++i) {
        if (ndims[i] != 4) {
            std::fprintf(stderr, "ats max-pool: parameter %d is not 4-D\n", i);
            return false;
        }
    }
    p->planes = shapes[full][0] * shapes[full][1];
    p->h = shapes[full][2];
    p->w = shapes[full][3];
    p->oh = p->h / 2;
    p->ow = p->w / 2;
    return p->oh > 0 && p->ow > 0;
}

void forward(const Planes &p, const float *x, float *y, uint8_t *where) {
    ats::parallel_ranges(p.planes, [&](int64_t first, int64_t end) {
        for (int64_t q = first; q < end; ++q) {
            for (int64_t r = 0; r < p.oh; ++r) {
                const float *top = x + (q * p.h + 2 * r) * p.w, *bottom = top + p.w;
                float *out = y + (q * p.oh + r) * p.ow;
                uint8_t *at = where + (q * p.oh + r) * p.ow;
                for (int64_t c = 0; c < p.ow; ++c) {
                    float best = top[2 * c];
                    uint8_t k = 0;
                    // Strictly greater: the first of equal values wins.
                    if (top[2 * c + 1] > best) best = top[2 * c + 1], k = 1;
                    if (bottom[2 * c] > best) best = bottom[2 * c], k = 2;
                    if (bottom[2 * c + 1] > best) best = bottom[2 * c + 1], k = 3;
                    out[c] = best;
                    at[c] = k;
                }
            }
        }
    });
}

void backward(const Planes &p, const float *dy, const uint8_t *where, float *dx) {
    ats::parallel_ranges(p.planes, [&](int64_t first, int64_t end) {
        std::memset(dx + first * p.h * p.w, 0, sizeof(float) * (end - first) * p.h * p.w);
        for (int64_t q = first; q < end; ++q) {
            for (int64_t r = 0; r < p.oh; ++r) {
                float *top = dx + (q * p.h + 2 * r) * p.w;
                const float *g = dy + (q * p.oh + r) * p.ow;
                const uint8_t *at = where + (q * p.oh + r) * p.ow;
                for (int64_t c = 0; c < p.ow; ++c) top[(at[c] >> 1) * p.w + 2 * c + (at[c] & 1)] = g[c];
            }
        }
    });
}

}  // namespace

ATS_OPERATOR(ats_maxpool_forward) {
    Planes p;
    if (!read_planes(nparam, 3, ndims, shapes, 0, &p) || std::strcmp(dtypes[0], "float32") != 0) return 1;
    std::lock_guard<std::mutex> lock(ats::shared().mutex);
    forward(p, static_cast<const float *>(params[0]), static_cast<float *>(params[1]),
            static_cast<uint8_t *>(params[2]));
    return 0;
}

ATS_OPERATOR(ats_maxpool_backward) {
    Planes p;
    if (!read_planes(nparam, 4, ndims, shapes, 0, &p) || std::strcmp(dtypes[1], "float32") != 0) return 1;
    std::lock_guard<std::mutex> lock(ats::shared().mutex);
    backward(p, static_cast<const float *>(params[1]), static_cast<const uint8_t *>(params[2]),
             static_cast<float *>(params[3]));
    return 0;
}
