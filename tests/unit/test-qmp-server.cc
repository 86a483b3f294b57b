/* The QMP server over socket pairs: framing, negotiation, errors,
 * ids, events, limits, slow clients; and the JSON splitter on its own. */
#include "config.h"

#include "monitor/json-splitter.h"
#include "monitor/qmp-error.h"
#include "monitor/qmp-server.h"
#include "qio/channel-socket.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

using namespace qio::monitor;

/* Compares a temporary std::string, which g_assert_cmpstr would let die
 * before comparing. */
static void assert_str(const std::string &got, const char *want) {
  g_assert_cmpstr(got.c_str(), ==, want);
}

/* The test's end of one client connection. */
struct Client {
  QIOChannelSocket *peer = nullptr; /* the test's end */
  int fd = -1;
  std::string inbuf;

  explicit Client(QmpServer &server) {
    QIOChannelSocket *ours = nullptr;
    g_assert_true(qio_channel_socket_new_pair(&ours, &peer, nullptr));
    qio_channel_set_name(QIO_CHANNEL(ours), "test-client");
    fd = qio_channel_socket_get_fd(peer);
    g_unix_set_fd_nonblocking(fd, TRUE, nullptr);
    server.add_client(QIO_CHANNEL(ours));
    g_object_unref(ours);
  }
  ~Client() { g_object_unref(peer); }
  void send(const std::string &text) {
    gsize off = 0;
    while (off < text.size()) {
      gssize n = write(fd, text.data() + off, text.size() - off);
      if (n < 0 && errno == EAGAIN) {
        g_main_context_iteration(nullptr, FALSE);
        continue;
      }
      g_assert_cmpint(n, >, 0);
      off += static_cast<gsize>(n);
    }
  }
  /* Runs the loop until a full line arrives; "" at EOF or after 5 s. */
  std::string line() {
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < deadline) {
      auto nl = inbuf.find("\r\n");
      if (nl != std::string::npos) {
        std::string l = inbuf.substr(0, nl);
        inbuf.erase(0, nl + 2);
        return l;
      }
      char buf[4096];
      gssize n = read(fd, buf, sizeof buf);
      if (n == 0) return "";
      if (n > 0) {
        inbuf.append(buf, static_cast<gsize>(n));
        continue;
      }
      g_main_context_iteration(nullptr, FALSE);
      g_usleep(200);
    }
    return "";
  }
  JsonNode *message() {
    std::string l = line();
    g_assert_cmpstr(l.c_str(), !=, "");
    g_autoptr(JsonParser) p = json_parser_new();
    g_assert_true(json_parser_load_from_data(p, l.c_str(), -1, nullptr));
    return json_node_copy(json_parser_get_root(p));
  }
  /* Sends one request; returns the reply's "error" class or "return". */
  std::string call(const std::string &request, std::string *desc = nullptr) {
    send(request);
    g_autoptr(JsonNode) reply = message();
    JsonObject *o = json_node_get_object(reply);
    if (json_object_has_member(o, "return")) return "return";
    JsonObject *e = json_object_get_object_member(o, "error");
    if (desc) *desc = json_object_get_string_member(e, "desc");
    return json_object_get_string_member(e, "class");
  }
  void negotiate() {
    g_autoptr(JsonNode) hello = message();
    g_assert_true(json_object_has_member(json_node_get_object(hello), "QMP"));
    assert_str(call("{\"execute\":\"qmp_capabilities\"}"), "return");
  }
};

static void add_test_commands(QmpServer &server) {
  server.add_command({"add",
                      {{"a", QmpArgType::Int}, {"b", QmpArgType::Int, true}},
                      false,
                      [](JsonObject *args, GError **) {
                        gint64 sum = json_object_get_int_member(args, "a") +
                                     json_object_get_int_member_with_default(args, "b", 0);
                        return json_node_init_int(json_node_alloc(), sum);
                      }});
  server.add_command({"fail", {}, false, [](JsonObject *, GError **error) -> JsonNode * {
                        g_set_error_literal(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND,
                                            "no such thing");
                        return nullptr;
                      }});
  server.add_command({"props", {{"id", QmpArgType::String}}, true,
                      [](JsonObject *args, GError **) {
                        return json_node_init_int(json_node_alloc(), json_object_get_size(args));
                      }});
}

static void test_negotiation() {
  QmpServer server;
  add_test_commands(server);
  Client c(server);
  g_autoptr(JsonNode) hello = c.message();
  JsonObject *qmp = json_object_get_object_member(json_node_get_object(hello), "QMP");
  g_assert_nonnull(json_object_get_object_member(qmp, "version"));
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(qmp, "capabilities")), ==, 0);
  std::string desc;
  assert_str(c.call("{\"execute\":\"add\",\"arguments\":{\"a\":1}}", &desc), "CommandNotFound");
  g_assert_nonnull(strstr(desc.c_str(), "qmp_capabilities"));
  assert_str(c.call("{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}",
                         &desc), "GenericError");
  g_assert_nonnull(strstr(desc.c_str(), "oob"));
  assert_str(c.call("{\"execute\":\"qmp_capabilities\"}"), "return");
  assert_str(c.call("{\"execute\":\"qmp_capabilities\"}"), "CommandNotFound");
  assert_str(c.call("{\"execute\":\"add\",\"arguments\":{\"a\":1}}"), "return");
}

static void test_commands() {
  QmpServer server;
  add_test_commands(server);
  Client c(server);
  c.negotiate();
  c.send("{\"execute\":\"add\",\"arguments\":{\"a\":40,\"b\":2},\"id\":{\"x\":[1]}}");
  g_autoptr(JsonNode) r = c.message();
  g_autofree char *text = json_to_string(r, FALSE);
  g_assert_cmpstr(text, ==, "{\"return\":42,\"id\":{\"x\":[1]}}");

  struct Case {
    const char *request, *cls, *desc_part;
  } cases[] = {
      {"{\"execute\":\"nope\"}", "CommandNotFound", "nope"},
      {"{\"execute\":\"add\"}", "GenericError", "'a' is missing"},
      {"{\"execute\":\"add\",\"arguments\":{\"a\":\"1\"}}", "GenericError", "expected: int"},
      {"{\"execute\":\"add\",\"arguments\":{\"a\":1.5}}", "GenericError", "expected: int"},
      {"{\"execute\":\"add\",\"arguments\":{\"a\":null}}", "GenericError", "expected: int"},
      {"{\"execute\":\"add\",\"arguments\":{\"a\":1,\"c\":1}}", "GenericError", "'c' is unexpected"},
      {"{\"execute\":\"add\",\"arguments\":[1]}", "GenericError", "'arguments' must be an object"},
      {"{\"execute\":7}", "GenericError", "'execute' must be a string"},
      {"{\"arguments\":{}}", "GenericError", "lacks member 'execute'"},
      {"{\"execute\":\"add\",\"bogus\":1}", "GenericError", "'bogus' is unexpected"},
      {"[1,2]", "GenericError", "must be a JSON object"},
      {"42\n", "GenericError", "must be a JSON object"},
      {"\"str\"", "GenericError", "must be a JSON object"},
      {"{\"execute\":}", "GenericError", "JSON parse error"},
      {"{\"execute\" \"x\"}", "GenericError", "JSON parse error"},
      {"nonsense\n", "GenericError", "JSON parse error"},
      {"]", "GenericError", "closing bracket"},
      {"{\"execute\":\"fail\"}", "DeviceNotFound", "no such thing"},
  };
  for (const auto &tc : cases) {
    std::string desc;
    g_test_message("request %s", tc.request);
    assert_str(c.call(tc.request, &desc), tc.cls);
    g_assert_nonnull(strstr(desc.c_str(), tc.desc_part));
  }
  /* Extra arguments pass through where a command allows them. */
  c.send("{\"execute\":\"props\",\"arguments\":{\"id\":\"a\",\"x\":1,\"y\":{}}}");
  g_autoptr(JsonNode) p = c.message();
  g_assert_cmpint(json_object_get_int_member(json_node_get_object(p), "return"), ==, 3);
  /* The id is echoed on errors too. */
  c.send("{\"execute\":\"nope\",\"id\":\"abc\"}");
  g_autoptr(JsonNode) e = c.message();
  g_assert_cmpstr(json_object_get_string_member(json_node_get_object(e), "id"), ==, "abc");
}

/* An asynchronous command: its client's next request waits for it (replies
 * stay in order) while other clients are served. */
static void test_async() {
  QmpServer server;
  add_test_commands(server);
  server.add_command({"slow", {{"ms", QmpArgType::Int}}, false, nullptr,
                      [](JsonObject *args, QmpCompletion done) {
                        auto *cb = new QmpCompletion(std::move(done));
                        g_timeout_add(static_cast<guint>(json_object_get_int_member(args, "ms")),
                                      [](gpointer data) noexcept -> gboolean {
                                        std::unique_ptr<QmpCompletion> cb(
                                            static_cast<QmpCompletion *>(data));
                                        (*cb)(json_node_init_string(json_node_alloc(), "late"),
                                              nullptr);
                                        return G_SOURCE_REMOVE;
                                      },
                                      cb);
                      }});
  Client a(server), b(server);
  a.negotiate();
  b.negotiate();
  a.send("{\"execute\":\"slow\",\"arguments\":{\"ms\":1500},\"id\":1}"
         "{\"execute\":\"add\",\"arguments\":{\"a\":2},\"id\":2}");
  for (int i = 0; i < 10; i++) g_main_context_iteration(nullptr, FALSE);
  assert_str(b.call("{\"execute\":\"add\",\"arguments\":{\"a\":1}}"), "return");
  /* b was answered while a's first request is still running. */
  char probe;
  g_assert_cmpint(read(a.fd, &probe, 1), ==, -1);
  g_assert_cmpint(errno, ==, EAGAIN);
  g_autoptr(JsonNode) r1 = a.message();
  g_autoptr(JsonNode) r2 = a.message();
  g_assert_cmpstr(json_object_get_string_member(json_node_get_object(r1), "return"), ==, "late");
  g_assert_cmpint(json_object_get_int_member(json_node_get_object(r1), "id"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(json_node_get_object(r2), "id"), ==, 2);
  std::string desc;
  assert_str(a.call("{\"execute\":\"slow\",\"arguments\":{\"ms\":\"x\"}}", &desc),
             "GenericError");
}

static void test_framing() {
  QmpServer server;
  add_test_commands(server);
  Client c(server);
  c.negotiate();
  /* Byte by byte, with the loop running in between. */
  std::string req = "{\"execute\": \"add\", \"arguments\": {\"a\": 5}, \"id\": \"}{\\\"\"}";
  for (char ch : req) {
    c.send(std::string(1, ch));
    g_main_context_iteration(nullptr, FALSE);
  }
  g_autoptr(JsonNode) r = c.message();
  g_assert_cmpint(json_object_get_int_member(json_node_get_object(r), "return"), ==, 5);
  g_assert_cmpstr(json_object_get_string_member(json_node_get_object(r), "id"), ==, "}{\"");
  /* Three requests in one write. */
  c.send("{\"execute\":\"add\",\"arguments\":{\"a\":1}}{\"execute\":\"add\",\"arguments\":{\"a\":2}}\n"
         "{\"execute\":\"add\",\"arguments\":{\"a\":3}}");
  for (int i = 1; i <= 3; i++) {
    g_autoptr(JsonNode) m = c.message();
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(m), "return"), ==, i);
  }
  /* Too deep: an error, and the connection keeps working. */
  std::string deep = "{\"execute\":\"add\",\"arguments\":{\"a\":1,\"b\":" +
                     std::string(200, '[') + std::string(200, ']') + "}}";
  std::string desc;
  assert_str(c.call(deep, &desc), "GenericError");
  g_assert_nonnull(strstr(desc.c_str(), "nested too deeply"));
  assert_str(c.call("{\"execute\":\"add\",\"arguments\":{\"a\":1}}"), "return");
  /* Invalid UTF-8 inside a string. */
  assert_str(c.call("{\"execute\":\"add\",\"id\":\"\xff\xfe\"}"), "GenericError");
  assert_str(c.call("{\"execute\":\"add\",\"arguments\":{\"a\":1}}"), "return");
}

static void test_too_large() {
  QmpLimits limits;
  limits.max_message = 4096;
  QmpServer server(nullptr, limits);
  add_test_commands(server);
  Client c(server);
  c.negotiate();
  std::string desc;
  assert_str(c.call("{\"execute\":\"add\",\"id\":\"" + std::string(8000, 'x') + "\"}", &desc), "GenericError");
  g_assert_nonnull(strstr(desc.c_str(), "larger than the limit"));
  assert_str(c.line(), ""); /* then closed */
  g_assert_cmpuint(server.client_count(), ==, 0);
  /* Other clients are served. */
  Client d(server);
  d.negotiate();
}

static void test_events() {
  QmpServer server;
  Client a(server), b(server);
  a.negotiate();
  g_autoptr(JsonNode) hello = b.message();
  server.emit_event("STOP", nullptr);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "reason", "test");
  server.emit_event("SHUTDOWN", json_node_init_object(json_node_alloc(), data));
  json_object_unref(data);
  g_autoptr(JsonNode) e1 = a.message();
  g_autoptr(JsonNode) e2 = a.message();
  JsonObject *o1 = json_node_get_object(e1);
  g_assert_cmpstr(json_object_get_string_member(o1, "event"), ==, "STOP");
  JsonObject *ts = json_object_get_object_member(o1, "timestamp");
  g_assert_cmpint(json_object_get_int_member(ts, "seconds"), >, 1700000000);
  g_assert_cmpint(json_object_get_int_member(ts, "microseconds"), <, 1000000);
  JsonObject *o2 = json_node_get_object(e2);
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(o2, "data"), "reason"),
                  ==, "test");
  /* b never negotiated: its next message is the reply, not an event. */
  assert_str(b.call("{\"execute\":\"qmp_capabilities\"}"), "return");
}

static void test_slow_reader() {
  QmpLimits limits;
  limits.max_output = 16384;
  QmpServer server(nullptr, limits);
  add_test_commands(server);
  Client slow(server), fast(server);
  fast.negotiate();
  slow.negotiate();
  /* Never read: the socket buffer and then the 16 KiB queue fill up. */
  std::string req;
  for (int i = 0; i < 100; i++) req += "{\"execute\":\"add\",\"arguments\":{\"a\":1}}";
  for (int round = 0; round < 100 && server.client_count() == 2; round++) {
    slow.send(req);
    for (int i = 0; i < 20; i++) g_main_context_iteration(nullptr, FALSE);
  }
  for (int i = 0; i < 20; i++) g_main_context_iteration(nullptr, FALSE);
  g_assert_cmpuint(server.client_count(), ==, 1);
  assert_str(fast.call("{\"execute\":\"add\",\"arguments\":{\"a\":1}}"), "return");
}

static void test_max_clients_and_drain() {
  QmpLimits limits;
  limits.max_clients = 2;
  QmpServer server(nullptr, limits);
  Client a(server), b(server), c(server);
  g_assert_cmpuint(server.client_count(), ==, 2);
  assert_str(c.line(), "");
  a.negotiate();
  server.emit_event("SHUTDOWN", nullptr);
  bool done = false;
  server.drain(2000, [&] { done = true; });
  while (!done) g_main_context_iteration(nullptr, TRUE);
  g_assert_cmpuint(server.client_count(), ==, 0);
  g_autoptr(JsonNode) ev = a.message();
  g_assert_cmpstr(json_object_get_string_member(json_node_get_object(ev), "event"), ==, "SHUTDOWN");
  assert_str(a.line(), "");
}

static std::vector<std::string> split(const std::vector<std::string> &chunks,
                                      std::vector<JsonSplitter::Fault> *faults = nullptr,
                                      gsize max_size = 1 << 20, guint max_depth = 8) {
  JsonSplitter s(max_size, max_depth);
  std::vector<std::string> out;
  for (const auto &c : chunks)
    s.feed(c, [&](std::string_view m) { out.emplace_back(m); },
           [&](JsonSplitter::Fault f) { if (faults) faults->push_back(f); });
  return out;
}

static void test_splitter() {
  auto out = split({"{\"a\":\"}\\\"{\"}", " [1,{}] ", "tr", "ue ", "\"x\\\\\"", "{'}\"'}", "{"});
  g_assert_cmpuint(out.size(), ==, 5);
  g_assert_cmpstr(out[4].c_str(), ==, "{'}\"'}");
  g_assert_cmpstr(out[0].c_str(), ==, "{\"a\":\"}\\\"{\"}");
  g_assert_cmpstr(out[1].c_str(), ==, "[1,{}]");
  g_assert_cmpstr(out[2].c_str(), ==, "true");
  g_assert_cmpstr(out[3].c_str(), ==, "\"x\\\\\"");
  std::vector<JsonSplitter::Fault> faults;
  out = split({std::string(10, '[') + std::string(10, ']') + "{}"}, &faults);
  g_assert_cmpuint(faults.size(), ==, 1);
  g_assert_true(faults[0] == JsonSplitter::Fault::TooDeep);
  g_assert_cmpuint(out.size(), ==, 1);
  g_assert_cmpstr(out[0].c_str(), ==, "{}");
  /* A backslash in single quotes is no escape to json-glib: taken as one,
   * the string would seem to go on and hide the brackets after it from
   * the depth limit (300 000 of them overflowed json-glib's stack). */
  faults.clear();
  out = split({"['\\', " + std::string(300, '[') + " \"'\", \"]"}, &faults);
  g_assert_true(faults.size() == 1 && faults[0] == JsonSplitter::Fault::TooDeep);
  faults.clear();
  out = split({"}{}"}, &faults);
  g_assert_true(faults.size() == 1 && faults[0] == JsonSplitter::Fault::Unbalanced);
  g_assert_cmpuint(out.size(), ==, 1);
  /* Comments are refused, and what they hold counts for nothing: json-glib
   * would have read them, past the depth limit the splitter saw. */
  faults.clear();
  out = split({"{\"execute\": /* \" */ " + std::string(100, '[') + std::string(100, ']') +
                   " /* \" */ }",
               "// a \" line {[\n", "{\"a\":\"/* no */ // no\"} {}"},
              &faults);
  g_assert_cmpuint(faults.size(), ==, 2);
  g_assert_true(faults[0] == JsonSplitter::Fault::Comment);
  g_assert_true(faults[1] == JsonSplitter::Fault::Comment);
  g_assert_cmpuint(out.size(), ==, 2);
  g_assert_cmpstr(out[0].c_str(), ==, "{\"a\":\"/* no */ // no\"}");
  g_assert_cmpstr(out[1].c_str(), ==, "{}");
  faults.clear();
  JsonSplitter s(100, 8);
  g_assert_false(s.feed("{\"" + std::string(200, 'a'), [](std::string_view) {},
                        [&](JsonSplitter::Fault f) { faults.push_back(f); }));
  g_assert_true(faults.size() == 1 && faults[0] == JsonSplitter::Fault::TooLarge);
}

/* What goes out is UTF-8 even when a string in it came from a peer that
 * sent other bytes. */
void test_output_is_utf8() {
  JsonObject *obj = json_object_new();
  json_object_set_string_member(obj, "error-desc", "bad \xff\xfe\x80 text");
  g_autoptr(JsonNode) node = qmp_take_object(obj);
  std::string line = qmp_to_line(node);
  g_assert_true(g_utf8_validate(line.data(), static_cast<gssize>(line.size()), nullptr));
  g_autoptr(JsonParser) parser = json_parser_new();
  g_assert_true(json_parser_load_from_data(parser, line.c_str(), -1, nullptr));
  const char *desc =
      json_object_get_string_member(json_node_get_object(json_parser_get_root(parser)), "error-desc");
  g_assert_true(g_str_has_prefix(desc, "bad ") && g_str_has_suffix(desc, " text"));
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qmp/output-is-utf8", test_output_is_utf8);
  g_test_add_func("/qmp/splitter", test_splitter);
  g_test_add_func("/qmp/negotiation", test_negotiation);
  g_test_add_func("/qmp/commands", test_commands);
  g_test_add_func("/qmp/framing", test_framing);
  g_test_add_func("/qmp/async", test_async);
  g_test_add_func("/qmp/too-large", test_too_large);
  g_test_add_func("/qmp/events", test_events);
  g_test_add_func("/qmp/slow-reader", test_slow_reader);
  g_test_add_func("/qmp/max-clients-drain", test_max_clients_and_drain);
  return g_test_run();
}
