#include "harness/fiber.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace lockstorm::fiber {
namespace {

// A pipe closed by the destructor.
struct Pipe {
  Pipe() { EXPECT_EQ(pipe(fd), 0); }
  ~Pipe() {
    close(fd[0]);
    close(fd[1]);
  }
  void Put(char c) { EXPECT_EQ(write(fd[1], &c, 1), 1); }
  int fd[2] = {-1, -1};
};

constexpr int64_t kLongUs = 10'000'000;  // a deadline no test should reach

TEST(FiberTest, EveryBodyRunsOnceOnTheRequestedThreads) {
  std::mutex mu;
  std::vector<int> seen;
  std::set<std::thread::id> threads;
  RunFibers(10, 3, [&](int i) {
    EXPECT_TRUE(InFiber());
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(i);
    threads.insert(std::this_thread::get_id());
  });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_FALSE(InFiber());
  RunFibers(0, 4, [](int) { ADD_FAILURE() << "no body runs for n = 0"; });
}

TEST(FiberTest, SleepingFibersShareOneThread) {
  // 50 fibers on one thread each sleep; if a sleep blocked the thread, at most one would be
  // inside its sleep at a time.
  int inside = 0, most_inside = 0;  // one thread: no lock needed
  RunFibers(50, 1, [&](int) {
    ++inside;
    most_inside = std::max(most_inside, inside);
    SleepUntil(MonoNowUs() + 20'000);
    --inside;
  });
  EXPECT_EQ(most_inside, 50);
  EXPECT_EQ(inside, 0);
}

TEST(FiberTest, SleepUntilNeverReturnsEarly) {
  std::atomic<int> early{0};
  RunFibers(20, 2, [&](int i) {
    for (int k = 0; k < 5; ++k) {
      const int64_t deadline = MonoNowUs() + 1000 * (1 + (i + k) % 4);
      SleepUntil(deadline);
      if (MonoNowUs() < deadline) early.fetch_add(1);
    }
  });
  EXPECT_EQ(early.load(), 0);
}

TEST(FiberTest, PollParksUntilAnotherFiberOfTheThreadWrites) {
  Pipe p;
  std::vector<std::string> order;
  char got = 0;
  RunFibers(2, 1, [&](int i) {
    if (i == 0) {
      order.push_back("reader waits");
      pollfd pfd{p.fd[0], POLLIN, 0};
      const int n = Poll(&pfd, 1, MonoNowUs() + kLongUs);
      EXPECT_EQ(n, 1);
      EXPECT_TRUE(pfd.revents & POLLIN);
      EXPECT_EQ(read(p.fd[0], &got, 1), 1);
      order.push_back("reader woke");
    } else {
      SleepUntil(MonoNowUs() + 5000);
      order.push_back("writer writes");
      p.Put('x');
    }
  });
  EXPECT_EQ(got, 'x');
  EXPECT_EQ(order, (std::vector<std::string>{"reader waits", "writer writes", "reader woke"}));
}

TEST(FiberTest, PollTimesOutAtItsDeadline) {
  Pipe p;
  RunFibers(3, 1, [&](int) {
    pollfd pfd{p.fd[0], POLLIN, 0};
    const int64_t deadline = MonoNowUs() + 3000;
    EXPECT_EQ(Poll(&pfd, 1, deadline), 0);
    EXPECT_GE(MonoNowUs(), deadline);
    EXPECT_EQ(pfd.revents, 0);
  });
}

TEST(FiberTest, PollOnSeveralFdsReportsOnlyTheReadyOne) {
  Pipe a, b;
  RunFibers(2, 1, [&](int i) {
    if (i == 0) {
      pollfd fds[2] = {{a.fd[0], POLLIN, 0}, {b.fd[0], POLLIN, 0}};
      EXPECT_EQ(Poll(fds, 2, MonoNowUs() + kLongUs), 1);
      EXPECT_EQ(fds[0].revents, 0);
      EXPECT_TRUE(fds[1].revents & POLLIN);
    } else {
      SleepUntil(MonoNowUs() + 2000);
      b.Put('b');
    }
  });
}

TEST(FiberTest, AnEventOfAnEarlierWaitDoesNotWakeALaterOne) {
  // The first wait on `a` times out (its fd stays armed in epoll); `a` then becomes readable
  // while the fiber waits on `b`. That stale event must not end the wait on `b`.
  Pipe a, b;
  int second_wait = -1;
  RunFibers(2, 1, [&](int i) {
    if (i == 0) {
      pollfd pa{a.fd[0], POLLIN, 0};
      EXPECT_EQ(Poll(&pa, 1, MonoNowUs() + 1000), 0);
      pollfd pb{b.fd[0], POLLIN, 0};
      second_wait = Poll(&pb, 1, MonoNowUs() + 30'000);
    } else {
      SleepUntil(MonoNowUs() + 5000);  // the first wait is over by then
      a.Put('a');
    }
  });
  EXPECT_EQ(second_wait, 0);
}

// Reads what is in the pipe without blocking (the precondition of WaitEdge: drained).
void Drain(int fd) {
  char buf[64];
  for (int i = 0; i < 100 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0; ++i) {
  }
}

// A connected socket pair (WaitEdge is for sockets), closed by the destructor.
struct SocketPair {
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0); }
  ~SocketPair() {
    if (fd[0] >= 0) close(fd[0]);
    if (fd[1] >= 0) close(fd[1]);
  }
  void Put(char c) { EXPECT_EQ(write(fd[1], &c, 1), 1); }
  int fd[2] = {-1, -1};
};

TEST(FiberTest, WaitEdgeParksUntilEachNewWrite) {
  // Three rounds on one registration: every write after a drain wakes the waiter once.
  SocketPair sp;
  std::vector<std::string> order;
  RunFibers(2, 1, [&](int i) {
    for (int round = 0; round < 3; ++round) {
      if (i == 0) {
        order.push_back("wait");
        EXPECT_EQ(WaitEdge(sp.fd[0], POLLIN, MonoNowUs() + kLongUs), 1);
        char c = 0;
        EXPECT_EQ(read(sp.fd[0], &c, 1), 1);
        order.push_back(std::string("got ") + c);
        Drain(sp.fd[0]);
      } else {
        SleepUntil(MonoNowUs() + 2000);
        order.push_back("put");
        sp.Put(static_cast<char>('a' + round));
        SleepUntil(MonoNowUs() + 2000);  // the reader has read it by then
      }
    }
  });
  EXPECT_EQ(order, (std::vector<std::string>{"wait", "put", "got a", "wait", "put", "got b", "wait",
                                             "put", "got c"}));
}

TEST(FiberTest, WaitEdgeTimesOutAtItsDeadlineAndSeesDataThatCameBefore) {
  SocketPair sp;
  RunFibers(1, 1, [&](int) {
    const int64_t deadline = MonoNowUs() + 3000;
    EXPECT_EQ(WaitEdge(sp.fd[0], POLLIN, deadline), 0);
    EXPECT_GE(MonoNowUs(), deadline);
    // Data that came while nobody waited is an edge already seen: the next wait returns.
    sp.Put('x');
    EXPECT_EQ(WaitEdge(sp.fd[0], POLLIN, MonoNowUs() + kLongUs), 1);
  });
}

TEST(FiberTest, WaitEdgeAfterPollOnTheSameFdAndPollAfterWaitEdge) {
  // One fd waited on both ways in turn: each switch re-registers it.
  SocketPair sp;
  int polls = 0, edges = 0;
  RunFibers(2, 1, [&](int i) {
    for (int round = 0; round < 2; ++round) {
      if (i == 0) {
        pollfd pfd{sp.fd[0], POLLIN, 0};
        polls += Poll(&pfd, 1, MonoNowUs() + kLongUs);
        Drain(sp.fd[0]);
        edges += WaitEdge(sp.fd[0], POLLIN, MonoNowUs() + kLongUs);
        Drain(sp.fd[0]);
      } else {
        for (int k = 0; k < 2; ++k) {
          SleepUntil(MonoNowUs() + 2000);
          sp.Put('x');
        }
      }
    }
  });
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(edges, 2);
}

TEST(FiberTest, WaitEdgeOnAReusedFdNumberRecoversAtTheDeadline) {
  // A socket closed without ForgetFd leaves a stale entry; a new socket with the same fd
  // number is registered again when its first wait times out, and its data is seen.
  RunFibers(1, 1, [&](int) {
    int reused = -1;
    {
      SocketPair old_pair;
      old_pair.Put('o');
      EXPECT_EQ(WaitEdge(old_pair.fd[0], POLLIN, MonoNowUs() + kLongUs), 1);
      reused = old_pair.fd[0];
    }  // closed, not forgotten
    SocketPair sp;
    ASSERT_TRUE(sp.fd[0] == reused || sp.fd[1] == reused);
    const int fd = sp.fd[0] == reused ? sp.fd[0] : sp.fd[1];
    const int other = fd == sp.fd[0] ? sp.fd[1] : sp.fd[0];
    char c = 'n';
    EXPECT_EQ(write(other, &c, 1), 1);
    EXPECT_EQ(WaitEdge(fd, POLLIN, MonoNowUs() + 20'000), 1);  // late, but not lost
    // Forgotten before close, a reused number is registered at once.
    ForgetFd(fd);
  });
}

TEST(FiberTest, WaitEdgeAfterTheLastDataAndTheEndCameInOneEdgeReturnsAtOnce) {
  // The peer writes its last byte and closes before the reader waits: one edge brings both.
  // After a short read the reader waits again and must see the end (read returns 0) at once,
  // not at its deadline.
  SocketPair sp;
  int second = -1;
  ssize_t end = -1;
  RunFibers(1, 1, [&](int) {
    sp.Put('x');
    ASSERT_EQ(shutdown(sp.fd[1], SHUT_WR), 0);
    EXPECT_EQ(WaitEdge(sp.fd[0], POLLIN, MonoNowUs() + kLongUs), 1);
    char buf[64];
    EXPECT_EQ(recv(sp.fd[0], buf, sizeof buf, MSG_DONTWAIT), 1);  // short: drained
    second = WaitEdge(sp.fd[0], POLLIN, MonoNowUs() + kLongUs);
    end = recv(sp.fd[0], buf, sizeof buf, MSG_DONTWAIT);
  });
  EXPECT_EQ(second, 1);
  EXPECT_EQ(end, 0);
}

TEST(FiberTest, WaitEdgeOutsideAFiberIsPoll) {
  SocketPair sp;
  EXPECT_EQ(WaitEdge(sp.fd[0], POLLIN, MonoNowUs() + 2000), 0);
  sp.Put('x');
  EXPECT_EQ(WaitEdge(sp.fd[0], POLLIN, MonoNowUs() + kLongUs), 1);
}

TEST(FiberTest, YieldRunsTheOtherReadyFibersFirst) {
  std::vector<std::string> order;
  bool alone_yield = true;
  RunFibers(3, 1, [&](int i) {
    order.push_back("start " + std::to_string(i));
    if (i == 0) EXPECT_TRUE(Yield());  // fibers 1 and 2 are ready: they run first
    order.push_back("end " + std::to_string(i));
  });
  EXPECT_EQ(order,
            (std::vector<std::string>{"start 0", "start 1", "end 1", "start 2", "end 2", "end 0"}));
  RunFibers(1, 1, [&](int) { alone_yield = Yield(); });
  EXPECT_FALSE(alone_yield);  // nothing else ready: returns at once
  EXPECT_FALSE(Yield());      // not on a fiber
}

TEST(FiberTest, FibersThatKeepYieldingDoNotStarveAParkedOne) {
  // Fibers 2 and 3 yield to each other without end (each sees the other ready); fiber 0 waits
  // on a pipe that fiber 1 writes. The scheduler must still poll its events between passes.
  Pipe p;
  bool woke = false;
  int spins[2] = {0, 0};
  RunFibers(4, 1, [&](int i) {
    if (i == 0) {
      pollfd pfd{p.fd[0], POLLIN, 0};
      woke = Poll(&pfd, 1, MonoNowUs() + kLongUs) == 1;
    } else if (i == 1) {
      p.Put('y');  // fiber 0 is parked by now: its wakeup comes through epoll
    } else {
      int& n = spins[i - 2];
      for (; !woke && n < 1'000'000; ++n) EXPECT_TRUE(Yield() || woke);  // bounded
    }
  });
  EXPECT_TRUE(woke);
  EXPECT_LT(spins[0], 1'000'000);
  EXPECT_LT(spins[1], 1'000'000);
}

TEST(FiberTest, OutsideAFiberPollAndSleepBlockTheThread) {
  EXPECT_FALSE(InFiber());
  Pipe p;
  p.Put('z');
  pollfd pfd{p.fd[0], POLLIN, 0};
  EXPECT_EQ(Poll(&pfd, 1, MonoNowUs() + kLongUs), 1);
  Pipe q;
  pollfd pq{q.fd[0], POLLIN, 0};
  const int64_t deadline = MonoNowUs() + 2000;
  EXPECT_EQ(Poll(&pq, 1, deadline), 0);
  EXPECT_GE(MonoNowUs(), deadline);
  const int64_t wake = MonoNowUs() + 1000;
  SleepUntil(wake);
  EXPECT_GE(MonoNowUs(), wake);
}

TEST(FiberTest, AnExceptionIsRethrownAfterTheOtherBodiesFinish) {
  std::atomic<int> finished{0};
  EXPECT_THROW(RunFibers(6, 2,
                         [&](int i) {
                           if (i == 3) throw std::runtime_error("body 3 failed");
                           SleepUntil(MonoNowUs() + 2000);
                           finished.fetch_add(1);
                         }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 5);
}

TEST(FiberTest, DeepCallsFitTheStack) {
  // A recursion using ~64 KiB of stack: well inside kFiberStackBytes.
  std::function<int(int)> dig = [&](int depth) -> int {
    volatile char pad[1024];
    pad[0] = static_cast<char>(depth);
    return depth == 0 ? pad[0] : dig(depth - 1) + 1;
  };
  int result = 0;
  RunFibers(1, 1, [&](int) { result = dig(64); });
  EXPECT_EQ(result, 64);
}

}  // namespace
}  // namespace lockstorm::fiber
