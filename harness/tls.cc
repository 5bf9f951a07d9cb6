#include "harness/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "harness/fiber.h"

namespace lockstorm {
namespace {

// OpenSSL's queued errors, oldest first, as one line (the queue is cleared).
std::string OpenSslErrors() {
  std::string out;
  for (int i = 0; i < 16; ++i) {  // bounded: the queue is short
    const unsigned long e = ERR_get_error();
    if (e == 0) break;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed" -> the reason alone.
    const char* reason = std::strrchr(buf, ':');
    if (!out.empty()) out += "; ";
    out += reason != nullptr ? reason + 1 : buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

Status TlsContext::Create(const TlsOptions& o, std::shared_ptr<TlsContext>* out) {
  std::shared_ptr<TlsContext> c(new TlsContext());
  ERR_clear_error();
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  if (c->ctx_ == nullptr) return Status::Internal("TLS: " + OpenSslErrors());
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
  // Writes may be partial and retried from a moved buffer, as with send(2).
  SSL_CTX_set_mode(c->ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  c->options_ = o;
  SSL_CTX_set_verify(c->ctx_, o.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (!o.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(c->ctx_, o.ca_file.c_str(), nullptr) != 1)
      return Status::InvalidArgument("--tls-ca-cert: cannot load '" + o.ca_file +
                                     "': " + OpenSslErrors());
  } else if (SSL_CTX_set_default_verify_paths(c->ctx_) != 1) {
    return Status::Internal("TLS: cannot load the system's CAs: " + OpenSslErrors());
  }
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(c->ctx_, o.cert_file.c_str()) != 1)
      return Status::InvalidArgument("--tls-cert: cannot load '" + o.cert_file +
                                     "': " + OpenSslErrors());
    const std::string& key = o.key_file.empty() ? o.cert_file : o.key_file;
    if (SSL_CTX_use_PrivateKey_file(c->ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c->ctx_) != 1)
      return Status::InvalidArgument("--tls-key: cannot load '" + key +
                                     "' as the key of --tls-cert: " + OpenSslErrors());
  } else if (!o.key_file.empty()) {
    return Status::InvalidArgument("--tls-key: given without --tls-cert");
  }
  *out = std::move(c);
  return Status::Ok();
}

TlsContext::~TlsContext() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

TlsSession::TlsSession(const TlsContext& context, int fd, const std::string& server_name)
    : name_(server_name) {
  ssl_ = SSL_new(context.ctx());
  if (ssl_ == nullptr) {
    error_ = "TLS: " + OpenSslErrors();
    return;
  }
  SSL_set_fd(ssl_, fd);
  if (IsIpAddress(server_name)) {
    if (context.verify()) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_name.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl_, server_name.c_str());  // SNI
    if (context.verify()) SSL_set1_host(ssl_, server_name.c_str());
  }
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // no close_notify: the caller drops the socket anyway
}

std::string TlsSession::Handshake(int64_t deadline_us) {
  if (ssl_ == nullptr) return error_;
  const int fd = SSL_get_fd(ssl_);
  for (int round = 0; round < 1000; ++round) {  // bounded: each round waits or completes
    ERR_clear_error();
    const int r = SSL_connect(ssl_);
    if (r == 1) return "";
    const int e = SSL_get_error(ssl_, r);
    short events = 0;
    if (e == SSL_ERROR_WANT_READ) {
      events = POLLIN;
    } else if (e == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
    } else {
      std::string why = e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                            ? (errno != 0 ? std::string(strerror(errno)) : "connection closed")
                            : OpenSslErrors();
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK)
        why += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
      return "TLS handshake with " + name_ + ": " + why;
    }
    pollfd pfd{fd, events, 0};
    if (fiber::Poll(&pfd, 1, deadline_us) <= 0) return "TLS handshake with " + name_ + ": timeout";
  }
  return "TLS handshake with " + name_ + ": no progress";
}

ssize_t TlsSession::Result(int ret, const char* op) {
  if (ret > 0) return ret;
  const int e = SSL_get_error(ssl_, ret);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    if (errno == 0) return 0;  // EOF without close_notify: the peer went away
    error_ = std::string(op) + ": " + strerror(errno);
  } else {
    error_ = std::string(op) + ": " + OpenSslErrors();
  }
  errno = EIO;
  return -1;
}

ssize_t TlsSession::Write(const char* data, size_t n) {
  if (ssl_ == nullptr) {
    errno = EIO;
    return -1;
  }
  ERR_clear_error();
  errno = 0;
  return Result(SSL_write(ssl_, data, static_cast<int>(n)), "TLS write");
}

ssize_t TlsSession::Read(char* data, size_t n) {
  if (ssl_ == nullptr) {
    errno = EIO;
    return -1;
  }
  ERR_clear_error();
  errno = 0;
  return Result(SSL_read(ssl_, data, static_cast<int>(n)), "TLS read");
}

bool TlsSession::Buffered() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }

}  // namespace lockstorm
