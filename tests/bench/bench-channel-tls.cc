/*
 * QIOChannelTLS throughput against a bare GnuTLS sender and receiver over
 * loopback TCP (connections made with QIOChannelSocket; the baseline runs
 * plain gnutls_record_send/recv loops with 16 KiB records on the same kind
 * of descriptors), for TLS 1.3 with AES-128-GCM and AES-256-GCM.  Both
 * streams stay connected for the whole run and take turns in slices
 * (QIO_BENCH_SIZE bytes in all through each, default 4G, in
 * QIO_BENCH_ROUNDS slices, default 64; the first of each pair
 * alternating), so that whatever else the machine does falls on both alike.
 * Printed: the median slice rates, and as the ratio the median of the
 * per-slice ratios (each qio slice against the bare slice beside it), which
 * a few slices slowed by a neighbour cannot move.  Also printed: the cipher's
 * single-core rate (gnutls_cipher_encrypt2 on 16 KiB), gnutls-cli piping
 * into gnutls-serv --echo as the "tunnel" reference, and full TLS 1.3
 * handshakes per second of a qio server against gnutls-serv (ECDSA P-256
 * and RSA-2048 server keys; the same bare GnuTLS client for both, taking
 * turns in half-second windows).
 */
#include "config.h"

#include "qcrypto/tls-creds-x509.h"
#include "qio/channel-socket.h"
#include "qio/channel-tls.h"
#include "tests/bench/bare-gnutls-stream.h"
#include "tests/bench/bench-util.h"

#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr gsize kRecord = 16 * 1024;
constexpr gsize kChunk = 1024 * 1024; /* per qio writev/readv call */

guint64 total_bytes = 4ULL << 30;
int rounds = 64;

std::string priority_for(const char *cipher) {
  return std::string("NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+") + cipher;
}

QCryptoTLSCreds *make_creds(const BenchPki &pki, bool server, const std::string &prio) {
  g_autoptr(GError) error = nullptr;
  auto *creds = QCRYPTO_TLS_CREDS(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_X509, "id", server ? "bench-server" : "bench-client", "dir",
      server ? pki.server : pki.client, "endpoint",
      server ? QCRYPTO_TLS_CREDS_ENDPOINT_SERVER : QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
      "priority", prio.c_str(), nullptr));
  if (!g_initable_init(G_INITABLE(creds), nullptr, &error)) g_error("%s", error->message);
  return creds;
}

/* qio: a handshaken QIOChannelTLS pair, blocking, writev/readv of 1 MiB. */
class QioTlsStream {
 public:
  QioTlsStream(const BenchPki &pki, const std::string &prio)
      : sc_(make_creds(pki, true, prio)), cc_(make_creds(pki, false, prio)) {
    g_autoptr(GError) error = nullptr;
    server_ = qio_channel_tls_new_server(QIO_CHANNEL(conn_.server), sc_, nullptr, &error);
    client_ = qio_channel_tls_new_client(QIO_CHANNEL(conn_.client), cc_, "127.0.0.1", &error);
    if (!server_ || !client_) g_error("%s", error->message);
    std::thread hs([this] {
      g_autoptr(GError) e = nullptr;
      if (!qio_channel_tls_handshake_sync(server_, nullptr, &e)) g_error("%s", e->message);
    });
    if (!qio_channel_tls_handshake_sync(client_, nullptr, &error)) g_error("%s", error->message);
    hs.join();
  }
  ~QioTlsStream() {
    qio_channel_close(QIO_CHANNEL(client_), nullptr);
    g_object_unref(client_);
    g_object_unref(server_);
    g_object_unref(sc_);
    g_object_unref(cc_);
  }
  QioTlsStream(const QioTlsStream &) = delete;
  QioTlsStream &operator=(const QioTlsStream &) = delete;

  std::string cipher() const {
    g_autoptr(QCryptoTLSSessionReport) report = qio_channel_tls_get_report(client_);
    return report->cipher;
  }

  /* Sends @bytes (a multiple of kChunk) to a reader thread; seconds. */
  double send(guint64 bytes) {
    std::vector<char> src(kChunk, 'q');
    gint64 start = g_get_monotonic_time();
    std::thread reader([this, bytes] {
      std::vector<char> dst(kChunk);
      guint64 got = 0;
      g_autoptr(GError) e = nullptr;
      while (got < bytes) {
        gssize n = qio_channel_read(QIO_CHANNEL(server_), dst.data(),
                                    std::min<guint64>(dst.size(), bytes - got), &e);
        if (n <= 0) g_error("qio read: %s", e ? e->message : "EOF");
        got += static_cast<guint64>(n);
      }
    });
    g_autoptr(GError) error = nullptr;
    for (guint64 sent = 0; sent < bytes; sent += kChunk)
      if (!qio_channel_write_all(QIO_CHANNEL(client_), src.data(), kChunk, &error))
        g_error("%s", error->message);
    reader.join();
    return (g_get_monotonic_time() - start) / 1e6;
  }

 private:
  Conn conn_;
  QCryptoTLSCreds *sc_, *cc_;
  QIOChannelTLS *server_ = nullptr, *client_ = nullptr;
};

/* The cipher alone on one core: AES-GCM over 16 KiB buffers for ~1 s. */
double cipher_rate(gnutls_cipher_algorithm_t algo) {
  std::vector<unsigned char> key(gnutls_cipher_get_key_size(algo), 7), iv(12, 1);
  gnutls_datum_t k = {key.data(), static_cast<unsigned>(key.size())};
  gnutls_datum_t i = {iv.data(), static_cast<unsigned>(iv.size())};
  gnutls_cipher_hd_t h;
  if (gnutls_cipher_init(&h, algo, &k, &i) < 0) g_error("cipher init");
  std::vector<unsigned char> buf(kRecord, 3);
  guint64 bytes = 0;
  gint64 start = g_get_monotonic_time(), now;
  do {
    for (int n = 0; n < 256; n++) {
      gnutls_cipher_set_iv(h, iv.data(), iv.size());
      gnutls_cipher_encrypt2(h, buf.data(), buf.size(), buf.data(), buf.size());
      bytes += kRecord;
    }
    now = g_get_monotonic_time();
  } while (now - start < 1000000);
  gnutls_cipher_deinit(h);
  return bytes / ((now - start) / 1e6) / (1 << 30);
}

/* gnutls-cli piping N bytes into gnutls-serv --echo (and reading them
 * back): what a tunnel made of the stock tools moves. */
double tools_rate(const BenchPki &pki, guint64 bytes) {
  g_autofree char *gnutls_serv = g_find_program_in_path("gnutls-serv");
  g_autofree char *gnutls_cli = g_find_program_in_path("gnutls-cli");
  if (!gnutls_serv || !gnutls_cli) return 0;
  guint port = 20000 + g_random_int_range(0, 20000);
  g_autofree char *port_s = g_strdup_printf("%u", port);
  std::string ca = pki.file(true, "ca-cert.pem"), cert = pki.file(true, "server-cert.pem"),
              key = pki.file(true, "server-key.pem");
  g_autoptr(GError) error = nullptr;
  g_autoptr(GSubprocess) serv = g_subprocess_new(
      static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                    G_SUBPROCESS_FLAGS_STDERR_SILENCE),
      &error, gnutls_serv, "--echo", "--port", port_s, "--x509cafile", ca.c_str(),
      "--x509certfile", cert.c_str(), "--x509keyfile", key.c_str(), nullptr);
  if (!serv) return 0;
  g_usleep(500000);
  g_autofree char *cmd = g_strdup_printf(
      "head -c %" G_GUINT64_FORMAT " /dev/zero | %s --port %s --x509cafile %s localhost "
      ">/dev/null 2>&1",
      bytes, gnutls_cli, port_s, ca.c_str());
  gint64 start = g_get_monotonic_time();
  int status = 0;
  g_spawn_command_line_sync(("sh -c '" + std::string(cmd) + "'").c_str(), nullptr, nullptr,
                            &status, nullptr);
  double secs = (g_get_monotonic_time() - start) / 1e6;
  g_subprocess_force_exit(serv);
  g_subprocess_wait(serv, nullptr, nullptr);
  return bytes / secs / (1 << 30);
}

/* Full handshakes against a server on 127.0.0.1:@port by a bare GnuTLS
 * client (no client certificate, no verification: the same client work
 * whichever server answers) for about @window_us; adds the count and the
 * seconds taken. */
void count_handshakes(guint port, gint64 window_us, int *count_sum, double *secs_sum) {
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_inet("127.0.0.1", port);
  gnutls_certificate_credentials_t cred;
  gnutls_certificate_allocate_credentials(&cred);
  int count = 0;
  gint64 start = g_get_monotonic_time(), now;
  do {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOChannelSocket) sock = qio_channel_socket_new();
    if (!qio_channel_socket_connect_sync(sock, addr, &error)) g_error("%s", error->message);
    gnutls_session_t s;
    gnutls_init(&s, GNUTLS_CLIENT);
    gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.3", nullptr);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_transport_set_int(s, qio_channel_socket_get_fd(sock));
    int ret;
    do ret = gnutls_handshake(s);
    while (ret < 0 && !gnutls_error_is_fatal(ret));
    if (ret < 0) g_error("handshake: %s", gnutls_strerror(ret));
    gnutls_bye(s, GNUTLS_SHUT_WR);
    gnutls_deinit(s);
    count++;
    now = g_get_monotonic_time();
  } while (now - start < window_us);
  gnutls_certificate_free_credentials(cred);
  *count_sum += count;
  *secs_sum += (now - start) / 1e6;
}

/* A qio server: accepts, handshakes (QIOChannelTLS), closes, until told. */
struct QioServer {
  QCryptoTLSCreds *creds;
  QIOChannelSocket *listener = qio_channel_socket_new();
  guint port = 0;
  std::atomic<bool> stop{false};
  std::thread thread;
  explicit QioServer(QCryptoTLSCreds *c) : creds(c) {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOSocketAddress) any = qio_socket_address_new_inet("127.0.0.1", 0);
    if (!qio_channel_socket_listen_sync(listener, any, 0, &error)) g_error("%s", error->message);
    g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(listener, &error);
    port = qio_socket_address_get_port(addr);
    thread = std::thread([this] {
      while (!stop) {
        g_autoptr(GError) e = nullptr;
        g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_accept(listener, &e);
        if (!sioc || stop) break;
        g_autoptr(QIOChannelTLS) tioc =
            qio_channel_tls_new_server(QIO_CHANNEL(sioc), creds, nullptr, &e);
        if (tioc && qio_channel_tls_handshake_sync(tioc, nullptr, &e))
          qio_channel_close(QIO_CHANNEL(tioc), nullptr);
      }
    });
  }
  ~QioServer() {
    stop = true;
    /* Wake the accept. */
    g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_inet("127.0.0.1", port);
    g_autoptr(QIOChannelSocket) poke = qio_channel_socket_new();
    qio_channel_socket_connect_sync(poke, addr, nullptr);
    thread.join();
    g_object_unref(listener);
  }
};

void bench_handshakes(const char *id, int key) {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("bench CA"), nullptr);
  auto req = test_tls_server_req("localhost");
  req.key = key;
  TestCert srv = test_tls_make_cert(req, &ca);
  test_tls_write(dir.path, "ca-cert.pem", ca.pem);
  test_tls_write(dir.path, "server-cert.pem", srv.pem);
  test_tls_write(dir.path, "server-key.pem", test_tls_key_pem(key));
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoTLSCreds) creds = QCRYPTO_TLS_CREDS(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_X509, "id", "bench-hs", "dir", dir.path, "endpoint",
      QCRYPTO_TLS_CREDS_ENDPOINT_SERVER, "verify-peer", FALSE, nullptr));
  if (!g_initable_init(G_INITABLE(creds), nullptr, &error)) g_error("%s", error->message);
  g_autofree char *gnutls_serv = g_find_program_in_path("gnutls-serv");
  if (!gnutls_serv) return;
  guint port = 20000 + g_random_int_range(0, 20000);
  g_autofree char *port_s = g_strdup_printf("%u", port);
  g_autofree char *cert = g_build_filename(dir.path, "server-cert.pem", nullptr);
  g_autofree char *keyf = g_build_filename(dir.path, "server-key.pem", nullptr);
  g_autoptr(GSubprocess) serv = g_subprocess_new(
      static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                    G_SUBPROCESS_FLAGS_STDERR_SILENCE),
      &error, gnutls_serv, "--echo", "--port", port_s, "--x509certfile", cert,
      "--x509keyfile", keyf, nullptr);
  if (!serv) return;
  g_usleep(500000);
  int qio_count = 0, base_count = 0;
  double qio_secs = 0, base_secs = 0;
  {
    QioServer server(creds);
    /* Half-second turns, four each, the first of each pair alternating. */
    for (int turn = 0; turn < 4; turn++) {
      if (turn % 2) count_handshakes(server.port, 500000, &qio_count, &qio_secs);
      count_handshakes(port, 500000, &base_count, &base_secs);
      if (turn % 2 == 0) count_handshakes(server.port, 500000, &qio_count, &qio_secs);
    }
  }
  g_subprocess_force_exit(serv);
  g_subprocess_wait(serv, nullptr, nullptr);
  double qio = qio_count / qio_secs, base = base_count / base_secs;
  g_autofree char *name = g_strdup_printf("handshake-%s-qio-server-vs-gnutls-serv", id);
  bench_print(name, qio, "handshakes/s", base);
}

}  // namespace

int main() {
  if (const char *s = g_getenv("QIO_BENCH_SIZE")) total_bytes = bench_parse_size(s);
  if (const char *r = g_getenv("QIO_BENCH_ROUNDS")) rounds = std::max(1, atoi(r));
  total_bytes = std::max<guint64>(total_bytes / kChunk, 1) * kChunk;
  BenchPki pki;
  struct Case {
    const char *id, *prio;
    gnutls_cipher_algorithm_t algo;
  } cases[] = {{"aes128gcm", "AES-128-GCM", GNUTLS_CIPHER_AES_128_GCM},
               {"aes256gcm", "AES-256-GCM", GNUTLS_CIPHER_AES_256_GCM}};
  printf("# %" G_GUINT64_FORMAT " MiB through each stream in %d slices, loopback TCP, "
         "TLS 1.3\n",
         total_bytes >> 20, rounds);
  double qio128 = 0;
  const guint64 slice = std::max<guint64>(total_bytes / rounds / kChunk, 1) * kChunk;
  for (const auto &c : cases) {
    std::string prio = priority_for(c.prio);
    QioTlsStream qio(pki, prio);
    BareGnutlsStream bare(pki, prio);
    if (qio.cipher() != c.prio) g_error("negotiated %s, wanted %s", qio.cipher().c_str(), c.prio);
    std::vector<double> qio_rates, bare_rates, paired;
    for (guint64 moved = 0, r = 0; moved < total_bytes; r++, moved += slice) {
      double qio_secs = 0, bare_secs;
      if (r % 2) qio_secs = qio.send(slice);
      bare_secs = bare.send(slice);
      if (r % 2 == 0) qio_secs = qio.send(slice);
      qio_rates.push_back(slice / qio_secs / (1 << 30));
      bare_rates.push_back(slice / bare_secs / (1 << 30));
      paired.push_back(bare_secs / qio_secs);
    }
    double q = bench_median(qio_rates), b = bench_median(bare_rates);
    double core = cipher_rate(c.algo);
    if (c.algo == GNUTLS_CIPHER_AES_128_GCM) qio128 = q;
    g_autofree char *n1 = g_strdup_printf("tls13-%s-vs-bare-gnutls", c.id);
    g_autofree char *n2 = g_strdup_printf("tls13-%s-vs-cipher-1core", c.id);
    bench_print_paired(n1, q, "GiB/s", b, bench_median(paired));
    bench_print(n2, q, "GiB/s", core);
  }
  guint64 tool_bytes = std::min<guint64>(total_bytes, 256ULL << 20);
  double tools = tools_rate(pki, tool_bytes);
  if (tools > 0) bench_print("tls13-aes128gcm-vs-gnutls-cli-serv", qio128, "GiB/s", tools);
  bench_handshakes("ecdsa-p256", 1);
  bench_handshakes("rsa-2048", 3);
  return 0;
}
