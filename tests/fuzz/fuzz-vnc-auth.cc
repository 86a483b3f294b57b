/* The VNC server's (ui/vnc-server) security negotiation, which a hostile
 * viewer reaches before any credential is checked.  Byte 0 picks the
 * server (modulo 3), the rest is what one viewer sends, then EOF:
 *   0: tls-creds (anonymous): VeNCrypt only, subtype TLSNone.  RFB version,
 *      security type 19, the VeNCrypt version and subtype choice, then
 *      whatever comes where the TLS ClientHello goes.
 *   1: sasl=on without TLS: security type 20, the mechanism name (length,
 *      name) and the client-start and client-step messages (length,
 *      data), on to Cyrus SASL's DIGEST-MD5 server.
 *   2: tls-creds (anonymous) and sasl=on: VeNCrypt offering TLSSASL.
 * Everything else is what the product has: the connections limit, the
 * handshake time limit and VncAuthThrottle, which slows the clients of a
 * source (here "unix", every client) that failed to authenticate several
 * times: a peer's EOF may take the throttle's longest delay to be seen,
 * and once the fuzzer has failed a few DIGEST-MD5 logins (malformed
 * responses count) its SASL inputs run about one a second.  SASL is set
 * up as tests/functional/test-vnc-sasl.py does it (qio.conf in
 * SASL_CONF_PATH naming SCRAM-SHA-256 and DIGEST-MD5; without TLS only
 * DIGEST-MD5 qualifies) but with no sasldb, so no user exists.
 * Not covered: what runs inside TLS (the fuzzer cannot complete a
 * handshake: SASL after VeNCrypt, ClientInit and everything after it),
 * a successful SASL login and its security layer (qio/channel-sasl), x509
 * credentials and tls-authz, and the VNC password (fuzz-vnc-server says
 * why).  Cyrus's mechanisms are not instrumented: the fuzzer is guided by
 * the server's side only.  The servers listen on UNIX sockets in a
 * temporary directory, and must close the connection once they have read
 * EOF. */
#include "config.h"

#include "qom/object-registry.h"
#include "tests/fuzz/fuzz-util.h"
#include "ui/vnc-auth-throttle.h"
#include "ui/vnc-server.h"

#include <glib/gstdio.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

constexpr size_t kMaxInput = 1 << 16;
/* A throttled attempt waits up to kMaxDelayMs before the server reads on
 * and sees EOF: that is no hang. */
constexpr int kSeconds = qio::ui::VncAuthThrottle::kMaxDelayMs / 1000 + 5;

enum Config : guint8 { kVeNCrypt, kSasl, kVeNCryptSasl, kConfigs };

struct Servers {
  std::unique_ptr<qio::host::Guest> guest;
  std::unique_ptr<qio::ui::VncServer> vnc[kConfigs];
  QIOSocketAddress *addr[kConfigs] = {};
};

/* The temporary directory (qio.conf, the sockets), removed at exit. */
std::string dir;

void remove_dir() {
  if (GDir *d = g_dir_open(dir.c_str(), 0, nullptr)) {
    while (const char *name = g_dir_read_name(d)) {
      g_autofree char *path = g_build_filename(dir.c_str(), name, nullptr);
      g_unlink(path);
    }
    g_dir_close(d);
  }
  g_rmdir(dir.c_str());
}

[[noreturn]] void fail(const char *what, GError *error) {
  fprintf(stderr, "%s: %s\n", what, error ? error->message : "failed");
  abort();
}

Servers *make_servers() {
  fuzz::quiet_logs();
  GError *error = nullptr;
  char *tmp = g_dir_make_tmp("qio-fuzz-vnc-auth-XXXXXX", &error);
  if (!tmp) fail("temporary directory", error);
  dir = tmp;
  g_free(tmp);
  atexit(remove_dir);
  /* Cyrus reads qio.conf once, when the first SASL session is made.  The
   * sasldb it names is never created: no login can succeed anyway. */
  std::string conf = "mech_list: scram-sha-256 digest-md5\nsasldb_path: " + dir + "/passwd.db\n";
  std::string conf_path = dir + "/qio.conf";
  if (!g_file_set_contents(conf_path.c_str(), conf.c_str(), -1, &error)) fail("qio.conf", error);
  g_setenv("SASL_CONF_PATH", dir.c_str(), TRUE);

  qom_init();
  if (!qom_object_add_from_string("tls-creds-anon,id=fuzz-tls0,endpoint=server", &error))
    fail("tls-creds-anon", error);

  auto *s = new Servers;
  s->guest = fuzz::make_guest();
  for (int i = 0; i < kConfigs; i++) {
    std::string path = dir + "/vnc" + std::to_string(i) + ".sock";
    qio::ui::VncConfig config;
    config.address = "unix:" + path;
    if (i == kVeNCrypt || i == kVeNCryptSasl) config.tls_creds = "fuzz-tls0";
    if (i == kSasl || i == kVeNCryptSasl) config.sasl = true;
    s->vnc[i] = qio::ui::VncServer::create(config, *s->guest, &error);
    if (!s->vnc[i]) fail(path.c_str(), error);
    s->addr[i] = qio_socket_address_new_unix(path.c_str(), FALSE);
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static Servers *servers = make_servers();
  if (size < 1 || size > kMaxInput) return 0;
  const int config = data[0] % kConfigs;
  QIOChannelSocket *viewer = qio_channel_socket_new();
  GError *error = nullptr;
  if (!qio_channel_socket_connect_sync(viewer, servers->addr[config], &error))
    fail("connecting to the VNC server", error);
  int fd = qio_channel_socket_get_fd(viewer);
  if (!g_unix_set_fd_nonblocking(fd, TRUE, nullptr)) abort();
  fuzz::play_peer(fd, data + 1, size - 1, kSeconds);
  g_object_unref(viewer);
  /* Let the server finish with the client. */
  for (int i = 0; i < 20; i++) g_main_context_iteration(nullptr, FALSE);
  return 0;
}
