/* A websocket echo server for the interop tests: listens on 127.0.0.1 on a
 * kernel-chosen port, prints "port N", runs each handshake asynchronously
 * in the main loop, then echoes every client's bytes from a thread.  The
 * path "/small" limits frames to 1000 bytes.  Exits when stdin closes.
 * With "--tls DIR" it serves wss: x509 server credentials from DIR, no
 * client certificate asked (browsers have none), TLS handshake first. */
#include "config.h"

#include "qcrypto/tls-creds-x509.h"
#include "qio/channel-tls.h"
#include "qio/channel-websock.h"
#include "qio/net-listener.h"

#include <glib-unix.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>

static gpointer echo_thread(gpointer data) {
  g_autoptr(QIOChannelWebsock) wioc = QIO_CHANNEL_WEBSOCK(data);
  QIOChannel *ioc = QIO_CHANNEL(wioc);
  g_autoptr(GError) error = nullptr;
  if (!qio_channel_set_blocking(ioc, TRUE, &error)) {
    g_printerr("echo: %s\n", error->message);
    return nullptr;
  }
  if (g_strcmp0(qio_channel_websock_get_path(wioc), "/small") == 0)
    qio_channel_websock_set_max_payload(wioc, 1000);
  constexpr gsize kBuf = 64 * 1024;
  g_autofree char *buf = static_cast<char *>(g_malloc(kBuf));
  while (true) {
    gssize n = qio_channel_read(ioc, buf, kBuf, &error);
    if (n <= 0) break;
    if (!qio_channel_write_all(ioc, buf, static_cast<gsize>(n), &error)) break;
  }
  if (error) g_printerr("echo: %s\n", error->message);
  qio_channel_close(ioc, nullptr);
  return nullptr;
}

static void handshake_done(GObject *source, GAsyncResult *result, gpointer) {
  auto *wioc = QIO_CHANNEL_WEBSOCK(source);
  g_autoptr(GError) error = nullptr;
  if (!qio_channel_websock_handshake_finish(wioc, result, &error)) {
    g_printerr("handshake: %s\n", error->message);
    qio_channel_close(QIO_CHANNEL(wioc), nullptr);
    g_object_unref(wioc);
    return;
  }
  g_thread_unref(g_thread_new("echo", echo_thread, wioc));
}

static void start_websock(QIOChannel *master) {
  QIOChannelWebsock *wioc = qio_channel_websock_new_server(master);
  qio_channel_websock_handshake(wioc, nullptr, nullptr, handshake_done, nullptr);
}

static void tls_done(GObject *source, GAsyncResult *result, gpointer) {
  g_autoptr(QIOChannelTLS) tioc = QIO_CHANNEL_TLS(source);
  g_autoptr(GError) error = nullptr;
  if (!qio_channel_tls_handshake_finish(tioc, result, &error)) {
    g_printerr("tls: %s\n", error->message);
    qio_channel_close(QIO_CHANNEL(tioc), nullptr);
    return;
  }
  start_websock(QIO_CHANNEL(tioc));
}

static void new_client(QIONetListener *, QIOChannelSocket *client, gpointer creds) {
  qio_channel_set_blocking(QIO_CHANNEL(client), FALSE, nullptr);
  if (!creds) {
    start_websock(QIO_CHANNEL(client));
    return;
  }
  g_autoptr(GError) error = nullptr;
  QIOChannelTLS *tioc = qio_channel_tls_new_server(
      QIO_CHANNEL(client), QCRYPTO_TLS_CREDS(creds), nullptr, &error);
  if (!tioc) {
    g_printerr("tls: %s\n", error->message);
    return;
  }
  qio_channel_tls_handshake(tioc, nullptr, tls_done, nullptr, nullptr);
}

int main(int argc, char **argv) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoTLSCreds) creds = nullptr;
  if (argc == 3 && strcmp(argv[1], "--tls") == 0) {
    auto *x509 = g_object_new(QCRYPTO_TYPE_TLS_CREDS_X509, "id", "tls0", "dir", argv[2],
                              "endpoint", QCRYPTO_TLS_CREDS_ENDPOINT_SERVER, "verify-peer",
                              FALSE, nullptr);
    creds = QCRYPTO_TLS_CREDS(x509);
    if (!g_initable_init(G_INITABLE(creds), nullptr, &error)) {
      g_printerr("tls: %s\n", error->message);
      return 1;
    }
  }
  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  qio_net_listener_set_name(listener, "websock-echo");
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_inet("127.0.0.1", 0);
  if (!qio_net_listener_open_sync(listener, addr, 16, &error)) {
    g_printerr("listen: %s\n", error->message);
    return 1;
  }
  g_autoptr(QIOSocketAddress) bound = qio_net_listener_get_address(listener, 0, &error);
  if (!bound) {
    g_printerr("listen: %s\n", error->message);
    return 1;
  }
  printf("port %u\n", qio_socket_address_get_port(bound));
  fflush(stdout);
  qio_net_listener_set_client_func(listener, new_client, creds, nullptr, nullptr);
  g_autoptr(GMainLoop) loop = g_main_loop_new(nullptr, FALSE);
  g_unix_fd_add(
      STDIN_FILENO, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP),
      +[](int fd, GIOCondition, gpointer data) noexcept -> gboolean {
        char c;
        if (read(fd, &c, 1) > 0) return G_SOURCE_CONTINUE;
        g_main_loop_quit(static_cast<GMainLoop *>(data));
        return G_SOURCE_REMOVE;
      },
      loop);
  g_main_loop_run(loop);
  qio_net_listener_disconnect(listener);
  return 0;
}
