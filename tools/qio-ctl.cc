/*
 * qio-ctl: a command-line QMP client for operators.
 *
 *   qio-ctl -s unix:/run/qiod.sock query-status
 *   qio-ctl -s unix:/run/qiod.sock guest-set-workload dirty-rate=1000
 *   qio-ctl -s unix:/run/qiod.sock --json query-guest
 *   qio-ctl -s unix:/run/qiod.sock wait-event STOP
 *   qio-ctl -s unix:/run/qiod.sock --progress migrate uri=tcp:host:4444
 */
#include "config.h"

#include "qcrypto/json-parse.h"
#include "qio/channel-socket.h"
#include "tools/qmp-client.h"

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>

#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

using namespace qio;

namespace {

/* Exit statuses. */
constexpr int kExitOk = 0;
constexpr int kExitCommandFailed = 1; /* the server answered with an error */
constexpr int kExitUsage = 2;         /* bad command line */
constexpr int kExitTransport = 3;     /* cannot connect, timeout, lost connection */

char *opt_socket = nullptr;
gboolean opt_json = FALSE;
gboolean opt_progress = FALSE;
int opt_timeout = 30;

const GOptionEntry kEntries[] = {
    {"socket", 's', 0, G_OPTION_ARG_STRING, &opt_socket,
     N_("QMP address: unix:PATH or HOST:PORT (default: $QIO_CTL_SOCKET)"), N_("ADDRESS")},
    {"json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, N_("print the reply as JSON"), nullptr},
    {"progress", 'p', 0, G_OPTION_ARG_NONE, &opt_progress,
     N_("follow a migration or block job until it ends, with a progress bar on a terminal"),
     nullptr},
    {"timeout", 't', 0, G_OPTION_ARG_INT, &opt_timeout,
     N_("seconds to wait for a reply or an event (0: forever; default 30)"), N_("SECONDS")},
    {}};

/* The object member @name, or NULL when it is absent or not an object
 * (json_object_get_object_member() complains about absent ones). */
JsonObject *object_member(JsonObject *obj, const char *name) {
  JsonNode *node = obj ? json_object_get_member(obj, name) : nullptr;
  return node && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : nullptr;
}

gint64 timeout_ms() { return opt_timeout > 0 ? static_cast<gint64>(opt_timeout) * 1000 : -1; }

/* key=value: true/false become booleans, integers numbers, text starting
 * with { or [ JSON; key:=JSON is always JSON; anything else a string. */
bool parse_arg(const char *item, JsonObject *args, GError **error) {
  const char *eq = strchr(item, '=');
  if (!eq || eq == item) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                _("argument '%s' is not key=value"), item);
    return false;
  }
  bool raw = eq[-1] == ':';
  std::string key(item, static_cast<gsize>(eq - item - (raw ? 1 : 0)));
  const char *value = eq + 1;
  if (raw || value[0] == '{' || value[0] == '[') {
    g_autoptr(GError) local = nullptr;
    JsonNode *node = qcrypto_json_parse(value, -1, &local);
    if (!node) {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                  _("argument '%s': the value is not valid JSON: %s"), key.c_str(), local->message);
      return false;
    }
    json_object_set_member(args, key.c_str(), node);
    return true;
  }
  if (g_str_equal(value, "true") || g_str_equal(value, "false")) {
    json_object_set_boolean_member(args, key.c_str(), g_str_equal(value, "true"));
    return true;
  }
  char *end = nullptr;
  errno = 0;
  gint64 n = g_ascii_strtoll(value, &end, 10);
  if (*value && *end == '\0' && errno == 0) {
    json_object_set_int_member(args, key.c_str(), n);
    return true;
  }
  json_object_set_string_member(args, key.c_str(), value);
  return true;
}

void print_human(JsonNode *node, int indent);

void print_scalar(JsonNode *node) {
  if (JSON_NODE_HOLDS_NULL(node)) {
    fputs("null", stdout);
    return;
  }
  if (json_node_get_value_type(node) == G_TYPE_STRING) {
    fputs(json_node_get_string(node), stdout);
    return;
  }
  g_autofree char *text = json_to_string(node, FALSE);
  fputs(text, stdout);
}

bool is_scalar(JsonNode *node) { return JSON_NODE_HOLDS_VALUE(node) || JSON_NODE_HOLDS_NULL(node); }

/* Objects as "key: value" lines, nested ones indented; arrays of scalars
 * on one line; arrays of objects as "-" items. */
void print_human(JsonNode *node, int indent) {
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObject *obj = json_node_get_object(node);
    g_autoptr(GList) members = json_object_get_members(obj);
    for (GList *l = members; l; l = l->next) {
      auto *key = static_cast<const char *>(l->data);
      JsonNode *v = json_object_get_member(obj, key);
      printf("%*s%s:", indent, "", key);
      if (is_scalar(v)) {
        fputc(' ', stdout);
        print_scalar(v);
        fputc('\n', stdout);
      } else if (JSON_NODE_HOLDS_ARRAY(v) && json_array_get_length(json_node_get_array(v)) == 0) {
        fputs(" (none)\n", stdout);
      } else {
        fputc('\n', stdout);
        print_human(v, indent + 2);
      }
    }
  } else if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *arr = json_node_get_array(node);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
      JsonNode *el = json_array_get_element(arr, i);
      if (is_scalar(el)) {
        printf("%*s- ", indent, "");
        print_scalar(el);
        fputc('\n', stdout);
      } else {
        printf("%*s-\n", indent, "");
        print_human(el, indent + 2);
      }
    }
  } else {
    printf("%*s", indent, "");
    print_scalar(node);
    fputc('\n', stdout);
  }
}

void print_json(JsonNode *node) {
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_root(gen, node);
  g_autofree char *text = json_generator_to_data(gen, nullptr);
  puts(text);
}

void print_event(JsonNode *event) {
  if (opt_json) {
    print_json(event);
    return;
  }
  JsonObject *obj = json_node_get_object(event);
  JsonObject *ts = object_member(obj, "timestamp");
  gint64 secs = ts ? json_object_get_int_member_with_default(ts, "seconds", 0) : 0;
  gint64 usecs = ts ? json_object_get_int_member_with_default(ts, "microseconds", 0) : 0;
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc(secs);
  g_autofree char *stamp = when ? g_date_time_format(when, "%F %T") : g_strdup("?");
  printf("%s.%06" G_GINT64_FORMAT " %s\n", stamp, usecs,
         json_object_get_string_member_with_default(obj, "event", "?"));
  if (JsonNode *data = json_object_get_member(obj, "data")) print_human(data, 2);
  fflush(stdout);
}

/* One progress line redrawn in place: [#####.....]  42.0%  label. */
void draw_bar(double fraction, const char *label) {
  constexpr int kWidth = 40;
  fraction = CLAMP(fraction, 0.0, 1.0);
  int filled = static_cast<int>(std::lround(fraction * kWidth));
  std::string bar(static_cast<gsize>(filled), '#');
  bar.append(static_cast<gsize>(kWidth - filled), '.');
  printf("\r[%s] %5.1f%%  %s\033[K", bar.c_str(), fraction * 100.0, label);
  fflush(stdout);
}

/* Polls query-migrate or query-block-jobs until the job ends.  Returns
 * the exit status. */
int follow_job(tools::QmpClient &client, const char *command) {
  bool migration = g_str_has_prefix(command, "migrate");
  const char *query = migration ? "query-migrate" : "query-block-jobs";
  bool tty = isatty(STDOUT_FILENO);
  for (;;) {
    g_autoptr(GError) error = nullptr;
    g_autoptr(JsonNode) reply = client.execute(query, nullptr, timeout_ms(), &error);
    if (!reply) {
      fprintf(stderr, "qio-ctl: %s\n", error->message);
      return kExitTransport;
    }
    JsonObject *obj = json_node_get_object(reply);
    if (JsonObject *err = object_member(obj, "error")) {
      fprintf(stderr, _("qio-ctl: %s failed: %s\n"), query,
              json_object_get_string_member_with_default(err, "desc", "?"));
      return kExitCommandFailed;
    }
    JsonNode *ret = json_object_get_member(obj, "return");
    double done = 0, total = 0;
    std::string status;
    if (migration && JSON_NODE_HOLDS_OBJECT(ret)) {
      JsonObject *m = json_node_get_object(ret);
      status = json_object_get_string_member_with_default(m, "status", "none");
      if (JsonObject *ram = object_member(m, "ram")) {
        done = static_cast<double>(json_object_get_int_member_with_default(ram, "transferred", 0));
        total = static_cast<double>(json_object_get_int_member_with_default(ram, "total", 0));
      }
    } else if (JSON_NODE_HOLDS_ARRAY(ret)) {
      JsonArray *jobs = json_node_get_array(ret);
      if (json_array_get_length(jobs) == 0) {
        status = "completed";
      } else {
        JsonObject *job = json_array_get_object_element(jobs, 0);
        done = static_cast<double>(json_object_get_int_member_with_default(job, "offset", 0));
        total = static_cast<double>(json_object_get_int_member_with_default(job, "len", 0));
        status = json_object_get_boolean_member_with_default(job, "ready", FALSE) ? "ready"
                                                                                  : "running";
      }
    }
    bool finished = status == "completed" || status == "ready";
    bool failed = status == "failed" || status == "cancelled";
    if (finished) done = total = MAX(total, 1.0);
    if (tty) draw_bar(total > 0 ? done / total : 0.0, status.c_str());
    if (finished || failed) {
      if (tty) fputc('\n', stdout);
      else printf("%s: %s\n", query, status.c_str());
      return failed ? kExitCommandFailed : kExitOk;
    }
    g_usleep(tty ? 200000 : 500000);
  }
}

}  // namespace

int main(int argc, char **argv) {
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");

  g_autoptr(GOptionContext) ctx = g_option_context_new(
      _("COMMAND [KEY=VALUE...] | wait-event NAME | events"));
  g_option_context_set_summary(
      ctx, _("Runs one QMP command on a qiod (or QEMU) monitor and prints the reply.\n"
             "Values: true/false are booleans, integers are numbers, {...} and [...] are\n"
             "JSON, KEY:=JSON forces JSON, anything else is a string.\n"
             "Exit status: 0 success, 1 the command failed, 2 usage, 3 connection."));
  g_option_context_add_main_entries(ctx, kEntries, GETTEXT_PACKAGE);
  g_autoptr(GError) error = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "qio-ctl: %s\n", error->message);
    return kExitUsage;
  }
  if (argc < 2) {
    fprintf(stderr, _("qio-ctl: no command given; see qio-ctl --help\n"));
    return kExitUsage;
  }
  const char *address = opt_socket ? opt_socket : g_getenv("QIO_CTL_SOCKET");
  if (!address) {
    fprintf(stderr, _("qio-ctl: no QMP address; pass -s unix:PATH or set QIO_CTL_SOCKET\n"));
    return kExitUsage;
  }
  const char *command = argv[1];
  bool wait_event = g_str_equal(command, "wait-event");
  bool stream_events = g_str_equal(command, "events");
  if (wait_event && argc != 3) {
    fprintf(stderr, _("qio-ctl: wait-event needs exactly one event name\n"));
    return kExitUsage;
  }
  g_autoptr(JsonObject) args = json_object_new();
  for (int i = 2; i < argc && !wait_event; i++) {
    if (!parse_arg(argv[i], args, &error)) {
      fprintf(stderr, "qio-ctl: %s\n", error->message);
      return kExitUsage;
    }
  }

  g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(address, &error);
  if (!addr) {
    fprintf(stderr, "qio-ctl: %s\n", error->message);
    return kExitUsage;
  }
  g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
  if (!qio_channel_socket_connect_sync(sioc, addr, &error)) {
    fprintf(stderr, "qio-ctl: %s\n", error->message);
    return kExitTransport;
  }
  qio_channel_set_name(QIO_CHANNEL(sioc), address);
  tools::QmpClient client(QIO_CHANNEL(sioc));
  if (!client.handshake(timeout_ms(), &error)) {
    fprintf(stderr, "qio-ctl: %s\n", error->message);
    return kExitTransport;
  }

  if (wait_event || stream_events) {
    for (;;) {
      g_autoptr(JsonNode) event = client.next_event(timeout_ms(), &error);
      if (!event) {
        if (error) {
          fprintf(stderr, "qio-ctl: %s\n", error->message);
        } else {
          fprintf(stderr, _("qio-ctl: no %s event within %d seconds\n"),
                  wait_event ? argv[2] : "", opt_timeout);
        }
        return kExitTransport;
      }
      const char *name = json_object_get_string_member_with_default(
          json_node_get_object(event), "event", "");
      if (stream_events || g_str_equal(name, argv[2])) print_event(event);
      if (wait_event && g_str_equal(name, argv[2])) return kExitOk;
    }
  }

  g_autoptr(JsonNode) reply = client.execute(command, args, timeout_ms(), &error);
  if (!reply) {
    fprintf(stderr, "qio-ctl: %s\n", error->message);
    return kExitTransport;
  }
  JsonObject *obj = json_node_get_object(reply);
  if (JsonObject *err = object_member(obj, "error")) {
    if (opt_json) print_json(json_object_get_member(obj, "error"));
    fprintf(stderr, _("qio-ctl: %s failed: %s: %s\n"), command,
            json_object_get_string_member_with_default(err, "class", "?"),
            json_object_get_string_member_with_default(err, "desc", "?"));
    return kExitCommandFailed;
  }
  JsonNode *ret = json_object_get_member(obj, "return");
  if (opt_json)
    print_json(ret);
  else if (!(JSON_NODE_HOLDS_OBJECT(ret) && json_object_get_size(json_node_get_object(ret)) == 0))
    print_human(ret, 0);
  if (opt_progress) return follow_job(client, command);
  return kExitOk;
}
