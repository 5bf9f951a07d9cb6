#include "harness/server_pool.h"

namespace lockstorm {

namespace {
constexpr int64_t kRefreshPingTimeoutMs = 2000;
}  // namespace

Status ServerPool::Get(int n, const ServerOptions& opts, ServerSet** out) {
  *out = nullptr;
  if (!opts.extra_config.empty())
    return Status::InvalidArgument("server pool: servers with extra config are not pooled");
  const bool fits = set_ && set_->size() == n && opts_.persistence == opts.persistence &&
                    opts_.redis_server_path == opts.redis_server_path &&
                    (opts_.clock_control || !opts.clock_control);
  if (fits) {
    if (Status s = set_->Refresh(opts.persistence, kRefreshPingTimeoutMs); s.ok()) {
      ++reuses_;
      *out = set_.get();
      return s;
    }
    // A server that cannot be brought back: start a fresh set below.
  }
  if (set_) set_->StopAll();
  set_.reset();
  auto fresh = std::make_unique<ServerSet>();
  // Once a run needed the clock shim, keep it: later runs without clock faults still fit.
  ServerOptions start_opts = opts;
  start_opts.clock_control = opts.clock_control || opts_.clock_control;
  if (Status s =
          fresh->StartEmbedded(dir_ + "/set-" + std::to_string(++generation_), n, start_opts);
      !s.ok())
    return s;
  set_ = std::move(fresh);
  opts_ = start_opts;
  ++starts_;
  *out = set_.get();
  return Status::Ok();
}

}  // namespace lockstorm
