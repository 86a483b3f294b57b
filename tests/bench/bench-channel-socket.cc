/*
 * QIOChannelSocket throughput against raw system calls, measured in the
 * same run: qio writev/readv in batches of 64 iovecs of 64 KiB over
 * loopback TCP and a UNIX socket pair, each against a raw writev/readv
 * loop on plain sockets.  Each side moves QIO_BENCH_SIZE bytes (K/M/G
 * suffixes; default 4G, or the first argument) in QIO_BENCH_ROUNDS runs
 * (default 16) that alternate qio and raw, so that load from elsewhere on
 * the machine hits both alike; the median run of each side is printed.
 */
#include "config.h"

#include "qio/channel-socket.h"
#include "tests/bench/bench-util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr gsize kIovLen = 64 * 1024;
constexpr int kNiov = 64;
constexpr gsize kBatch = kIovLen * kNiov;
constexpr guint64 kZeroCopyFlushBatches = 8;

guint64 total_bytes; /* per run */
int rounds = 16;

/* One direction of a connection: the writer's and the reader's descriptor
 * (raw) or channel (qio). */
struct Ends {
  int wfd = -1, rfd = -1;
  QIOChannelSocket *wch = nullptr, *rch = nullptr;
  ~Ends() {
    if (wch) g_object_unref(wch); else if (wfd >= 0) close(wfd);
    if (rch) g_object_unref(rch); else if (rfd >= 0) close(rfd);
  }
};

/* Plain sockets for the baseline, made without qio. */
void raw_tcp(Ends *e) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sin);
  if (bind(l, reinterpret_cast<sockaddr *>(&sin), len) < 0 || listen(l, 1) < 0 ||
      getsockname(l, reinterpret_cast<sockaddr *>(&sin), &len) < 0)
    g_error("raw listen: %s", g_strerror(errno));
  e->wfd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(e->wfd, reinterpret_cast<sockaddr *>(&sin), len) < 0)
    g_error("raw connect: %s", g_strerror(errno));
  e->rfd = accept(l, nullptr, nullptr);
  close(l);
}

void raw_unix(Ends *e) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) g_error("socketpair: %s", g_strerror(errno));
  e->wfd = sv[0];
  e->rfd = sv[1];
}

void qio_tcp(Ends *e) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) any = qio_socket_address_parse("127.0.0.1:0", &error);
  g_autoptr(QIOChannelSocket) l = qio_channel_socket_new();
  if (!qio_channel_socket_listen_sync(l, any, 1, &error)) g_error("%s", error->message);
  g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(l, &error);
  e->wch = qio_channel_socket_new();
  if (!qio_channel_socket_connect_sync(e->wch, addr, &error)) g_error("%s", error->message);
  e->rch = qio_channel_socket_accept(l, &error);
  if (!e->rch) g_error("%s", error->message);
  e->wfd = qio_channel_socket_get_fd(e->wch);
  e->rfd = qio_channel_socket_get_fd(e->rch);
}

void qio_unix(Ends *e) {
  g_autoptr(GError) error = nullptr;
  if (!qio_channel_socket_new_pair(&e->wch, &e->rch, &error)) g_error("%s", error->message);
  e->wfd = qio_channel_socket_get_fd(e->wch);
  e->rfd = qio_channel_socket_get_fd(e->rch);
}

std::vector<guint8> wbuf;

void make_iov(struct iovec *iov, guint8 *base) {
  for (int i = 0; i < kNiov; i++) iov[i] = {base + i * kIovLen, kIovLen};
}

void raw_writer(int fd) {
  struct iovec iov[kNiov];
  for (guint64 sent = 0; sent < total_bytes;) {
    make_iov(iov, wbuf.data());
    struct iovec *p = iov;
    int n = kNiov;
    gsize left = std::min<guint64>(kBatch, total_bytes - sent);
    while (left > 0) {
      ssize_t r = writev(fd, p, n);
      if (r < 0) {
        if (errno == EINTR) continue;
        g_error("writev: %s", g_strerror(errno));
      }
      left -= static_cast<gsize>(r);
      sent += static_cast<guint64>(r);
      while (r > 0 && r >= static_cast<ssize_t>(p->iov_len)) {
        r -= static_cast<ssize_t>(p->iov_len);
        p++;
        n--;
      }
      if (r > 0) {
        p->iov_base = static_cast<guint8 *>(p->iov_base) + r;
        p->iov_len -= static_cast<gsize>(r);
      }
    }
  }
  shutdown(fd, SHUT_WR);
}

void raw_reader(int fd) {
  std::vector<guint8> rbuf(kBatch);
  struct iovec iov[kNiov];
  make_iov(iov, rbuf.data());
  for (guint64 got = 0; got < total_bytes;) {
    ssize_t r = readv(fd, iov, kNiov);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) g_error("readv: %s", r < 0 ? g_strerror(errno) : "EOF");
    got += static_cast<guint64>(r);
  }
}

void qio_writer(QIOChannelSocket *sioc, int flags) {
  struct iovec iov[kNiov];
  make_iov(iov, wbuf.data());
  g_autoptr(GError) error = nullptr;
  guint64 batches = 0;
  for (guint64 sent = 0; sent < total_bytes; sent += kBatch) {
    if (!qio_channel_writev_full_all(QIO_CHANNEL(sioc), iov, kNiov, nullptr, 0, flags, &error))
      g_error("%s", error->message);
    /* Zero-copy: bound the completions in flight (they cost optmem). */
    if (flags && ++batches % kZeroCopyFlushBatches == 0 &&
        qio_channel_flush(QIO_CHANNEL(sioc), &error) < 0)
      g_error("%s", error->message);
  }
  if (flags && qio_channel_flush(QIO_CHANNEL(sioc), &error) < 0) g_error("%s", error->message);
  qio_channel_shutdown(QIO_CHANNEL(sioc), QIO_CHANNEL_SHUTDOWN_WRITE, nullptr);
}

void qio_reader(QIOChannelSocket *sioc) {
  std::vector<guint8> rbuf(kBatch);
  struct iovec iov[kNiov];
  make_iov(iov, rbuf.data());
  g_autoptr(GError) error = nullptr;
  for (guint64 got = 0; got < total_bytes;) {
    gssize r = qio_channel_readv(QIO_CHANNEL(sioc), iov, kNiov, &error);
    if (r <= 0) g_error("qio readv: %s", error ? error->message : "EOF");
    got += static_cast<guint64>(r);
  }
}

/* GiB/s of one transfer: writer in this thread, reader in another. */
double timed(const std::function<void()> &writer, const std::function<void()> &reader) {
  gint64 start = g_get_monotonic_time();
  std::thread r(reader);
  writer();
  r.join();
  double secs = static_cast<double>(g_get_monotonic_time() - start) / 1e6;
  return static_cast<double>(total_bytes) / static_cast<double>(1ULL << 30) / secs;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

enum class Side { Write, Read, WriteZeroCopy };

void run_case(const char *name, Side side, bool tcp) {
  std::vector<double> qio_runs, raw_runs;
  auto run_raw = [&] {
    Ends e;
    tcp ? raw_tcp(&e) : raw_unix(&e);
    raw_runs.push_back(timed([&] { raw_writer(e.wfd); }, [&] { raw_reader(e.rfd); }));
  };
  for (int round = 0; round < rounds; round++) {
    /* Alternate which goes first, so that drift hits both alike. */
    if (round % 2) run_raw();
    {
      Ends e;
      tcp ? qio_tcp(&e) : qio_unix(&e);
      if (side == Side::WriteZeroCopy) {
        g_autoptr(GError) error = nullptr;
        if (!qio_channel_socket_enable_zero_copy(e.wch, &error)) {
          printf("# %s skipped: %s\n", name, error->message);
          return;
        }
      }
      if (side == Side::Read)
        qio_runs.push_back(timed([&] { raw_writer(e.wfd); }, [&] { qio_reader(e.rch); }));
      else
        qio_runs.push_back(timed(
            [&] {
              qio_writer(e.wch, side == Side::WriteZeroCopy ? QIO_CHANNEL_WRITE_FLAG_ZERO_COPY : 0);
            },
            [&] { raw_reader(e.rfd); }));
    }
    if (round % 2 == 0) run_raw();
  }
  double v = median(qio_runs), b = median(raw_runs);
  printf("bench name=%s value=%.3f unit=GiB/s baseline=%.3f ratio=%.3f\n", name, v, b, v / b);
  fflush(stdout);
}

}  // namespace

int main(int argc, char **argv) {
  guint64 per_side = 4ULL << 30;
  if (const char *s = g_getenv("QIO_BENCH_SIZE")) per_side = bench_parse_size(s);
  if (argc > 1) per_side = bench_parse_size(argv[1]);
  if (const char *s = g_getenv("QIO_BENCH_ROUNDS")) rounds = std::max(1, atoi(s));
  total_bytes = std::max<guint64>(per_side / rounds / kBatch, 1) * kBatch;
  wbuf.resize(kBatch);
  for (gsize i = 0; i < kBatch; i++) wbuf[i] = static_cast<guint8>(i * 7 + 1);
  printf("# per case and side: %d alternating runs of %.0f MiB (median run), "
         "batches of %d x %zu KiB iovecs\n",
         rounds, static_cast<double>(total_bytes) / static_cast<double>(1ULL << 20), kNiov,
         kIovLen / 1024);
  run_case("socket-writev-tcp", Side::Write, true);
  run_case("socket-readv-tcp", Side::Read, true);
  run_case("socket-writev-unix", Side::Write, false);
  run_case("socket-readv-unix", Side::Read, false);
  run_case("socket-writev-tcp-zerocopy", Side::WriteZeroCopy, true);
  return 0;
}
