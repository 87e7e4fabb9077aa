/* On Windows, the oneDNN functions of dnnl_subset.h looked up in MindSpore's dnnl.dll (loaded by
 * MindSpore's CPU backend before any kernel of ours runs). On Linux the library links them. */
#include "dnnl_subset.h"

#if defined(_WIN32)
#include <windows.h>

#include <mutex>

extern "C" {
#define ATS_DNNL_DEFINE(type, name, parameters) type(*name) parameters = nullptr;
ATS_DNNL_FUNCTIONS(ATS_DNNL_DEFINE)
#undef ATS_DNNL_DEFINE
}

namespace ats {

bool load_dnnl(const char **error) {
    static std::once_flag once;
    static const char *failure = nullptr;
    std::call_once(once, [] {
        HMODULE dnnl = GetModuleHandleA("dnnl.dll");
        if (!dnnl) {
            failure = "MindSpore's dnnl.dll is not loaded in this process";
            return;
        }
#define ATS_DNNL_RESOLVE(type, name, parameters)                                              \
    name = reinterpret_cast<type(*) parameters>(reinterpret_cast<void *>(GetProcAddress(dnnl, #name))); \
    if (!name) failure = "dnnl.dll has no " #name;
        ATS_DNNL_FUNCTIONS(ATS_DNNL_RESOLVE)
#undef ATS_DNNL_RESOLVE
    });
    if (failure && error) *error = failure;
    return failure == nullptr;
}

}  // namespace ats
#endif
