/*
 * Chardev benchmark, all in one run:
 * - round-trip latency of a one-byte echo through the guest's serial shell
 *   over a TLS chardev (x509, TLS 1.3), against the same over a plain TCP
 *   chardev (the shell echoes each typed byte; 'a' and backspace alternate
 *   so the line never fills).  Both clients stay connected for the whole
 *   run and their pings alternate one by one (which of a pair goes first
 *   alternates too), so a noisy neighbour hits both alike.  Printed: the
 *   median, p90 and p99 of each side; the median line's ratio is the
 *   median of the per-pair ratios (each TLS ping against the plain ping
 *   beside it), the p90 and p99 lines' ratios are ratios of percentiles;
 * - bulk rate into a TLS chardev (bytes the shell drops, then one line to
 *   know they were all consumed), against a bare QIOChannelTLS
 *   sender/receiver over loopback TCP (what bench-channel-tls measures).
 * The chardevs run on their own GMainContext in a second thread, as in
 * qiod; the clients are blocking qio channels.  QIO_BENCH_RTTS (default
 * 5000 pairs), QIO_BENCH_ROUNDS (bulk rounds, default 3) and
 * QIO_BENCH_SIZE (bulk bytes per round, default 256M) scale it.
 */
#include "config.h"

#include "chardev/chardev-set.h"
#include "chardev/serial-frontend.h"
#include "host/guest.h"
#include "qcrypto/tls-creds.h"
#include "qio/channel-socket.h"
#include "qio/channel-tls.h"
#include "qom/object-registry.h"
#include "tests/bench/bench-util.h"

#include <glib/gstdio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace qio;

namespace {

int rounds = 3;
int rtts = 5000;
guint64 bulk_bytes = 256ULL << 20;
constexpr gsize kChunk = 1 << 20;

QCryptoTLSCreds *creds(const char *id) {
  return static_cast<QCryptoTLSCreds *>(
      qom_object_ref_typed(id, QCRYPTO_TYPE_TLS_CREDS, "TLS credentials", nullptr));
}

/* Two guests, each with its serial port on a chardev (plain and TLS),
 * served from a GMainContext in a thread of their own. */
class Host {
 public:
  Host() {
    std::atomic<bool> ready{false};
    thread_ = std::thread([this, &ready] {
      g_main_context_push_thread_default(context_);
      g_autoptr(GError) error = nullptr;
      set_ = std::make_unique<chardev::ChardevSet>(context_);
      const char *specs[] = {
          "socket,id=plain,host=127.0.0.1,port=0,server=on,wait=off,nodelay=on",
          "socket,id=tls,host=127.0.0.1,port=0,server=on,wait=off,nodelay=on,tls-creds=stls"};
      host::GuestConfig config;
      config.ram_size = 16 << 20;
      for (int i = 0; i < 2; i++) {
        chardev::Chardev *dev = set_->add_from_string(specs[i], &error);
        if (!dev) g_error("%s", error->message);
        guests_[i] = host::Guest::create(config, &error);
        if (!guests_[i]) g_error("%s", error->message);
        serials_[i] = chardev::SerialFrontend::attach(*guests_[i], *dev, &error);
        std::string name = dev->filename();
        ports_[i] = static_cast<guint16>(atoi(name.substr(name.rfind(':') + 1).c_str()));
      }
      ready = true;
      while (!stop_) g_main_context_iteration(context_, TRUE);
      for (auto &s : serials_) s.reset();
      set_.reset();
      for (auto &g : guests_) g.reset();
      g_main_context_pop_thread_default(context_);
    });
    while (!ready) g_usleep(1000);
  }
  ~Host() {
    stop_ = true;
    g_main_context_wakeup(context_);
    thread_.join();
    g_main_context_unref(context_);
  }
  guint16 port(bool tls) const { return ports_[tls ? 1 : 0]; }

 private:
  GMainContext *context_ = g_main_context_new();
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<chardev::ChardevSet> set_;
  std::unique_ptr<host::Guest> guests_[2];
  std::unique_ptr<chardev::SerialFrontend> serials_[2];
  guint16 ports_[2] = {0, 0};
};

QIOChannel *connect_to(guint16 port, QCryptoTLSCreds *tls) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_inet("127.0.0.1", port);
  g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
  if (!qio_channel_socket_connect_sync(sioc, addr, &error)) g_error("%s", error->message);
  qio_channel_set_delay(QIO_CHANNEL(sioc), FALSE);
  if (!tls) return QIO_CHANNEL(g_object_ref(sioc));
  QIOChannelTLS *tioc = qio_channel_tls_new_client(QIO_CHANNEL(sioc), tls, "127.0.0.1", &error);
  if (!tioc || !qio_channel_tls_handshake_sync(tioc, nullptr, &error))
    g_error("%s", error->message);
  return QIO_CHANNEL(tioc);
}

/* One client's echo loop: times single round trips in nanoseconds. */
class Pinger {
 public:
  Pinger(guint16 port, QCryptoTLSCreds *tls) : ioc_(connect_to(port, tls)) {}
  ~Pinger() {
    qio_channel_close(ioc_, nullptr);
    g_object_unref(ioc_);
  }
  double ping() {
    static const char keys[2] = {'a', '\b'};
    char key = keys[n_++ & 1], got = 0;
    auto t0 = std::chrono::steady_clock::now();
    if (!qio_channel_write_all(ioc_, &key, 1, nullptr) ||
        !qio_channel_read_all(ioc_, &got, 1, nullptr) || got != key)
      g_error("serial echo failed");
    auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::micro>(t1 - t0).count();
  }

 private:
  QIOChannel *ioc_;
  unsigned n_ = 0;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<gsize>(p * static_cast<double>(v.size())))];
}

/* Plain and TLS pings taking turns; prints the three RTT lines. */
void echo_rtt(const Host &host, QCryptoTLSCreds *tls) {
  Pinger plain(host.port(false), nullptr), secure(host.port(true), tls);
  for (int i = 0; i < 500; i++) {
    plain.ping();
    secure.ping();
  }
  std::vector<double> p, t, ratios;
  for (int i = 0; i < rtts; i++) {
    double a, b;
    if (i & 1) {
      b = secure.ping();
      a = plain.ping();
    } else {
      a = plain.ping();
      b = secure.ping();
    }
    p.push_back(a);
    t.push_back(b);
    ratios.push_back(b / a);
  }
  bench_print_paired("chardev-serial-echo-rtt-tls-vs-plain", bench_median(t), "us",
                     bench_median(p), bench_median(ratios));
  bench_print("chardev-serial-echo-rtt-p90-tls-vs-plain", percentile(t, 0.9), "us",
              percentile(p, 0.9));
  bench_print("chardev-serial-echo-rtt-p99-tls-vs-plain", percentile(t, 0.99), "us",
              percentile(p, 0.99));
}

/* MB/s of bytes the shell drops (0x01), then a line whose prompt proves
 * every byte before it was consumed. */
double chardev_bulk(guint16 port, QCryptoTLSCreds *tls) {
  g_autoptr(QIOChannel) ioc = connect_to(port, tls);
  std::vector<char> buf(kChunk, '\x01');
  gint64 t0 = g_get_monotonic_time();
  for (guint64 sent = 0; sent < bulk_bytes; sent += kChunk)
    if (!qio_channel_write_all(ioc, buf.data(), kChunk, nullptr)) g_error("bulk write failed");
  if (!qio_channel_write_all(ioc, "\r", 1, nullptr)) g_error("bulk write failed");
  std::string tail;
  char c;
  while (tail.find("guest> ") == std::string::npos) {
    if (!qio_channel_read_all(ioc, &c, 1, nullptr)) g_error("bulk read failed");
    tail += c;
  }
  double secs = static_cast<double>(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
  qio_channel_close(ioc, nullptr);
  return static_cast<double>(bulk_bytes) / secs / 1e6;
}

/* The same volume through a bare QIOChannelTLS pair over loopback TCP. */
double channel_bulk(QCryptoTLSCreds *server_creds, QCryptoTLSCreds *client_creds) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelSocket) l = qio_channel_socket_new();
  g_autoptr(QIOSocketAddress) any = qio_socket_address_new_inet("127.0.0.1", 0);
  if (!qio_channel_socket_listen_sync(l, any, 1, &error)) g_error("%s", error->message);
  g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(l, &error);
  double mbps = 0;
  std::thread reader([&] {
    g_autoptr(GError) err = nullptr;
    g_autoptr(QIOChannelSocket) s = qio_channel_socket_accept(l, &err);
    g_autoptr(QIOChannelTLS) t = qio_channel_tls_new_server(QIO_CHANNEL(s), server_creds,
                                                            nullptr, &err);
    if (!t || !qio_channel_tls_handshake_sync(t, nullptr, &err)) g_error("%s", err->message);
    std::vector<char> buf(kChunk);
    guint64 got = 0;
    while (got < bulk_bytes) {
      gssize n = qio_channel_read(QIO_CHANNEL(t), buf.data(), buf.size(), &err);
      if (n <= 0) g_error("baseline read failed");
      got += static_cast<guint64>(n);
    }
    qio_channel_write_all(QIO_CHANNEL(t), "!", 1, nullptr);
  });
  g_autoptr(QIOChannelSocket) c = qio_channel_socket_new();
  if (!qio_channel_socket_connect_sync(c, addr, &error)) g_error("%s", error->message);
  g_autoptr(QIOChannelTLS) t =
      qio_channel_tls_new_client(QIO_CHANNEL(c), client_creds, "127.0.0.1", &error);
  if (!t || !qio_channel_tls_handshake_sync(t, nullptr, &error)) g_error("%s", error->message);
  std::vector<char> buf(kChunk, '\x01');
  gint64 t0 = g_get_monotonic_time();
  for (guint64 sent = 0; sent < bulk_bytes; sent += kChunk)
    if (!qio_channel_write_all(QIO_CHANNEL(t), buf.data(), kChunk, nullptr))
      g_error("baseline write failed");
  char ack;
  if (!qio_channel_read_all(QIO_CHANNEL(t), &ack, 1, nullptr)) g_error("baseline ack failed");
  double secs = static_cast<double>(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
  reader.join();
  mbps = static_cast<double>(bulk_bytes) / secs / 1e6;
  return mbps;
}

}  // namespace

int main() {
  if (const char *r = g_getenv("QIO_BENCH_ROUNDS")) rounds = std::max(1, atoi(r));
  if (const char *r = g_getenv("QIO_BENCH_RTTS")) rtts = std::max(100, atoi(r));
  if (const char *s = g_getenv("QIO_BENCH_SIZE")) bulk_bytes = std::max(kChunk, bench_parse_size(s));
  bulk_bytes -= bulk_bytes % kChunk;
  qom_init();
  BenchPki pki;
  g_autoptr(GError) error = nullptr;
  g_autofree char *s = g_strdup_printf("tls-creds-x509,id=stls,dir=%s,endpoint=server",
                                       pki.server);
  g_autofree char *c = g_strdup_printf("tls-creds-x509,id=ctls,dir=%s,endpoint=client",
                                       pki.client);
  if (!qom_object_add_from_string(s, &error) || !qom_object_add_from_string(c, &error))
    g_error("%s", error->message);
  g_autoptr(QCryptoTLSCreds) server_creds = creds("stls");
  g_autoptr(QCryptoTLSCreds) client_creds = creds("ctls");
  {
    Host host;
    echo_rtt(host, client_creds);
    std::vector<double> bulk, base;
    for (int r = 0; r < rounds; r++) {
      bulk.push_back(chardev_bulk(host.port(true), client_creds));
      base.push_back(channel_bulk(server_creds, client_creds));
    }
    bench_print("chardev-tls-bulk-vs-tls-channel", bench_median(bulk), "MB/s", bench_median(base));
  }
  qom_object_del_all();
  return 0;
}
