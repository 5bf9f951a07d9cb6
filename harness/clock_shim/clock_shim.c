/* liblockstorm_clock_shim.so: an LD_PRELOAD library that skews the wall clock of the process it
 * is loaded into (a redis-server started by lockstorm), under lockstorm's control at run time.
 *
 * Hooked (interposed by name, so only calls through the dynamic symbol table are affected):
 *   clock_gettime(CLOCK_REALTIME | CLOCK_REALTIME_COARSE, ...)   always
 *   clock_gettime(CLOCK_MONOTONIC | CLOCK_MONOTONIC_COARSE, ...) only while the shared memory's
 *                                                                LOCKSTORM_CLOCK_FLAG_SKEW_MONOTONIC
 *                                                                flag is set
 *   gettimeofday(), time()                                       always (they are CLOCK_REALTIME)
 * Every other clock id passes through unchanged. The parameters (rate, offset, anchors) live in
 * the shared-memory file named by $LOCKSTORM_CLOCK_SHM (layout: clock_shim_shm.h); without it,
 * or if the file is not a valid lockstorm clock file, the shim passes every call through.
 *
 * Why this is safe inside a jemalloc redis-server (where libfaketime deadlocks): the hooks never
 * allocate, never take a lock and never call dlsym(). libfaketime resolves the real functions
 * lazily from inside its hooks; dlsym() may malloc(), and jemalloc's own initialisation reads the
 * clock, so the first clock read can re-enter the allocator while it holds its init lock. Here
 * the real clock_gettime is resolved once in the library constructor; any call that arrives
 * before that (e.g. from jemalloc's initialisation, or from inside that very dlsym) reads the
 * clock with the raw clock_gettime system call instead. The shared memory is mapped with
 * getenv/open/fstat/mmap/close only (system-call wrappers, no allocation), and read with a
 * seqlock of atomic loads. The hooks are async-signal-safe and fork-safe (the mapping is
 * MAP_SHARED, so forked children such as BGSAVE keep following lockstorm's changes).
 *
 * This file is deliberately C with no dependency but libc; it is built without sanitizers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness/clock_shim/clock_shim_shm.h"

_Static_assert(sizeof(lockstorm_clock_shm) == 64,
               "the shim and lockstorm must agree on the layout");

#define SHIM_EXPORT __attribute__((visibility("default")))

#define NS_PER_SEC INT64_C(1000000000)

/* Readers give up on a seqlock that stays odd this long (the writer died mid-update) and return
 * the real time rather than spinning forever. */
#define MAX_SEQLOCK_SPINS 100000

typedef int (*clock_gettime_fn)(clockid_t, struct timespec*);

/* libc's clock_gettime (vDSO-backed), set once by the constructor; NULL before that. */
static clock_gettime_fn g_real_clock_gettime;

enum { kInitNone = 0, kInitRunning = 1, kInitDone = 2 };
static int g_init_state = kInitNone;
/* The mapped parameters, or NULL (not configured / invalid file). Valid once g_init_state is
 * kInitDone; never unmapped. */
static lockstorm_clock_shm* g_shm;

typedef struct params {
  int64_t anchor_realtime_ns;
  int64_t anchor_monotonic_ns;
  int64_t anchor_offset_ns;
  int64_t anchor_monotonic_offset_ns;
  double rate;
  uint32_t flags;
} params;

/* Reads clock `id` without skew. */
static int real_clock_gettime(clockid_t id, struct timespec* ts) {
  clock_gettime_fn fn = __atomic_load_n(&g_real_clock_gettime, __ATOMIC_ACQUIRE);
  if (fn != NULL) return fn(id, ts);
  return (int)syscall(SYS_clock_gettime, id, ts); /* -1 and errno on failure, like libc */
}

/* Maps the shared-memory file, once per process. Concurrent first callers that lose the race
 * return at once (and see no shm until the winner is done: they read real time meanwhile). */
static void init_shm(void) {
  int expected = kInitNone;
  if (!__atomic_compare_exchange_n(&g_init_state, &expected, kInitRunning, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    return;
  }
  int saved_errno = errno;
  const char* path = getenv(LOCKSTORM_CLOCK_SHM_ENV);
  if (path != NULL && path[0] != '\0') {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st;
      if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(lockstorm_clock_shm)) {
        void* p =
            mmap(NULL, sizeof(lockstorm_clock_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
          lockstorm_clock_shm* shm = (lockstorm_clock_shm*)p;
          if (__atomic_load_n(&shm->magic, __ATOMIC_ACQUIRE) == LOCKSTORM_CLOCK_SHM_MAGIC &&
              __atomic_load_n(&shm->version, __ATOMIC_RELAXED) == LOCKSTORM_CLOCK_SHM_VERSION) {
            __atomic_fetch_add(&shm->attach_count, 1u, __ATOMIC_RELEASE);
            __atomic_store_n(&g_shm, shm, __ATOMIC_RELEASE);
          } else {
            munmap(p, sizeof(lockstorm_clock_shm));
          }
        }
      }
      close(fd);
    }
  }
  __atomic_store_n(&g_init_state, kInitDone, __ATOMIC_RELEASE);
  errno = saved_errno;
}

static lockstorm_clock_shm* get_shm(void) {
  if (__atomic_load_n(&g_init_state, __ATOMIC_ACQUIRE) != kInitDone) {
    init_shm();
    if (__atomic_load_n(&g_init_state, __ATOMIC_ACQUIRE) != kInitDone) return NULL;
  }
  return __atomic_load_n(&g_shm, __ATOMIC_ACQUIRE);
}

static void cpu_relax(int spin) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
  if (spin % 64 == 63) sched_yield();
}

/* Seqlock read of a consistent parameter set. Returns 0 if the writer never finished. */
static int load_params(lockstorm_clock_shm* shm, params* out) {
  for (int spin = 0; spin < MAX_SEQLOCK_SPINS; ++spin) {
    uint64_t seq1 = __atomic_load_n(&shm->seq, __ATOMIC_ACQUIRE);
    if ((seq1 & 1u) == 0) {
      out->anchor_realtime_ns = __atomic_load_n(&shm->anchor_realtime_ns, __ATOMIC_RELAXED);
      out->anchor_monotonic_ns = __atomic_load_n(&shm->anchor_monotonic_ns, __ATOMIC_RELAXED);
      out->anchor_offset_ns = __atomic_load_n(&shm->anchor_offset_ns, __ATOMIC_RELAXED);
      out->anchor_monotonic_offset_ns =
          __atomic_load_n(&shm->anchor_monotonic_offset_ns, __ATOMIC_RELAXED);
      __atomic_load(&shm->rate, &out->rate, __ATOMIC_RELAXED);
      out->flags = __atomic_load_n(&shm->flags, __ATOMIC_RELAXED);
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      if (__atomic_load_n(&shm->seq, __ATOMIC_RELAXED) == seq1) return 1;
    }
    cpu_relax(spin);
  }
  return 0;
}

static int is_realtime(clockid_t id) { return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE; }
static int is_monotonic(clockid_t id) {
  return id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE;
}

/* Replaces the real reading `*ts` of clock `id` with the skewed one (no-op if not configured). */
static void skew(clockid_t id, struct timespec* ts) {
  lockstorm_clock_shm* shm = get_shm();
  if (shm == NULL) return;
  params p;
  if (!load_params(shm, &p)) return;
  int64_t anchor_ns, offset_ns;
  if (is_realtime(id)) {
    anchor_ns = p.anchor_realtime_ns;
    offset_ns = p.anchor_offset_ns;
  } else if (is_monotonic(id) && (p.flags & LOCKSTORM_CLOCK_FLAG_SKEW_MONOTONIC) != 0) {
    anchor_ns = p.anchor_monotonic_ns;
    offset_ns = p.anchor_monotonic_offset_ns;
  } else {
    return;
  }
  int64_t real_ns = (int64_t)ts->tv_sec * NS_PER_SEC + ts->tv_nsec;
  int64_t skewed_ns = lockstorm_clock_skew_ns(real_ns, anchor_ns, offset_ns, p.rate);
  int64_t sec = skewed_ns / NS_PER_SEC;
  int64_t nsec = skewed_ns % NS_PER_SEC;
  if (nsec < 0) { /* floor division, so that tv_nsec stays in [0, 1e9) before the epoch */
    nsec += NS_PER_SEC;
    sec -= 1;
  }
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = (long)nsec;
}

SHIM_EXPORT int clock_gettime(clockid_t id, struct timespec* ts) {
  int r = real_clock_gettime(id, ts);
  if (r == 0 && (is_realtime(id) || is_monotonic(id))) skew(id, ts);
  return r;
}

SHIM_EXPORT int gettimeofday(struct timeval* restrict tv, void* restrict tz) {
  if (tz != NULL && syscall(SYS_gettimeofday, NULL, tz) != 0) return -1;
  if (tv == NULL) return 0;
  struct timespec ts;
  if (real_clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  skew(CLOCK_REALTIME, &ts);
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
  return 0;
}

SHIM_EXPORT time_t time(time_t* tloc) {
  /* Like glibc's vDSO time(): the coarse (tick-granular) wall clock. */
  struct timespec ts;
  if (real_clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0) return (time_t)-1;
  skew(CLOCK_REALTIME_COARSE, &ts);
  if (tloc != NULL) *tloc = ts.tv_sec;
  return ts.tv_sec;
}

/* Runs when the library is loaded, before redis-server's main(). */
__attribute__((constructor)) static void lockstorm_clock_shim_init(void) {
  int saved_errno = errno;
  /* dlsym may allocate; clock reads it triggers use the syscall path (g_real_clock_gettime is
   * still NULL), so there is no re-entry into dlsym and no lock held by this library. */
  void* fn = dlsym(RTLD_NEXT, "clock_gettime");
  if (fn != NULL && fn != (void*)&clock_gettime) {
    __atomic_store_n(&g_real_clock_gettime, (clock_gettime_fn)fn, __ATOMIC_RELEASE);
  }
  init_shm();
  errno = saved_errno;
}
