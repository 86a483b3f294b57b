/* The VNC server (ui/vnc-server) as a viewer sees it: the input is what
 * one viewer sends (RFB version, security type, VNC authentication
 * response, ClientInit, then SetPixelFormat, SetEncodings, update
 * requests, key and pointer events, cut text), then EOF.  Byte 0, bit 0
 * picks the server: security None, or VNC password ("fuzzpass").  Both
 * listen on UNIX sockets in a temporary directory and show a 1 MiB
 * synthetic guest.  TLS, VeNCrypt and SASL are not covered.  The server
 * must close the connection once it has read EOF. */
#include "config.h"

#include "tests/fuzz/fuzz-util.h"
#include "ui/vnc-server.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace {

constexpr size_t kMaxInput = 1 << 16;

struct Servers {
  std::unique_ptr<qio::host::Guest> guest;
  std::unique_ptr<qio::ui::VncServer> open, password;
  QIOSocketAddress *open_addr = nullptr, *password_addr = nullptr;
};

std::unique_ptr<qio::ui::VncServer> start_server(qio::host::Guest &guest, const std::string &path,
                                                 bool password) {
  qio::ui::VncConfig config;
  config.address = "unix:" + path;
  config.password = password;
  GError *error = nullptr;
  auto server = qio::ui::VncServer::create(config, guest, &error);
  if (!server || (password && !server->set_password("fuzzpass", &error))) {
    fprintf(stderr, "VNC server on %s: %s\n", path.c_str(), error->message);
    abort();
  }
  return server;
}

Servers *make_servers() {
  fuzz::quiet_logs();
  auto *s = new Servers;
  qio::host::GuestConfig config;
  config.ram_size = 1 << 20;
  GError *error = nullptr;
  s->guest = qio::host::Guest::create(config, &error);
  char *dir = g_dir_make_tmp("qio-fuzz-vnc-XXXXXX", &error);
  if (!s->guest || !dir) {
    fprintf(stderr, "guest or temporary directory: %s\n", error->message);
    abort();
  }
  std::string open_path = std::string(dir) + "/open.sock";
  std::string password_path = std::string(dir) + "/password.sock";
  s->open = start_server(*s->guest, open_path, false);
  s->password = start_server(*s->guest, password_path, true);
  s->open_addr = qio_socket_address_new_unix(open_path.c_str(), FALSE);
  s->password_addr = qio_socket_address_new_unix(password_path.c_str(), FALSE);
  g_free(dir);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static Servers *servers = make_servers();
  if (size < 1 || size > kMaxInput) return 0;
  QIOSocketAddress *addr = data[0] & 1 ? servers->password_addr : servers->open_addr;
  QIOChannelSocket *viewer = qio_channel_socket_new();
  GError *error = nullptr;
  if (!qio_channel_socket_connect_sync(viewer, addr, &error)) {
    fprintf(stderr, "connecting to the VNC server: %s\n", error->message);
    abort();
  }
  int fd = qio_channel_socket_get_fd(viewer);
  if (!g_unix_set_fd_nonblocking(fd, TRUE, nullptr)) abort();
  fuzz::play_peer(fd, data + 1, size - 1, 5);
  g_object_unref(viewer);
  /* Let the server finish with the client. */
  for (int i = 0; i < 20; i++) g_main_context_iteration(nullptr, FALSE);
  return 0;
}
