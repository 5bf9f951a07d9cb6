#include "harness/fiber.h"

#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Sanitizers must be told about every stack switch (GCC defines __SANITIZE_*__, Clang has
// __has_feature).
#if defined(__SANITIZE_ADDRESS__)
#define LOCKSTORM_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCKSTORM_FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define LOCKSTORM_FIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOCKSTORM_FIBER_TSAN 1
#endif
#endif
#ifdef LOCKSTORM_FIBER_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef LOCKSTORM_FIBER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

// The stack switch. On x86-64 a hand-written one: it saves the callee-saved registers and the
// FPU/SSE control words on the old stack and pops them from the new one, without the
// sigprocmask system call glibc's swapcontext makes at every switch (that call was a tenth of
// the harness's CPU at 1,000 clients). Elsewhere, ucontext.
#if defined(__x86_64__)
#define LOCKSTORM_FIBER_ASM_SWITCH 1
extern "C" void lockstorm_fiber_switch(void** save_sp, void* new_sp);
asm(R"(
.text
.globl lockstorm_fiber_switch
.type lockstorm_fiber_switch,@function
lockstorm_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  fldcw (%rsp)
  ldmxcsr 8(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size lockstorm_fiber_switch,.-lockstorm_fiber_switch
.section .note.GNU-stack,"",@progbits
.text
)");
#endif

namespace lockstorm::fiber {

int64_t MonoNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

// Bound on the wait rounds of one Poll/SleepUntil: each round waits until an event or the
// deadline, so this is never reached in practice.
constexpr int kMaxRounds = 1000000;
// Longest single wait of a scheduler with nothing due (it then re-checks its timers).
constexpr int64_t kMaxIdleWaitUs = 1'000'000;
constexpr int kMaxEventsPerWait = 256;

#if defined(LOCKSTORM_FIBER_ASAN) || defined(LOCKSTORM_FIBER_TSAN)
constexpr size_t kStackBytes = 4 * kFiberStackBytes;  // instrumented frames are larger
#else
constexpr size_t kStackBytes = kFiberStackBytes;
#endif

// poll(2) on the calling thread until the deadline (whole milliseconds, rounded up).
int BlockingPoll(pollfd* fds, size_t n, int64_t deadline_us) {
  for (int round = 0; round < kMaxRounds; ++round) {
    const int64_t left_us = deadline_us - MonoNowUs();
    const int64_t ms = left_us <= 0 ? 0 : std::min<int64_t>((left_us + 999) / 1000, 3'600'000);
    const int r = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(ms));
    if (r > 0 || (r == 0 && left_us <= 0)) return r;
    if (r < 0 && errno != EINTR) return -1;
    if (r == 0 && MonoNowUs() >= deadline_us) return 0;
  }
  return 0;
}

uint32_t PollToEpoll(short events) {
  uint32_t e = EPOLLONESHOT;
  if (events & POLLIN) e |= EPOLLIN;
  if (events & POLLOUT) e |= EPOLLOUT;
  if (events & POLLPRI) e |= EPOLLPRI;
  return e;  // EPOLLERR and EPOLLHUP are always reported
}

short EpollToPoll(uint32_t e) {
  short r = 0;
  if (e & EPOLLIN) r |= POLLIN;
  if (e & EPOLLOUT) r |= POLLOUT;
  if (e & EPOLLPRI) r |= POLLPRI;
  if (e & EPOLLERR) r |= POLLERR;
  if (e & EPOLLHUP) r |= POLLHUP;
  if (e & EPOLLRDHUP) r |= POLLIN;  // the peer closed: a read returns what is left, then 0
  return r;
}

struct Fiber {
  int index = 0;  // in its scheduler's fibers_
  int arg = 0;    // the body's argument
#ifdef LOCKSTORM_FIBER_ASM_SWITCH
  void* sp = nullptr;  // saved stack pointer while switched out
#else
  ucontext_t ctx{};
#endif
  void* mapping = nullptr;  // the stack and its guard page below it
  size_t mapping_bytes = 0;
  char* stack_lo = nullptr;
  size_t stack_bytes = 0;
  bool done = false;
  bool parked = false;
  uint32_t wait_seq = 0;  // bumped by every park: an event or timer of an older wait is stale
  bool woke_by_fd = false;
  uint32_t woke_events = 0;
  int64_t deadline_us = 0;  // while in the timer heap
  int heap_pos = -1;        // index in the timer heap, -1 = not in it
  void* tsan_fiber = nullptr;
};

// epoll data of an edge-triggered registration: this bit, and the fd in the low 32 bits (a
// one-shot wait's data is its fiber's index << 32 | wait_seq, and indexes stay below 2^31).
constexpr uint64_t kEdgeTag = uint64_t{1} << 63;
// Above this an fd is waited on with poll(2) on the thread instead (no per-fd table entry).
constexpr int kMaxEdgeFd = 1 << 20;

// A socket registered edge-triggered (WaitEdge): the events its edges brought since a wait
// last consumed them, and the fiber parked on it.
// The edge-triggered registration of `fd` (WaitEdge).
epoll_event EdgeRegistration(int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = kEdgeTag | static_cast<uint64_t>(fd);
  return ev;
}

struct FdState {
  bool edge = false;  // registered with EPOLLET (false: not registered, or one-shot)
  uint32_t ready = 0;
  Fiber* waiter = nullptr;
  uint32_t interest = 0;  // the waiter's events (epoll bits)
};

class Scheduler;
thread_local Scheduler* t_sched = nullptr;

// One thread's fibers: a ready queue, an epoll set for the fds they wait on, and a timer heap
// with at most one entry per fiber (its current deadline).
class Scheduler {
 public:
  explicit Scheduler(const std::function<void(int)>* body) : body_(body) {}

  void Add(int arg) { args_.push_back(arg); }
  std::exception_ptr error() const { return error_; }

  // Runs every fiber to completion on the calling thread. Ends when the last fiber returns;
  // every wait of a fiber is bounded by its own deadline.
  void Run() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      error_ = std::make_exception_ptr(
          std::runtime_error(std::string("fibers: epoll_create1: ") + strerror(errno)));
      return;
    }
    t_sched = this;
#ifdef LOCKSTORM_FIBER_TSAN
    main_tsan_fiber_ = __tsan_get_current_fiber();
#endif
    for (int arg : args_) {
      if (!Create(arg)) break;
    }
    for (auto& f : fibers_) ready_.push_back(f.get());
    int live = static_cast<int>(fibers_.size());
    while (live > 0) {
      // One pass over the fibers ready now (those that yield meanwhile wait for the next
      // pass), then the events: a fiber that keeps yielding cannot starve the parked ones.
      for (size_t batch = ready_.size(); batch > 0 && !ready_.empty(); --batch) {
        Fiber* f = ready_.front();
        ready_.pop_front();
        Resume(f);
        if (f->done) {
          Destroy(f);
          --live;
        }
      }
      if (live > 0) WaitForEvents(/*block=*/ready_.empty());
    }
    t_sched = nullptr;
    close(epfd_);
    epfd_ = -1;
  }

  Fiber* current() const { return current_; }

  int Poll(pollfd* fds, size_t n, int64_t deadline_us) {
    for (size_t i = 0; i < n; ++i) fds[i].revents = 0;
    Fiber* f = current_;
    for (int round = 0; round < kMaxRounds; ++round) {
      if (MonoNowUs() >= deadline_us) return ::poll(fds, static_cast<nfds_t>(n), 0);
      ++f->wait_seq;
      epoll_event ev{};
      ev.data.u64 = static_cast<uint64_t>(f->index) << 32 | f->wait_seq;
      for (size_t i = 0; i < n; ++i) {
        if (fds[i].fd < 0) continue;
        ev.events = PollToEpoll(fds[i].events);
        if (static_cast<size_t>(fds[i].fd) < fd_states_.size()) {
          FdState& st = fd_states_[static_cast<size_t>(fds[i].fd)];
          if (st.waiter != nullptr) return BlockingPoll(fds, n, deadline_us);  // taken
          st = FdState{};  // one-shot from now on
        }
        if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fds[i].fd, &ev) == 0) continue;
        if (errno == ENOENT && epoll_ctl(epfd_, EPOLL_CTL_ADD, fds[i].fd, &ev) == 0) continue;
        // Not pollable through epoll (or out of resources): block this thread instead.
        return BlockingPoll(fds, n, deadline_us);
      }
      SetTimer(f, deadline_us);
      Park();
      if (!f->woke_by_fd) return 0;
      if (n == 1) {
        fds[0].revents = static_cast<short>(EpollToPoll(f->woke_events) &
                                            (fds[0].events | POLLERR | POLLHUP | POLLNVAL));
        if (fds[0].revents != 0) return 1;
        continue;
      }
      const int r = ::poll(fds, static_cast<nfds_t>(n), 0);  // which of them are ready
      if (r != 0) return r;
    }
    return 0;
  }

  int WaitEdge(int fd, short events, int64_t deadline_us) {
    pollfd pfd{fd, events, 0};
    if (fd < 0 || fd > kMaxEdgeFd) return BlockingPoll(&pfd, 1, deadline_us);
    const auto i = static_cast<size_t>(fd);
    if (fd_states_.size() <= i) fd_states_.resize(i + 1);
    if (fd_states_[i].waiter != nullptr) return BlockingPoll(&pfd, 1, deadline_us);  // taken
    if (!fd_states_[i].edge) {
      epoll_event ev = EdgeRegistration(fd);
      // MOD (from one-shot) and ADD both report the current readiness as a first edge.
      if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0 &&
          (errno != ENOENT || epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)) {
        return BlockingPoll(&pfd, 1, deadline_us);  // not pollable through epoll
      }
      fd_states_[i] = FdState{.edge = true};
    }
    const uint32_t want = PollToEpoll(events) & ~EPOLLONESHOT;
    // ERR, HUP and (for reads) RDHUP are never consumed: once the peer closed (its FIN may
    // come with the last data, in the same edge) every read wait returns at once, and the
    // read sees the end. A write wait ignores RDHUP (a half-closed peer may still read).
    const uint32_t mask =
        want | EPOLLERR | EPOLLHUP | ((events & POLLIN) ? uint32_t{EPOLLRDHUP} : uint32_t{0});
    Fiber* f = current_;
    for (int round = 0; round < kMaxRounds; ++round) {
      FdState& st = fd_states_[i];  // again after each park: the table may have grown
      if (st.ready & mask) {
        const short revents = static_cast<short>(EpollToPoll(st.ready & mask));
        st.ready &= ~want;  // consumed: the caller reads (or writes) until EAGAIN again
        return revents != 0 ? 1 : 0;
      }
      // No clock read: a deadline already past fires at the next WaitForEvents.
      st.waiter = f;
      st.interest = mask;
      ++f->wait_seq;
      SetTimer(f, deadline_us);
      Park();
      fd_states_[i].waiter = nullptr;
      if (!f->woke_by_fd) break;
    }
    // The deadline. If the fd was closed and its number reused without ForgetFd, the epoll
    // registration went with the old file: register the new one, and look once.
    epoll_event ev = EdgeRegistration(fd);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) {
      fd_states_[i] = FdState{.edge = true};
      return ::poll(&pfd, 1, 0);
    }
    return 0;
  }

  void ForgetFd(int fd) {
    if (fd >= 0 && static_cast<size_t>(fd) < fd_states_.size())
      fd_states_[static_cast<size_t>(fd)] = FdState{};
  }

  bool Yield() {
    if (ready_.empty()) return false;
    ready_.push_back(current_);
    SwitchToScheduler();
    return true;
  }

  void SleepUntil(int64_t deadline_us) {
    Fiber* f = current_;
    for (int round = 0; round < kMaxRounds && MonoNowUs() < deadline_us; ++round) {
      ++f->wait_seq;
      SetTimer(f, deadline_us);
      Park();
    }
  }

 private:
  bool Create(int arg) {
    auto f = std::make_unique<Fiber>();
    f->index = static_cast<int>(fibers_.size());
    f->arg = arg;
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    f->mapping_bytes = kStackBytes + page;
    f->mapping = mmap(nullptr, f->mapping_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (f->mapping == MAP_FAILED) {
      error_ = std::make_exception_ptr(
          std::runtime_error(std::string("fibers: mmap of a stack: ") + strerror(errno)));
      return false;
    }
    mprotect(f->mapping, page, PROT_NONE);  // the guard page: an overflow faults at once
    f->stack_lo = static_cast<char*>(f->mapping) + page;
    f->stack_bytes = kStackBytes;
#ifdef LOCKSTORM_FIBER_ASAN
    // The mapping may reuse the addresses of an earlier fiber's stack, whose frames left
    // poison in the shadow memory.
    __asan_unpoison_memory_region(f->stack_lo, f->stack_bytes);
#endif
#ifdef LOCKSTORM_FIBER_ASM_SWITCH
    // The first switch "returns" into Trampoline as if it had been called (the stack 16-byte
    // aligned + 8 at its entry), popping the frame lockstorm_fiber_switch expects.
    auto top = reinterpret_cast<uintptr_t>(f->stack_lo + f->stack_bytes) & ~uintptr_t{15};
    auto* slot = reinterpret_cast<uint64_t*>(top);
    slot[-1] = 0;                                                   // Trampoline's return address
    slot[-2] = reinterpret_cast<uint64_t>(&Scheduler::Trampoline);  // popped by ret
    for (int r = 3; r <= 8; ++r) slot[-r] = 0;                      // rbp rbx r12 r13 r14 r15
    uint32_t mxcsr = 0;
    uint16_t x87_cw = 0;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(x87_cw));
    slot[-9] = mxcsr;    // the scheduler thread's floating-point modes, as a new ucontext
    slot[-10] = x87_cw;  // would inherit them
    f->sp = &slot[-10];
#else
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack_lo;
    f->ctx.uc_stack.ss_size = f->stack_bytes;
    f->ctx.uc_link = nullptr;  // the trampoline never returns
    makecontext(&f->ctx, &Scheduler::Trampoline, 0);
#endif
#ifdef LOCKSTORM_FIBER_TSAN
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
    fibers_.push_back(std::move(f));
    return true;
  }

  void Destroy(Fiber* f) {
#ifdef LOCKSTORM_FIBER_TSAN
    __tsan_destroy_fiber(f->tsan_fiber);
    f->tsan_fiber = nullptr;
#endif
#ifdef LOCKSTORM_FIBER_ASAN
    __asan_unpoison_memory_region(f->stack_lo, f->stack_bytes);
#endif
    munmap(f->mapping, f->mapping_bytes);
    f->mapping = nullptr;
  }

  static void Trampoline() {
    Scheduler* s = t_sched;
#ifdef LOCKSTORM_FIBER_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s->main_stack_lo_, &s->main_stack_bytes_);
#endif
    Fiber* f = s->current_;
    try {
      (*s->body_)(f->arg);
    } catch (...) {
      if (!s->error_) s->error_ = std::current_exception();
    }
    f->done = true;
    s->SwitchToScheduler();
    std::abort();  // a finished fiber is never resumed
  }

  // Scheduler → fiber f; returns when f parks or finishes.
  void Resume(Fiber* f) {
    current_ = f;
#ifdef LOCKSTORM_FIBER_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(&fake_stack, f->stack_lo, f->stack_bytes);
#endif
#ifdef LOCKSTORM_FIBER_TSAN
    __tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
#ifdef LOCKSTORM_FIBER_ASM_SWITCH
    lockstorm_fiber_switch(&main_sp_, f->sp);
#else
    swapcontext(&main_ctx_, &f->ctx);
#endif
#ifdef LOCKSTORM_FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
    current_ = nullptr;
  }

  // The current fiber → the scheduler; returns when the fiber is resumed.
  void SwitchToScheduler() {
    Fiber* f = current_;
#ifdef LOCKSTORM_FIBER_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(f->done ? nullptr : &fake_stack, main_stack_lo_,
                                   main_stack_bytes_);
#endif
#ifdef LOCKSTORM_FIBER_TSAN
    __tsan_switch_to_fiber(main_tsan_fiber_, 0);
#endif
#ifdef LOCKSTORM_FIBER_ASM_SWITCH
    lockstorm_fiber_switch(&f->sp, main_sp_);
#else
    swapcontext(&f->ctx, &main_ctx_);
#endif
#ifdef LOCKSTORM_FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, &main_stack_lo_, &main_stack_bytes_);
#endif
  }

  // Parks the current fiber until Wake (an fd event or its timer).
  void Park() {
    current_->parked = true;
    SwitchToScheduler();
  }

  void Wake(Fiber* f, bool by_fd, uint32_t events) {
    f->parked = false;
    f->woke_by_fd = by_fd;
    f->woke_events = events;
    RemoveTimer(f);
    ready_.push_back(f);
  }

  // Waits for fd events (until the earliest timer if `block`, else not at all) and wakes the
  // fibers they and the expired timers belong to.
  void WaitForEvents(bool block) {
    int64_t wait_us = block ? kMaxIdleWaitUs : 0;
    if (block && !heap_.empty()) {
      wait_us = std::clamp<int64_t>(heap_[0]->deadline_us - MonoNowUs(), 0, kMaxIdleWaitUs);
    }
    epoll_event evs[kMaxEventsPerWait];
    int n = -1;
    if (has_pwait2_) {
      timespec ts{static_cast<time_t>(wait_us / 1'000'000),
                  static_cast<long>(wait_us % 1'000'000 * 1000)};
      n = epoll_pwait2(epfd_, evs, kMaxEventsPerWait, &ts, nullptr);
      // ENOSYS (an old kernel) or EPERM (a seccomp filter that does not know it): use
      // epoll_wait, with whole milliseconds, from now on.
      if (n < 0 && errno != EINTR) has_pwait2_ = false;
    }
    if (!has_pwait2_) {
      n = epoll_wait(epfd_, evs, kMaxEventsPerWait, static_cast<int>((wait_us + 999) / 1000));
    }
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.u64 & kEdgeTag) {
        const auto fd = static_cast<size_t>(evs[i].data.u64 & 0xffffffffu);
        if (fd >= fd_states_.size() || !fd_states_[fd].edge) continue;  // forgotten meanwhile
        FdState& st = fd_states_[fd];
        st.ready |= evs[i].events;
        if (st.waiter != nullptr && st.waiter->parked && (st.ready & st.interest))
          Wake(st.waiter, true, st.ready & st.interest);
        continue;
      }
      const size_t index = static_cast<size_t>(evs[i].data.u64 >> 32);
      const auto seq = static_cast<uint32_t>(evs[i].data.u64);
      if (index >= fibers_.size()) continue;
      Fiber* f = fibers_[index].get();
      if (f->parked && f->wait_seq == seq) Wake(f, true, evs[i].events);
    }
    const int64_t now = MonoNowUs();
    while (!heap_.empty() && heap_[0]->deadline_us <= now) Wake(heap_[0], false, 0);
  }

  // The timer heap: a binary min-heap on deadline_us with each fiber's position kept, so a
  // wait that ends by an fd event removes its timer in O(log n).
  void SetTimer(Fiber* f, int64_t deadline_us) {
    RemoveTimer(f);
    f->deadline_us = deadline_us;
    f->heap_pos = static_cast<int>(heap_.size());
    heap_.push_back(f);
    SiftUp(static_cast<size_t>(f->heap_pos));
  }

  void RemoveTimer(Fiber* f) {
    if (f->heap_pos < 0) return;
    const auto pos = static_cast<size_t>(f->heap_pos);
    f->heap_pos = -1;
    Fiber* last = heap_.back();
    heap_.pop_back();
    if (last == f) return;
    heap_[pos] = last;
    last->heap_pos = static_cast<int>(pos);
    SiftUp(pos);
    SiftDown(static_cast<size_t>(last->heap_pos));
  }

  void Place(size_t pos, Fiber* f) {
    heap_[pos] = f;
    f->heap_pos = static_cast<int>(pos);
  }

  void SiftUp(size_t pos) {
    Fiber* f = heap_[pos];
    while (pos > 0) {
      const size_t parent = (pos - 1) / 2;
      if (heap_[parent]->deadline_us <= f->deadline_us) break;
      Place(pos, heap_[parent]);
      pos = parent;
    }
    Place(pos, f);
  }

  void SiftDown(size_t pos) {
    Fiber* f = heap_[pos];
    for (;;) {  // bounded: pos at least doubles each pass
      size_t child = 2 * pos + 1;
      if (child >= heap_.size()) break;
      if (child + 1 < heap_.size() && heap_[child + 1]->deadline_us < heap_[child]->deadline_us)
        ++child;
      if (f->deadline_us <= heap_[child]->deadline_us) break;
      Place(pos, heap_[child]);
      pos = child;
    }
    Place(pos, f);
  }

  const std::function<void(int)>* body_;
  std::vector<int> args_;
  std::vector<std::unique_ptr<Fiber>> fibers_;
  std::deque<Fiber*> ready_;
  std::vector<Fiber*> heap_;
  std::vector<FdState> fd_states_;  // by fd
  Fiber* current_ = nullptr;
#ifdef LOCKSTORM_FIBER_ASM_SWITCH
  void* main_sp_ = nullptr;  // the scheduler's stack pointer while a fiber runs
#else
  ucontext_t main_ctx_{};
#endif
  int epfd_ = -1;
  bool has_pwait2_ = true;
  std::exception_ptr error_;
  const void* main_stack_lo_ = nullptr;  // the scheduler thread's stack (ASan)
  size_t main_stack_bytes_ = 0;
  void* main_tsan_fiber_ = nullptr;
};

}  // namespace

bool InFiber() { return t_sched != nullptr && t_sched->current() != nullptr; }

int Poll(pollfd* fds, size_t n, int64_t deadline_us) {
  if (InFiber()) return t_sched->Poll(fds, n, deadline_us);
  return BlockingPoll(fds, n, deadline_us);
}

int WaitEdge(int fd, short events, int64_t deadline_us) {
  if (InFiber()) return t_sched->WaitEdge(fd, events, deadline_us);
  pollfd pfd{fd, events, 0};
  return BlockingPoll(&pfd, 1, deadline_us);
}

void ForgetFd(int fd) {
  if (t_sched != nullptr) t_sched->ForgetFd(fd);
}

bool Yield() { return InFiber() && t_sched->Yield(); }

void SleepUntil(int64_t deadline_us) {
  if (InFiber()) {
    t_sched->SleepUntil(deadline_us);
    return;
  }
  for (int round = 0; round < kMaxRounds; ++round) {
    const int64_t left_us = deadline_us - MonoNowUs();
    if (left_us <= 0) return;
    std::this_thread::sleep_for(std::chrono::microseconds(left_us));
  }
}

void RunFibers(int n, int threads, const std::function<void(int)>& body) {
  if (n <= 0) return;
  threads = std::clamp(threads, 1, n);
  std::vector<std::unique_ptr<Scheduler>> scheds;
  for (int t = 0; t < threads; ++t) scheds.push_back(std::make_unique<Scheduler>(&body));
  for (int i = 0; i < n; ++i) scheds[static_cast<size_t>(i % threads)]->Add(i);
  std::vector<std::thread> workers;
  for (auto& s : scheds) workers.emplace_back([p = s.get()] { p->Run(); });
  for (auto& w : workers) w.join();
  for (auto& s : scheds)
    if (s->error()) std::rethrow_exception(s->error());
}

}  // namespace lockstorm::fiber
