/* Websockets (qio/channel-websock, RFC 6455) from the peer's side: the
 * HTTP upgrade handshake and then frames (fragments, control frames,
 * masking, lengths, close codes), read until EOF or an error.
 * Byte 0: bit 0 makes qio the client (the input is the server's answer
 * and frames), else the server; bits 1-2 pick the largest payload
 * accepted (16, 125, 64 KiB, the default); bit 3, for a server, puts a
 * valid upgrade request before the input, so that the fuzzer reaches
 * frames without having to find the handshake first. */
#include "config.h"

#include "qio/channel-websock.h"
#include "tests/fuzz/fuzz-util.h"

#include <cstddef>
#include <cstdint>

namespace {

constexpr size_t kMaxInput = 60000;
constexpr char kUpgradeRequest[] =
    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
constexpr gsize kMaxPayloads[] = {16, 125, 65536, QIO_CHANNEL_WEBSOCK_DEFAULT_MAX_PAYLOAD};

/* The peer's bytes are all in the socket before qio reads (the buffers
 * hold them), so the blocking channel never waits on the fuzzer. */
void send_all(int fd, const void *data, size_t size) {
  const auto *p = static_cast<const guint8 *>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n <= 0) abort();
    p += n;
    size -= n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > kMaxInput) return 0;
  const guint8 mode = data[0];
  const bool client = mode & 1;
  fuzz::PeerPair pair;
  if (!client && (mode & 8)) send_all(pair.fd, kUpgradeRequest, sizeof kUpgradeRequest - 1);
  send_all(pair.fd, data + 1, size - 1);
  shutdown(pair.fd, SHUT_WR);

  QIOChannel *master = QIO_CHANNEL(pair.server);
  QIOChannelWebsock *ws = client ? qio_channel_websock_new_client(master, "localhost", "/")
                                 : qio_channel_websock_new_server(master);
  qio_channel_websock_set_max_payload(ws, kMaxPayloads[(mode >> 1) & 3]);
  GError *error = nullptr;
  if (qio_channel_websock_handshake_sync(ws, nullptr, &error)) {
    char buf[4096];
    while (qio_channel_read(QIO_CHANNEL(ws), buf, sizeof buf, &error) > 0) {
    }
    g_clear_error(&error);
    const char reply[] = "reply";
    qio_channel_write(QIO_CHANNEL(ws), reply, sizeof reply, &error);
  }
  g_clear_error(&error);
  qio_channel_close(QIO_CHANNEL(ws), nullptr);
  g_object_unref(ws);
  return 0;
}
