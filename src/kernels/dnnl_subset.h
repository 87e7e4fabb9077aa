/* The part of oneDNN 3's C API that conv_kernel.cc uses, declared here so that the kernel builds
 * against the oneDNN bundled with MindSpore (libdnnl.so.3, dnnl.dll) without oneDNN's headers (not
 * on the machines of our users). oneDNN keeps this interface binary-compatible across 3.x releases; the values below
 * are those of its public headers. */
#ifndef ATS_DNNL_SUBSET_H
#define ATS_DNNL_SUBSET_H

#include <cstddef>
#include <cstdint>

extern "C" {
typedef int dnnl_status_t;                 /* 0: success */
typedef int64_t dnnl_dim_t;
typedef dnnl_dim_t dnnl_dims_t[12];        /* DNNL_MAX_NDIMS */

typedef struct dnnl_engine *dnnl_engine_t;
typedef struct dnnl_stream *dnnl_stream_t;
typedef struct dnnl_memory_desc *dnnl_memory_desc_t;
typedef const struct dnnl_memory_desc *const_dnnl_memory_desc_t;
typedef struct dnnl_memory *dnnl_memory_t;
typedef struct dnnl_primitive_desc *dnnl_primitive_desc_t;
typedef const struct dnnl_primitive_desc *const_dnnl_primitive_desc_t;
typedef struct dnnl_primitive *dnnl_primitive_t;
typedef const struct dnnl_primitive *const_dnnl_primitive_t;
typedef struct dnnl_primitive_attr *dnnl_primitive_attr_t;
typedef const struct dnnl_primitive_attr *const_dnnl_primitive_attr_t;

typedef struct {
    int arg;
    dnnl_memory_t memory;
} dnnl_exec_arg_t;

enum {
    dnnl_success = 0,
    dnnl_f32 = 3,                          /* dnnl_data_type_t */
    dnnl_format_tag_any = 1,               /* dnnl_format_tag_t: let the primitive choose */
    dnnl_a = 2,                            /* plain 1-D (a bias) */
    dnnl_abcd = 5,                         /* plain NCHW activations, OIHW weights */
    dnnl_aBcd16b = 78,                     /* nChw16c: blocked activations (AVX-512 kernels) */
    dnnl_aBcd8b = 102,                     /* nChw8c: blocked activations (AVX2 kernels) */
    dnnl_cpu = 1,                          /* dnnl_engine_kind_t */
    dnnl_forward_training = 64,            /* dnnl_prop_kind_t */
    dnnl_convolution_direct = 1,           /* dnnl_alg_kind_t */
    dnnl_scratchpad_mode_user = 1,         /* dnnl_scratchpad_mode_t */
};

enum {                                     /* dnnl_query_t */
    dnnl_query_impl_info_str = 8,
    dnnl_query_src_md = 129,
    dnnl_query_diff_src_md = 130,
    dnnl_query_weights_md = 131,
    dnnl_query_diff_weights_md = 132,
    dnnl_query_dst_md = 133,
    dnnl_query_diff_dst_md = 134,
    dnnl_query_scratchpad_md = 136,
};

enum {                                     /* execution argument indices */
    DNNL_ARG_SRC = 1,
    DNNL_ARG_DST = 17,
    DNNL_ARG_WEIGHTS = 33,
    DNNL_ARG_BIAS = 41,
    DNNL_ARG_SCRATCHPAD = 80,
    DNNL_ARG_DIFF_SRC = 129,
    DNNL_ARG_DIFF_DST = 145,
    DNNL_ARG_DIFF_WEIGHTS = 161,
    DNNL_ARG_DIFF_BIAS = 169,
};

/* The functions, as X(return type, name, (parameters)). */
#define ATS_DNNL_FUNCTIONS(X)                                                                                 \
    X(dnnl_status_t, dnnl_engine_create, (dnnl_engine_t * engine, int kind, size_t index))                   \
    X(dnnl_status_t, dnnl_threadpool_interop_stream_create,                                                  \
      (dnnl_stream_t * stream, dnnl_engine_t engine, void *threadpool))                                      \
    X(dnnl_status_t, dnnl_threadpool_interop_set_max_concurrency, (int max_concurrency))                     \
    X(dnnl_status_t, dnnl_stream_wait, (dnnl_stream_t stream))                                               \
    X(dnnl_status_t, dnnl_stream_destroy, (dnnl_stream_t stream))                                            \
    X(dnnl_status_t, dnnl_memory_desc_create_with_tag,                                                       \
      (dnnl_memory_desc_t * md, int ndims, const dnnl_dims_t dims, int data_type, int tag))                  \
    X(dnnl_status_t, dnnl_memory_desc_destroy, (dnnl_memory_desc_t md))                                      \
    X(int, dnnl_memory_desc_equal, (const_dnnl_memory_desc_t lhs, const_dnnl_memory_desc_t rhs))             \
    X(size_t, dnnl_memory_desc_get_size, (const_dnnl_memory_desc_t md))                                      \
    X(dnnl_status_t, dnnl_memory_create,                                                                     \
      (dnnl_memory_t * memory, const_dnnl_memory_desc_t md, dnnl_engine_t engine, void *handle))             \
    X(dnnl_status_t, dnnl_memory_set_data_handle, (dnnl_memory_t memory, void *handle))                      \
    X(dnnl_status_t, dnnl_memory_destroy, (dnnl_memory_t memory))                                            \
    X(dnnl_status_t, dnnl_primitive_attr_create, (dnnl_primitive_attr_t * attr))                             \
    X(dnnl_status_t, dnnl_primitive_attr_destroy, (dnnl_primitive_attr_t attr))                              \
    X(dnnl_status_t, dnnl_primitive_attr_set_scratchpad_mode, (dnnl_primitive_attr_t attr, int mode))        \
    X(dnnl_status_t, dnnl_convolution_forward_primitive_desc_create,                                         \
      (dnnl_primitive_desc_t * pd, dnnl_engine_t engine, int prop_kind, int alg_kind,                        \
       const_dnnl_memory_desc_t src, const_dnnl_memory_desc_t weights, const_dnnl_memory_desc_t bias,       \
       const_dnnl_memory_desc_t dst, const dnnl_dims_t strides, const dnnl_dims_t dilates,                   \
       const dnnl_dims_t padding_l, const dnnl_dims_t padding_r, const_dnnl_primitive_attr_t attr))          \
    X(dnnl_status_t, dnnl_convolution_backward_data_primitive_desc_create,                                   \
      (dnnl_primitive_desc_t * pd, dnnl_engine_t engine, int alg_kind, const_dnnl_memory_desc_t diff_src,    \
       const_dnnl_memory_desc_t weights, const_dnnl_memory_desc_t diff_dst, const dnnl_dims_t strides,       \
       const dnnl_dims_t dilates, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r,                  \
       const_dnnl_primitive_desc_t hint_fwd_pd, const_dnnl_primitive_attr_t attr))                           \
    X(dnnl_status_t, dnnl_convolution_backward_weights_primitive_desc_create,                                \
      (dnnl_primitive_desc_t * pd, dnnl_engine_t engine, int alg_kind, const_dnnl_memory_desc_t src,         \
       const_dnnl_memory_desc_t diff_weights, const_dnnl_memory_desc_t diff_bias,                            \
       const_dnnl_memory_desc_t diff_dst, const dnnl_dims_t strides, const dnnl_dims_t dilates,              \
       const dnnl_dims_t padding_l, const dnnl_dims_t padding_r, const_dnnl_primitive_desc_t hint_fwd_pd,    \
       const_dnnl_primitive_attr_t attr))                                                                    \
    X(dnnl_status_t, dnnl_reorder_primitive_desc_create,                                                     \
      (dnnl_primitive_desc_t * pd, const_dnnl_memory_desc_t src, dnnl_engine_t src_engine,                   \
       const_dnnl_memory_desc_t dst, dnnl_engine_t dst_engine, const_dnnl_primitive_attr_t attr))            \
    X(const_dnnl_memory_desc_t, dnnl_primitive_desc_query_md, (const_dnnl_primitive_desc_t pd, int what, int index)) \
    X(dnnl_status_t, dnnl_primitive_desc_query, (const_dnnl_primitive_desc_t pd, int what, int index, void *result)) \
    X(dnnl_status_t, dnnl_primitive_desc_destroy, (dnnl_primitive_desc_t pd))                                \
    X(dnnl_status_t, dnnl_primitive_create, (dnnl_primitive_t * primitive, const_dnnl_primitive_desc_t pd))  \
    X(dnnl_status_t, dnnl_primitive_execute,                                                                 \
      (const_dnnl_primitive_t primitive, dnnl_stream_t stream, int nargs, const dnnl_exec_arg_t *args))      \
    X(dnnl_status_t, dnnl_primitive_destroy, (dnnl_primitive_t primitive))

#if defined(_WIN32)
/* MindSpore's Windows wheel ships dnnl.dll without an import library: the functions are pointers,
 * looked up in the dnnl.dll MindSpore has loaded, before their first use (ats::load_dnnl,
 * dnnl_load.cc). No import library to make, whichever compiler builds the kernels. */
#define ATS_DNNL_DECLARE(type, name, parameters) extern type(*name) parameters;
#else
#define ATS_DNNL_DECLARE(type, name, parameters) type name parameters;
#endif
ATS_DNNL_FUNCTIONS(ATS_DNNL_DECLARE)
#undef ATS_DNNL_DECLARE
}

namespace ats {
/* Makes the functions above callable; false, with the reason in ``error``, if they cannot be. */
#if defined(_WIN32)
bool load_dnnl(const char **error);
#else
inline bool load_dnnl(const char **) { return true; }   // linked against libdnnl.so.3
#endif
}  // namespace ats

#endif
