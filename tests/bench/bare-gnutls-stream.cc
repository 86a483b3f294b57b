#include "config.h"

#include "tests/bench/bare-gnutls-stream.h"

#include <gnutls/gnutls.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace {
constexpr gsize kRecord = 16 * 1024;
}  // namespace

/* The baseline: bare GnuTLS on the same kind of connection. */
static gnutls_session_t bare_session(const BenchPki &pki, bool server, int fd, const std::string &prio,
                              gnutls_certificate_credentials_t *cred) {
  gnutls_certificate_allocate_credentials(cred);
  gnutls_certificate_set_x509_trust_file(*cred, pki.file(server, "ca-cert.pem").c_str(),
                                         GNUTLS_X509_FMT_PEM);
  std::string cert = pki.file(server, server ? "server-cert.pem" : "client-cert.pem");
  std::string key = pki.file(server, server ? "server-key.pem" : "client-key.pem");
  if (gnutls_certificate_set_x509_key_file(*cred, cert.c_str(), key.c_str(),
                                           GNUTLS_X509_FMT_PEM) < 0)
    g_error("bare: cannot load %s", cert.c_str());
  gnutls_session_t s;
  gnutls_init(&s, server ? GNUTLS_SERVER : GNUTLS_CLIENT);
  gnutls_priority_set_direct(s, prio.c_str(), nullptr);
  gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, *cred);
  if (server) gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
  gnutls_transport_set_int(s, fd);
  return s;
}

struct BareGnutlsStream::Sessions {
  gnutls_certificate_credentials_t scred, ccred;
  gnutls_session_t ss, cs;
};

BareGnutlsStream::BareGnutlsStream(const BenchPki &pki, const std::string &prio)
    : s_(new Sessions) {
  s_->ss = bare_session(pki, true, qio_channel_socket_get_fd(conn_.server), prio, &s_->scred);
  s_->cs = bare_session(pki, false, qio_channel_socket_get_fd(conn_.client), prio, &s_->ccred);
  std::thread hs([this] {
    int ret;
    do ret = gnutls_handshake(s_->ss);
    while (ret < 0 && !gnutls_error_is_fatal(ret));
    if (ret < 0) g_error("bare server handshake: %s", gnutls_strerror(ret));
  });
  int ret;
  do ret = gnutls_handshake(s_->cs);
  while (ret < 0 && !gnutls_error_is_fatal(ret));
  if (ret < 0) g_error("bare client handshake: %s", gnutls_strerror(ret));
  hs.join();
}

BareGnutlsStream::~BareGnutlsStream() {
  gnutls_bye(s_->cs, GNUTLS_SHUT_WR);
  gnutls_deinit(s_->ss);
  gnutls_deinit(s_->cs);
  gnutls_certificate_free_credentials(s_->scred);
  gnutls_certificate_free_credentials(s_->ccred);
  delete s_;
}

double BareGnutlsStream::send(guint64 bytes) {
  std::vector<char> src(kRecord, 'b');
  gint64 start = g_get_monotonic_time();
  std::thread reader([this, bytes] {
    std::vector<char> dst(kRecord);
    guint64 got = 0;
    while (got < bytes) {
      ssize_t n = gnutls_record_recv(s_->ss, dst.data(), dst.size());
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
      if (n <= 0) g_error("bare recv: %s", gnutls_strerror(static_cast<int>(n)));
      got += static_cast<guint64>(n);
    }
  });
  for (guint64 sent = 0; sent < bytes;) {
    ssize_t n = gnutls_record_send(s_->cs, src.data(), std::min<guint64>(kRecord, bytes - sent));
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
    if (n < 0) g_error("bare send: %s", gnutls_strerror(static_cast<int>(n)));
    sent += static_cast<guint64>(n);
  }
  reader.join();
  return (g_get_monotonic_time() - start) / 1e6;
}

double bench_bare_gnutls_stream(const BenchPki &pki, const std::string &prio, guint64 total_bytes) {
  BareGnutlsStream stream(pki, prio);
  return total_bytes / stream.send(total_bytes) / (1 << 30);
}
