// Fibers: many clients multiplexed over a few threads.
//
// RunFibers(n, threads, body) runs body(0) .. body(n-1), each on a fiber of its own (its own
// stack, switched in user space), fiber i on thread i % threads, and returns when every body
// has returned. Each thread is a small scheduler: it runs its ready fibers in turn, and when
// none is ready it waits in epoll for the sockets and timers its fibers are parked on.
//
// A fiber parks only through the seams below (Poll, WaitEdge, SleepUntil, Yield). RedisTransport
// (every socket wait), RealClock()->SleepUs (so every Clock sleep, SkewedClock included) and the
// exec plug-in's pipes call them; on a fiber they park it and run another, anywhere else they block
// the calling thread exactly as poll(2) and a sleep would. Lock implementations therefore run
// unchanged on fibers: they reach the seams through their Transport and Clock.
//
// Rules for code on a fiber:
//   - Anything else that blocks (a blocking read, a long-held mutex) stalls every fiber of
//     its thread: keep such waits short (the history's and the resource's mutexes are).
//   - Never wait for another fiber by other means (a latch, a condition variable): if that
//     fiber is on the same thread it can never run, and the wait deadlocks.
//   - A background std::thread started from a fiber (a watchdog's renewer) is an ordinary
//     thread: its waits block it alone.
//   - Do not park inside a catch block: the C++ runtime keeps the exception being handled per
//     thread, not per fiber, so another fiber's catch on the same thread would mix them up.
//   - The x86-64 switch returns into a new fiber with `ret`: not compatible with CET shadow
//     stacks (not enabled by Debian's toolchain or kernel configuration).
//
// Why: one OS thread per client costs two kernel wakeups and context switches per round trip;
// at 1,000 clients that is more CPU than Redis spends serving them (docs/benchmarks.md). And
// the deterministic simulator runs the same client code as fibers on virtual time.
//
// Thread-safety: RunFibers may be called from any thread, concurrently with other RunFibers.
// Poll and SleepUntil may be called from any thread or fiber.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace lockstorm::fiber {

// The steady clock in microseconds: the base of every deadline below (the same reading as
// RealClock()->NowUs()).
int64_t MonoNowUs();

// True on a fiber run by RunFibers.
bool InFiber();

// poll(2) on fds[0..n) until one is ready or `deadline_us` (MonoNowUs) passes. Returns the
// number of entries with revents set, 0 at the deadline, or -1 with errno set (an error of
// poll itself; EINTR is retried). On a fiber the fiber parks; elsewhere the thread blocks.
int Poll(pollfd* fds, size_t n, int64_t deadline_us);

// Poll for one socket the caller has just found not ready: it read until recv failed with
// EAGAIN or returned less than it asked for (for POLLIN), or send failed with EAGAIN (for
// POLLOUT). Returns 1 if ready (possibly spuriously: the caller then meets EAGAIN and waits
// again), 0 at the deadline, -1 on a poll error. On a fiber the socket stays registered
// edge-triggered with its thread's epoll, so a wait costs no system call (Poll re-arms a
// one-shot registration each time); the precondition is what makes edges enough. Call
// ForgetFd before the first wait on a new socket (its fd number may have had an entry). A
// forgotten ForgetFd costs one wait its deadline, then the fd is registered again. Elsewhere:
// poll(2).
int WaitEdge(int fd, short events, int64_t deadline_us);

// Drops this thread's entry for `fd` (a no-op off a fiber thread): call it for a new socket
// before its first WaitEdge, since its number may have been another socket's, closed on any
// thread.
void ForgetFd(int fd);

// Returns once MonoNowUs() >= deadline_us. On a fiber the fiber parks.
void SleepUntil(int64_t deadline_us);

// On a fiber, when other fibers of the thread are ready: lets them run first and returns true
// (the fiber is ready again, not parked). Otherwise returns false at once. RedisTransport
// over TLS yields after sending a request and then tries a non-blocking read before it
// parks: on a busy thread the reply has usually come meanwhile (over TCP it uses WaitEdge).
bool Yield();

// Stack size of every fiber; the lowest page is a guard (an overflow faults at once).
inline constexpr size_t kFiberStackBytes = 256 * 1024;

// Runs body(i) for every i in [0, n) as fibers on `threads` threads (clamped to [1, n]);
// returns once all have returned. An exception escaping a body is rethrown here, after every
// other body has returned. n = 0 returns at once.
void RunFibers(int n, int threads, const std::function<void(int)>& body);

}  // namespace lockstorm::fiber
