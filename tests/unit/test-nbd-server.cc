/* NBDServer and NBDClient in one process: the server runs on its own
 * GMainContext in a thread, the blocking client talks to it over a UNIX
 * socket.  Also the URI parser. */
#include "config.h"

#include "nbd/client.h"
#include "nbd/error.h"
#include "nbd/protocol.h"
#include "nbd/server.h"

#include <glib/gstdio.h>

#include <atomic>
#include <cstring>
#include <new>
#include <string>
#include <thread>

namespace {

struct Fixture {
  char *dir = nullptr;
  std::string sock, path_a, path_b;
  GMainContext *context = nullptr;
  NBDServer *server = nullptr;
  std::thread thread;
  std::atomic<bool> stop{false};
  std::atomic<guint> closed{0};
};

void write_file(const std::string &path, gsize size, guint8 seed) {
  std::string data(size, '\0');
  for (gsize i = 0; i < size; i++) data[i] = static_cast<char>(i * 7 + seed);
  g_assert_true(g_file_set_contents(path.c_str(), data.data(), static_cast<gssize>(size), nullptr));
}

void on_closed(NBDServer *, const GError *, guint, gpointer data) noexcept {
  static_cast<Fixture *>(data)->closed++;
}

/* g_test_add hands over zeroed memory: construct the C++ members in it. */
void setup(Fixture *f, gconstpointer) {
  new (f) Fixture();
  f->dir = g_dir_make_tmp("test-nbd-XXXXXX", nullptr);
  f->sock = std::string(f->dir) + "/sock";
  f->path_a = std::string(f->dir) + "/a";
  f->path_b = std::string(f->dir) + "/b";
  write_file(f->path_a, 1 << 20, 1);
  write_file(f->path_b, 64 << 10, 2);
  f->context = g_main_context_new();
  f->server = nbd_server_new(f->context);
  g_autoptr(NBDExport) a = nbd_export_new("a", f->path_a.c_str(), FALSE, nullptr);
  g_autoptr(NBDExport) b = nbd_export_new("b", f->path_b.c_str(), TRUE, nullptr);
  g_assert_true(nbd_export_set_description(b, "the read-only one", nullptr));
  g_assert_true(nbd_server_add_export(f->server, a, nullptr));
  g_assert_true(nbd_server_add_export(f->server, b, nullptr));
  g_autoptr(GError) error = nullptr;
  g_assert_false(nbd_server_add_export(f->server, a, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_EXPORT);
  g_signal_connect(f->server, "client-closed", G_CALLBACK(on_closed), f);
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_unix(f->sock.c_str(), FALSE);
  g_assert_true(nbd_server_listen(f->server, addr, nullptr));
  f->thread = std::thread([f] {
    g_main_context_push_thread_default(f->context);
    while (!f->stop) g_main_context_iteration(f->context, TRUE);
    g_main_context_pop_thread_default(f->context);
  });
}

gboolean stop_cb(gpointer data) noexcept {
  auto *f = static_cast<Fixture *>(data);
  nbd_server_shutdown(f->server);
  f->stop = true;
  return G_SOURCE_REMOVE;
}

void teardown(Fixture *f, gconstpointer) {
  g_main_context_invoke(f->context, stop_cb, f);
  f->thread.join();
  g_object_unref(f->server);
  /* Let the cancelled client tasks finish and free themselves. */
  while (g_main_context_iteration(f->context, FALSE)) {
  }
  g_main_context_unref(f->context);
  g_unlink(f->sock.c_str());
  g_unlink(f->path_a.c_str());
  g_unlink(f->path_b.c_str());
  g_rmdir(f->dir);
  g_free(f->dir);
  f->~Fixture();
}

QIOSocketAddress *addr_of(Fixture *f) { return qio_socket_address_new_unix(f->sock.c_str(), FALSE); }

void test_list(Fixture *f, gconstpointer) {
  g_autoptr(NBDClient) client = nbd_client_new();
  g_autoptr(QIOSocketAddress) addr = addr_of(f);
  g_autoptr(GError) error = nullptr;
  g_autoptr(GPtrArray) list = nbd_client_list(client, addr, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 2);
  auto *a = static_cast<NBDExportInfo *>(list->pdata[0]);
  auto *b = static_cast<NBDExportInfo *>(list->pdata[1]);
  g_assert_cmpstr(a->name, ==, "a");
  g_assert_cmpuint(a->size, ==, 1 << 20);
  g_assert_false(a->flags & NBD_FLAG_READ_ONLY);
  g_assert_cmpstr(b->name, ==, "b");
  g_assert_cmpstr(b->description, ==, "the read-only one");
  g_assert_true(b->flags & NBD_FLAG_READ_ONLY);
  g_assert_cmpuint(b->max_block, ==, NBD_MAX_PAYLOAD);
}

void test_read_write(Fixture *f, gconstpointer) {
  g_autoptr(NBDClient) client = nbd_client_new();
  g_autoptr(GError) error = nullptr;
  std::string uri = "nbd+unix:///a?socket=" + f->sock;
  g_assert_true(nbd_client_connect_uri(client, uri.c_str(), &error));
  g_assert_no_error(error);
  g_assert_true(nbd_client_has_structured_replies(client));
  g_assert_true(nbd_client_has_base_allocation(client));
  g_assert_cmpuint(nbd_client_get_info(client)->size, ==, 1 << 20);
  guint8 buf[1000];
  g_assert_true(nbd_client_read(client, 5000, buf, sizeof buf, &error));
  for (gsize i = 0; i < sizeof buf; i++)
    g_assert_cmpuint(buf[i], ==, static_cast<guint8>((5000 + i) * 7 + 1));
  memset(buf, 0xab, sizeof buf);
  g_assert_true(nbd_client_write(client, 100, buf, sizeof buf, TRUE, &error));
  g_assert_true(nbd_client_flush(client, &error));
  g_autofree char *contents = nullptr;
  g_assert_true(g_file_get_contents(f->path_a.c_str(), &contents, nullptr, nullptr));
  g_assert_cmpuint(static_cast<guint8>(contents[100]), ==, 0xab);
  g_assert_cmpuint(static_cast<guint8>(contents[1099]), ==, 0xab);
  g_assert_cmpuint(static_cast<guint8>(contents[1100]), ==, static_cast<guint8>(1100 * 7 + 1));
  /* Out of range: the server refuses, the connection stays usable. */
  g_assert_false(nbd_client_read(client, (1 << 20) - 10, buf, 20, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_COMMAND);
  g_clear_error(&error);
  g_assert_true(nbd_client_write_zeroes(client, 0, 4096, &error));
  g_assert_true(nbd_client_read(client, 0, buf, 16, &error));
  g_assert_cmpuint(buf[0], ==, 0);
  g_autoptr(GArray) extents = nbd_client_block_status(client, 0, 1 << 20, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(extents->len, >=, 1);
  nbd_client_disconnect(client);
}

void test_read_only(Fixture *f, gconstpointer) {
  g_autoptr(NBDClient) client = nbd_client_new();
  g_autoptr(QIOSocketAddress) addr = addr_of(f);
  g_autoptr(GError) error = nullptr;
  g_assert_true(nbd_client_connect(client, addr, "b", &error));
  guint8 byte = 1;
  g_assert_false(nbd_client_write(client, 0, &byte, 1, FALSE, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_COMMAND);
  g_clear_error(&error);
  /* A read-only export offers no trim: the client does not send one. */
  g_assert_false(nbd_client_trim(client, 0, 4096, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_UNSUPPORTED);
  g_assert_nonnull(strstr(error->message, "NBD_CMD_TRIM"));
  g_clear_error(&error);
  g_assert_false(nbd_client_write_zeroes(client, 0, 4096, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_UNSUPPORTED);
  g_clear_error(&error);
  /* The connection is still in step. */
  g_assert_true(nbd_client_read(client, 0, &byte, 1, &error));
}

void test_unknown_export(Fixture *f, gconstpointer) {
  g_autoptr(NBDClient) client = nbd_client_new();
  g_autoptr(QIOSocketAddress) addr = addr_of(f);
  g_autoptr(GError) error = nullptr;
  g_assert_false(nbd_client_connect(client, addr, "zzz", &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_UNKNOWN_EXPORT);
  g_assert_nonnull(strstr(error->message, "'zzz'"));
  /* Not connected: commands fail cleanly. */
  g_clear_error(&error);
  guint8 b;
  g_assert_false(nbd_client_read(client, 0, &b, 1, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_FAILED);
}

void test_max_connections(Fixture *f, gconstpointer) {
  nbd_server_set_max_connections(f->server, 1);
  g_autoptr(QIOSocketAddress) addr = addr_of(f);
  g_autoptr(NBDClient) first = nbd_client_new();
  g_autoptr(NBDClient) second = nbd_client_new();
  g_assert_true(nbd_client_connect(first, addr, "a", nullptr));
  g_autoptr(GError) error = nullptr;
  g_assert_false(nbd_client_connect(second, addr, "a", &error));
  g_assert_nonnull(error);
  g_test_message("refused: %s", error->message);
  g_assert_cmpuint(f->closed.load(), >=, 1);
}

struct UriCase {
  const char *uri;
  const char *addr; /* NULL: must fail */
  const char *name;
  gboolean tls;
};

void test_uri() {
  const UriCase cases[] = {
      {"nbd://localhost/disk", "localhost:10809", "disk", FALSE},
      {"nbd://127.0.0.1:1234/", "127.0.0.1:1234", "", FALSE},
      {"nbd://[::1]:99/a%20b", "[::1]:99", "a b", FALSE},
      {"nbd://host", "host:10809", "", FALSE},
      {"nbds://host/x", "host:10809", "x", TRUE},
      {"nbd+unix:///e?socket=/tmp/s", "unix:/tmp/s", "e", FALSE},
      {"nbds+unix://?socket=/tmp/s", "unix:/tmp/s", "", TRUE},
      {"http://host/x", nullptr, nullptr, FALSE},
      {"nbd:host/x", nullptr, nullptr, FALSE},
      {"nbd:///x", nullptr, nullptr, FALSE},
      {"nbd://host:0/x", nullptr, nullptr, FALSE},
      {"nbd://host:65536/x", nullptr, nullptr, FALSE},
      {"nbd://host:port/x", nullptr, nullptr, FALSE},
      {"nbd://user@host/x", nullptr, nullptr, FALSE},
      {"nbd://host/x#frag", nullptr, nullptr, FALSE},
      {"nbd://host/x?socket=/s", nullptr, nullptr, FALSE},
      {"nbd+unix:///x", nullptr, nullptr, FALSE},
      {"nbd+unix:///x?socket=", nullptr, nullptr, FALSE},
      {"nbd+unix://host/x?socket=/s", nullptr, nullptr, FALSE},
      {"nbd+unix:///x?socket=/s&tls=on", nullptr, nullptr, FALSE},
      {"", nullptr, nullptr, FALSE},
      {"nbd://", nullptr, nullptr, FALSE},
  };
  for (const UriCase &c : cases) {
    g_test_message("%s", c.uri);
    QIOSocketAddress *addr = nullptr;
    char *name = nullptr;
    gboolean tls = !c.tls;
    g_autoptr(GError) error = nullptr;
    gboolean ok = nbd_client_parse_uri(c.uri, &addr, &name, &tls, &error);
    if (!c.addr) {
      g_assert_false(ok);
      g_assert_true(g_error_matches(error, NBD_ERROR, NBD_ERROR_INVALID_URI));
      g_assert_nonnull(strstr(error->message, c.uri));
      continue;
    }
    g_assert_no_error(error);
    g_assert_true(ok);
    g_autofree char *s = qio_socket_address_to_string(addr);
    g_assert_cmpstr(s, ==, c.addr);
    g_assert_cmpstr(name, ==, c.name);
    g_assert_cmpint(tls, ==, c.tls);
    g_object_unref(addr);
    g_free(name);
  }
}

void test_export_errors() {
  g_autoptr(GError) error = nullptr;
  g_assert_null(nbd_export_new("x", "/nonexistent/file", TRUE, &error));
  g_assert_nonnull(strstr(error->message, "/nonexistent/file"));
  g_clear_error(&error);
  g_assert_null(nbd_export_new("x", "/", TRUE, &error));
  g_assert_nonnull(strstr(error->message, "not a regular file"));
  g_clear_error(&error);
  std::string longname(5000, 'n');
  g_assert_null(nbd_export_new(longname.c_str(), "/dev/null", TRUE, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_EXPORT);
  g_clear_error(&error);
  /* Descriptions have the same limit: libnbd refuses a longer one. */
  g_autofree char *path = nullptr;
  int fd = g_file_open_tmp("test-nbd-desc-XXXXXX", &path, &error);
  g_assert_no_error(error);
  close(fd);
  g_autoptr(NBDExport) exp = nbd_export_new("d", path, TRUE, &error);
  g_assert_no_error(error);
  g_unlink(path);
  std::string desc(NBD_MAX_STRING, 'd');
  g_assert_true(nbd_export_set_description(exp, desc.c_str(), &error));
  g_assert_no_error(error);
  desc += 'd';
  g_assert_false(nbd_export_set_description(exp, desc.c_str(), &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_EXPORT);
  g_assert_nonnull(strstr(error->message, "'d'"));
  g_assert_cmpuint(strlen(nbd_export_get_description(exp)), ==, NBD_MAX_STRING);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add("/nbd/server/list", Fixture, nullptr, setup, test_list, teardown);
  g_test_add("/nbd/server/read-write", Fixture, nullptr, setup, test_read_write, teardown);
  g_test_add("/nbd/server/read-only", Fixture, nullptr, setup, test_read_only, teardown);
  g_test_add("/nbd/server/unknown-export", Fixture, nullptr, setup, test_unknown_export,
             teardown);
  g_test_add("/nbd/server/max-connections", Fixture, nullptr, setup, test_max_connections,
             teardown);
  g_test_add_func("/nbd/client/uri", test_uri);
  g_test_add_func("/nbd/export/errors", test_export_errors);
  return g_test_run();
}
