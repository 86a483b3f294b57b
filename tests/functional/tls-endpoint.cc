/*
 * A QIOChannelTLS endpoint for the interop tests:
 *   tls-endpoint server PORT DIR x509|psk [verify-peer=on|off]
 *   tls-endpoint client PORT DIR x509|psk HOSTNAME [USERNAME]
 * The server accepts one client on 127.0.0.1:PORT and echoes one line back;
 * the client sends "hello from qio" and expects it echoed.  Prints
 * "handshake: PROTOCOL CIPHER PEER" or "error: MESSAGE"; exits 0 on success.
 */
#include "config.h"

#include "qcrypto/tls-creds-psk.h"
#include "qcrypto/tls-creds-x509.h"
#include "qio/channel-socket.h"
#include "qio/channel-tls.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace {

int fail(const GError *error) {
  printf("error: %s\n", error->message);
  fflush(stdout);
  return 1;
}

QCryptoTLSCreds *make_creds(bool server, const char *dir, const char *kind, bool verify,
                            const char *username, GError **error) {
  bool psk = strcmp(kind, "psk") == 0;
  auto endpoint = server ? QCRYPTO_TLS_CREDS_ENDPOINT_SERVER : QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT;
  GObject *obj =
      psk ? G_OBJECT(g_object_new(QCRYPTO_TYPE_TLS_CREDS_PSK, "id", "tls0", "dir", dir,
                                  "endpoint", endpoint, "username", username, nullptr))
          : G_OBJECT(g_object_new(QCRYPTO_TYPE_TLS_CREDS_X509, "id", "tls0", "dir", dir,
                                  "endpoint", endpoint, "verify-peer", verify, nullptr));
  if (!g_initable_init(G_INITABLE(obj), nullptr, error)) {
    g_object_unref(obj);
    return nullptr;
  }
  return QCRYPTO_TLS_CREDS(obj);
}

/* Reads one line (at most @max bytes). */
bool read_line(QIOChannel *ioc, std::string &line, GError **error) {
  char c;
  while (line.size() < 4096) {
    gssize n = qio_channel_read(ioc, &c, 1, error);
    if (n <= 0) return false;
    line.push_back(c);
    if (c == '\n') return true;
  }
  return true;
}

void report(QIOChannelTLS *tioc) {
  g_autoptr(QCryptoTLSSessionReport) r = qio_channel_tls_get_report(tioc);
  printf("handshake: %s %s %s\n", r->protocol, r->cipher,
         r->peer_identity ? r->peer_identity : "-");
  fflush(stdout);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s server|client PORT DIR x509|psk [...]\n", argv[0]);
    return 2;
  }
  bool server = strcmp(argv[1], "server") == 0;
  guint port = static_cast<guint>(atoi(argv[2]));
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_inet("127.0.0.1", port);
  if (server) {
    bool verify = !(argc > 5 && strcmp(argv[5], "verify-peer=off") == 0);
    g_autoptr(QCryptoTLSCreds) creds = make_creds(true, argv[3], argv[4], verify, nullptr, &error);
    if (!creds) return fail(error);
    g_autoptr(QIOChannelSocket) listener = qio_channel_socket_new();
    if (!qio_channel_socket_listen_sync(listener, addr, 1, &error)) return fail(error);
    printf("listening\n");
    fflush(stdout);
    g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_accept(listener, &error);
    if (!sioc) return fail(error);
    g_autoptr(QIOChannelTLS) tioc =
        qio_channel_tls_new_server(QIO_CHANNEL(sioc), creds, nullptr, &error);
    if (!tioc || !qio_channel_tls_handshake_sync(tioc, nullptr, &error)) return fail(error);
    report(tioc);
    std::string line;
    if (!read_line(QIO_CHANNEL(tioc), line, &error)) {
      if (error) return fail(error);
      printf("error: the client sent no line\n");
      return 1;
    }
    if (!qio_channel_write_all(QIO_CHANNEL(tioc), line.data(), line.size(), &error))
      return fail(error);
    /* Wait for the client's bye (or close) before ours. */
    char c;
    while (qio_channel_read(QIO_CHANNEL(tioc), &c, 1, nullptr) > 0) {
    }
    qio_channel_close(QIO_CHANNEL(tioc), nullptr);
    printf("echoed: %s", line.c_str());
    return 0;
  }
  if (argc < 6) return 2;
  g_autoptr(QCryptoTLSCreds) creds =
      make_creds(false, argv[3], argv[4], true, argc > 6 ? argv[6] : nullptr, &error);
  if (!creds) return fail(error);
  g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
  if (!qio_channel_socket_connect_sync(sioc, addr, &error)) return fail(error);
  g_autoptr(QIOChannelTLS) tioc =
      qio_channel_tls_new_client(QIO_CHANNEL(sioc), creds, argv[5], &error);
  if (!tioc || !qio_channel_tls_handshake_sync(tioc, nullptr, &error)) return fail(error);
  report(tioc);
  const char msg[] = "hello from qio\n";
  if (!qio_channel_write_all(QIO_CHANNEL(tioc), msg, strlen(msg), &error)) return fail(error);
  std::string line;
  if (!read_line(QIO_CHANNEL(tioc), line, &error)) {
    if (error) return fail(error);
    printf("error: the server closed before echoing\n");
    return 1;
  }
  printf("echoed: %s", line.c_str());
  if (!qio_channel_close(QIO_CHANNEL(tioc), &error)) return fail(error);
  return line == msg ? 0 : 1;
}
