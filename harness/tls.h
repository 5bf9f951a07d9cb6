// TLS for rediss:// servers: OpenSSL over the transport's own non-blocking sockets (Debian's
// hiredis 0.14 has no TLS).
//
// A TlsContext is the configuration shared by every connection of a run: the CA bundle the
// server's certificate must chain to (default: the system's), an optional client certificate
// (for a server with tls-auth-clients yes), and whether to verify at all. A TlsSession is one
// connection's TLS state on a socket the caller owns.
//
// Verification (the default): the server's certificate must chain to the CA and name the host
// as written in --servers (its DNS name, or its IP address in subjectAltName) — also when the
// bytes go through a fault proxy on 127.0.0.1 (ServerAddress::tls_name keeps the real name).
//
// Thread-safety: a TlsContext is immutable after Create and may be shared by all threads; a
// TlsSession belongs to one connection (one thread or fiber at a time).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "harness/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace lockstorm {

struct TlsOptions {
  std::string ca_file;    // PEM bundle; "" = the system's trusted CAs
  std::string cert_file;  // client certificate (PEM); "" = none
  std::string key_file;   // its private key (PEM); "" = cert_file holds it
  bool verify = true;     // false: accept any certificate (--tls-insecure)
};

class TlsContext {
 public:
  // Loads the files. Errors name the file and OpenSSL's reason, on one line.
  static Status Create(const TlsOptions& options, std::shared_ptr<TlsContext>* out);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  bool verify() const { return options_.verify; }
  const TlsOptions& options() const { return options_; }  // as given to Create

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  TlsOptions options_;
};

// One TLS connection over a connected, non-blocking socket `fd` (not owned: the caller closes
// it after the session is destroyed).
class TlsSession {
 public:
  TlsSession(const TlsContext& context, int fd, const std::string& server_name);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Runs the handshake until it completes or `deadline_us` (fiber::MonoNowUs) passes; waits
  // with fiber::Poll. "" or the error ("TLS handshake with HOST: certificate verify failed").
  std::string Handshake(int64_t deadline_us);

  // As send(2)/recv(2) on a non-blocking socket: bytes moved; 0 = the peer closed (Read);
  // -1 with errno EAGAIN = wait for the socket (readable for Read, writable for Write, in
  // practice), -1 with errno EIO = a TLS or socket error (error() says which).
  ssize_t Write(const char* data, size_t n);
  ssize_t Read(char* data, size_t n);
  // Decrypted bytes held inside OpenSSL: a poll() on the socket would not see them.
  bool Buffered() const;
  const std::string& error() const { return error_; }

 private:
  ssize_t Result(int ret, const char* op);
  SSL* ssl_ = nullptr;
  std::string name_;
  std::string error_;
};

}  // namespace lockstorm
