/* The NBD client (nbd/client) as a server sees it: the input is what the
 * server sends (greeting, option replies, then replies to commands),
 * written over a socket pair by a thread that then reads what the client
 * sends until it closes.  Byte 0, bit 0: list the exports
 * (nbd_client_list) instead of connecting to "fuzz" and running one of
 * each command: read, write with FUA, flush, trim, write zeroes and
 * block status, whose simple and structured replies, chunks and extents
 * the client must check against what it asked for. */
#include "config.h"

#include "nbd/client.h"
#include "tests/fuzz/fuzz-util.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

namespace {

constexpr size_t kMaxInput = 1 << 16;
constexpr gsize kIoSize = 4096;

/* The server: sends @data and EOF, then swallows what the client says. */
void serve(int fd, const uint8_t *data, size_t size) {
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += n;
  }
  shutdown(fd, SHUT_WR);
  char sink[65536];
  while (read(fd, sink, sizeof sink) > 0) {
  }
}

void run_commands(NBDClient *client) {
  static guint8 buf[kIoSize];
  GError *error = nullptr;
  nbd_client_read(client, 0, buf, sizeof buf, &error);
  g_clear_error(&error);
  nbd_client_write(client, kIoSize, buf, sizeof buf, TRUE, &error);
  g_clear_error(&error);
  nbd_client_flush(client, &error);
  g_clear_error(&error);
  nbd_client_trim(client, 0, kIoSize, &error);
  g_clear_error(&error);
  nbd_client_write_zeroes(client, kIoSize, kIoSize, &error);
  g_clear_error(&error);
  if (GArray *extents = nbd_client_block_status(client, 0, 1 << 20, &error))
    g_array_unref(extents);
  g_clear_error(&error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const bool initialized = (fuzz::quiet_logs(), true);
  (void)initialized;
  if (size < 1 || size > kMaxInput) return 0;
  const bool list = data[0] & 1;
  fuzz::PeerPair pair;
  g_unix_set_fd_nonblocking(pair.fd, FALSE, nullptr);
  std::thread server(serve, pair.fd, data + 1, size - 1);

  /* The client connects to an fd: address, which it duplicates. */
  std::string fd_name = std::to_string(qio_channel_socket_get_fd(pair.server));
  QIOSocketAddress *addr = qio_socket_address_new_fd(fd_name.c_str());
  NBDClient *client = nbd_client_new();
  GError *error = nullptr;
  if (list) {
    if (GPtrArray *exports = nbd_client_list(client, addr, &error)) g_ptr_array_unref(exports);
  } else if (nbd_client_connect(client, addr, "fuzz", &error)) {
    run_commands(client);
    nbd_client_disconnect(client);
  }
  g_clear_error(&error);
  g_object_unref(client);
  g_object_unref(addr);
  /* The client's duplicate is closed: close ours so that the server sees EOF. */
  qio_channel_close(QIO_CHANNEL(pair.server), nullptr);
  server.join();
  return 0;
}
