/* A websocket echo server for the interop tests: listens on 127.0.0.1 on a
 * kernel-chosen port, prints "port N", runs each handshake asynchronously
 * in the main loop, then echoes every client's bytes from a thread.  The
 * path "/small" limits frames to 1000 bytes.  Exits when stdin closes. */
#include "config.h"

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

static void new_client(QIONetListener *, QIOChannelSocket *client, gpointer) {
  qio_channel_set_blocking(QIO_CHANNEL(client), FALSE, nullptr);
  QIOChannelWebsock *wioc = qio_channel_websock_new_server(QIO_CHANNEL(client));
  qio_channel_websock_handshake(wioc, nullptr, nullptr, handshake_done, nullptr);
}

int main() {
  g_autoptr(GError) error = nullptr;
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
  qio_net_listener_set_client_func(listener, new_client, nullptr, nullptr, nullptr);
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
