/*
 * Migration transports: the URIs (tcp:, unix:, fd:, exec:), opening the
 * source's channels, and the TLS layer each channel gets when tls-creds
 * is set.  Everything here blocks; it runs on migration threads.
 */
#pragma once

#include "qcrypto/authz.h"
#include "qcrypto/tls-creds.h"
#include "qio/channel.h"
#include "qio/socket-address.h"

#include <glib.h>

#include <string>

namespace qio::migration {

struct MigrationUri {
  enum class Kind { Tcp, Unix, Fd, Exec };
  Kind kind = Kind::Tcp;
  std::string text;
  /* tcp:/unix:/fd: as a socket address (owned). */
  QIOSocketAddress *address = nullptr;
  /* exec: the shell command. */
  std::string command;

  MigrationUri() = default;
  MigrationUri(const MigrationUri &other);
  MigrationUri &operator=(const MigrationUri &other);
  ~MigrationUri();

  /* Sockets that can be connected again (multifd needs more channels). */
  bool is_socket() const { return kind == Kind::Tcp || kind == Kind::Unix; }
  /* The host name for TLS certificate checks (tcp: only; empty otherwise). */
  std::string host() const;
};

bool migration_uri_parse(const char *text, MigrationUri &uri, GError **error);

/* A blocking channel to the destination named @name (in messages).  For
 * exec: a child running `sh -c COMMAND` whose stdin and stdout carry the
 * stream; for fd: the descriptor from the monitor's `getfd`.  Cancelling
 * @cancel (may be NULL) from another thread ends a tcp:/unix: connect
 * still in progress. */
QIOChannel *migration_connect(const MigrationUri &uri, const char *name, GCancellable *cancel,
                              GError **error);

/* What query-migrate reports about one channel. */
struct ChannelReport {
  std::string name;
  std::string protocol;
  std::string cipher;
  std::string kx;
  std::string peer;
  bool resumed = false;
  gint64 handshake_us = 0;
};

/* Wraps @plain (consumed) in a TLS session and runs its handshake in the
 * calling thread; fills @report.  NULL with @error naming the channel.
 * A client given @resume (may be NULL) offers to resume that session; a
 * server given @ticket_key (may be NULL) issues tickets sealed with it and
 * resumes the sessions whose ticket it opens. */
QIOChannel *migration_tls_client(QIOChannel *plain, QCryptoTLSCreds *creds, const char *hostname,
                                 GBytes *resume, ChannelReport &report, GError **error);
QIOChannel *migration_tls_server(QIOChannel *plain, QCryptoTLSCreds *creds, QCryptoAuthz *authz,
                                 GBytes *ticket_key, ChannelReport &report, GError **error);
/* On the destination's main channel: the ticket the source's multifd
 * channels resume the session with (nothing for plaintext, PSK, anon). */
bool migration_tls_send_ticket(QIOChannel *ioc, GError **error);
/* What resumes the TLS session of the source channel @ioc on further
 * channels to the same destination, or NULL (plaintext, no ticket). */
GBytes *migration_tls_resumption_data(QIOChannel *ioc);

/* A channel for an incoming fd: or exec: URI (these carry one channel). */
QIOChannel *migration_open_single_incoming(const MigrationUri &uri, GError **error);

}  // namespace qio::migration
