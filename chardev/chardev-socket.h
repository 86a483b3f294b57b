/*
 * ChardevSocket: the "socket" backend: a TCP or UNIX socket, or an
 * inherited descriptor; listening (server=on, one client at a time, as
 * QEMU does) or connecting (server=off, optionally reconnecting every
 * reconnect-ms after the peer goes away).  With tls-creds the TLS
 * handshake completes before any byte reaches the frontend; websocket=on
 * adds an RFC 6455 server layer on top; telnet=on speaks telnet option
 * negotiation and strips it from the input.
 */
#pragma once

#include "chardev/chardev-options.h"
#include "chardev/chardev.h"
#include "qcrypto/authz.h"
#include "qcrypto/tls-creds.h"
#include "qio/channel-socket.h"
#include "qio/log-limiter.h"
#include "qio/net-listener.h"

#include <memory>
#include <string>

namespace qio::chardev {

class ChardevSocket final : public Chardev {
 public:
  /* Takes the socket options from @opts. */
  static std::unique_ptr<ChardevSocket> create(ChardevOptions &opts, GMainContext *context,
                                               GError **error);
  ~ChardevSocket() override;

  bool open(GError **error) override;
  void open_async(OpenDone done) override;
  std::string filename() const override;
  void describe(JsonObject *info) const override;
  /* With telnet=on, a 0xff byte goes out as IAC IAC. */
  gsize write(std::string_view data) override;

  /* Handshakes (TLS, websocket) that take longer are abandoned. */
  static constexpr guint kHandshakeTimeoutMs = 10000;

 protected:
  void hangup() override;
  void filter_input(std::string_view bytes) override;

 private:
  struct Pending;
  ChardevSocket(const std::string &id, GMainContext *context);

  static void on_client(QIONetListener *listener, QIOChannelSocket *client,
                        gpointer data) noexcept;
  static void on_connected(GObject *source, GAsyncResult *result, gpointer data) noexcept;
  static void on_tls_done(GObject *source, GAsyncResult *result, gpointer data) noexcept;
  static void on_websock_done(GObject *source, GAsyncResult *result, gpointer data) noexcept;
  static gboolean on_reconnect(gpointer data) noexcept;
  static gboolean on_handshake_timeout(gpointer data) noexcept;

  Pending *new_pending();
  void listen_for_clients();
  void start_session(QIOChannelSocket *sioc);
  void start_websock(QIOChannel *master);
  void session_ready(QIOChannel *top);
  void session_failed(const char *what, const GError *error);
  void log_peer_event(bool failure, const char *line);
  void end_session();
  void schedule_reconnect();
  void remove_source(guint &id);
  std::string address_text() const;

  QIOSocketAddress *addr_ = nullptr;
  int fd_ = -1;
  std::string fd_name_; /* from the monitor: a getfd name, taken by open() */
  bool fd_owned_ = false; /* fd_ came from getfd (an inherited fd=N is not ours to close) */
  bool has_fd() const { return fd_ >= 0 || !fd_name_.empty(); }
  /* Peers' comings and goings, and failed handshakes: apart, so that the
   * first never hide the second. */
  LogLimiter peer_log_, failure_log_;
  std::string fd_text_; /* fd=N as given, for messages */
  bool server_ = false;
  bool wait_ = true;
  bool nodelay_ = false;
  bool telnet_ = false;
  bool websocket_ = false;
  guint64 reconnect_ms_ = 0;
  QCryptoTLSCreds *creds_ = nullptr;
  QCryptoAuthz *authz_ = nullptr;

  QIONetListener *listener_ = nullptr;
  QIOChannelSocket *sioc_ = nullptr;
  QIOChannel *top_ = nullptr;
  Pending *pending_ = nullptr;
  OpenDone open_done_; /* open_async() waiting for its first connection */
  guint handshake_timer_ = 0;
  guint reconnect_timer_ = 0;
  std::string peer_;
  std::string tls_protocol_, tls_cipher_, tls_peer_;
  bool has_tls_peer_ = false;
  guint64 connects_ = 0;
  /* Telnet input parser: 0 data, 1 after IAC, 2 option byte, 3 in a
   * subnegotiation, 4 IAC inside a subnegotiation. */
  int telnet_state_ = 0;
  std::string filtered_;
  std::string escaped_;
};

}  // namespace qio::chardev
