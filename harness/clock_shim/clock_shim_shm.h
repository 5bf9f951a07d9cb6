/* The shared-memory contract between lockstorm's ServerClock (harness/server_clock.h, the
 * writer) and the LD_PRELOAD clock shim loaded into a redis-server (clock_shim.c, the readers).
 * Plain C so that both a C shim and C++ code can include it; nothing here allocates.
 *
 * lockstorm creates a file (normally /dev/shm/lockstorm-clock-<pid>-<n>) of
 * sizeof(lockstorm_clock_shm) bytes, fills it in, and starts redis-server with
 *   LD_PRELOAD=<liblockstorm_clock_shim.so>  LOCKSTORM_CLOCK_SHM=<that file>.
 * The shim maps the file MAP_SHARED and, on every hooked clock read, computes
 *   skewed = anchor + anchor_offset + (real - anchor) * rate
 * where `anchor` is the real reading of the same clock (CLOCK_REALTIME or CLOCK_MONOTONIC) at
 * the moment of the last change and `anchor_offset` that clock's skewed - real at that moment.
 * This is harness/clock.h's SkewedClock with anchor_skewed = anchor + anchor_offset: changes of
 * rate are continuous, jumps are steps. The two clocks have separate offsets because their
 * epochs differ: a wall-clock offset of +1 h is not a monotonic step when monotonic skew is
 * switched on; jumps and rate apply to both.
 *
 * Concurrency: one writer (ServerClock, under its own mutex), any number of readers in other
 * processes. `seq` is a seqlock: the writer makes it odd, stores the parameters, makes it even
 * again (release). Readers retry while it is odd or changed under them. Every field below is
 * accessed only with atomic loads/stores (relaxed, ordered by the seqlock's fences), so there is
 * no data race in the C/C++ sense and no lock anywhere. */
#ifndef LOCKSTORM_HARNESS_CLOCK_SHIM_CLOCK_SHIM_SHM_H_
#define LOCKSTORM_HARNESS_CLOCK_SHIM_CLOCK_SHIM_SHM_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Environment variable naming the shared-memory file. */
#define LOCKSTORM_CLOCK_SHM_ENV "LOCKSTORM_CLOCK_SHM"

#define LOCKSTORM_CLOCK_SHM_MAGIC 0x4b434c4cu /* "LLCK" */
#define LOCKSTORM_CLOCK_SHM_VERSION 1u

/* flags: also skew CLOCK_MONOTONIC, CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC_RAW and
 * CLOCK_BOOTTIME (with the same rate, offset and jumps, anchored at anchor_monotonic_ns).
 * Off by default: redis runs its timers (serverCron, hz) on CLOCK_MONOTONIC. */
#define LOCKSTORM_CLOCK_FLAG_SKEW_MONOTONIC 1u

typedef struct lockstorm_clock_shm {
  uint32_t magic;   /* LOCKSTORM_CLOCK_SHM_MAGIC once the writer has initialised the file */
  uint32_t version; /* LOCKSTORM_CLOCK_SHM_VERSION */
  uint64_t seq;     /* seqlock sequence: odd while the writer is changing the fields below */
  int64_t anchor_realtime_ns;  /* real CLOCK_REALTIME at the last change, ns since the epoch */
  int64_t anchor_monotonic_ns; /* real CLOCK_MONOTONIC at (about) the same moment */
  int64_t anchor_offset_ns;    /* CLOCK_REALTIME's skewed - real at the anchor */
  int64_t anchor_monotonic_offset_ns; /* CLOCK_MONOTONIC's skewed - real at the anchor */
  double rate;                        /* skewed ns per real ns from the anchor on; > 0 */
  uint32_t flags;                     /* LOCKSTORM_CLOCK_FLAG_* */
  uint32_t attach_count;              /* incremented by each process whose shim mapped the file */
} lockstorm_clock_shm;

/* The one formula, shared by the shim and ServerClock: the skewed reading of a clock whose
 * real reading is `real_ns`, for a clock anchored at `anchor_ns`. */
static inline int64_t lockstorm_clock_skew_ns(int64_t real_ns, int64_t anchor_ns,
                                              int64_t anchor_offset_ns, double rate) {
  return anchor_ns + anchor_offset_ns + (int64_t)((double)(real_ns - anchor_ns) * rate);
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LOCKSTORM_HARNESS_CLOCK_SHIM_CLOCK_SHIM_SHM_H_ */
