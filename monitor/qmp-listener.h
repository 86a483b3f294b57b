/*
 * QmpListener: a listening address whose clients become QMP sessions of a
 * QmpServer, optionally behind TLS: with tls-creds every client first
 * completes a TLS handshake (at most 10 s), checked against tls-authz when
 * given.  Holds references on those objects while it exists, so that
 * object-del refuses to delete them.  Owns the QIONetListener and removes
 * its UNIX socket file when destroyed.
 */
#pragma once

#include "monitor/qmp-server.h"
#include "qcrypto/authz.h"
#include "qcrypto/tls-creds.h"
#include "qio/log-limiter.h"
#include "qio/net-listener.h"

#include <list>
#include <memory>
#include <string>

namespace qio::monitor {

struct QmpListenerConfig {
  std::string address;  /* as qio_socket_address_parse() accepts it */
  bool wait = false;    /* block in open() until a first client connects */
  std::string tls_creds; /* id of server TLS credentials, or empty */
  std::string tls_authz; /* id of an authorization object, or empty */
};

class QmpListener {
 public:
  static std::unique_ptr<QmpListener> open(QmpServer &server, const QmpListenerConfig &config,
                                           GError **error);
  ~QmpListener();
  QmpListener(const QmpListener &) = delete;
  QmpListener &operator=(const QmpListener &) = delete;

  /* Stops accepting; clients already connected stay. */
  void disconnect();

 private:
  explicit QmpListener(QmpServer &server);
  void take_client(QIOChannelSocket *client);
  bool setup_tls(const QmpListenerConfig &config, GError **error);
  struct Handshake;
  static void on_handshake(GObject *source, GAsyncResult *result, gpointer data) noexcept;

  QmpServer &server_;
  QIONetListener *listener_;
  QCryptoTLSCreds *creds_ = nullptr;
  QCryptoAuthz *authz_ = nullptr;
  /* Handshakes in flight hold a weak reference: one finishing after the
   * listener is gone drops its client. */
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  /* TLS handshakes under way, oldest first: at most max_clients, or
   * silent connections would hold a session and a descriptor each until
   * their timeout; beyond that the oldest gives way. */
  std::list<Handshake *> pending_;
  qio::LogLimiter crowd_log_; /* too many handshakes: a line a second */
};

}  // namespace qio::monitor
