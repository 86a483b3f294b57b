/* The VNC server (ui/vnc-server) as a viewer sees it: the input is what
 * one viewer sends (RFB version, security type, ClientInit, then
 * SetPixelFormat, SetEncodings, update requests, key and pointer events,
 * cut text), then EOF.  The server offers no security (a VNC password
 * answers a random challenge, which a fuzzer cannot meet, and failed
 * tries would soon be slowed down by VncAuthThrottle), listens on a UNIX
 * socket in a temporary directory and shows a 1 MiB synthetic guest.
 * VeNCrypt (with TLS) and SASL are fuzz-vnc-auth's.  The server must
 * close the connection once it has read EOF. */
#include "config.h"

#include "tests/fuzz/fuzz-util.h"
#include "ui/vnc-server.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace {

constexpr size_t kMaxInput = 1 << 16;

struct Server {
  std::unique_ptr<qio::host::Guest> guest;
  std::unique_ptr<qio::ui::VncServer> vnc;
  QIOSocketAddress *addr = nullptr;
};

Server *make_server() {
  fuzz::quiet_logs();
  auto *s = new Server;
  s->guest = fuzz::make_guest();
  GError *error = nullptr;
  char *dir = g_dir_make_tmp("qio-fuzz-vnc-XXXXXX", &error);
  if (!dir) {
    fprintf(stderr, "temporary directory: %s\n", error->message);
    abort();
  }
  std::string path = std::string(dir) + "/vnc.sock";
  qio::ui::VncConfig vnc_config;
  vnc_config.address = "unix:" + path;
  s->vnc = qio::ui::VncServer::create(vnc_config, *s->guest, &error);
  if (!s->vnc) {
    fprintf(stderr, "VNC server on %s: %s\n", path.c_str(), error->message);
    abort();
  }
  s->addr = qio_socket_address_new_unix(path.c_str(), FALSE);
  g_free(dir);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static Server *server = make_server();
  if (size > kMaxInput) return 0;
  QIOChannelSocket *viewer = qio_channel_socket_new();
  GError *error = nullptr;
  if (!qio_channel_socket_connect_sync(viewer, server->addr, &error)) {
    fprintf(stderr, "connecting to the VNC server: %s\n", error->message);
    abort();
  }
  int fd = qio_channel_socket_get_fd(viewer);
  if (!g_unix_set_fd_nonblocking(fd, TRUE, nullptr)) abort();
  fuzz::play_peer(fd, data, size, 5);
  g_object_unref(viewer);
  /* Let the server finish with the client. */
  for (int i = 0; i < 20; i++) g_main_context_iteration(nullptr, FALSE);
  return 0;
}
