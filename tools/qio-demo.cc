/*
 * qio-demo: moves real data through the channel layer and checks it.
 * For loopback TCP and a UNIX socket, a QIONetListener accepts a client in
 * a receiver thread; the sender writes a pattern through QIOChannelSocket
 * in batches of iovecs, the receiver checksums what arrives, and both
 * checksums must match.  Prints the throughput of each transport.
 */
#include "config.h"

#include "qio/net-listener.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include <clocale>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr gsize kIovLen = 64 * 1024;
constexpr int kNiov = 64;
constexpr gsize kBatch = kIovLen * kNiov;

/* Order-sensitive 64-bit checksum over 8-byte words (sizes are multiples
 * of 8 here): fast enough not to hide the channel's cost. */
struct Checksum {
  guint64 a = 1, b = 0;
  void add(const guint8 *data, gsize len) {
    for (gsize i = 0; i + 8 <= len; i += 8) {
      guint64 w;
      memcpy(&w, data + i, 8);
      a += w;
      b += a;
    }
  }
  guint64 value() const { return a ^ (b * 0x9e3779b97f4a7c15ULL); }
};

struct Received {
  guint64 bytes = 0;
  guint64 sum = 0;
  GError *error = nullptr;
};

void receive(QIONetListener *listener, Received *out) {
  g_autoptr(QIOChannelSocket) client = qio_net_listener_wait_client(listener, &out->error);
  if (!client) return;
  std::vector<guint8> buf(kBatch);
  Checksum sum;
  for (;;) {
    /* Fill whole batches so that the checksum sees 8-byte words. */
    struct iovec iov = {buf.data(), buf.size()};
    int ret = qio_channel_readv_all_eof(QIO_CHANNEL(client), &iov, 1, &out->error);
    if (ret < 0) return;
    if (ret == 0) break;
    sum.add(buf.data(), buf.size());
    out->bytes += buf.size();
  }
  out->sum = sum.value();
}

bool run(const char *label, QIOSocketAddress *addr, guint64 total) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  qio_net_listener_set_name(listener, "qio-demo");
  if (!qio_net_listener_open_sync(listener, addr, 1, &error)) {
    g_printerr("%s\n", error->message);
    return false;
  }
  g_autoptr(QIOSocketAddress) target = qio_net_listener_get_address(listener, 0, &error);
  if (!target) {
    g_printerr("%s\n", error->message);
    return false;
  }
  g_autofree char *where = qio_socket_address_to_string(target);

  Received got;
  gint64 start = g_get_monotonic_time();
  std::thread receiver(receive, listener, &got);

  std::vector<guint8> buf(kBatch);
  for (gsize i = 0; i < kBatch; i++) buf[i] = static_cast<guint8>(i * 31 + 7);
  struct iovec iov[kNiov];
  for (int i = 0; i < kNiov; i++) iov[i] = {buf.data() + i * kIovLen, kIovLen};
  Checksum sum;
  g_autoptr(QIOChannelSocket) sender = qio_channel_socket_new();
  bool ok = qio_channel_socket_connect_sync(sender, target, &error);
  for (guint64 n = 0; ok && n < total / kBatch; n++) {
    /* Stamp each batch so that lost or repeated batches change the sum. */
    memcpy(buf.data(), &n, sizeof(n));
    sum.add(buf.data(), buf.size());
    ok = qio_channel_writev_all(QIO_CHANNEL(sender), iov, kNiov, &error);
  }
  if (ok) ok = qio_channel_shutdown(QIO_CHANNEL(sender), QIO_CHANNEL_SHUTDOWN_WRITE, &error);
  if (!ok) qio_channel_close(QIO_CHANNEL(sender), nullptr);
  receiver.join();
  double secs = static_cast<double>(g_get_monotonic_time() - start) / 1e6;
  if (!ok || got.error) {
    g_printerr("%s\n", ok ? got.error->message : error->message);
    g_clear_error(&got.error);
    return false;
  }
  double gib = static_cast<double>(got.bytes) / static_cast<double>(1ULL << 30);
  bool match = got.bytes == total / kBatch * kBatch && got.sum == sum.value();
  g_print(_("%-13s %-36s %6.2f GiB in %5.2f s = %5.2f GiB/s, checksum %016llx %s\n"), label,
          where, gib, secs, gib / secs, static_cast<unsigned long long>(got.sum),
          match ? _("verified") : _("MISMATCH"));
  return match;
}

}  // namespace

int main(int argc, char **argv) {
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");

  gchar *size_str = nullptr;
  GOptionEntry entries[] = {
      {"size", 's', 0, G_OPTION_ARG_STRING, &size_str,
       N_("Bytes to move per transport, with K, M or G suffix (default 2G)"), N_("SIZE")},
      {},
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new(nullptr);
  g_option_context_set_summary(
      ctx, _("Moves data through qio socket channels over loopback TCP and a UNIX socket, "
             "verifies it and prints the throughput."));
  g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
  g_autoptr(GError) error = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    g_printerr("%s\n", error->message);
    return 2;
  }
  guint64 total = 2ULL << 30;
  if (size_str) {
    char *end = nullptr;
    total = g_ascii_strtoull(size_str, &end, 10);
    int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    if (end == size_str || (*end && (shift == 0 || end[1])) || total == 0) {
      g_printerr(_("Invalid size '%s': give a positive number of bytes with an optional "
                   "K, M or G suffix, e.g. 512M\n"),
                 size_str);
      return 2;
    }
    total <<= shift;
    g_free(size_str);
  }
  if (total < kBatch) total = kBatch;

  g_autofree char *dir = g_dir_make_tmp("qio-demo-XXXXXX", &error);
  if (!dir) {
    g_printerr("%s\n", error->message);
    return 1;
  }
  g_autofree char *path = g_build_filename(dir, "demo.sock", nullptr);
  g_autoptr(QIOSocketAddress) tcp = qio_socket_address_new_inet("127.0.0.1", 0);
  g_autoptr(QIOSocketAddress) unix_addr = qio_socket_address_new_unix(path, FALSE);
  g_print(_("qio demo: %llu MiB per transport through QIOChannelSocket (%d x %zu KiB iovecs "
            "per write)\n"),
          static_cast<unsigned long long>(total >> 20), kNiov, kIovLen / 1024);
  bool ok = run(_("TCP loopback"), tcp, total);
  ok = run(_("UNIX socket"), unix_addr, total) && ok;
  g_rmdir(dir);
  g_print(ok ? _("demo: all transfers verified\n") : _("demo: FAILED\n"));
  return ok ? 0 : 1;
}
