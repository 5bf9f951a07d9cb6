#include "harness/server_clock.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#ifndef LOCKSTORM_CLOCK_SHIM_PATH
#error "LOCKSTORM_CLOCK_SHIM_PATH must be defined by the build (CMakeLists.txt)"
#endif

namespace lockstorm {
namespace {

static_assert(sizeof(lockstorm_clock_shm) == 64, "the shim and lockstorm must agree on the layout");

constexpr int64_t kNsPerUs = 1000;
constexpr double kMaxRate = 1000.0;
constexpr int kMaxCreateAttempts = 100;  // distinct names tried before giving up

int64_t ReadClockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

template <typename T>
void AtomicStore(T* field, T value, std::memory_order order = std::memory_order_relaxed) {
  std::atomic_ref<T>(*field).store(value, order);
}

template <typename T>
T AtomicLoad(T* field, std::memory_order order = std::memory_order_relaxed) {
  return std::atomic_ref<T>(*field).load(order);
}

// Tries to create the file exclusively in `dir`; returns the fd or -1 (errno set).
int CreateIn(const std::string& dir, std::string* path) {
  static std::atomic<int> counter{0};
  for (int i = 0; i < kMaxCreateAttempts; ++i) {
    *path = dir + "/lockstorm-clock-" + std::to_string(getpid()) + "-" +
            std::to_string(counter.fetch_add(1));
    int fd = open(path->c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

}  // namespace

int64_t SkewedRealtimeNs(const ServerClockParams& p, int64_t real_ns) {
  return lockstorm_clock_skew_ns(real_ns, p.anchor_realtime_ns, p.anchor_offset_ns, p.rate);
}

int64_t SkewedMonotonicNs(const ServerClockParams& p, int64_t real_ns) {
  return lockstorm_clock_skew_ns(real_ns, p.anchor_monotonic_ns, p.anchor_monotonic_offset_ns,
                                 p.rate);
}

ServerClockParams Reanchored(const ServerClockParams& p, int64_t now_realtime_ns,
                             int64_t now_monotonic_ns) {
  ServerClockParams out = p;
  out.anchor_offset_ns = SkewedRealtimeNs(p, now_realtime_ns) - now_realtime_ns;
  out.anchor_monotonic_offset_ns = SkewedMonotonicNs(p, now_monotonic_ns) - now_monotonic_ns;
  out.anchor_realtime_ns = now_realtime_ns;
  out.anchor_monotonic_ns = now_monotonic_ns;
  return out;
}

// ---------------------------------------------------------------------------------------------

std::string ServerClock::ShimPath() {
  const char* env = getenv("LOCKSTORM_CLOCK_SHIM");
  return env != nullptr && env[0] != '\0' ? env : LOCKSTORM_CLOCK_SHIM_PATH;
}

Status ServerClock::Create(std::unique_ptr<ServerClock>* out) {
  std::string shim = ShimPath();
  if (access(shim.c_str(), R_OK) != 0) {
    return Status::NotFound("clock shim " + shim + ": " + strerror(errno) +
                            " (build the lockstorm_clock_shim target)");
  }
  std::string path;
  int fd = CreateIn("/dev/shm", &path);
  if (fd < 0) {
    std::error_code ec;
    std::string tmp = std::filesystem::temp_directory_path(ec).string();
    fd = CreateIn(ec ? "/tmp" : tmp, &path);
  }
  if (fd < 0) return Status::IoError("cannot create clock file " + path + ": " + strerror(errno));
  void* mem = MAP_FAILED;
  if (ftruncate(fd, sizeof(lockstorm_clock_shm)) == 0) {
    mem = mmap(nullptr, sizeof(lockstorm_clock_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  int saved_errno = errno;
  close(fd);
  if (mem == MAP_FAILED) {
    unlink(path.c_str());
    return Status::IoError("cannot map clock file " + path + ": " + strerror(saved_errno));
  }
  auto* shm = static_cast<lockstorm_clock_shm*>(mem);  // zero-filled by ftruncate
  out->reset(new ServerClock(path, shm));
  return Status::Ok();
}

ServerClock::ServerClock(std::string path, lockstorm_clock_shm* shm)
    : path_(std::move(path)), shm_(shm) {
  std::lock_guard<std::mutex> lock(mu_);
  params_.anchor_realtime_ns = ReadClockNs(CLOCK_REALTIME);
  params_.anchor_monotonic_ns = ReadClockNs(CLOCK_MONOTONIC);
  Store(params_);
  AtomicStore(&shm_->version, LOCKSTORM_CLOCK_SHM_VERSION);
  // Last: a shim that sees the magic sees initialised parameters.
  AtomicStore(&shm_->magic, LOCKSTORM_CLOCK_SHM_MAGIC, std::memory_order_release);
}

ServerClock::~ServerClock() {
  munmap(shm_, sizeof(lockstorm_clock_shm));
  unlink(path_.c_str());
}

std::map<std::string, std::string> ServerClock::Env() const {
  std::string preload = ShimPath();
  const char* inherited = getenv("LD_PRELOAD");
  if (inherited != nullptr && inherited[0] != '\0') preload += std::string(":") + inherited;
  return {{"LD_PRELOAD", preload}, {LOCKSTORM_CLOCK_SHM_ENV, path_}};
}

void ServerClock::Store(const ServerClockParams& p) {
  // Seqlock writer: odd, fence, fields, even (release).
  uint64_t seq = AtomicLoad(&shm_->seq);
  AtomicStore(&shm_->seq, seq + 1);
  std::atomic_thread_fence(std::memory_order_release);
  AtomicStore(&shm_->anchor_realtime_ns, p.anchor_realtime_ns);
  AtomicStore(&shm_->anchor_monotonic_ns, p.anchor_monotonic_ns);
  AtomicStore(&shm_->anchor_offset_ns, p.anchor_offset_ns);
  AtomicStore(&shm_->anchor_monotonic_offset_ns, p.anchor_monotonic_offset_ns);
  AtomicStore(&shm_->rate, p.rate);
  AtomicStore(&shm_->flags, p.skew_monotonic ? LOCKSTORM_CLOCK_FLAG_SKEW_MONOTONIC : 0u);
  AtomicStore(&shm_->seq, seq + 2, std::memory_order_release);
}

ServerClockParams ServerClock::ReanchoredNow() const {
  // Both readings as close together as possible: they anchor the same instant.
  int64_t realtime_ns = ReadClockNs(CLOCK_REALTIME);
  int64_t monotonic_ns = ReadClockNs(CLOCK_MONOTONIC);
  return Reanchored(params_, realtime_ns, monotonic_ns);
}

void ServerClock::SetOffset(int64_t offset_us) {
  std::lock_guard<std::mutex> lock(mu_);
  params_ = ReanchoredNow();
  int64_t step_ns = offset_us * kNsPerUs - params_.anchor_offset_ns;
  params_.anchor_offset_ns += step_ns;
  params_.anchor_monotonic_offset_ns += step_ns;
  Store(params_);
}

Status ServerClock::SetRate(double rate) {
  if (!std::isfinite(rate) || rate <= 0 || rate > kMaxRate) {
    return Status::InvalidArgument("clock rate must be in (0, 1000], got " + std::to_string(rate));
  }
  std::lock_guard<std::mutex> lock(mu_);
  params_ = ReanchoredNow();
  params_.rate = rate;
  Store(params_);
  return Status::Ok();
}

void ServerClock::Jump(int64_t delta_us) {
  std::lock_guard<std::mutex> lock(mu_);
  params_ = ReanchoredNow();
  params_.anchor_offset_ns += delta_us * kNsPerUs;
  params_.anchor_monotonic_offset_ns += delta_us * kNsPerUs;
  Store(params_);
}

void ServerClock::SetSkewMonotonic(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  params_ = ReanchoredNow();
  if (on && !params_.skew_monotonic) params_.anchor_monotonic_offset_ns = 0;  // no step
  params_.skew_monotonic = on;
  Store(params_);
}

void ServerClock::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  params_ = ReanchoredNow();
  params_.anchor_offset_ns = 0;
  params_.anchor_monotonic_offset_ns = 0;
  params_.rate = 1.0;
  params_.skew_monotonic = false;
  Store(params_);
}

ServerClockParams ServerClock::params() const {
  std::lock_guard<std::mutex> lock(mu_);
  return params_;
}

int64_t ServerClock::NowUs() const {
  ServerClockParams p = params();
  return SkewedRealtimeNs(p, ReadClockNs(CLOCK_REALTIME)) / kNsPerUs;
}

uint32_t ServerClock::attach_count() const {
  return AtomicLoad(&shm_->attach_count, std::memory_order_acquire);
}

}  // namespace lockstorm
