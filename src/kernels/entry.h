/* How the kernels' entry points are exported, and the list of them that MindSpore's op-plugin
 * loader asks for (plugin.cc). On Linux MindSpore finds each entry point by its name in an
 * ops.Custom (AOT); on Windows, where it runs no AOT operator, it loads the library named by
 * MS_OP_PLUGIN_PATH and calls the entry point named after a primitive (src/kernels/loader.py). */
#ifndef ATS_ENTRY_H
#define ATS_ENTRY_H

#include <cstdint>
#include <vector>

#if defined(_WIN32)
#define ATS_EXPORT extern "C" __declspec(dllexport)
#else
#define ATS_EXPORT extern "C" __attribute__((visibility("default")))
#endif

/* MindSpore's signature for an operator's kernel: the inputs, then the outputs. */
#define ATS_PARAMETERS int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes
#define ATS_ARGUMENTS nparam, params, ndims, shapes, dtypes

namespace ats {

/* The names of the operators' entry points, in the order their files register them. */
inline std::vector<char *> &operators() {
    static std::vector<char *> *names = new std::vector<char *>();   // never destroyed
    return *names;
}

struct Register {
    explicit Register(const char *name) { operators().push_back(const_cast<char *>(name)); }
};

}  // namespace ats

/* Begins the definition of the exported entry point ``name`` and lists it for the plugin loader. */
#define ATS_OPERATOR(name)                          \
    static ats::Register register_##name(#name);    \
    ATS_EXPORT int name(ATS_PARAMETERS, void *, void *)

#endif
