/* Websocket framing cost: bytes through a websock server -> client and
 * client -> server (masked) over a UNIX socket pair, against the same
 * socket pair without websockets, in the same run.  Prints bench lines;
 * asserts nothing about time. */
#include "config.h"

#include "qio/channel-socket.h"
#include "qio/channel-websock.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

guint64 total_bytes = 1ULL << 30;
int rounds = 3;
constexpr gsize kChunk = 256 * 1024;

void writer(QIOChannel *ioc, const std::vector<guint8> &buf) {
  for (guint64 done = 0; done < total_bytes; done += kChunk) {
    if (!qio_channel_write_all(ioc, buf.data(), kChunk, nullptr)) g_error("write failed");
  }
}

void reader(QIOChannel *ioc) {
  std::vector<guint8> buf(kChunk);
  guint64 done = 0;
  while (done < total_bytes) {
    gssize n = qio_channel_read(ioc, buf.data(), buf.size(), nullptr);
    if (n <= 0) g_error("read failed");
    done += static_cast<guint64>(n);
  }
}

/* GiB/s of one transfer from @from to @to. */
double timed(QIOChannel *from, QIOChannel *to, const std::vector<guint8> &buf) {
  gint64 start = g_get_monotonic_time();
  std::thread r(reader, to);
  writer(from, buf);
  r.join();
  double secs = static_cast<double>(g_get_monotonic_time() - start) / 1e6;
  return static_cast<double>(total_bytes) / static_cast<double>(1ULL << 30) / secs;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

enum class Mode { kPlain, kServerToClient, kClientToServer };

double one_run(Mode mode, const std::vector<guint8> &buf) {
  QIOChannelSocket *a = nullptr, *b = nullptr;
  if (!qio_channel_socket_new_pair(&a, &b, nullptr)) g_error("socketpair failed");
  double v;
  if (mode == Mode::kPlain) {
    v = timed(QIO_CHANNEL(a), QIO_CHANNEL(b), buf);
  } else {
    g_autoptr(QIOChannelWebsock) server = qio_channel_websock_new_server(QIO_CHANNEL(a));
    g_autoptr(QIOChannelWebsock) client =
        qio_channel_websock_new_client(QIO_CHANNEL(b), "localhost", "/");
    std::thread hs([&] {
      if (!qio_channel_websock_handshake_sync(server, nullptr, nullptr)) g_error("handshake");
    });
    if (!qio_channel_websock_handshake_sync(client, nullptr, nullptr)) g_error("handshake");
    hs.join();
    v = mode == Mode::kServerToClient ? timed(QIO_CHANNEL(server), QIO_CHANNEL(client), buf)
                                      : timed(QIO_CHANNEL(client), QIO_CHANNEL(server), buf);
  }
  g_object_unref(a);
  g_object_unref(b);
  return v;
}

void run_case(const char *name, Mode mode, const std::vector<guint8> &buf) {
  std::vector<double> ws, plain;
  for (int round = 0; round < rounds; round++) {
    /* Alternate which goes first, so that drift hits both alike. */
    if (round % 2) plain.push_back(one_run(Mode::kPlain, buf));
    ws.push_back(one_run(mode, buf));
    if (round % 2 == 0) plain.push_back(one_run(Mode::kPlain, buf));
  }
  double v = median(ws), b = median(plain);
  printf("bench name=%s value=%.3f unit=GiB/s baseline=%.3f ratio=%.3f\n", name, v, b, v / b);
  fflush(stdout);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc > 1) total_bytes = std::max<guint64>(g_ascii_strtoull(argv[1], nullptr, 10), kChunk);
  total_bytes = total_bytes / kChunk * kChunk;
  std::vector<guint8> buf(kChunk);
  for (gsize i = 0; i < kChunk; i++) buf[i] = static_cast<guint8>(i * 7 + 1);
  printf("# %.2f GiB per run, %d rounds (median), %zu KiB writes; baseline: the same "
         "UNIX socket pair without websockets\n",
         static_cast<double>(total_bytes) / static_cast<double>(1ULL << 30), rounds,
         kChunk / 1024);
  run_case("websock-server-to-client-unix", Mode::kServerToClient, buf);
  run_case("websock-client-to-server-masked-unix", Mode::kClientToServer, buf);
  return 0;
}
