#include "config.h"

#include "migration/migration-transport.h"
#include "qio/channel-command.h"
#include "qio/channel-file.h"
#include "qio/channel-socket.h"
#include "qio/channel-tls.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qio::migration {

MigrationUri::MigrationUri(const MigrationUri &other)
    : kind(other.kind), text(other.text),
      address(other.address ? QIO_SOCKET_ADDRESS(g_object_ref(other.address)) : nullptr),
      command(other.command) {}

MigrationUri &MigrationUri::operator=(const MigrationUri &other) {
  if (this == &other) return *this;
  g_clear_object(&address);
  kind = other.kind;
  text = other.text;
  address = other.address ? QIO_SOCKET_ADDRESS(g_object_ref(other.address)) : nullptr;
  command = other.command;
  return *this;
}

MigrationUri::~MigrationUri() { g_clear_object(&address); }

std::string MigrationUri::host() const {
  if (kind != Kind::Tcp) return {};
  return qio_socket_address_get_host(address);
}

bool migration_uri_parse(const char *text, MigrationUri &uri, GError **error) {
  uri = MigrationUri();
  uri.text = text;
  if (g_str_has_prefix(text, "exec:")) {
    uri.kind = MigrationUri::Kind::Exec;
    uri.command = text + 5;
    if (uri.command.empty()) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                  _("Migration URI '%s' has no command; use exec:COMMAND"), text);
      return false;
    }
    return true;
  }
  const char *rest = nullptr;
  if (g_str_has_prefix(text, "tcp:")) {
    uri.kind = MigrationUri::Kind::Tcp;
    rest = text;
  } else if (g_str_has_prefix(text, "unix:")) {
    uri.kind = MigrationUri::Kind::Unix;
    rest = text;
  } else if (g_str_has_prefix(text, "fd:")) {
    uri.kind = MigrationUri::Kind::Fd;
    rest = text;
  } else {
    g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                _("Migration URI '%s' is not supported; use tcp:HOST:PORT, unix:PATH, "
                  "fd:NAME or exec:COMMAND"),
                text);
    return false;
  }
  /* The socket address parser takes "tcp:" as "inet:"; a missing port or
   * path is its error, which names the address. */
  g_autofree char *spec = uri.kind == MigrationUri::Kind::Tcp
                              ? g_strconcat("inet:", rest + 4, nullptr)
                              : g_strdup(rest);
  GError *local = nullptr;
  uri.address = qio_socket_address_parse(spec, &local);
  if (!uri.address) {
    g_propagate_prefixed_error(error, local, _("Migration URI '%s': "), text);
    return false;
  }
  if (uri.kind == MigrationUri::Kind::Tcp && qio_socket_address_get_port(uri.address) == 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                _("Migration URI '%s' needs a port other than 0; use tcp:HOST:PORT"), text);
    return false;
  }
  return true;
}

/* A descriptor from getfd may be a socket or a pipe end. */
static QIOChannel *channel_for_fd(int fd, GError **error) {
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
    QIOChannelSocket *sioc = qio_channel_socket_new_fd(fd, error);
    if (!sioc) close(fd);
    return sioc ? QIO_CHANNEL(sioc) : nullptr;
  }
  return QIO_CHANNEL(qio_channel_file_new_fd(fd));
}

QIOChannel *migration_connect(const MigrationUri &uri, const char *name, GCancellable *cancel,
                              GError **error) {
  QIOChannel *ioc = nullptr;
  switch (uri.kind) {
    case MigrationUri::Kind::Tcp:
    case MigrationUri::Kind::Unix: {
      g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
      if (!qio_channel_socket_connect_sync_cancellable(sioc, uri.address, cancel, error)) {
        g_prefix_error(error, _("Migration to '%s': "), uri.text.c_str());
        return nullptr;
      }
      ioc = QIO_CHANNEL(g_steal_pointer(&sioc));
      break;
    }
    case MigrationUri::Kind::Fd: {
      int fd = qio_socket_address_take_fd(uri.address, error);
      if (fd < 0) return nullptr;
      ioc = channel_for_fd(fd, error);
      if (!ioc) return nullptr;
      break;
    }
    case MigrationUri::Kind::Exec: {
      const char *argv[] = {"/bin/sh", "-c", uri.command.c_str(), nullptr};
      QIOChannelCommand *cioc = qio_channel_command_new_spawn(argv, O_RDWR, error);
      if (!cioc) {
        g_prefix_error(error, _("Migration to '%s': "), uri.text.c_str());
        return nullptr;
      }
      ioc = QIO_CHANNEL(cioc);
      break;
    }
  }
  /* The TLS handshake and hello must not wait for the peer's delayed ACK
   * (up to 40 ms each with Nagle; a TCP socket passed as fd: too);
   * MigrationSource turns Nagle on for the bulk rounds and off again for
   * the switch-over.  Other channels ignore it. */
  qio_channel_set_delay(ioc, FALSE);
  qio_channel_set_name(ioc, name);
  return ioc;
}

QIOChannel *migration_open_single_incoming(const MigrationUri &uri, GError **error) {
  g_return_val_if_fail(!uri.is_socket(), nullptr);
  return migration_connect(uri, "migration-incoming", nullptr, error);
}

static void fill_report(QIOChannelTLS *tioc, ChannelReport &report) {
  g_autoptr(QCryptoTLSSessionReport) r = qio_channel_tls_get_report(tioc);
  if (!r) return;
  report.protocol = r->protocol ? r->protocol : "";
  report.cipher = r->cipher ? r->cipher : "";
  report.kx = r->kx ? r->kx : "";
  report.peer = r->peer_identity ? r->peer_identity : "";
  report.resumed = r->resumed;
  report.handshake_us = r->handshake_us;
}

static QIOChannel *finish_tls(QIOChannelTLS *tioc, ChannelReport &report, GError **error) {
  qio_channel_set_name(QIO_CHANNEL(tioc), report.name.c_str());
  if (!qio_channel_tls_handshake_sync(tioc, nullptr, error)) {
    g_prefix_error(error, _("TLS handshake on migration channel '%s' failed: "),
                   report.name.c_str());
    g_object_unref(tioc);
    return nullptr;
  }
  fill_report(tioc, report);
  return QIO_CHANNEL(tioc);
}

QIOChannel *migration_tls_client(QIOChannel *plain, QCryptoTLSCreds *creds, const char *hostname,
                                 GBytes *resume, ChannelReport &report, GError **error) {
  QIOChannelTLS *tioc = qio_channel_tls_new_client(plain, creds, hostname, error);
  g_object_unref(plain);
  if (!tioc) return nullptr;
  g_autoptr(GError) resume_error = nullptr;
  /* Resumption only saves time: without it, a full handshake. */
  if (resume &&
      !qcrypto_tls_session_set_resumption_data(qio_channel_tls_get_session(tioc), resume,
                                               &resume_error))
    g_info("migration: %s", resume_error->message);
  return finish_tls(tioc, report, error);
}

QIOChannel *migration_tls_server(QIOChannel *plain, QCryptoTLSCreds *creds, QCryptoAuthz *authz,
                                 GBytes *ticket_key, ChannelReport &report, GError **error) {
  QIOChannelTLS *tioc = qio_channel_tls_new_server(plain, creds, authz, error);
  g_object_unref(plain);
  if (!tioc) return nullptr;
  if (ticket_key &&
      !qcrypto_tls_session_set_ticket_key(qio_channel_tls_get_session(tioc), ticket_key,
                                          error)) {
    g_object_unref(tioc);
    return nullptr;
  }
  return finish_tls(tioc, report, error);
}

bool migration_tls_send_ticket(QIOChannel *ioc, GError **error) {
  if (!QIO_IS_CHANNEL_TLS(ioc)) return true;
  /* Migration channels block, so "would block" (0) does not happen. */
  int sent =
      qcrypto_tls_session_send_ticket(qio_channel_tls_get_session(QIO_CHANNEL_TLS(ioc)), error);
  g_assert(sent != 0);
  return sent > 0;
}

GBytes *migration_tls_resumption_data(QIOChannel *ioc) {
  if (!QIO_IS_CHANNEL_TLS(ioc)) return nullptr;
  return qcrypto_tls_session_get_resumption_data(
      qio_channel_tls_get_session(QIO_CHANNEL_TLS(ioc)));
}

}  // namespace qio::migration
