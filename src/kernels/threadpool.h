/* The thread pool and the lock shared by the package's CPU kernels (conv_kernel.cc,
 * batchnorm_kernel.cc): each call uses every thread of the pool, so calls are serialised. */
#ifndef ATS_THREADPOOL_H
#define ATS_THREADPOOL_H

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX   // windows.h's min and max macros would hide std::min and std::max
#endif
#include <windows.h>
#else
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <bitset>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ats {

inline thread_local bool t_in_pool = false;

/* A fixed set of threads for oneDNN's parallel_for (through dnnl_threadpool.h) and our kernels';
 * the calling thread takes part. A job's n tasks are taken in any order by any thread (oneDNN's
 * threadpool runtime needs no more), and the task index alone decides the work, so results do not
 * depend on scheduling.
 *
 * Idle threads spin briefly before they sleep: one convolution calls parallel_for several times
 * in a row (reorders, the kernel), and a sleeping thread can take far longer to wake than the
 * gap. The spin is short (about 0.1 ms) so that MindSpore's own kernels, which run in between on
 * the same cores, are not slowed. */
class Pool final {
  public:
    explicit Pool(int threads) : threads_(threads) {
        for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { work(); });
    }
    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
            generation_.fetch_add(1);
        }
        wake_.notify_all();
        for (auto &w : workers_) w.join();
    }
    int threads() const { return threads_; }
    static bool in_parallel() { return t_in_pool; }

    /* Runs call(context, i, n) for every i in [0, n) and returns when all have run. */
    void parallel_for(int n, void (*call)(const void *, int, int), const void *context) {
        if (n <= 1 || threads_ == 1 || t_in_pool) {
            for (int i = 0; i < n; ++i) call(context, i, n);
            return;
        }
        Job job(call, context, n);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            job_ = &job;
            generation_.fetch_add(1);
        }
        wake_.notify_all();
        t_in_pool = true;
        run(job);
        t_in_pool = false;
        auto finished = [&] { return job.left.load() == 0 && busy_.load() == 0; };
        spin(finished);
        std::unique_lock<std::mutex> lock(mutex_);
        // No worker may still hold the job (it lives on this stack) once this returns: a worker
        // takes it only under the lock while job_ points to it.
        done_.wait(lock, finished);
        job_ = nullptr;
    }

    template <typename Fn>
    void parallel_for(int n, const Fn &fn) {
        parallel_for(n, [](const void *f, int i, int count) { (*static_cast<const Fn *>(f))(i, count); }, &fn);
    }

  private:
    struct Job {
        Job(void (*f)(const void *, int, int), const void *c, int count) : call(f), context(c), n(count), left(count) {}
        void (*const call)(const void *, int, int);
        const void *const context;
        const int n;
        std::atomic<int> next{0};
        std::atomic<int> left;
    };

    template <typename Ready>
    static void spin(Ready ready) {
        for (int i = 0; i < 2000 && !ready(); ++i) __builtin_ia32_pause();
    }

    static void run(Job &job) {
        for (int i; (i = job.next.fetch_add(1)) < job.n;) {
            job.call(job.context, i, job.n);
            job.left.fetch_sub(1);
        }
    }

    void work() {
        t_in_pool = true;
        uint64_t seen = 0;
        for (;;) {
            spin([&] { return generation_.load() != seen; });
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || (job_ != nullptr && generation_.load() != seen); });
            if (stop_) return;
            seen = generation_.load();
            Job *job = job_;
            busy_.fetch_add(1);
            lock.unlock();
            run(*job);
            lock.lock();
            if (busy_.fetch_sub(1) == 1) done_.notify_all();
        }
    }

    const int threads_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    Job *job_ = nullptr;                   // guarded by mutex_
    std::atomic<uint64_t> generation_{0};  // changed under mutex_, read while spinning
    std::atomic<int> busy_{0};             // workers running a job's tasks
    bool stop_ = false;
};

inline int usable_cpus() {
#if defined(_WIN32)
    DWORD_PTR process, system;
    if (!GetProcessAffinityMask(GetCurrentProcess(), &process, &system)) return 1;
    return static_cast<int>(std::bitset<8 * sizeof(DWORD_PTR)>(process).count());
#else
    cpu_set_t set;
    return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
#endif
}

struct Shared {
    std::mutex mutex;          // held for the whole of every kernel call
    int threads = 0;           // 0: the CPUs this process may run on
    std::unique_ptr<Pool> pool;
    uint64_t generation = 0;   // counts the pools made: what was made for an older one is stale

    Pool &ready_pool() {
        if (threads == 0) threads = usable_cpus();
        if (!pool) {
            pool.reset(new Pool(threads));
            ++generation;
        }
        return *pool;
    }
};

inline Shared &shared() {
    static Shared *s = new Shared();   // never destroyed: MindSpore may call in while the process exits
    return *s;
}

/* Runs fn(first, end) over [0, count) split evenly across the threads of the shared pool. */
template <typename Fn>
void parallel_ranges(int64_t count, Fn fn) {
    Pool &pool = shared().ready_pool();
    int tasks = static_cast<int>(std::min<int64_t>(pool.threads(), count));
    pool.parallel_for(tasks, [&](int i, int n) { fn(count * i / n, count * (i + 1) / n); });
}

}  // namespace ats

#endif
