/* QIOSocketAddress: the address grammar, its errors, and conversions. */
#include "config.h"

#include "qio/error.h"
#include "qio/socket-address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

static QIOSocketAddress *parse_ok(const char *str) {
  g_autoptr(GError) error = nullptr;
  QIOSocketAddress *addr = qio_socket_address_parse(str, &error);
  g_assert_no_error(error);
  g_assert_nonnull(addr);
  /* Every valid address prints back as it was written (canonical input). */
  g_autofree char *back = qio_socket_address_to_string(addr);
  g_autoptr(QIOSocketAddress) again = qio_socket_address_parse(back, &error);
  g_assert_no_error(error);
  g_autofree char *back2 = qio_socket_address_to_string(again);
  g_assert_cmpstr(back, ==, back2);
  return addr;
}

static void test_inet() {
  g_autoptr(QIOSocketAddress) a = parse_ok("127.0.0.1:80");
  g_assert_cmpint(qio_socket_address_get_kind(a), ==, QIO_SOCKET_ADDRESS_INET);
  g_assert_cmpstr(qio_socket_address_get_host(a), ==, "127.0.0.1");
  g_assert_cmpuint(qio_socket_address_get_port(a), ==, 80);

  g_autoptr(QIOSocketAddress) b = parse_ok("[::1]:65535");
  g_assert_cmpstr(qio_socket_address_get_host(b), ==, "::1");
  g_assert_cmpuint(qio_socket_address_get_port(b), ==, 65535);
  g_autofree char *bs = qio_socket_address_to_string(b);
  g_assert_cmpstr(bs, ==, "[::1]:65535");

  g_autoptr(QIOSocketAddress) c = parse_ok("inet:example.org:0");
  g_assert_cmpstr(qio_socket_address_get_host(c), ==, "example.org");
  g_assert_cmpuint(qio_socket_address_get_port(c), ==, 0);
  g_autofree char *cs = qio_socket_address_to_string(c);
  g_assert_cmpstr(cs, ==, "example.org:0");

  g_autoptr(QIOSocketAddress) d = parse_ok("inet:[fe80::1]:22");
  g_assert_cmpstr(qio_socket_address_get_host(d), ==, "fe80::1");

  /* A host spelled like a prefix keeps its inet: when printed. */
  g_autoptr(QIOSocketAddress) e = parse_ok("inet:unix:1");
  g_assert_cmpint(qio_socket_address_get_kind(e), ==, QIO_SOCKET_ADDRESS_INET);
  g_assert_cmpstr(qio_socket_address_get_host(e), ==, "unix");
  g_autofree char *es = qio_socket_address_to_string(e);
  g_assert_cmpstr(es, ==, "inet:unix:1");
}

static void test_unix_vsock_fd() {
  g_autoptr(QIOSocketAddress) u = parse_ok("unix:/run/qio/sock");
  g_assert_cmpint(qio_socket_address_get_kind(u), ==, QIO_SOCKET_ADDRESS_UNIX);
  g_assert_cmpstr(qio_socket_address_get_path(u), ==, "/run/qio/sock");
  g_assert_false(qio_socket_address_is_abstract(u));

  g_autoptr(QIOSocketAddress) a = parse_ok("unix:@qio-abstract");
  g_assert_cmpstr(qio_socket_address_get_path(a), ==, "qio-abstract");
  g_assert_true(qio_socket_address_is_abstract(a));
  g_autofree char *as = qio_socket_address_to_string(a);
  g_assert_cmpstr(as, ==, "unix:@qio-abstract");

  /* The longest path sun_path can hold, with its NUL. */
  std::string longest = "unix:/" + std::string(sizeof(sockaddr_un::sun_path) - 2, 'x');
  g_autoptr(QIOSocketAddress) l = parse_ok(longest.c_str());
  g_assert_cmpuint(strlen(qio_socket_address_get_path(l)), ==,
                   sizeof(sockaddr_un::sun_path) - 1);

  g_autoptr(QIOSocketAddress) v = parse_ok("vsock:2:1024");
  g_assert_cmpint(qio_socket_address_get_kind(v), ==, QIO_SOCKET_ADDRESS_VSOCK);
  g_assert_cmpuint(qio_socket_address_get_cid(v), ==, 2);
  g_assert_cmpuint(qio_socket_address_get_port(v), ==, 1024);
  g_autoptr(QIOSocketAddress) vmax = parse_ok("vsock:4294967295:4294967295");
  g_assert_cmpuint(qio_socket_address_get_cid(vmax), ==, G_MAXUINT32);

  g_autoptr(QIOSocketAddress) f = parse_ok("fd:migrate-in");
  g_assert_cmpint(qio_socket_address_get_kind(f), ==, QIO_SOCKET_ADDRESS_FD);
  g_assert_cmpstr(qio_socket_address_get_fd_name(f), ==, "migrate-in");
  g_assert_null(qio_socket_address_get_path(f));
}

static const char *const malformed[] = {
    "",                        /* empty */
    ":80",                     /* empty host */
    "inet::80",                /* empty host after the prefix */
    "[]:80",                   /* empty IPv6 host */
    "localhost",               /* missing port */
    "localhost:",              /* empty port */
    "localhost:http",          /* port not a number */
    "localhost:65536",         /* port out of range */
    "localhost:99999999999",   /* port far out of range */
    "localhost:-1",            /* signed port */
    "localhost:+1",            /* signed port */
    "localhost: 80",           /* space */
    "[::1",                    /* unterminated [ */
    "[::1]",                   /* missing port after ] */
    "[::1]80",                 /* missing : after ] */
    "[::1]:",                  /* empty port after ] */
    "[localhost]:80",          /* brackets around a non-IPv6 host */
    "::1:80",                  /* IPv6 without brackets */
    "inet:",                   /* nothing after the prefix */
    "tcp:localhost:80",        /* unknown prefix */
    "unx:/tmp/sock",           /* unknown prefix with a path */
    "unix:",                   /* empty path */
    "unix:@",                  /* empty abstract name */
    "vsock:",                  /* nothing */
    "vsock:3",                 /* missing port */
    "vsock:3:",                /* empty port */
    "vsock::5",                /* empty CID */
    "vsock:x:5",               /* CID not a number */
    "vsock:-1:5",              /* negative CID */
    "vsock:4294967296:5",      /* CID out of range */
    "vsock:3:4294967296",      /* port out of range */
    "vsock:3:p",               /* port not a number */
    "fd:",                     /* empty descriptor name */
};

static void test_malformed() {
  for (const char *str : malformed) {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(str, &error);
    if (addr) g_error("'%s' was accepted", str);
    g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
    g_autofree char *quoted = g_strdup_printf("'%s'", str);
    if (!strstr(error->message, quoted))
      g_error("the error for '%s' does not name it: %s", str, error->message);
    g_test_message("%s -> %s", str, error->message);
  }
}

static void test_malformed_messages() {
  struct {
    const char *str;
    const char *says;
  } cases[] = {
      {"[::1", "not closed"},       {"localhost:65536", "0 to 65535"},
      {"tcp:h:1", "unknown prefix 'tcp:'"}, {"::1:80", "brackets"},
      {":80", "host is empty"},      {"vsock:x:1", "CID"},
  };
  for (auto &c : cases) {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(c.str, &error);
    g_assert_null(addr);
    if (!strstr(error->message, c.says))
      g_error("error for '%s' lacks '%s': %s", c.str, c.says, error->message);
  }
  std::string too_long = "unix:/" + std::string(sizeof(sockaddr_un::sun_path) - 1, 'x');
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(too_long.c_str(), &error);
  g_assert_null(addr);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
  g_assert_nonnull(strstr(error->message, "shorter path"));
  g_clear_error(&error);
  std::string too_long_abstract = "unix:@" + std::string(sizeof(sockaddr_un::sun_path), 'x');
  addr = qio_socket_address_parse(too_long_abstract.c_str(), &error);
  g_assert_null(addr);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
}

static void test_native() {
  struct {
    const char *str;
    int family;
  } cases[] = {{"127.0.0.1:4242", AF_INET}, {"[::1]:4242", AF_INET6},
               {"unix:/tmp/qio-test.sock", AF_UNIX}, {"unix:@qio-abs", AF_UNIX},
               {"vsock:1:77", AF_VSOCK}};
  for (auto &c : cases) {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(c.str, &error);
    struct sockaddr_storage ss;
    socklen_t len;
    g_assert_true(qio_socket_address_to_native(addr, &ss, &len, &error));
    g_assert_no_error(error);
    g_assert_cmpint(ss.ss_family, ==, c.family);
    g_autoptr(QIOSocketAddress) back =
        qio_socket_address_new_from_native(reinterpret_cast<sockaddr *>(&ss), len, &error);
    g_assert_no_error(error);
    g_autofree char *str = qio_socket_address_to_string(back);
    g_assert_cmpstr(str, ==, c.str);
  }
  /* Abstract names are sized exactly: no trailing NULs in the length. */
  g_autoptr(QIOSocketAddress) abs = qio_socket_address_new_unix("ab", TRUE);
  struct sockaddr_storage ss;
  socklen_t len;
  g_assert_true(qio_socket_address_to_native(abs, &ss, &len, nullptr));
  g_assert_cmpuint(len, ==, offsetof(sockaddr_un, sun_path) + 3);

  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) name = qio_socket_address_new_inet("localhost", 1);
  g_assert_false(qio_socket_address_to_native(name, &ss, &len, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
  g_clear_error(&error);
  g_autoptr(QIOSocketAddress) fd = qio_socket_address_new_fd("x");
  g_assert_false(qio_socket_address_to_native(fd, &ss, &len, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
  g_clear_error(&error);
  struct sockaddr bogus = {};
  bogus.sa_family = AF_APPLETALK;
  g_assert_null(qio_socket_address_new_from_native(&bogus, sizeof(bogus), &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
}

/* A link-local IPv6 address keeps its interface (RFC 4007 zone) through
 * parsing, the native form, resolution and back. */
static void test_ipv6_scope() {
  const unsigned lo = if_nametoindex("lo");
  g_assert_cmpuint(lo, >, 0);
  g_autofree char *by_index = g_strdup_printf("[fe80::1%%%u]:4242", lo);
  for (const char *str : {"[fe80::1%lo]:4242", static_cast<const char *>(by_index)}) {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOSocketAddress) addr = parse_ok(str);
    struct sockaddr_storage ss;
    socklen_t len;
    g_assert_true(qio_socket_address_to_native(addr, &ss, &len, &error));
    g_assert_no_error(error);
    auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    g_assert_cmpint(sin6->sin6_family, ==, AF_INET6);
    g_assert_cmpuint(sin6->sin6_scope_id, ==, lo);
    g_autoptr(QIOSocketAddress) back =
        qio_socket_address_new_from_native(reinterpret_cast<sockaddr *>(&ss), len, &error);
    g_autofree char *back_str = qio_socket_address_to_string(back);
    g_assert_cmpstr(back_str, ==, "[fe80::1%lo]:4242");
    g_autoptr(GPtrArray) list = qio_socket_address_resolve(addr, FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 1);
    g_assert_cmpstr(qio_socket_address_get_host(QIO_SOCKET_ADDRESS(g_ptr_array_index(list, 0))),
                    ==, "fe80::1%lo");
  }
  /* An index with no interface name prints as the number. */
  struct sockaddr_in6 unnamed = {};
  unnamed.sin6_family = AF_INET6;
  unnamed.sin6_port = htons(7);
  inet_pton(AF_INET6, "fe80::2", &unnamed.sin6_addr);
  unnamed.sin6_scope_id = 999999;
  g_autoptr(QIOSocketAddress) numeric = qio_socket_address_new_from_native(
      reinterpret_cast<sockaddr *>(&unnamed), sizeof unnamed, nullptr);
  g_assert_cmpstr(qio_socket_address_get_host(numeric), ==, "fe80::2%999999");
  /* An interface this host lacks is refused, naming it. */
  for (const char *bad : {"[fe80::1%nosuchif0]:1", "[fe80::1%0]:1", "[fe80::1%]:1",
                          "[fe80::1%999999]:1"}) {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(bad, &error);
    if (!addr) continue; /* the grammar may refuse it first */
    struct sockaddr_storage ss;
    socklen_t len;
    g_assert_false(qio_socket_address_to_native(addr, &ss, &len, &error));
    g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
    g_assert_nonnull(strstr(error->message, "interface"));
    g_clear_error(&error);
    /* Connecting and listening resolve first: the same message. */
    g_assert_null(qio_socket_address_resolve(addr, TRUE, &error));
    g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
    g_assert_nonnull(strstr(error->message, "interface"));
  }
}

static void test_resolve() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse("localhost:5000", &error);
  g_autoptr(GPtrArray) list = qio_socket_address_resolve(addr, FALSE, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, >=, 1);
  for (guint i = 0; i < list->len; i++) {
    auto *one = QIO_SOCKET_ADDRESS(g_ptr_array_index(list, i));
    const char *host = qio_socket_address_get_host(one);
    g_assert_true(strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0);
    g_assert_cmpuint(qio_socket_address_get_port(one), ==, 5000);
  }
  g_autoptr(QIOSocketAddress) bad = qio_socket_address_parse("no-such-host.invalid:1", &error);
  g_assert_null(qio_socket_address_resolve(bad, FALSE, &error));
  g_assert_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, "no-such-host.invalid:1"));
  g_clear_error(&error);
  /* Other kinds resolve to themselves. */
  g_autoptr(QIOSocketAddress) u = qio_socket_address_parse("unix:/x", &error);
  g_autoptr(GPtrArray) ul = qio_socket_address_resolve(u, TRUE, &error);
  g_assert_cmpuint(ul->len, ==, 1);
  g_assert_true(g_ptr_array_index(ul, 0) == u);
}

static int lookup_named(const char *name, gpointer data, GError **error) {
  if (strcmp(name, "mine") == 0) return dup(GPOINTER_TO_INT(data));
  g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS, "no fd '%s'", name);
  return -1;
}

static void test_take_fd() {
  int pipefd[2];
  g_assert_cmpint(pipe(pipefd), ==, 0);
  g_autoptr(GError) error = nullptr;
  g_autofree char *numeric = g_strdup_printf("fd:%d", pipefd[0]);
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(numeric, &error);
  int fd = qio_socket_address_take_fd(addr, &error);
  g_assert_no_error(error);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(fd, !=, pipefd[0]); /* a duplicate the caller owns */
  close(fd);

  g_autoptr(QIOSocketAddress) named = qio_socket_address_parse("fd:mine", &error);
  g_assert_cmpint(qio_socket_address_take_fd(named, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
  g_assert_nonnull(strstr(error->message, "'mine'"));
  g_clear_error(&error);

  g_autoptr(QIOSocketAddress) closed = qio_socket_address_parse("fd:9999", &error);
  g_assert_cmpint(qio_socket_address_take_fd(closed, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_clear_error(&error);

  qio_socket_address_set_fd_lookup(lookup_named, GINT_TO_POINTER(pipefd[1]));
  fd = qio_socket_address_take_fd(named, &error);
  g_assert_no_error(error);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(write(fd, "x", 1), ==, 1);
  char c;
  g_assert_cmpint(read(pipefd[0], &c, 1), ==, 1);
  close(fd);
  qio_socket_address_set_fd_lookup(nullptr, nullptr);
  close(pipefd[0]);
  close(pipefd[1]);
}

/* Random strings over the grammar's alphabet: every one either parses and
 * prints back to something that parses the same, or fails with
 * QIO_ERROR_INVALID_ADDRESS quoting it; never anything else. */
static void test_random_strings() {
  static const char *const pieces[] = {"inet:", "unix:", "vsock:", "fd:", "[", "]", ":",
                                       "@",     "/",     "::1",    "1",   "0", "65535",
                                       "65536", "4294967296", "host", "-", " ", "x"};
  g_autoptr(GRand) rand = g_rand_new_with_seed(g_test_rand_int());
  for (int i = 0; i < 20000; i++) {
    std::string str;
    int n = g_rand_int_range(rand, 0, 7);
    for (int j = 0; j < n; j++)
      str += pieces[g_rand_int_range(rand, 0, G_N_ELEMENTS(pieces))];
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(str.c_str(), &error);
    if (!addr) {
      g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
      g_autofree char *quoted = g_strdup_printf("'%s'", str.c_str());
      g_assert_nonnull(strstr(error->message, quoted));
      continue;
    }
    g_autofree char *back = qio_socket_address_to_string(addr);
    g_autoptr(QIOSocketAddress) again = qio_socket_address_parse(back, &error);
    g_assert_no_error(error);
    g_autofree char *back2 = qio_socket_address_to_string(again);
    g_assert_cmpstr(back, ==, back2);
  }
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/socket-address/inet", test_inet);
  g_test_add_func("/qio/socket-address/unix-vsock-fd", test_unix_vsock_fd);
  g_test_add_func("/qio/socket-address/malformed", test_malformed);
  g_test_add_func("/qio/socket-address/malformed-messages", test_malformed_messages);
  g_test_add_func("/qio/socket-address/native", test_native);
  g_test_add_func("/qio/socket-address/resolve", test_resolve);
  g_test_add_func("/qio/socket-address/ipv6-scope", test_ipv6_scope);
  g_test_add_func("/qio/socket-address/take-fd", test_take_fd);
  g_test_add_func("/qio/socket-address/random-strings", test_random_strings);
  return g_test_run();
}
