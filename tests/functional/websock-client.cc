/* A websocket client for the interop tests: connects to 127.0.0.1:PORT,
 * runs qio's client handshake (offering "binary" with --binary), sends
 * BYTES bytes from a writer thread while reading the echo, compares, and
 * closes with code 1000.  Prints "protocol P" and "echo ok"; exit status
 * 0 on success. */
#include "config.h"

#include "qio/channel-socket.h"
#include "qio/channel-websock.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

int main(int argc, char **argv) {
  if (argc < 3) {
    g_printerr("usage: %s PORT BYTES [--binary]\n", argv[0]);
    return 2;
  }
  guint16 port = static_cast<guint16>(atoi(argv[1]));
  gsize size = g_ascii_strtoull(argv[2], nullptr, 10);
  bool binary = argc > 3 && strcmp(argv[3], "--binary") == 0;

  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_inet("127.0.0.1", port);
  g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
  if (!qio_channel_socket_connect_sync(sioc, addr, &error)) {
    g_printerr("connect: %s\n", error->message);
    return 1;
  }
  g_autoptr(QIOChannelWebsock) wioc =
      qio_channel_websock_new_client(QIO_CHANNEL(sioc), "127.0.0.1", "/echo");
  qio_channel_websock_set_offer_binary(wioc, binary);
  if (!qio_channel_websock_handshake_sync(wioc, nullptr, &error)) {
    g_printerr("handshake: %s\n", error->message);
    return 1;
  }
  const char *protocol = qio_channel_websock_get_protocol(wioc);
  printf("protocol %s\n", protocol ? protocol : "none");

  std::string out(size, '\0');
  for (gsize i = 0; i < size; i++) out[i] = static_cast<char>((i * 131 + 7) % 251);
  QIOChannel *ioc = QIO_CHANNEL(wioc);
  bool wrote = false;
  std::thread writer([&] {
    g_autoptr(GError) werr = nullptr;
    wrote = qio_channel_write_all(ioc, out.data(), out.size(), &werr);
    if (!wrote) g_printerr("write: %s\n", werr->message);
  });
  std::string in(size, '\0');
  bool read = qio_channel_read_all(ioc, in.data(), in.size(), &error);
  writer.join();
  if (!read) {
    g_printerr("read: %s\n", error->message);
    return 1;
  }
  if (!wrote || in != out) {
    g_printerr("echo differs from what was sent\n");
    return 1;
  }
  printf("echo ok\n");
  fflush(stdout);
  if (!qio_channel_close(ioc, &error)) {
    g_printerr("close: %s\n", error->message);
    return 1;
  }
  return 0;
}
