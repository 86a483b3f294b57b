/*
 * Chardev unit tests: option parsing (-chardev and QMP forms), the ring
 * buffer, the base class's input/output over a socket pair, and the mux's
 * escape keys.
 */
#include "config.h"

#include "chardev/chardev-mux.h"
#include "chardev/chardev-options.h"
#include "chardev/chardev-ringbuf.h"
#include "chardev/chardev-set.h"
#include "chardev/telnet.h"
#include "qio/channel-socket.h"
#include "qom/object-registry.h"

#include <json-glib/json-glib.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace qio::chardev;

namespace {

struct Recorder : ChardevFrontend {
  std::string got;
  std::vector<ChardevEvent> events;
  gsize room = 4096;
  gsize can_read() override { return room; }
  void read(std::string_view bytes) override { got.append(bytes); }
  void event(ChardevEvent e) override { events.push_back(e); }
};

/* Keeps a returned std::string alive while it is compared. */
void assert_str(const std::string &got, const char *want) {
  g_assert_cmpstr(got.c_str(), ==, want);
}

void iterate_until(const std::function<bool()> &done) {
  gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
  while (!done() && g_get_monotonic_time() < deadline) g_main_context_iteration(nullptr, FALSE);
}

/* A chardev on one end of a socket pair (fd=N); the other end is returned. */
QIOChannelSocket *socket_chardev(ChardevSet &set, const char *id, const char *extra) {
  QIOChannelSocket *a = nullptr, *b = nullptr;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, nullptr));
  int fd = dup(qio_channel_socket_get_fd(a));
  g_object_unref(a);
  g_autofree char *text = g_strdup_printf("socket,id=%s,fd=%d%s", id, fd, extra);
  g_autoptr(GError) error = nullptr;
  g_assert_nonnull(set.add_from_string(text, &error));
  g_assert_no_error(error);
  return b;
}

void test_options_parse() {
  g_autoptr(GError) error = nullptr;
  auto opts = ChardevOptions::parse("socket,id=s0,path=/tmp/a,,b,server=on", &error);
  g_assert_no_error(error);
  g_assert_true(opts.has_value());
  g_assert_cmpstr(opts->backend().c_str(), ==, "socket");
  g_assert_cmpstr(opts->id().c_str(), ==, "s0");
  assert_str(opts->take_string("path"), "/tmp/a,b");
  bool server = false;
  g_assert_true(opts->take_bool("server", false, &server, &error));
  g_assert_true(server);
  g_assert_true(opts->check_all_taken(&error));

  auto bad = ChardevOptions::parse("socket,path=/tmp/a", &error);
  g_assert_false(bad.has_value());
  g_assert_nonnull(strstr(error->message, "needs a backend and an id"));
  g_clear_error(&error);
  bad = ChardevOptions::parse("socket,id=x,a.b=c", &error);
  g_assert_false(bad.has_value());
  g_assert_nonnull(error);
  g_clear_error(&error);
  bad = ChardevOptions::parse("socket,id=x,=y", &error);
  g_assert_false(bad.has_value());
  g_clear_error(&error);

  auto left = ChardevOptions::parse("null,id=n,speed=9600", &error);
  g_assert_true(left.has_value());
  g_assert_false(left->check_all_taken(&error));
  g_assert_nonnull(strstr(error->message, "'speed'"));
  g_clear_error(&error);
  guint64 n = 0;
  auto num = ChardevOptions::parse("ringbuf,id=r,size=12x", &error);
  g_assert_false(num->take_uint("size", 1, 100, &n, &error));
  g_assert_nonnull(strstr(error->message, "size='12x'"));
}

void test_options_qmp() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(JsonNode) node = json_from_string(
      "{\"id\":\"c\",\"backend\":{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":\"inet\","
      "\"data\":{\"host\":\"127.0.0.1\",\"port\":\"99\"}},\"server\":true,\"reconnect-ms\":5}}}",
      &error);
  g_assert_no_error(error);
  auto opts = ChardevOptions::from_qmp(json_node_get_object(node), &error);
  g_assert_no_error(error);
  assert_str(opts->take_string("host"), "127.0.0.1");
  assert_str(opts->take_string("port"), "99");
  assert_str(opts->take_string("server"), "on");
  assert_str(opts->take_string("reconnect-ms"), "5");

  const char *bad[] = {
      "{\"id\":\"c\"}",
      "{\"id\":\"c\",\"backend\":{\"type\":3}}",
      "{\"id\":\"c\",\"backend\":{\"type\":\"file\",\"data\":[]}}",
      "{\"id\":\"c\",\"backend\":{\"type\":\"file\",\"data\":{\"out\":[1]}}}",
      "{\"id\":\"c\",\"backend\":{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":\"vsock\"}}}}",
      "{\"id\":\"c\",\"backend\":{\"type\":\"socket\",\"data\":{\"addr\":\"unix:/x\"}}}",
  };
  for (const char *text : bad) {
    g_autoptr(JsonNode) b = json_from_string(text, nullptr);
    g_autoptr(GError) err = nullptr;
    g_assert_false(ChardevOptions::from_qmp(json_node_get_object(b), &err).has_value());
    g_assert_nonnull(err);
  }
}

void test_ringbuf_wrap() {
  ChardevSet set;
  g_autoptr(GError) error = nullptr;
  auto *ring = dynamic_cast<ChardevRingbuf *>(set.add_from_string("ringbuf,id=r,size=8", &error));
  g_assert_nonnull(ring);
  ring->write("abc");
  assert_str(ring->read(2), "ab");
  ring->write("defghijklm");  // 11 written in all, 2 read: the newest 8 stay
  g_assert_cmpuint(ring->count(), ==, 8);
  assert_str(ring->read(100), "fghijklm");
  assert_str(ring->read(100), "");
  g_assert_null(set.add_from_string("ringbuf,id=r2,size=0", &error));
  g_assert_nonnull(strstr(error->message, "power of two"));
}

void test_socket_io() {
  ChardevSet set;
  g_autoptr(QIOChannelSocket) peer = socket_chardev(set, "s", "");
  Chardev *dev = set.find("s");
  Recorder fe;
  g_assert_true(dev->attach(&fe, nullptr));
  g_assert_cmpuint(fe.events.size(), ==, 1);
  g_assert_true(fe.events[0] == ChardevEvent::Opened);
  /* Input waits while the frontend has no room. */
  fe.room = 0;
  dev->accept_input();
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(peer), "hello", 5, nullptr));
  for (int i = 0; i < 20; i++) g_main_context_iteration(nullptr, FALSE);
  g_assert_cmpstr(fe.got.c_str(), ==, "");
  fe.room = 3;
  dev->accept_input();
  iterate_until([&] { return fe.got.size() == 5; });
  g_assert_cmpstr(fe.got.c_str(), ==, "hello");
  g_assert_cmpuint(dev->write("back"), ==, 4);
  char buf[4];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(peer), buf, 4, nullptr));
  g_assert_cmpmem(buf, 4, "back", 4);
  Recorder other;
  g_autoptr(GError) error = nullptr;
  g_assert_false(dev->attach(&other, &error));
  g_assert_nonnull(strstr(error->message, "already in use"));
  g_assert_false(set.remove("s", nullptr));
  qio_channel_close(QIO_CHANNEL(peer), nullptr);
  iterate_until([&] { return fe.events.size() == 2; });
  g_assert_true(fe.events.back() == ChardevEvent::Closed);
  g_assert_false(dev->is_open());
  dev->detach(&fe);
  g_assert_true(set.remove("s", nullptr));
}

void test_mux_escapes() {
  ChardevSet set;
  g_autoptr(QIOChannelSocket) peer = socket_chardev(set, "m", ",mux=on");
  auto *mux = dynamic_cast<ChardevMux *>(set.find("m"));
  g_assert_nonnull(mux);
  Recorder a, b;
  g_assert_true(mux->attach(&a, nullptr));
  g_assert_true(mux->attach(&b, nullptr));
  g_assert_true(a.events.size() == 1 && b.events.size() == 1);
  auto send = [&](const char *bytes, gsize len, Recorder &until, gsize want) {
    g_assert_true(qio_channel_write_all(QIO_CHANNEL(peer), bytes, len, nullptr));
    iterate_until([&] { return until.got.size() >= want; });
  };
  send("one", 3, a, 3);
  /* C-a c switches; an escape split across reads still works. */
  send("\x01", 1, a, 3);
  send("ctwo\x01\x01", 6, b, 4);
  send("x", 1, b, 5);
  g_assert_cmpstr(a.got.c_str(), ==, "one");
  g_assert_cmpstr(b.got.c_str(), ==, "two\x01x");
  g_assert_cmpuint(mux->focus(), ==, 1);
  /* Unknown escapes vanish; C-a c wraps to the first frontend. */
  send("\x01z\x01" "cthree", 9, a, 8);
  g_assert_cmpstr(a.got.c_str(), ==, "onethree");
  g_assert_cmpstr(b.got.c_str(), ==, "two\x01x");
  /* Both frontends' output reaches the peer. */
  mux->write("A");
  mux->write("B");
  char buf[2];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(peer), buf, 2, nullptr));
  g_assert_cmpmem(buf, 2, "AB", 2);
  /* C-a t: a stamp at each line start (not mid-line after "AB"). */
  send("\x01t1", 3, a, 9);
  g_assert_true(mux->timestamps());
  g_assert_cmpuint(mux->write("C\nD"), ==, 3);
  char stamped[18];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(peer), stamped, sizeof stamped, nullptr));
  g_assert_true(g_regex_match_simple("^C\n\\[00:00:00\\.\\d{3}\\] D$",
                                     std::string(stamped, sizeof stamped).c_str(),
                                     G_REGEX_MULTILINE, G_REGEX_MATCH_DEFAULT));
  /* C-a b: a Break event to the focused frontend only. */
  gsize b_events = b.events.size();
  send("\x01" "b2", 3, a, 10);
  g_assert_true(a.events.back() == ChardevEvent::Break);
  g_assert_cmpuint(b.events.size(), ==, b_events);
  mux->detach(&a);
  mux->detach(&b);
}

}  // namespace

/* A 0xff data byte is doubled; a pair that does not fit is not split. */
static void test_telnet_escape() {
  using qio::chardev::telnet_escape;
  std::string out;
  g_assert_cmpuint(telnet_escape(std::string_view("a\xff" "b", 3), 100, out), ==, 3);
  g_assert_true(out == std::string("a\xff\xff" "b", 4));
  g_assert_cmpuint(telnet_escape("plain", 100, out), ==, 5);
  g_assert_true(out == "plain");
  g_assert_cmpuint(telnet_escape(std::string_view("a\xff", 2), 2, out), ==, 1);
  g_assert_true(out == "a");
  g_assert_cmpuint(telnet_escape(std::string_view("\xff\xff", 2), 3, out), ==, 1);
  g_assert_cmpuint(out.size(), ==, 2);
  g_assert_cmpuint(telnet_escape("", 10, out), ==, 0);
  g_assert_true(out.empty());
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  qom_init();
  g_test_add_func("/chardev/options/parse", test_options_parse);
  g_test_add_func("/chardev/options/qmp", test_options_qmp);
  g_test_add_func("/chardev/ringbuf/wrap", test_ringbuf_wrap);
  g_test_add_func("/chardev/socket/io", test_socket_io);
  g_test_add_func("/chardev/mux/escapes", test_mux_escapes);
  g_test_add_func("/chardev/telnet/escape", test_telnet_escape);
  return g_test_run();
}
