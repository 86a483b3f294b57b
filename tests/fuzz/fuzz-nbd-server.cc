/* The NBD server (nbd/server) as a client sees it: the input is what one
 * client sends over a socket pair (its flags, options such as
 * NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST and the meta-context options,
 * then transmission requests), then EOF.  Two 1 MiB exports, "fuzz" (read
 * write, with a description) and "ro" (read-only), both in temporary
 * files.  Plaintext only: the options offered before NBD_OPT_STARTTLS on a
 * TLS server are a subset of these.  The server must close the connection
 * once it has read EOF. */
#include "config.h"

#include "nbd/server.h"
#include "tests/fuzz/fuzz-util.h"

#include <glib/gstdio.h>

#include <cstddef>
#include <cstdint>

namespace {

constexpr size_t kMaxInput = 1 << 16;
constexpr goffset kExportSize = 1 << 20;

NBDExport *make_export(const char *name, gboolean read_only) {
  GError *error = nullptr;
  char *path = nullptr;
  int fd = g_file_open_tmp("qio-fuzz-nbd-XXXXXX", &path, &error);
  if (fd < 0 || ftruncate(fd, kExportSize) < 0) abort();
  close(fd);
  NBDExport *exp = nbd_export_new(name, path, read_only, &error);
  if (!exp) {
    fprintf(stderr, "export %s: %s\n", path, error->message);
    abort();
  }
  /* The export keeps its descriptor. */
  g_unlink(path);
  g_free(path);
  return exp;
}

NBDServer *make_server() {
  fuzz::quiet_logs();
  NBDServer *server = nbd_server_new(nullptr);
  NBDExport *rw = make_export("fuzz", FALSE);
  NBDExport *ro = make_export("ro", TRUE);
  if (!nbd_export_set_description(rw, "fuzzed export", nullptr) ||
      !nbd_server_add_export(server, rw, nullptr) || !nbd_server_add_export(server, ro, nullptr))
    abort();
  g_object_unref(rw);
  g_object_unref(ro);
  return server;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static NBDServer *server = make_server();
  if (size > kMaxInput) return 0;
  {
    fuzz::PeerPair pair;
    nbd_server_add_client(server, QIO_CHANNEL(pair.server));
    fuzz::play_peer(pair.fd, data, size, 5);
  }
  /* Let the server finish with the client (worker threads, signals). */
  for (int i = 0; i < 1000 && nbd_server_get_n_clients(server) > 0; i++)
    g_main_context_iteration(nullptr, i > 100);
  return 0;
}
