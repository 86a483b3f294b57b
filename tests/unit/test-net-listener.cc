/* QIONetListener: every address of a name, one port, clients in a context. */
#include "config.h"

#include "qio/error.h"
#include "qio/net-listener.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

QIOSocketAddress *parse(const char *str) {
  g_autoptr(GError) error = nullptr;
  QIOSocketAddress *addr = qio_socket_address_parse(str, &error);
  g_assert_no_error(error);
  return addr;
}

struct Clients {
  GMainContext *context;
  std::vector<QIOChannelSocket *> accepted;
  bool in_context = true;
  int notified = 0;
};

void on_client(QIONetListener *, QIOChannelSocket *client, gpointer data) noexcept {
  auto *c = static_cast<Clients *>(data);
  c->in_context = c->in_context && g_main_context_is_owner(c->context);
  c->accepted.push_back(QIO_CHANNEL_SOCKET(g_object_ref(client)));
}

void clients_notify(gpointer data) noexcept { static_cast<Clients *>(data)->notified++; }

/* Connects to @addr and exchanges a byte with the accepted channel. */
void connect_and_check(Clients *c, QIOSocketAddress *addr) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
  g_assert_true(qio_channel_socket_connect_sync(client, addr, &error));
  g_assert_no_error(error);
  gsize before = c->accepted.size();
  while (c->accepted.size() == before) g_main_context_iteration(c->context, TRUE);
  QIOChannelSocket *server = c->accepted.back();
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(client), "q", 1, &error));
  char got = 0;
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(server), &got, 1, &error));
  g_assert_no_error(error);
  g_assert_cmpint(got, ==, 'q');
  /* Accepted clients are blocking channels whatever the listener is. */
  g_autoptr(QIOSocketAddress) peer = qio_channel_socket_get_remote_address(server, &error);
  g_autoptr(QIOSocketAddress) mine = qio_channel_socket_get_local_address(client, &error);
  g_autofree char *ps = qio_socket_address_to_string(peer);
  g_autofree char *ms = qio_socket_address_to_string(mine);
  g_assert_cmpstr(ps, ==, ms);
}

void clients_free(Clients *c) {
  for (auto *s : c->accepted) g_object_unref(s);
  c->accepted.clear();
}

void test_localhost() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) addr = parse("localhost:0");
  g_autoptr(GPtrArray) resolved = qio_socket_address_resolve(addr, TRUE, &error);
  std::set<std::string> hosts;
  for (guint i = 0; i < resolved->len; i++)
    hosts.insert(qio_socket_address_get_host(QIO_SOCKET_ADDRESS(g_ptr_array_index(resolved, i))));
  g_test_message("localhost resolves to %zu distinct addresses", hosts.size());

  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  g_assert_true(qio_net_listener_open_sync(listener, addr, 8, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(qio_net_listener_get_n_sockets(listener), ==, hosts.size());
  g_autoptr(GMainContext) context = g_main_context_new();
  Clients c{context};
  qio_net_listener_set_client_func(listener, on_client, &c, clients_notify, context);
  guint32 port = 0;
  for (gsize i = 0; i < qio_net_listener_get_n_sockets(listener); i++) {
    g_autoptr(QIOSocketAddress) local = qio_net_listener_get_address(listener, i, &error);
    g_assert_no_error(error);
    g_assert_true(hosts.count(qio_socket_address_get_host(local)) == 1);
    if (i == 0) port = qio_socket_address_get_port(local);
    /* One port serves every address. */
    g_assert_cmpuint(qio_socket_address_get_port(local), ==, port);
    g_assert_cmpuint(port, !=, 0);
    connect_and_check(&c, local);
  }
  g_assert_cmpuint(c.accepted.size(), ==, hosts.size());
  g_assert_true(c.in_context);
  clients_free(&c);
  qio_net_listener_disconnect(listener);
  g_assert_cmpint(c.notified, ==, 1);
  g_assert_false(qio_net_listener_is_connected(listener));
}

void test_both_families() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  qio_net_listener_set_name(listener, "dual");
  g_autoptr(QIOSocketAddress) v4 = parse("127.0.0.1:0");
  g_assert_true(qio_net_listener_open_sync(listener, v4, 8, &error));
  g_autoptr(QIOSocketAddress) first = qio_net_listener_get_address(listener, 0, &error);
  g_autofree char *v6str = g_strdup_printf("[::1]:%u", qio_socket_address_get_port(first));
  g_autoptr(QIOSocketAddress) v6 = parse(v6str);
  if (!qio_net_listener_open_sync(listener, v6, 8, &error)) {
    g_test_skip(error->message);
    return;
  }
  g_assert_cmpuint(qio_net_listener_get_n_sockets(listener), ==, 2);
  g_assert_nonnull(strstr(qio_channel_get_name(QIO_CHANNEL(
                              qio_net_listener_get_socket(listener, 1))),
                          "dual"));
  /* Callbacks in a context run by another thread. */
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(GMainLoop) loop = g_main_loop_new(context, FALSE);
  std::thread runner([&] { g_main_loop_run(loop); });
  struct Shared {
    GMainContext *context;
    GMutex lock;
    GCond cond;
    std::vector<std::string> families;
    bool in_context = true;
  } sh{context};
  g_mutex_init(&sh.lock);
  g_cond_init(&sh.cond);
  qio_net_listener_set_client_func(
      listener,
      [](QIONetListener *, QIOChannelSocket *client, gpointer data) noexcept {
        auto *s = static_cast<Shared *>(data);
        g_autoptr(QIOSocketAddress) local = qio_channel_socket_get_local_address(client, nullptr);
        g_mutex_lock(&s->lock);
        s->in_context = s->in_context && g_main_context_is_owner(s->context);
        s->families.push_back(qio_socket_address_get_host(local));
        g_cond_signal(&s->cond);
        g_mutex_unlock(&s->lock);
      },
      &sh, nullptr, context);
  for (QIOSocketAddress *addr : {v4, v6}) {
    g_autoptr(QIOSocketAddress) target = qio_socket_address_new_inet(
        qio_socket_address_get_host(addr), static_cast<guint16>(qio_socket_address_get_port(first)));
    g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
    g_assert_true(qio_channel_socket_connect_sync(client, target, &error));
    g_assert_no_error(error);
  }
  g_mutex_lock(&sh.lock);
  while (sh.families.size() < 2) g_cond_wait(&sh.cond, &sh.lock);
  g_mutex_unlock(&sh.lock);
  g_main_loop_quit(loop);
  runner.join();
  g_assert_true(sh.in_context);
  std::set<std::string> got(sh.families.begin(), sh.families.end());
  g_assert_true(got == std::set<std::string>({"127.0.0.1", "::1"}));
  qio_net_listener_disconnect(listener);
  g_mutex_clear(&sh.lock);
  g_cond_clear(&sh.cond);
}

void test_wait_client_unix() {
  g_autoptr(GError) error = nullptr;
  g_autofree char *dir = g_dir_make_tmp("qio-listener-XXXXXX", &error);
  g_autofree char *path = g_build_filename(dir, "l.sock", nullptr);
  g_autofree char *str = g_strdup_printf("unix:%s", path);
  g_autoptr(QIOSocketAddress) addr = parse(str);
  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  g_assert_true(qio_net_listener_open_sync(listener, addr, 0, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(qio_net_listener_get_n_sockets(listener), ==, 1);
  std::thread connector([&] {
    g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
    g_assert_true(qio_channel_socket_connect_sync(client, addr, nullptr));
    g_assert_true(qio_channel_write_all(QIO_CHANNEL(client), "hello", 5, nullptr));
  });
  g_autoptr(QIOChannelSocket) server = qio_net_listener_wait_client(listener, &error);
  g_assert_no_error(error);
  char buf[5];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(server), buf, 5, &error));
  g_assert_cmpmem(buf, 5, "hello", 5);
  connector.join();
  /* disconnect closes the sockets and removes the socket file. */
  qio_net_listener_disconnect(listener);
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
  g_assert_null(qio_net_listener_wait_client(listener, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED);
  g_clear_error(&error);
  g_autoptr(QIOChannelSocket) late = qio_channel_socket_new();
  g_assert_false(qio_channel_socket_connect_sync(late, addr, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  rmdir(dir);
}

void test_disconnect_stops() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  g_autoptr(QIOSocketAddress) addr = parse("127.0.0.1:0");
  g_assert_true(qio_net_listener_open_sync(listener, addr, 8, &error));
  g_autoptr(QIOSocketAddress) local = qio_net_listener_get_address(listener, 0, &error);
  g_autoptr(GMainContext) context = g_main_context_new();
  Clients c{context};
  qio_net_listener_set_client_func(listener, on_client, &c, clients_notify, context);
  connect_and_check(&c, local);
  /* Replacing the callback frees the old data. */
  qio_net_listener_set_client_func(listener, on_client, &c, clients_notify, context);
  g_assert_cmpint(c.notified, ==, 1);
  qio_net_listener_disconnect(listener);
  g_assert_cmpint(c.notified, ==, 2);
  g_assert_cmpuint(qio_net_listener_get_n_sockets(listener), ==, 0);
  g_autoptr(QIOChannelSocket) late = qio_channel_socket_new();
  g_assert_false(qio_channel_socket_connect_sync(late, local, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  /* Nothing is dispatched after disconnect. */
  while (g_main_context_iteration(context, FALSE)) {
  }
  g_assert_cmpuint(c.accepted.size(), ==, 1);
  clients_free(&c);
}

void test_open_fails() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIONetListener) busy = qio_net_listener_new();
  g_autoptr(QIOSocketAddress) any = parse("127.0.0.1:0");
  g_assert_true(qio_net_listener_open_sync(busy, any, 8, &error));
  g_autoptr(QIOSocketAddress) taken = qio_net_listener_get_address(busy, 0, &error);
  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  g_assert_false(qio_net_listener_open_sync(listener, taken, 8, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_autofree char *str = qio_socket_address_to_string(taken);
  g_assert_nonnull(strstr(error->message, str));
  g_clear_error(&error);
  g_assert_cmpuint(qio_net_listener_get_n_sockets(listener), ==, 0);
  g_autoptr(QIOSocketAddress) unknown = parse("no-such-host.invalid:0");
  g_assert_false(qio_net_listener_open_sync(listener, unknown, 8, &error));
  g_assert_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND);
}

struct OpenState {
  GMainContext *context;
  bool done = false;
  gboolean ok = FALSE;
  bool in_context = false;
  GError *error = nullptr;
};

void open_done(GObject *source, GAsyncResult *result, gpointer data) noexcept {
  auto *st = static_cast<OpenState *>(data);
  st->in_context = g_main_context_is_owner(st->context);
  st->ok = qio_net_listener_open_finish(QIO_NET_LISTENER(source), result, &st->error);
  st->done = true;
}

void test_open_async() {
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  g_autoptr(QIOSocketAddress) addr = parse("localhost:0");
  OpenState st{context};
  qio_net_listener_open_async(listener, addr, 8, nullptr, open_done, &st, context);
  while (!st.done) g_main_context_iteration(context, TRUE);
  g_assert_no_error(st.error);
  g_assert_true(st.ok);
  g_assert_true(st.in_context);
  g_assert_cmpuint(qio_net_listener_get_n_sockets(listener), >=, 1);
  Clients c{context};
  qio_net_listener_set_client_func(listener, on_client, &c, nullptr, context);
  g_autoptr(QIOSocketAddress) local = qio_net_listener_get_address(listener, 0, nullptr);
  connect_and_check(&c, local);
  clients_free(&c);

  /* Cancelled before it ran: nothing opened. */
  g_autoptr(QIONetListener) other = qio_net_listener_new();
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_cancellable_cancel(cancellable);
  OpenState cs{context};
  qio_net_listener_open_async(other, addr, 8, cancellable, open_done, &cs, context);
  while (!cs.done) g_main_context_iteration(context, TRUE);
  g_assert_false(cs.ok);
  g_assert_error(cs.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_error_free(cs.error);
  g_assert_cmpuint(qio_net_listener_get_n_sockets(other), ==, 0);

  /* A busy port fails with an error naming it. */
  OpenState bs{context};
  qio_net_listener_open_async(other, local, 8, nullptr, open_done, &bs, context);
  while (!bs.done) g_main_context_iteration(context, TRUE);
  g_assert_false(bs.ok);
  g_assert_error(bs.error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_autofree char *str = qio_socket_address_to_string(local);
  g_assert_nonnull(strstr(bs.error->message, str));
  g_error_free(bs.error);
  g_assert_cmpuint(qio_net_listener_get_n_sockets(other), ==, 0);
}

/* Out of descriptors: accept fails, the listener warns and pauses instead
 * of spinning on the still-readable socket, then takes the client. */
void test_accept_backoff() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIONetListener) listener = qio_net_listener_new();
  g_autoptr(QIOSocketAddress) addr = parse("127.0.0.1:0");
  g_assert_true(qio_net_listener_open_sync(listener, addr, 8, &error));
  g_autoptr(QIOSocketAddress) local = qio_net_listener_get_address(listener, 0, nullptr);
  g_autoptr(GMainContext) context = g_main_context_new();
  Clients c{context};
  qio_net_listener_set_client_func(listener, on_client, &c, nullptr, context);
  g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
  g_assert_true(qio_channel_socket_connect_sync(client, local, &error));

  struct rlimit saved;
  g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
  struct rlimit low = saved;
  low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 256);
  g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
  std::vector<int> hogs;
  for (int fd; (fd = dup(0)) >= 0;) hogs.push_back(fd);
  g_assert_cmpint(errno, ==, EMFILE);

  g_test_expect_message(nullptr, G_LOG_LEVEL_WARNING, "*trying again in 100 ms*");
  g_main_context_iteration(context, TRUE);
  g_test_assert_expected_messages();
  g_assert_cmpuint(c.accepted.size(), ==, 0);
  /* Paused: nothing dispatches during the next 50 ms. */
  int dispatched = 0;
  for (gint64 end = g_get_monotonic_time() + 50000; g_get_monotonic_time() < end;) {
    if (g_main_context_iteration(context, FALSE)) dispatched++;
    g_usleep(1000);
  }
  g_assert_cmpint(dispatched, ==, 0);

  for (int fd : hogs) close(fd);
  g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
  while (c.accepted.empty()) g_main_context_iteration(context, TRUE);
  g_assert_cmpuint(c.accepted.size(), ==, 1);
  clients_free(&c);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/net-listener/localhost", test_localhost);
  g_test_add_func("/qio/net-listener/both-families", test_both_families);
  g_test_add_func("/qio/net-listener/wait-client-unix", test_wait_client_unix);
  g_test_add_func("/qio/net-listener/disconnect", test_disconnect_stops);
  g_test_add_func("/qio/net-listener/open-fails", test_open_fails);
  g_test_add_func("/qio/net-listener/open-async", test_open_async);
  g_test_add_func("/qio/net-listener/accept-backoff", test_accept_backoff);
  return g_test_run();
}
