/*
 * VncServer: the guest's display over RFB 3.3/3.7/3.8 (RFC 6143), as
 * QEMU's -vnc offers it: the framebuffer in Tight encoding (lossless) or
 * Raw, whichever the client prefers, in any true-colour pixel format, key
 * events typed into the serial console.  Security:
 * None, VNC password, SASL, and VeNCrypt (TLS with x509 or anonymous
 * credentials, then one of those) when tls-creds is set, in which case
 * nothing but VeNCrypt is offered.  A websocket listener (RFC 6455, wss
 * when tls-creds is set) serves browsers such as noVNC.
 *
 * Each client is a coroutine on the main context while it negotiates;
 * afterwards its messages are read by the same coroutine and its updates
 * are queued and written from channel watches, one update at a time, so a
 * slow client gets fewer, larger updates and never makes the server
 * buffer without bound.  Used from the main loop thread only.
 */
#pragma once

#include "host/guest.h"
#include "qcrypto/authz.h"
#include "qcrypto/tls-creds.h"
#include "qio/log-limiter.h"
#include "qio/net-listener.h"
#include "ui/vnc-auth-throttle.h"

#include <glib.h>

#include <list>
#include <memory>
#include <string>
#include <vector>

namespace qio::ui {

/* -vnc's options, QEMU's names. */
struct VncConfig {
  std::string address;           /* HOST:DISPLAY or unix:PATH, as given */
  std::string tls_creds;         /* server credentials: x509 or anon */
  std::string tls_authz;         /* checks the client certificate's DN */
  bool sasl = false;             /* SASL authentication */
  std::string sasl_authz;        /* checks the SASL user name */
  bool password = false;         /* VNC password, set later with set_password */
  std::string password_secret;   /* VNC password from a secret object */
  std::string websocket;         /* "on", PORT or HOST:PORT; empty: none */
  guint connections = 32;        /* clients at once */

  /* Parses `-vnc` text; errors name the option. */
  static bool parse(const char *text, VncConfig &out, GError **error);
};

/* One client as query-vnc shows it. */
struct VncClientInfo {
  std::string host, service, family;
  bool websocket = false;
  std::string x509_dname;    /* empty: no client certificate */
  std::string sasl_username; /* empty: no SASL */
  std::string encoding; /* of framebuffer updates: "raw" or "tight" */
};

class VncServer {
 public:
  static std::unique_ptr<VncServer> create(const VncConfig &config, host::Guest &guest,
                                           GError **error);
  ~VncServer();
  VncServer(const VncServer &) = delete;
  VncServer &operator=(const VncServer &) = delete;

  /* The address the RFB listener is bound to: host, port, family. */
  std::string host() const;
  std::string service() const;
  std::string family() const;
  /* Ports of the websocket listener; empty when there is none. */
  std::string websocket_service() const;
  /* query-vnc's "auth", QEMU's names: "none", "vnc", "sasl", or for
   * VeNCrypt "vencrypt+x509+none", "vencrypt+tls+vnc", ... */
  const char *auth_name() const;
  std::vector<VncClientInfo> clients() const;

  /* Sets (or with NULL clears) the VNC password; only with password=on or
   * password-secret. */
  bool set_password(const char *password, GError **error);
  /* QEMU's expire_password times: "now", "never", "+SECONDS" from now, or
   * SECONDS since the epoch.  Once that second is past, VNC authentication
   * fails until another expire_password moves the time (set_password
   * leaves it). */
  bool expire_password(const char *time, GError **error);
  /* Loads the TLS credentials' files again for new clients. */
  bool reload_tls(GError **error);

  struct Conn;

 private:
  /* Sends the guest's drawing since the last call to clients waiting. */
  void refresh();
  VncServer(host::Guest &guest) : guest_(guest) {}
  bool open_listeners(const VncConfig &config, GError **error);
  void add_client(QIOChannelSocket *sioc, bool websocket);
  static void on_client(QIONetListener *listener, QIOChannelSocket *client,
                        gpointer data) noexcept;
  static void on_ws_client(QIONetListener *listener, QIOChannelSocket *client,
                           gpointer data) noexcept;
  static gboolean on_refresh(gpointer data) noexcept;
  void conn_finished(Conn *conn, GError *error);
  void log_failure(const char *message);

  friend struct Conn;
  host::Guest &guest_;
  QIONetListener *listener_ = nullptr;
  QIONetListener *ws_listener_ = nullptr;
  QCryptoTLSCreds *creds_ = nullptr;
  QCryptoAuthz *tls_authz_ = nullptr;
  QCryptoAuthz *sasl_authz_ = nullptr;
  bool x509_ = false;
  bool sasl_ = false;
  bool password_auth_ = false;
  std::string password_; /* empty with password_auth_: every attempt fails */
  gint64 password_expires_ = G_MAXINT64; /* seconds since the epoch */
  guint max_clients_ = 32;
  std::list<Conn *> conns_;
  guint refresh_timer_ = 0;
  guint unix_clients_ = 0; /* numbers UNIX clients in log lines */
  LogLimiter failure_log_;
  VncAuthThrottle auth_throttle_;
  LogLimiter throttle_log_;
  bool stopping_ = false;
};

}  // namespace qio::ui
