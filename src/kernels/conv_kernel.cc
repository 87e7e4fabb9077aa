/* 2-D convolution (forward, input gradient, weight gradient) for MindSpore graphs on the CPU: a
 * custom operator run by the oneDNN that MindSpore bundles, asking oneDNN for the memory layouts
 * its fast kernels want ("any") and reordering MindSpore's plain NCHW/OIHW tensors in and out.
 * MindSpore's own CPU convolution hands oneDNN plain layouts, which leaves it im2col + GEMM (or,
 * on AVX-512, the naive reference kernel).
 *
 * Entry points (MindSpore's kernel signature, entry.h; parameters are the inputs, then the outputs):
 *   ats_conv_forward[_bias]            (x, w, [b,] geometry) -> y
 *   ats_conv_forward[_bias]_no_dx      the same, for layers whose input needs no gradient (first
 *                                      layers): MindSpore's graph mode keeps one backward function
 *                                      per AOT function name, so each kind of layer has its own
 *   ats_conv_backward[_bias]           (x, w, dy, geometry) -> dx, dw[, db]
 *   ats_conv_backward_weights[_bias]   (x, w, dy, geometry) -> dw[, db]
 * x [N,C,H,W], w [K,C,R,S], b [K], y/dy [N,K,OH,OW] float32; geometry int64[8]: stride h, w; padding top,
 * bottom, left, right; dilation h, w. An activation (x, y and their gradients) may instead be 5-D,
 * [N,C/B,H,W,B]: oneDNN's blocked layout (nChw8c, nChw16c), which its kernels take as they are, with
 * no reorder; ats_block_size says which B this processor's kernels want.
 *
 * Calls are serialised by one lock: each uses every thread of the pool, and the reorder buffers
 * (one per role, grown to the largest layer) are shared by all layers. */
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dnnl_subset.h"
#include "dnnl_threadpool.h"
#include "entry.h"
#include "threadpool.h"

namespace {

using ats::shared;

// ---- errors ----------------------------------------------------------------------------------
std::string g_last_error;

struct Failure {
    std::string what;
};

void check(dnnl_status_t status, const char *what) {
    if (status != dnnl_success) throw Failure{std::string(what) + " failed (oneDNN status " + std::to_string(status) + ")"};
}

// ---- reorder buffers -------------------------------------------------------------------------
enum Slot { SRC, WEIGHTS, DST, DIFF_DST, DIFF_SRC, DIFF_WEIGHTS, SCRATCHPAD, N_SLOTS };

// Windows' C runtime has no aligned_alloc (its aligned blocks need their own free).
#if defined(_WIN32)
void *page_aligned(size_t bytes) { return _aligned_malloc(bytes, 4096); }
void release(void *data) { _aligned_free(data); }
#else
void *page_aligned(size_t bytes) { return std::aligned_alloc(4096, bytes); }
void release(void *data) { std::free(data); }
#endif

class Buffer {
  public:
    ~Buffer() { release(data_); }
    void *get(size_t bytes) {
        if (bytes > size_) {
            release(data_);
            size_ = (bytes + 4095) / 4096 * 4096;
            data_ = page_aligned(size_);
            if (!data_) {
                size_ = 0;
                throw Failure{"allocating " + std::to_string(bytes) + " bytes"};
            }
        }
        return data_;
    }

  private:
    void *data_ = nullptr;
    size_t size_ = 0;
};

// ---- one oneDNN primitive with its operands ----------------------------------------------------
/* Destroys a oneDNN handle, whichever kind it is. */
struct Destroy {
    void operator()(dnnl_primitive_desc *handle) const { dnnl_primitive_desc_destroy(handle); }
    void operator()(dnnl_memory_desc *handle) const { dnnl_memory_desc_destroy(handle); }
    void operator()(dnnl_memory *handle) const { dnnl_memory_destroy(handle); }
    void operator()(dnnl_primitive *handle) const { dnnl_primitive_destroy(handle); }
    void operator()(dnnl_primitive_attr *handle) const { dnnl_primitive_attr_destroy(handle); }
};
using PrimitiveDesc = std::unique_ptr<dnnl_primitive_desc, Destroy>;
using MemoryDesc = std::unique_ptr<dnnl_memory_desc, Destroy>;
using Memory = std::unique_ptr<dnnl_memory, Destroy>;
using Primitive = std::unique_ptr<dnnl_primitive, Destroy>;

MemoryDesc memory_desc(const dnnl_dims_t dims, int tag, int ndims = 4) {
    dnnl_memory_desc_t md;
    check(dnnl_memory_desc_create_with_tag(&md, ndims, dims, dnnl_f32, tag), "a memory descriptor");
    return MemoryDesc(md);
}

Memory memory(const_dnnl_memory_desc_t md, dnnl_engine_t engine) {
    dnnl_memory_t m;
    check(dnnl_memory_create(&m, md, engine, nullptr), "a memory object");   // buffer set per call
    return Memory(m);
}

Primitive primitive(const_dnnl_primitive_desc_t pd, const char *what) {
    dnnl_primitive_t p;
    check(dnnl_primitive_create(&p, pd), what);
    return Primitive(p);
}

/* What a primitive's operand is: its argument, where MindSpore's buffer is, its role. */
struct OperandSpec {
    int arg;         // DNNL_ARG_*
    int param;       // index into the kernel's params (MindSpore's buffer)
    bool output;
    Slot slot;       // where the primitive's layout lives, if it differs from the plain one
    int query;       // the primitive descriptor's query for that layout
    const dnnl_dim_t *dims;
    int tag = dnnl_abcd;   // MindSpore's layout of the buffer
    int ndims = 4;   // 1: a bias (whose plain layout is the only one)
    int index = 0;   // of the query: a bias is the second "weights"
};

struct Operand {
    OperandSpec spec;
    const_dnnl_memory_desc_t inner_md = nullptr;   // owned by the primitive descriptor
    size_t inner_bytes = 0;
    Memory user;                                   // MindSpore's layout, over its buffer
    Memory inner;                                  // null: the primitive takes MindSpore's layout
    Primitive reorder;                             // user -> inner (inputs), inner -> user (outputs)
};

class Step {
  public:
    Step(dnnl_engine_t engine, PrimitiveDesc pd, const std::vector<OperandSpec> &specs) : pd_(std::move(pd)) {
        for (const auto &spec : specs) {
            operands_.emplace_back();
            Operand &o = operands_.back();
            o.spec = spec;
            o.inner_md = dnnl_primitive_desc_query_md(pd_.get(), spec.query, spec.index);
            MemoryDesc plain = memory_desc(spec.dims, spec.ndims == 1 ? dnnl_a : spec.tag, spec.ndims);
            o.user = memory(plain.get(), engine);
            if (dnnl_memory_desc_equal(plain.get(), o.inner_md)) continue;
            if (spec.slot == N_SLOTS) throw Failure{"a bias in a layout of its own"};
            o.inner_bytes = dnnl_memory_desc_get_size(o.inner_md);
            o.inner = memory(o.inner_md, engine);
            const_dnnl_memory_desc_t from = spec.output ? o.inner_md : plain.get();
            const_dnnl_memory_desc_t to = spec.output ? plain.get() : o.inner_md;
            dnnl_primitive_desc_t rpd;
            check(dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, nullptr), "choosing a reorder");
            o.reorder = primitive(PrimitiveDesc(rpd).get(), "creating a reorder");
        }
        const_dnnl_memory_desc_t scratch_md = dnnl_primitive_desc_query_md(pd_.get(), dnnl_query_scratchpad_md, 0);
        scratch_bytes_ = scratch_md ? dnnl_memory_desc_get_size(scratch_md) : 0;
        if (scratch_bytes_) scratchpad_ = memory(scratch_md, engine);
        primitive_ = primitive(pd_.get(), "creating the convolution");
    }

    const char *implementation() const {
        const char *name = nullptr;
        dnnl_primitive_desc_query(pd_.get(), dnnl_query_impl_info_str, 0, &name);
        return name ? name : "?";
    }
    const Operand *operand(int arg) const {
        for (const auto &o : operands_)
            if (o.spec.arg == arg) return &o;
        return nullptr;
    }

    /* Runs the primitive on MindSpore's buffers. ``ready``: an input operand whose primitive layout
     * is already in its slot (the previous step reordered it there): its reorder is skipped. */
    void run(dnnl_stream_t stream, Buffer *slots, void **params, const Operand *ready = nullptr) {
        std::vector<dnnl_exec_arg_t> args;
        for (auto &o : operands_) {
            check(dnnl_memory_set_data_handle(o.user.get(), params[o.spec.param]), "setting a buffer");
            if (!o.inner) {
                args.push_back({o.spec.arg, o.user.get()});
                continue;
            }
            check(dnnl_memory_set_data_handle(o.inner.get(), slots[o.spec.slot].get(o.inner_bytes)), "setting a buffer");
            args.push_back({o.spec.arg, o.inner.get()});
            bool skip = ready && ready->inner && ready->spec.slot == o.spec.slot &&
                        dnnl_memory_desc_equal(ready->inner_md, o.inner_md);
            if (!o.spec.output && !skip) reorder(stream, o, o.user.get(), o.inner.get());
        }
        if (scratchpad_) {
            check(dnnl_memory_set_data_handle(scratchpad_.get(), slots[SCRATCHPAD].get(scratch_bytes_)), "setting a buffer");
            args.push_back({DNNL_ARG_SCRATCHPAD, scratchpad_.get()});
        }
        check(dnnl_primitive_execute(primitive_.get(), stream, static_cast<int>(args.size()), args.data()),
              "the convolution");
        for (auto &o : operands_)
            if (o.spec.output && o.inner) reorder(stream, o, o.inner.get(), o.user.get());
        check(dnnl_stream_wait(stream), "waiting for the stream");
    }

  private:
    static void reorder(dnnl_stream_t stream, const Operand &o, dnnl_memory_t from, dnnl_memory_t to) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, from}, {DNNL_ARG_DST, to}};
        check(dnnl_primitive_execute(o.reorder.get(), stream, 2, args), "a reorder");
    }

    PrimitiveDesc pd_;
    std::vector<Operand> operands_;
    Primitive primitive_;
    Memory scratchpad_;
    size_t scratch_bytes_ = 0;
};

// ---- the convolutions of one shape -------------------------------------------------------------
enum Kind { FORWARD, BACKWARD, BACKWARD_WEIGHTS };

/* Where each tensor is among an entry point's parameters (-1: not there). Forward: x, w, [b],
 * geometry -> y. Backward: x, w, dy, geometry -> [dx], dw, [db]. */
struct Layout {
    Layout(Kind kind, bool bias) {
        if (kind == FORWARD) {
            b = bias ? 2 : -1;
            geometry = bias ? 3 : 2;
            y = geometry + 1;
            count = y + 1;
            return;
        }
        dy = 2;
        geometry = 3;
        int next = 4;
        dx = kind == BACKWARD ? next++ : -1;
        dw = next++;
        db = bias ? next++ : -1;
        count = next;
    }
    int x = 0, w = 1, b = -1, dy = -1, geometry = -1, y = -1, dx = -1, dw = -1, db = -1, count = 0;
};

struct Shape {
    dnnl_dims_t src{}, weights{}, dst{}, bias{}, strides{}, dilates{}, pad_l{}, pad_r{};
    int src_tag = dnnl_abcd, dst_tag = dnnl_abcd;   // MindSpore's layouts of x (dx) and y (dy)
};

/* The primitive's layout of an activation: a blocked one as given (the kernels' own), a plain one
 * left to oneDNN (then reordered). */
int chosen(int tag) { return tag == dnnl_abcd ? dnnl_format_tag_any : tag; }

class Convolution {
  public:
    Convolution(dnnl_engine_t engine, Kind kind, bool has_bias, const Shape &s) {
        const Layout at(kind, has_bias);
        dnnl_primitive_attr_t raw_attr;
        check(dnnl_primitive_attr_create(&raw_attr), "attributes");
        std::unique_ptr<dnnl_primitive_attr, Destroy> attr(raw_attr);
        // Scratchpads come from the shared buffers, not from one allocation per primitive.
        check(dnnl_primitive_attr_set_scratchpad_mode(attr.get(), dnnl_scratchpad_mode_user), "attributes");
        MemoryDesc src = memory_desc(s.src, chosen(s.src_tag)), weights = memory_desc(s.weights, dnnl_format_tag_any),
                   dst = memory_desc(s.dst, chosen(s.dst_tag));
        MemoryDesc bias = has_bias ? memory_desc(s.bias, dnnl_a, 1) : MemoryDesc();
        dnnl_primitive_desc_t pd;
        check(dnnl_convolution_forward_primitive_desc_create(&pd, engine, dnnl_forward_training, dnnl_convolution_direct,
                                                             src.get(), weights.get(), bias.get(), dst.get(), s.strides,
                                                             s.dilates, s.pad_l, s.pad_r, attr.get()),
              "choosing a forward convolution kernel");
        PrimitiveDesc forward(pd);
        if (kind == FORWARD) {
            std::vector<OperandSpec> operands{{DNNL_ARG_SRC, at.x, false, SRC, dnnl_query_src_md, s.src, s.src_tag},
                                              {DNNL_ARG_WEIGHTS, at.w, false, WEIGHTS, dnnl_query_weights_md, s.weights},
                                              {DNNL_ARG_DST, at.y, true, DST, dnnl_query_dst_md, s.dst, s.dst_tag}};
            if (has_bias) operands.push_back({DNNL_ARG_BIAS, at.b, false, N_SLOTS, dnnl_query_weights_md, s.bias, dnnl_a, 1, 1});
            add(engine, std::move(forward), operands);
            return;
        }
        // The gradients' kernels are chosen with the forward one as a hint (same layouts where possible).
        if (kind == BACKWARD) {
            check(dnnl_convolution_backward_data_primitive_desc_create(&pd, engine, dnnl_convolution_direct, src.get(),
                                                                       weights.get(), dst.get(), s.strides, s.dilates,
                                                                       s.pad_l, s.pad_r, forward.get(), attr.get()),
                  "choosing an input-gradient convolution kernel");
            add(engine, PrimitiveDesc(pd),
                {{DNNL_ARG_DIFF_DST, at.dy, false, DIFF_DST, dnnl_query_diff_dst_md, s.dst, s.dst_tag},
                 {DNNL_ARG_WEIGHTS, at.w, false, WEIGHTS, dnnl_query_weights_md, s.weights},
                 {DNNL_ARG_DIFF_SRC, at.dx, true, DIFF_SRC, dnnl_query_diff_src_md, s.src, s.src_tag}});
        }
        check(dnnl_convolution_backward_weights_primitive_desc_create(&pd, engine, dnnl_convolution_direct, src.get(),
                                                                      weights.get(), bias.get(), dst.get(), s.strides,
                                                                      s.dilates, s.pad_l, s.pad_r, forward.get(), attr.get()),
              "choosing a weight-gradient convolution kernel");
        std::vector<OperandSpec> operands{{DNNL_ARG_SRC, at.x, false, SRC, dnnl_query_src_md, s.src, s.src_tag},
                                          {DNNL_ARG_DIFF_DST, at.dy, false, DIFF_DST, dnnl_query_diff_dst_md, s.dst, s.dst_tag},
                                          {DNNL_ARG_DIFF_WEIGHTS, at.dw, true, DIFF_WEIGHTS, dnnl_query_diff_weights_md, s.weights}};
        if (has_bias) operands.push_back({DNNL_ARG_DIFF_BIAS, at.db, true, N_SLOTS, dnnl_query_diff_weights_md, s.bias, dnnl_a, 1, 1});
        add(engine, PrimitiveDesc(pd), operands);
    }

    void run(dnnl_stream_t stream, Buffer *slots, void **params) {
        const Operand *ready = nullptr;
        for (auto &step : steps_) {
            step->run(stream, slots, params, ready);
            ready = step->operand(DNNL_ARG_DIFF_DST);   // dy, reordered once for both gradients
        }
    }

    /* The primitive's layout of the first step's operand ``arg`` (null: MindSpore's is taken as it is). */
    const_dnnl_memory_desc_t layout(int arg) const {
        const Operand *o = steps_.front()->operand(arg);
        return o && o->inner ? o->inner_md : nullptr;
    }

    std::string implementations() const {
        std::string names;
        for (const auto &step : steps_) names += (names.empty() ? "" : ",") + std::string(step->implementation());
        return names;
    }

  private:
    void add(dnnl_engine_t engine, PrimitiveDesc pd, const std::vector<OperandSpec> &operands) {
        steps_.emplace_back(new Step(engine, std::move(pd), operands));
    }

    std::vector<std::unique_ptr<Step>> steps_;
};

// ---- process-wide state ------------------------------------------------------------------------
using Key = std::array<int64_t, 20>;

/* oneDNN's engine, a stream on the shared pool, and the primitives made so far. Used under
 * shared().mutex only. */
struct Kernel {
    dnnl_engine_t engine = nullptr;
    std::unique_ptr<ats::DnnlThreadpool> threadpool;   // the shared pool, as oneDNN sees it
    dnnl_stream_t stream = nullptr;
    uint64_t generation = 0;   // of the pool the stream and the cached primitives were made for
    std::map<Key, std::unique_ptr<Convolution>> cache;
    Buffer slots[N_SLOTS];

    void ensure_ready() {
        const char *missing = nullptr;
        if (!ats::load_dnnl(&missing)) throw Failure{missing};
        ats::Pool &pool = shared().ready_pool();
        if (!engine) check(dnnl_engine_create(&engine, dnnl_cpu, 0), "creating the CPU engine");
        if (generation != shared().generation) {   // first use, or a new thread count
            cache.clear();
            if (stream) dnnl_stream_destroy(stream);
            stream = nullptr;
            threadpool.reset(new ats::DnnlThreadpool(pool));
            check(dnnl_threadpool_interop_stream_create(&stream, engine, threadpool->handle()), "creating the stream");
            generation = shared().generation;
        }
        // oneDNN reads the thread count per calling thread (when creating and running primitives).
        check(dnnl_threadpool_interop_set_max_concurrency(pool.threads()), "setting the thread count");
    }
};

Kernel &kernel() {
    static Kernel *k = new Kernel();   // never destroyed, as shared()
    return *k;
}

void set_geometry(const int64_t *g, Shape *s) {
    s->strides[0] = g[0];
    s->strides[1] = g[1];
    s->pad_l[0] = g[2];
    s->pad_r[0] = g[3];
    s->pad_l[1] = g[4];
    s->pad_r[1] = g[5];
    s->dilates[0] = g[6] - 1;   // oneDNN counts dilation from 0
    s->dilates[1] = g[7] - 1;
}

/* The layout of an activation of ``ndims`` dimensions (4: plain; 5: blocked by ``shape[4]``), or -1. */
int activation_tag(int ndims, const int64_t *shape) {
    if (ndims == 4) return dnnl_abcd;
    if (ndims != 5) return -1;
    return shape[4] == 16 ? dnnl_aBcd16b : shape[4] == 8 ? dnnl_aBcd8b : -1;
}

/* Reads the shapes and geometry of a call; false (with g_last_error set) if they are not those of
 * a float32 2-D convolution laid out as ``at`` says. */
bool read_shape(const Layout &at, int nparam, int *ndims, int64_t **shapes, const char **dtypes, void **params,
                Shape *s) {
    if (nparam != at.count) {
        g_last_error = "expected " + std::to_string(at.count) + " parameters, got " + std::to_string(nparam);
        return false;
    }
    const int y = at.y >= 0 ? at.y : at.dy;
    s->src_tag = activation_tag(ndims[at.x], shapes[at.x]);
    s->dst_tag = activation_tag(ndims[y], shapes[y]);
    for (int i = 0; i < nparam; ++i) {
        bool geometry = i == at.geometry, bias = i == at.b || i == at.db, weights = i == at.w || i == at.dw;
        int tag = i == at.x || i == at.dx ? s->src_tag : s->dst_tag;
        bool ok = geometry ? ndims[i] == 1 && shapes[i][0] == 8 && std::strcmp(dtypes[i], "int64") == 0
                           : std::strcmp(dtypes[i], "float32") == 0 &&
                                 (bias ? ndims[i] == 1
                                       : weights ? ndims[i] == 4 : tag >= 0 && activation_tag(ndims[i], shapes[i]) == tag);
        if (!ok) {
            g_last_error = "parameter " + std::to_string(i) + ": unexpected shape or type " + dtypes[i];
            return false;
        }
    }
    for (int d = 0; d < 4; ++d) {
        s->src[d] = shapes[at.x][d];
        s->weights[d] = shapes[at.w][d];
        s->dst[d] = shapes[y][d];
    }
    // A blocked tensor's channels: its blocks times the block.
    if (ndims[at.x] == 5) s->src[1] *= shapes[at.x][4];
    if (ndims[y] == 5) s->dst[1] *= shapes[y][4];
    s->bias[0] = s->weights[0];
    set_geometry(static_cast<const int64_t *>(params[at.geometry]), s);
    return true;
}

int call(Kind kind, bool bias, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
    Kernel &k = kernel();
    std::lock_guard<std::mutex> lock(shared().mutex);
    Shape s;
    if (!read_shape(Layout(kind, bias), nparam, ndims, shapes, dtypes, params, &s)) {
        std::fprintf(stderr, "ats oneDNN convolution: %s\n", g_last_error.c_str());
        return 1;
    }
    try {
        k.ensure_ready();
        Key key{kind, bias};
        for (int d = 0; d < 4; ++d) {
            key[2 + d] = s.src[d];
            key[6 + d] = s.weights[d];
        }
        const dnnl_dim_t *geometry[] = {s.strides, s.pad_l, s.pad_r, s.dilates};
        for (int i = 0; i < 4; ++i) {
            key[10 + 2 * i] = geometry[i][0];
            key[11 + 2 * i] = geometry[i][1];
        }
        key[18] = s.src_tag;
        key[19] = s.dst_tag;
        auto &conv = k.cache[key];
        if (!conv) conv.reset(new Convolution(k.engine, kind, bias, s));
        conv->run(k.stream, k.slots, params);
        return 0;
    } catch (const Failure &f) {
        g_last_error = f.what;
    } catch (const std::exception &e) {
        g_last_error = e.what();
    }
    std::fprintf(stderr, "ats oneDNN convolution: %s\n", g_last_error.c_str());
    return 1;
}

}  // namespace

#define ATS_ENTRY(name, kind, bias) \
    ATS_OPERATOR(name) { return call(kind, bias, ATS_ARGUMENTS); }
ATS_ENTRY(ats_conv_forward, FORWARD, false)
ATS_ENTRY(ats_conv_forward_no_dx, FORWARD, false)
ATS_ENTRY(ats_conv_forward_bias, FORWARD, true)
ATS_ENTRY(ats_conv_forward_bias_no_dx, FORWARD, true)
ATS_ENTRY(ats_conv_backward, BACKWARD, false)
ATS_ENTRY(ats_conv_backward_bias, BACKWARD, true)
ATS_ENTRY(ats_conv_backward_weights, BACKWARD_WEIGHTS, false)
ATS_ENTRY(ats_conv_backward_weights_bias, BACKWARD_WEIGHTS, true)
#undef ATS_ENTRY

/* The oneDNN implementations chosen for a convolution (comma-separated: forward, or input and
 * weight gradient); writes "" and returns 1 on failure (see ats_conv_last_error). */
ATS_EXPORT int ats_conv_implementations(int kind, const int64_t *src, const int64_t *weights,
                                        const int64_t *dst, const int64_t *geometry, char *out, int size) {
    Kernel &k = kernel();
    std::lock_guard<std::mutex> lock(shared().mutex);
    out[0] = '\0';
    try {
        k.ensure_ready();
        Shape s;
        for (int d = 0; d < 4; ++d) {
            s.src[d] = src[d];
            s.weights[d] = weights[d];
            s.dst[d] = dst[d];
        }
        set_geometry(geometry, &s);
        std::snprintf(out, size, "%s", Convolution(k.engine, static_cast<Kind>(kind), false, s).implementations().c_str());
        return 0;
    } catch (const Failure &f) {
        g_last_error = f.what;
    }
    return 1;
}

ATS_EXPORT const char *ats_conv_last_error() { return g_last_error.c_str(); }

/* The channel block B of the blocked layout oneDNN's convolution kernels want on this processor
 * (16: AVX-512, 8: AVX2), found by asking it for a typical layer's; 0 if neither (plain layouts
 * then stay throughout). */
ATS_EXPORT int ats_block_size() {
    Kernel &k = kernel();
    std::lock_guard<std::mutex> lock(shared().mutex);
    try {
        k.ensure_ready();
        Shape s;
        const int64_t side = 16, channels = 64, geometry[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        const dnnl_dim_t act[4] = {32, channels, side, side}, weights[4] = {channels, channels, 3, 3};
        for (int d = 0; d < 4; ++d) s.src[d] = s.dst[d] = act[d], s.weights[d] = weights[d];
        set_geometry(geometry, &s);
        s.src_tag = s.dst_tag = dnnl_abcd;
        Convolution conv(k.engine, FORWARD, false, s);
        const_dnnl_memory_desc_t chosen_md = conv.layout(DNNL_ARG_DST);
        for (int block : {16, 8}) {
            MemoryDesc md = memory_desc(s.dst, block == 16 ? dnnl_aBcd16b : dnnl_aBcd8b);
            if (chosen_md && dnnl_memory_desc_equal(md.get(), chosen_md)) return block;
        }
    } catch (const Failure &f) {
        g_last_error = f.what;
    }
    return 0;
}

/* Threads of the kernels' pool (default: the CPUs this process may run on); call before the first
 * kernel, or between runs: the cached primitives are rebuilt for the new count. */
ATS_EXPORT void ats_set_threads(int threads) {
    std::lock_guard<std::mutex> lock(shared().mutex);
    if (threads < 1 || threads == shared().threads) return;
    shared().threads = threads;
    shared().pool.reset();
}
