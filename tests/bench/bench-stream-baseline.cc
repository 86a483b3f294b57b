/*
 * The physical baselines of the migration benchmark, one per run:
 *   bench-stream-baseline raw SIZE   a raw TCP stream over loopback:
 *                                    write/read loops of 128 KiB
 *   bench-stream-baseline tls SIZE   the bare GnuTLS stream (16 KiB records,
 *                                    TLS 1.3 AES-128-GCM, x509 mutual auth)
 * Prints "gibps=G cpu=S": throughput and the CPU seconds both ends used.
 */
#include "config.h"

#include "tests/bench/bare-gnutls-stream.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <thread>
#include <vector>

namespace {

double cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double run_raw(guint64 total) {
  constexpr gsize kChunk = 128 * 1024;
  Conn conn;
  int wfd = qio_channel_socket_get_fd(conn.client), rfd = qio_channel_socket_get_fd(conn.server);
  std::vector<char> src(kChunk, 'r');
  gint64 start = g_get_monotonic_time();
  std::thread reader([&] {
    std::vector<char> dst(kChunk);
    for (guint64 got = 0; got < total;) {
      ssize_t n = read(rfd, dst.data(), dst.size());
      if (n <= 0) g_error("raw read failed");
      got += static_cast<guint64>(n);
    }
  });
  for (guint64 sent = 0; sent < total;) {
    ssize_t n = write(wfd, src.data(), MIN(kChunk, total - sent));
    if (n <= 0) g_error("raw write failed");
    sent += static_cast<guint64>(n);
  }
  reader.join();
  return total / ((g_get_monotonic_time() - start) / 1e6) / (1 << 30);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 3 || (g_strcmp0(argv[1], "raw") != 0 && g_strcmp0(argv[1], "tls") != 0)) {
    fprintf(stderr, "usage: %s raw|tls BYTES\n", argv[0]);
    return 2;
  }
  guint64 total = g_ascii_strtoull(argv[2], nullptr, 10);
  double gibps;
  double cpu0;
  if (g_str_equal(argv[1], "raw")) {
    cpu0 = cpu_seconds();
    gibps = run_raw(total);
  } else {
    BenchPki pki;
    cpu0 = cpu_seconds();
    gibps = bench_bare_gnutls_stream(
        pki, "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM", total);
  }
  printf("gibps=%.4f cpu=%.4f\n", gibps, cpu_seconds() - cpu0);
  return 0;
}
