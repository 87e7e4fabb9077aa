/* The object through which oneDNN's threadpool runtime (as MindSpore builds oneDNN) runs its
 * parallel loops on the shared pool (threadpool.h). oneDNN declares its interface,
 * dnnl::threadpool_interop::threadpool_iface, with these virtual functions in this order:
 *   int get_num_threads() const; bool get_in_parallel() const;
 *   void parallel_for(int n, const std::function<void(int, int)> &fn); uint64_t get_flags() const;
 *   virtual destructor.
 * oneDNN calls them in the order of declaration, so the layout must not change. */
#ifndef ATS_DNNL_THREADPOOL_H
#define ATS_DNNL_THREADPOOL_H

#include <cstdint>
#include <utility>

#include "threadpool.h"

namespace ats {

#if defined(_WIN32)
/* dnnl.dll is built with MSVC: the object must have MSVC's layout, and parallel_for receives an
 * MSVC std::function, which is not this compiler's. Both layouts are part of the binary
 * compatibility MSVC promises across its toolsets since Visual Studio 2015 (dnnl.dll imports
 * MSVCP140.dll):
 *  - the vtable lists the virtual functions in the order declared, one slot for the destructor;
 *    it is declared last, so the four functions keep slots 0-3. On x64 a member function takes
 *    ``this`` as its first argument, as the plain functions below take ``self``.
 *  - std::function<void(int, int)> is 8 pointers; the last points to the callable's holder, whose
 *    vtable starts _Copy, _Move, _Do_call(int &&, int &&).
 * A mismatch cannot pass unnoticed: before a library is used, build.py's self-check runs oneDNN's
 * convolutions through this pool in a fresh process and compares them with MindSpore's. */
class DnnlThreadpool {
  public:
    explicit DnnlThreadpool(Pool &pool) : vtable_(kVtable), pool_(&pool) {}
    void *handle() { return this; }

  private:
    static int num_threads(const DnnlThreadpool *self) { return self->pool_->threads(); }
    static bool in_parallel(const DnnlThreadpool *) { return Pool::in_parallel(); }
    static void parallel_for(DnnlThreadpool *self, int n, const void *function) {
        self->pool_->parallel_for(n, call, function);
    }
    static uint64_t flags(const DnnlThreadpool *) { return 0; }   // synchronous
    static void *destroy(DnnlThreadpool *self, unsigned) { return self; }   // oneDNN never deletes it

    static void call(const void *function, int i, int n) {
        void *holder = static_cast<void *const *>(function)[7];
        using DoCall = void (*)(void *, int *, int *);
        reinterpret_cast<DoCall>((*static_cast<void *const *const *>(holder))[2])(holder, &i, &n);
    }

    static inline const void *const kVtable[] = {
        reinterpret_cast<const void *>(&num_threads), reinterpret_cast<const void *>(&in_parallel),
        reinterpret_cast<const void *>(&parallel_for), reinterpret_cast<const void *>(&flags),
        reinterpret_cast<const void *>(&destroy)};

    const void *const *vtable_;   // first: where MSVC's code looks for the vtable
    Pool *pool_;
};
#else
/* libdnnl.so.3 is built by GCC: parallel_for receives a libstdc++ std::function whichever compiler
 * builds the kernels (zig's clang links LLVM's libc++, whose std::function differs). Its layout is
 * part of libstdc++'s stable ABI (bits/std_function.h): 16 bytes holding the callable or a pointer to
 * it, the manager, then the invoker, called as invoker(functor, int &&, int &&). The object's vtable
 * follows the Itanium C++ ABI, which GCC and clang share. As on Windows, the self-check would catch
 * a mismatch before a library is used. */
struct GnuFunction {
    void *functor[2];
    void *manager;
    void (*invoker)(const GnuFunction &, int &&, int &&);
};

struct ThreadpoolInterface {
    virtual int get_num_threads() const = 0;
    virtual bool get_in_parallel() const = 0;
    virtual void parallel_for(int n, const GnuFunction &fn) = 0;
    virtual uint64_t get_flags() const = 0;
    virtual ~ThreadpoolInterface() = default;
};

class DnnlThreadpool final : public ThreadpoolInterface {
  public:
    explicit DnnlThreadpool(Pool &pool) : pool_(pool) {}
    void *handle() { return static_cast<ThreadpoolInterface *>(this); }

    int get_num_threads() const override { return pool_.threads(); }
    bool get_in_parallel() const override { return Pool::in_parallel(); }
    void parallel_for(int n, const GnuFunction &fn) override { pool_.parallel_for(n, call, &fn); }
    uint64_t get_flags() const override { return 0; }   // synchronous: returns when all tasks ran

  private:
    static void call(const void *function, int i, int n) {
        const GnuFunction &fn = *static_cast<const GnuFunction *>(function);
        fn.invoker(fn, std::move(i), std::move(n));
    }

    Pool &pool_;
};
#endif

}  // namespace ats

#endif
