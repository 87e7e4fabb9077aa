/* BatchNorm for MindSpore graphs on the CPU (a custom operator), on plain NCHW float32. Training
 * mode: batch statistics, normalisation and both gradients, each a pass or two over the data,
 * vectorised and spread over the shared pool by channel. Inference mode: the normalisation by the
 * moving statistics, one pass (its gradient is left to MindSpore's operators: evaluation does not
 * need one). MindSpore's own CPU BatchNorm (oneDNN's generic NCHW code) moves far less data per
 * second.
 *
 * Entry points (MindSpore's kernel signature, entry.h; parameters are the inputs, then the outputs):
 *   ats_bn_forward[_relu]  (x, gamma, beta, eps) -> y, mean, var     var: biased, as normalised with
 *   ats_bn_backward[_relu] (x, dy, gamma, beta, mean, var, eps) -> dx, dgamma, dbeta
 *   ats_bn_inference[_relu] (x, gamma, beta, mean, var, eps) -> y    mean, var: the moving ones
 *   ats_bn_forward_add_relu   (x, shortcut, gamma, beta, eps) -> y, mean, var
 *   ats_bn_backward_add_relu  (x, y, dy, gamma, beta, mean, var, eps) -> dx, dshortcut, dgamma, dbeta
 *   ats_bn_inference_add_relu (x, shortcut, gamma, beta, mean, var, eps) -> y
 * x, y, dy, dx, shortcut, dshortcut [N,C,H,W], or all [N,C/B,H,W,B] (oneDNN's blocked layout, B 8 or
 * 16, as the convolution kernel gives it); gamma, beta, mean, var, dgamma, dbeta [C]; eps [1].
 * The _relu kernels apply a ReLU to the output (and its gradient on the way back, from the
 * recomputed output): one pass over the data less each way than BatchNorm and ReLU apart. The
 * _add_relu kernels are a residual block's end, relu(BatchNorm(x) + shortcut), in one pass instead
 * of three (their backward takes the output, for the ReLU's mask, and gives the shortcut's gradient). */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

#include "entry.h"
#include "threadpool.h"

namespace {

struct Dims {
    int64_t n, c, plane;   // plane: H * W, contiguous per (image, channel)
    int64_t block = 1;     // B of a blocked layout, 1 if plain
    double count() const { return static_cast<double>(n) * plane; }
};

/* Checks a call's parameters: tensors [N,C,H,W] at ``full``, [C] at the others but the last input
 * (eps, [1]); all float32. */
bool read_dims(int nparam, int expected, int *ndims, int64_t **shapes, const char **dtypes,
               std::initializer_list<int> full, int eps, Dims *d) {
    if (nparam != expected) {
        std::fprintf(stderr, "ats BatchNorm: expected %d parameters, got %d\n", expected, nparam);
        return false;
    }
    const int rank = ndims[0];
    d->block = rank == 5 ? shapes[0][4] : 1;
    d->n = shapes[0][0];
    d->c = shapes[0][1] * d->block;
    d->plane = rank == 4 || (rank == 5 && (d->block == 8 || d->block == 16)) ? shapes[0][2] * shapes[0][3] : 0;
    for (int i = 0; i < nparam; ++i) {
        bool is_full = false;
        for (int f : full) is_full = is_full || f == i;
        bool ok = std::strcmp(dtypes[i], "float32") == 0 &&
                  (is_full ? ndims[i] == rank && shapes[i][0] == d->n && shapes[i][1] * (rank == 5 ? shapes[i][4] : 1) == d->c &&
                                 (rank == 4 || shapes[i][4] == d->block) && shapes[i][2] * shapes[i][3] == d->plane
                           : ndims[i] == 1 && shapes[i][0] == (i == eps ? 1 : d->c));
        if (!ok) {
            std::fprintf(stderr, "ats BatchNorm: parameter %d has an unexpected shape or type\n", i);
            return false;
        }
    }
    return d->plane > 0 && d->n > 0;
}

/* The normalisation as y = x * scale + shift, computed once, the same way going forward and back. */
struct Affine {
    float scale, shift;
    Affine(double gamma, double beta, double mean, double var, float eps)
        : scale(static_cast<float>(gamma / std::sqrt(var + eps))), shift(static_cast<float>(beta - mean * scale)) {}
};

/* The output of a plane: BatchNorm's affine map, plus the shortcut if there is one (a residual
 * block's sum), then the ReLU if ``relu``. */
inline void normalize_plane(int64_t size, const Affine &t, bool relu, const float *in, const float *shortcut,
                            float *out) {
    const float floor = relu ? 0.0f : -INFINITY;
    if (shortcut) {
#pragma omp simd
        for (int64_t k = 0; k < size; ++k) out[k] = std::max(in[k] * t.scale + t.shift + shortcut[k], floor);
    } else {
#pragma omp simd
        for (int64_t k = 0; k < size; ++k) out[k] = std::max(in[k] * t.scale + t.shift, floor);
    }
}


// ---- the blocked layout [N, C/B, H, W, B] ------------------------------------------------------
/* The same arithmetic as the plain loops (sums per (image, channel) plane in float, across images in
 * double, in image order), vectorised across the B channels of a block. A pass runs over the N * C/B
 * planes of B channels, so that a layer of one block still splits over the pool; each plane's sums
 * go to sums[(image * C + channel)], added across images afterwards in a fixed order. The inner loops
 * read only local copies (of the block's per-channel factors, of the thresholds): a value read
 * through a reference might alias the output, and the compiler would then not vectorise. */
template <int B, class Fn>
void each_plane(const Dims &d, Fn fn) {
    const int64_t blocks = d.c / B;
    ats::parallel_ranges(d.n * blocks, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) fn(p * d.plane * B, (p % blocks) * B, p * B);
    });
}

/* Per channel: the plane sums of ``a`` and ``b`` (``sums`` as above) added across images. */
void across_images(const Dims &d, const std::vector<float> &a, const std::vector<float> &b, int64_t c, double *sa,
                   double *sb) {
    *sa = *sb = 0;
    for (int64_t i = 0; i < d.n; ++i) {
        *sa += a[i * d.c + c];
        *sb += b[i * d.c + c];
    }
}

/* The normalisation's scale and shift of every channel. */
void affines(const Dims &d, const float *gamma, const float *beta, const float *mean, const float *var, float eps,
             std::vector<float> *scale, std::vector<float> *shift) {
    scale->resize(d.c);
    shift->resize(d.c);
    for (int64_t c = 0; c < d.c; ++c) {
        const Affine t(gamma[c], beta[c], mean[c], var[c], eps);
        (*scale)[c] = t.scale;
        (*shift)[c] = t.shift;
    }
}

template <int B>
void normalize_blocked(const Dims &d, bool relu, const std::vector<float> &scale, const std::vector<float> &shift,
                       const float *x, const float *shortcut, float *y) {
    each_plane<B>(d, [&](int64_t at, int64_t c, int64_t) {
        const float floor = relu ? 0.0f : -INFINITY;
        float sc[B], sh[B];
        std::copy(scale.begin() + c, scale.begin() + c + B, sc);
        std::copy(shift.begin() + c, shift.begin() + c + B, sh);
        const float *in = x + at, *add = shortcut ? shortcut + at : nullptr;
        float *out = y + at;
        const int64_t size = d.plane * B;
        for (int64_t k = 0; k < size; k += B) {
            if (add) {
#pragma omp simd
                for (int j = 0; j < B; ++j) out[k + j] = std::max(in[k + j] * sc[j] + sh[j] + add[k + j], floor);
            } else {
#pragma omp simd
                for (int j = 0; j < B; ++j) out[k + j] = std::max(in[k + j] * sc[j] + sh[j], floor);
            }
        }
    });
}

template <int B>
void forward_blocked(const Dims &d, bool relu, const float *x, const float *shortcut, const float *gamma,
                     const float *beta, float eps, float *y, float *mean, float *var) {
    std::vector<float> sums(d.n * d.c), squares(d.n * d.c);
    each_plane<B>(d, [&](int64_t at, int64_t, int64_t to) {
        const float *p = x + at;
        float s[B] = {}, q[B] = {};
        const int64_t size = d.plane * B;
        for (int64_t k = 0; k < size; k += B) {
#pragma omp simd
            for (int j = 0; j < B; ++j) {
                s[j] += p[k + j];
                q[j] += p[k + j] * p[k + j];
            }
        }
        std::copy(s, s + B, sums.begin() + to);
        std::copy(q, q + B, squares.begin() + to);
    });
    for (int64_t c = 0; c < d.c; ++c) {
        double sum, sq;
        across_images(d, sums, squares, c, &sum, &sq);
        double m = sum / d.count(), v = std::max(sq / d.count() - m * m, 0.0);
        mean[c] = static_cast<float>(m);
        var[c] = static_cast<float>(v);
    }
    std::vector<float> scale, shift;
    affines(d, gamma, beta, mean, var, eps, &scale, &shift);
    normalize_blocked<B>(d, relu, scale, shift, x, shortcut, y);
}

template <int B, bool Shortcut>
void backward_blocked(const Dims &d, bool relu, const float *x, const float *y, const float *dy, const float *gamma,
                      const float *beta, const float *mean, const float *var, float eps, float *dx,
                      float *dshortcut, float *dgamma, float *dbeta) {
    std::vector<float> scale, shift;
    affines(d, gamma, beta, mean, var, eps, &scale, &shift);
    /* The incoming gradient of one plane, masked where the output was not positive (see backward),
     * passed to fn(k + j, masked gradient) for each element. */
    auto each_masked = [&](int64_t at, int64_t c, auto fn) {
        const float threshold = relu ? 0.0f : -INFINITY;
        float sc[B], sh[B];
        std::copy(scale.begin() + c, scale.begin() + c + B, sc);
        std::copy(shift.begin() + c, shift.begin() + c + B, sh);
        const float *p = x + at, *out = Shortcut ? y + at : nullptr, *g = dy + at;
        const int64_t size = d.plane * B;
        for (int64_t k = 0; k < size; k += B) {
#pragma omp simd
            for (int j = 0; j < B; ++j) {
                const float output = Shortcut ? out[k + j] : p[k + j] * sc[j] + sh[j];
                fn(k, j, output > threshold ? g[k + j] : 0.0f);
            }
        }
    };
    std::vector<float> sums(d.n * d.c), products(d.n * d.c);
    each_plane<B>(d, [&](int64_t at, int64_t c, int64_t to) {
        float s[B] = {}, q[B] = {};
        const float *p = x + at;
        each_masked(at, c, [&](int64_t k, int j, float gk) {
            s[j] += gk;
            q[j] += gk * p[k + j];
        });
        std::copy(s, s + B, sums.begin() + to);
        std::copy(q, q + B, products.begin() + to);
    });
    std::vector<float> fa(d.c), fb(d.c), fk(d.c);
    for (int64_t c = 0; c < d.c; ++c) {
        double sum_dy, sum_dy_x;
        across_images(d, sums, products, c, &sum_dy, &sum_dy_x);
        const double m = mean[c], inv_std = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps), count = d.count();
        const double dg = (sum_dy_x - m * sum_dy) * inv_std;
        dgamma[c] = static_cast<float>(dg);
        dbeta[c] = static_cast<float>(sum_dy);
        const double a = gamma[c] * inv_std, b = -a * inv_std * dg / count;
        fa[c] = static_cast<float>(a);
        fb[c] = static_cast<float>(b);
        fk[c] = static_cast<float>(-a * sum_dy / count - b * m);
    }
    each_plane<B>(d, [&](int64_t at, int64_t c, int64_t) {
        float a[B], b[B], k0[B];
        std::copy(fa.begin() + c, fa.begin() + c + B, a);
        std::copy(fb.begin() + c, fb.begin() + c + B, b);
        std::copy(fk.begin() + c, fk.begin() + c + B, k0);
        const float *p = x + at;
        float *grad = dx + at, *grad_shortcut = Shortcut ? dshortcut + at : nullptr;
        each_masked(at, c, [&](int64_t k, int j, float gk) {
            grad[k + j] = a[j] * gk + b[j] * p[k + j] + k0[j];
            if (Shortcut) grad_shortcut[k + j] = gk;
        });
    });
}

template <int B>
void inference_blocked(const Dims &d, bool relu, const float *x, const float *shortcut, const float *gamma,
                       const float *beta, const float *mean, const float *var, float eps, float *y) {
    std::vector<float> scale, shift;
    affines(d, gamma, beta, mean, var, eps, &scale, &shift);
    normalize_blocked<B>(d, relu, scale, shift, x, shortcut, y);
}

// ---- the plain layout [N, C, H, W] (or a blocked one, handed on) ------------------------------
void forward(const Dims &d, bool relu, const float *x, const float *shortcut, const float *gamma, const float *beta,
             float eps, float *y, float *mean, float *var) {
    if (d.block == 16) return forward_blocked<16>(d, relu, x, shortcut, gamma, beta, eps, y, mean, var);
    if (d.block == 8) return forward_blocked<8>(d, relu, x, shortcut, gamma, beta, eps, y, mean, var);
    ats::parallel_ranges(d.c, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            // Sums per plane in float (at most a few thousand terms), across planes in double.
            double sum = 0, squares = 0;
            for (int64_t i = 0; i < d.n; ++i) {
                const float *p = x + (i * d.c + c) * d.plane;
                float s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
                for (int64_t k = 0; k < d.plane; ++k) {
                    s += p[k];
                    q += p[k] * p[k];
                }
                sum += s;
                squares += q;
            }
            double m = sum / d.count(), v = std::max(squares / d.count() - m * m, 0.0);
            mean[c] = static_cast<float>(m);
            var[c] = static_cast<float>(v);
            // The variance as stored: the backward recomputes the output from the same floats.
            const Affine t(gamma[c], beta[c], mean[c], var[c], eps);
            for (int64_t i = 0; i < d.n; ++i) {
                const int64_t at = (i * d.c + c) * d.plane;
                normalize_plane(d.plane, t, relu, x + at, shortcut ? shortcut + at : nullptr, y + at);
            }
        }
    });
}

/* With ``relu`` the incoming gradient is first masked where the output was not positive; the
 * masked gradient g replaces dy below. Without a shortcut the output is recomputed from x; with one
 * (a residual sum) it is read from ``y``, and g is also the shortcut's gradient ``dshortcut``. */
template <bool Shortcut>
void backward(const Dims &d, bool relu, const float *x, const float *y, const float *dy, const float *gamma,
              const float *beta, const float *mean, const float *var, float eps, float *dx, float *dshortcut,
              float *dgamma, float *dbeta) {
    if (d.block == 16)
        return backward_blocked<16, Shortcut>(d, relu, x, y, dy, gamma, beta, mean, var, eps, dx, dshortcut, dgamma, dbeta);
    if (d.block == 8)
        return backward_blocked<8, Shortcut>(d, relu, x, y, dy, gamma, beta, mean, var, eps, dx, dshortcut, dgamma, dbeta);
    ats::parallel_ranges(d.c, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            const Affine t(gamma[c], beta[c], mean[c], var[c], eps);
            // Without relu the threshold is -inf: every element passes.
            const float threshold = relu ? 0.0f : -INFINITY;
            auto masked = [&](const float *p, const float *out, const float *g, int64_t k) {
                const float output = Shortcut ? out[k] : p[k] * t.scale + t.shift;
                return output > threshold ? g[k] : 0.0f;
            };
            double sum_dy = 0, sum_dy_x = 0;
            for (int64_t i = 0; i < d.n; ++i) {
                const int64_t at = (i * d.c + c) * d.plane;
                const float *p = x + at, *g = dy + at, *out = Shortcut ? y + at : nullptr;
                float s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
                for (int64_t k = 0; k < d.plane; ++k) {
                    float gk = masked(p, out, g, k);
                    s += gk;
                    q += gk * p[k];
                }
                sum_dy += s;
                sum_dy_x += q;
            }
            const double m = mean[c], inv_std = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps), count = d.count();
            // dgamma = sum(dy * xhat), dbeta = sum(dy), xhat = (x - mean) * inv_std; then
            // dx = gamma * inv_std * (dy - dbeta / M - xhat * dgamma / M) = a * dy + b * x + k.
            const double dg = (sum_dy_x - m * sum_dy) * inv_std;
            dgamma[c] = static_cast<float>(dg);
            dbeta[c] = static_cast<float>(sum_dy);
            const double a = gamma[c] * inv_std, b = -a * inv_std * dg / count;
            const float fa = static_cast<float>(a), fb = static_cast<float>(b);
            const float fk = static_cast<float>(-a * sum_dy / count - b * m);
            for (int64_t i = 0; i < d.n; ++i) {
                const int64_t at = (i * d.c + c) * d.plane;
                const float *p = x + at, *g = dy + at, *out = Shortcut ? y + at : nullptr;
                float *grad = dx + at, *grad_shortcut = Shortcut ? dshortcut + at : nullptr;
#pragma omp simd
                for (int64_t k = 0; k < d.plane; ++k) {
                    const float gk = masked(p, out, g, k);
                    grad[k] = fa * gk + fb * p[k] + fk;
                    if (Shortcut) grad_shortcut[k] = gk;
                }
            }
        }
    });
}

/* y = x * scale + shift (+ shortcut) with the moving statistics, spread over the pool by (image,
 * channel) plane: a layer of few channels still splits evenly. */
void inference(const Dims &d, bool relu, const float *x, const float *shortcut, const float *gamma,
               const float *beta, const float *mean, const float *var, float eps, float *y) {
    if (d.block == 16) return inference_blocked<16>(d, relu, x, shortcut, gamma, beta, mean, var, eps, y);
    if (d.block == 8) return inference_blocked<8>(d, relu, x, shortcut, gamma, beta, mean, var, eps, y);
    ats::parallel_ranges(d.n * d.c, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
            const int64_t c = p % d.c;
            const Affine t(gamma[c], beta[c], mean[c], var[c], eps);
            normalize_plane(d.plane, t, relu, x + p * d.plane, shortcut ? shortcut + p * d.plane : nullptr,
                            y + p * d.plane);
        }
    });
}

/* One call: checks its parameters (``expected`` of them; [N,C,H,W] at ``full``, eps [1] at ``eps``,
 * [C] elsewhere), then runs ``fn(dims, f)`` under the pool's lock, f(i) being parameter i. */
template <class Fn>
int run(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, int expected,
        std::initializer_list<int> full, int eps, Fn fn) {
    Dims d;
    if (!read_dims(nparam, expected, ndims, shapes, dtypes, full, eps, &d)) return 1;
    std::lock_guard<std::mutex> lock(ats::shared().mutex);
    fn(d, [&](int i) { return static_cast<float *>(params[i]); });
    return 0;
}

/* The parameters in MindSpore's order (the inputs, then the outputs; see the top). A shortcut
 * always comes with the ReLU after the sum, as a residual block ends. */
int forward_call(bool relu, ATS_PARAMETERS) {
    return run(ATS_ARGUMENTS, 7, {0, 4}, 3, [&](const Dims &d, auto f) {
        forward(d, relu, f(0), nullptr, f(1), f(2), *f(3), f(4), f(5), f(6));
    });
}

int forward_add_relu_call(bool, ATS_PARAMETERS) {
    return run(ATS_ARGUMENTS, 8, {0, 1, 5}, 4, [&](const Dims &d, auto f) {
        forward(d, true, f(0), f(1), f(2), f(3), *f(4), f(5), f(6), f(7));
    });
}

int backward_call(bool relu, ATS_PARAMETERS) {
    return run(ATS_ARGUMENTS, 10, {0, 1, 7}, 6, [&](const Dims &d, auto f) {
        backward<false>(d, relu, f(0), nullptr, f(1), f(2), f(3), f(4), f(5), *f(6), f(7), nullptr, f(8), f(9));
    });
}

int backward_add_relu_call(bool, ATS_PARAMETERS) {
    return run(ATS_ARGUMENTS, 12, {0, 1, 2, 8, 9}, 7, [&](const Dims &d, auto f) {
        backward<true>(d, true, f(0), f(1), f(2), f(3), f(4), f(5), f(6), *f(7), f(8), f(9), f(10), f(11));
    });
}

int inference_call(bool relu, ATS_PARAMETERS) {
    return run(ATS_ARGUMENTS, 7, {0, 6}, 5, [&](const Dims &d, auto f) {
        inference(d, relu, f(0), nullptr, f(1), f(2), f(3), f(4), *f(5), f(6));
    });
}

int inference_add_relu_call(bool, ATS_PARAMETERS) {
    return run(ATS_ARGUMENTS, 8, {0, 1, 7}, 6, [&](const Dims &d, auto f) {
        inference(d, true, f(0), f(1), f(2), f(3), f(4), f(5), *f(6), f(7));
    });
}

}  // namespace

#define ATS_ENTRY(name, call, relu) \
    ATS_OPERATOR(name) { return call(relu, ATS_ARGUMENTS); }
ATS_ENTRY(ats_bn_forward, forward_call, false)
ATS_ENTRY(ats_bn_forward_relu, forward_call, true)
ATS_ENTRY(ats_bn_backward, backward_call, false)
ATS_ENTRY(ats_bn_backward_relu, backward_call, true)
ATS_ENTRY(ats_bn_inference, inference_call, false)
ATS_ENTRY(ats_bn_inference_relu, inference_call, true)
ATS_ENTRY(ats_bn_forward_add_relu, forward_add_relu_call, true)
ATS_ENTRY(ats_bn_backward_add_relu, backward_add_relu_call, true)
ATS_ENTRY(ats_bn_inference_add_relu, inference_add_relu_call, true)
#undef ATS_ENTRY
