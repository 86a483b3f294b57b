/*
 * qio-nbd: exports a raw file or block device over NBD, or lists the
 * exports of an NBD server, with qemu-nbd's command line.
 */
#include "config.h"

#include "nbd/client.h"
#include "nbd/error.h"
#include "nbd/protocol.h"
#include "nbd/server.h"
#include "qio/error.h"
#include "qio/log-limiter.h"
#include "qom/object-registry.h"

#include <glib-unix.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include <fcntl.h>
#include <unistd.h>

#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

struct Options {
  char *bind = nullptr;
  char *port = nullptr;
  char *socket_path = nullptr;
  char *export_name = nullptr;
  char *description = nullptr;
  char *format = nullptr;
  char *pid_file = nullptr;
  char *tls_creds = nullptr;
  char *tls_authz = nullptr;
  char *tls_hostname = nullptr;
  gboolean read_only = FALSE;
  gboolean persistent = FALSE;
  gboolean list = FALSE;
  gboolean fork = FALSE;
  gboolean version = FALSE;
  gint shared = 1;
  gint handshake_limit = 10;
  char **objects = nullptr;
  char **files = nullptr;

  ~Options() {
    g_free(bind);
    g_free(port);
    g_free(socket_path);
    g_free(export_name);
    g_free(description);
    g_free(format);
    g_free(pid_file);
    g_free(tls_creds);
    g_free(tls_authz);
    g_free(tls_hostname);
    g_strfreev(objects);
    g_strfreev(files);
  }
};

int usage_error(const char *message) {
  g_printerr("qio-nbd: %s\n", message);
  g_printerr(_("Try 'qio-nbd --help' for more information.\n"));
  return 1;
}

/* The address to serve on or to list: -k PATH, or -b HOST -p PORT. */
QIOSocketAddress *make_address(const Options &o, GError **error) {
  if (o.socket_path) {
    if (o.bind || o.port) {
      g_set_error(error, NBD_ERROR, NBD_ERROR_FAILED,
                  _("--socket cannot be combined with --bind or --port; choose a UNIX socket "
                    "or a TCP address"));
      return nullptr;
    }
    return qio_socket_address_new_unix(o.socket_path, FALSE);
  }
  guint64 port = NBD_DEFAULT_PORT;
  if (o.port && (!g_ascii_string_to_unsigned(o.port, 10, 0, 65535, &port, nullptr))) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_FAILED,
                _("Invalid port '%s': give a number from 0 to 65535"), o.port);
    return nullptr;
  }
  const char *host = o.bind ? o.bind : (o.list ? "localhost" : "0.0.0.0");
  return qio_socket_address_new_inet(host, static_cast<guint16>(port));
}

/* The TLS credentials object named by --tls-creds, checked to be for
 * @endpoint; NULL with @error set, or NULL without error when none. */
QCryptoTLSCreds *lookup_creds(const Options &o, QCryptoTLSCredsEndpoint endpoint,
                              GError **error) {
  if (!o.tls_creds) return nullptr;
  auto *creds = static_cast<QCryptoTLSCreds *>(
      qom_object_ref_typed(o.tls_creds, QCRYPTO_TYPE_TLS_CREDS, "TLS credentials", error));
  if (creds && qcrypto_tls_creds_get_endpoint(creds) != endpoint) {
    bool server = endpoint == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER;
    g_set_error(error, NBD_ERROR, NBD_ERROR_FAILED,
                server ? _("TLS credentials '%s' are for clients; serving needs "
                           "endpoint=server")
                       : _("TLS credentials '%s' are for servers; --list needs "
                           "endpoint=client"),
                o.tls_creds);
    g_clear_object(&creds);
  }
  return creds;
}

int run_list(const Options &o) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) addr = make_address(o, &error);
  if (!addr) return usage_error(error->message);
  if (o.tls_authz) return usage_error(_("--tls-authz is for serving, not for --list"));
  g_autoptr(QCryptoTLSCreds) creds = lookup_creds(o, QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, &error);
  if (error) return usage_error(error->message);
  g_autoptr(NBDClient) client = nbd_client_new();
  nbd_client_set_tls_creds(client, creds);
  nbd_client_set_tls_hostname(client, o.tls_hostname);
  g_autoptr(GPtrArray) list = nbd_client_list(client, addr, &error);
  if (!list) {
    g_printerr("qio-nbd: %s\n", error->message);
    return 1;
  }
  g_print(_("exports available: %u\n"), list->len);
  for (guint i = 0; i < list->len; i++) {
    auto *info = static_cast<NBDExportInfo *>(list->pdata[i]);
    g_print(_(" export: '%s'\n"), info->name);
    if (info->description && *info->description)
      g_print(_("  description: %s\n"), info->description);
    g_print(_("  size:  %llu\n"), static_cast<unsigned long long>(info->size));
    g_print(_("  flags: 0x%x (%s%s%s%s)\n"), info->flags,
            (info->flags & NBD_FLAG_READ_ONLY) ? "readonly" : "writable",
            (info->flags & NBD_FLAG_SEND_FLUSH) ? " flush" : "",
            (info->flags & NBD_FLAG_SEND_TRIM) ? " trim" : "",
            (info->flags & NBD_FLAG_CAN_MULTI_CONN) ? " multi-conn" : "");
    if (info->min_block)
      g_print(_("  min block: %u\n  opt block: %u\n  max block: %u\n"), info->min_block,
              info->preferred_block, info->max_block);
  }
  return 0;
}

struct ServeState {
  GMainLoop *loop;
  gboolean persistent;
  qio::LogLimiter crowd_log; /* refusals, evictions, timeouts: a line a second */
};

void on_client_closed(NBDServer *server, const GError *error, guint remaining,
                      gpointer data) noexcept {
  auto *state = static_cast<ServeState *>(data);
  bool policy = error && g_error_matches(error, NBD_ERROR, NBD_ERROR_POLICY);
  bool timeout = error && g_error_matches(error, QIO_ERROR, QIO_ERROR_TIMEOUT);
  /* A flood of connections that stall or find no room cannot fill the log. */
  guint unsaid = 0;
  bool say = error && (!(policy || timeout) || state->crowd_log.allow(&unsaid));
  if (say && unsaid)
    g_printerr(_("qio-nbd: %s (and %u more like it since the last such line)\n"),
               error->message, unsaid);
  else if (say)
    g_printerr("qio-nbd: %s\n", error->message);
  if (remaining == 0 && !state->persistent && !policy) g_main_loop_quit(state->loop);
}

gboolean on_signal(gpointer data) noexcept {
  g_main_loop_quit(static_cast<GMainLoop *>(data));
  return G_SOURCE_CONTINUE;
}

gboolean write_pid_file(const char *path, GError **error) {
  g_autofree char *text = g_strdup_printf("%d\n", static_cast<int>(getpid()));
  if (!g_file_set_contents(path, text, -1, error)) {
    g_prefix_error(error, _("Cannot write the PID file: "));
    return FALSE;
  }
  return TRUE;
}

/* Forks; the parent waits until the child serves (or fails) and exits
 * with its verdict.  Returns in the child, with @ready_fd to signal on. */
int daemonize(int *ready_fd) {
  int fds[2];
  if (!g_unix_open_pipe(fds, FD_CLOEXEC, nullptr)) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid > 0) {
    close(fds[1]);
    char status = 1;
    ssize_t n;
    do n = read(fds[0], &status, 1);
    while (n < 0 && errno == EINTR);
    _exit(n == 1 && status == 0 ? 0 : 1);
  }
  close(fds[0]);
  setsid();
  *ready_fd = fds[1];
  return 0;
}

int run_server(Options &o) {
  g_autoptr(GError) error = nullptr;
  if (!o.files || !o.files[0]) return usage_error(_("Expected a file or block device to export"));
  if (o.files[1]) return usage_error(_("Expected exactly one file or block device to export"));
  if (o.format && strcmp(o.format, "raw") != 0) {
    g_autofree char *msg = g_strdup_printf(
        _("Unsupported format '%s': qio-nbd exports raw images only (-f raw)"), o.format);
    return usage_error(msg);
  }
  if (o.shared < 0) return usage_error(_("--shared needs a number of connections, 0 for no limit"));
  if (o.handshake_limit < 0)
    return usage_error(_("--handshake-limit needs a number of seconds, 0 for no limit"));
  g_autoptr(QIOSocketAddress) addr = make_address(o, &error);
  if (!addr) return usage_error(error->message);
  if (o.tls_hostname) return usage_error(_("--tls-hostname is for --list"));
  if (o.tls_authz && !o.tls_creds) return usage_error(_("--tls-authz needs --tls-creds"));
  g_autoptr(QCryptoTLSCreds) creds = lookup_creds(o, QCRYPTO_TLS_CREDS_ENDPOINT_SERVER, &error);
  if (error) return usage_error(error->message);
  g_autoptr(QCryptoAuthz) authz = nullptr;
  if (o.tls_authz) {
    authz = static_cast<QCryptoAuthz *>(
        qom_object_ref_typed(o.tls_authz, QCRYPTO_TYPE_AUTHZ, "authorization", &error));
    if (!authz) return usage_error(error->message);
  }

  g_autoptr(NBDExport) exp =
      nbd_export_new(o.export_name ? o.export_name : "", o.files[0], o.read_only, &error);
  if (!exp) {
    g_printerr("qio-nbd: %s\n", error->message);
    return 1;
  }
  if (!nbd_export_set_description(exp, o.description, &error)) {
    g_printerr("qio-nbd: %s\n", error->message);
    return 1;
  }

  int ready_fd = -1;
  if (o.fork && daemonize(&ready_fd) < 0) {
    g_printerr(_("qio-nbd: cannot fork into the background: %s\n"), g_strerror(errno));
    return 1;
  }
  auto signal_ready = [&ready_fd](char status) {
    if (ready_fd < 0) return;
    if (write(ready_fd, &status, 1) != 1) status = 1;
    close(ready_fd);
    ready_fd = -1;
  };

  g_autoptr(NBDServer) server = nbd_server_new(nullptr);
  nbd_server_set_max_connections(server, static_cast<guint>(o.shared));
  nbd_server_set_handshake_max_seconds(server, static_cast<guint>(o.handshake_limit));
  nbd_server_set_tls(server, creds, authz);
  if (!nbd_server_add_export(server, exp, &error) || !nbd_server_listen(server, addr, &error) ||
      (o.pid_file && !write_pid_file(o.pid_file, &error))) {
    g_printerr("qio-nbd: %s\n", error->message);
    signal_ready(1);
    return 1;
  }
  if (o.fork) {
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
      dup2(null_fd, STDIN_FILENO);
      dup2(null_fd, STDOUT_FILENO);
      dup2(null_fd, STDERR_FILENO);
      close(null_fd);
    }
  }
  signal_ready(0);

  g_autoptr(GMainLoop) loop = g_main_loop_new(nullptr, FALSE);
  ServeState state = {loop, o.persistent};
  g_signal_connect(server, "client-closed", G_CALLBACK(on_client_closed), &state);
  guint sigterm = g_unix_signal_add(SIGTERM, on_signal, loop);
  guint sigint = g_unix_signal_add(SIGINT, on_signal, loop);
  g_main_loop_run(loop);
  g_source_remove(sigterm);
  g_source_remove(sigint);
  nbd_server_shutdown(server);
  if (o.socket_path) g_unlink(o.socket_path);
  if (o.pid_file) g_unlink(o.pid_file);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");

  Options o;
  GOptionEntry entries[] = {
      {"bind", 'b', 0, G_OPTION_ARG_STRING, &o.bind,
       N_("Address to listen on (default 0.0.0.0), or to connect to with --list"),
       N_("ADDRESS")},
      {"port", 'p', 0, G_OPTION_ARG_STRING, &o.port, N_("TCP port (default 10809)"),
       N_("PORT")},
      {"socket", 'k', 0, G_OPTION_ARG_FILENAME, &o.socket_path,
       N_("Listen on (or with --list connect to) a UNIX socket instead of TCP"), N_("PATH")},
      {"export-name", 'x', 0, G_OPTION_ARG_STRING, &o.export_name,
       N_("Name of the export (default: empty)"), N_("NAME")},
      {"description", 'D', 0, G_OPTION_ARG_STRING, &o.description,
       N_("Description of the export, shown to clients that list exports"), N_("TEXT")},
      {"read-only", 'r', 0, G_OPTION_ARG_NONE, &o.read_only, N_("Export read-only"), nullptr},
      {"persistent", 't', 0, G_OPTION_ARG_NONE, &o.persistent,
       N_("Keep serving after the last client disconnects"), nullptr},
      {"shared", 'e', 0, G_OPTION_ARG_INT, &o.shared,
       N_("Serve up to N clients at once (default 1, 0 for no limit)"), N_("N")},
      {"handshake-limit", 0, 0, G_OPTION_ARG_INT, &o.handshake_limit,
       N_("Disconnect clients that have not finished the handshake after N seconds "
          "(default 10, 0 for no limit)"),
       N_("N")},
      {"format", 'f', 0, G_OPTION_ARG_STRING, &o.format, N_("Image format (only raw)"),
       N_("FORMAT")},
      {"list", 'L', 0, G_OPTION_ARG_NONE, &o.list,
       N_("List the exports of the server at --bind/--port or --socket"), nullptr},
      {"pid-file", 0, 0, G_OPTION_ARG_FILENAME, &o.pid_file,
       N_("Write the process ID to PATH once serving"), N_("PATH")},
      {"fork", 0, 0, G_OPTION_ARG_NONE, &o.fork,
       N_("Go to the background once the socket is listening"), nullptr},
      {"object", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.objects,
       N_("Create a user object (TLS credentials, secret, authz), e.g. "
          "tls-creds-x509,id=tls0,dir=DIR,endpoint=server; may be repeated"),
       N_("TYPE,id=ID,...")},
      {"tls-creds", 0, 0, G_OPTION_ARG_STRING, &o.tls_creds,
       N_("Require TLS with the credentials object ID (with --list: use it)"), N_("ID")},
      {"tls-authz", 0, 0, G_OPTION_ARG_STRING, &o.tls_authz,
       N_("Admit only TLS clients whose identity the authz object ID allows"), N_("ID")},
      {"tls-hostname", 0, 0, G_OPTION_ARG_STRING, &o.tls_hostname,
       N_("With --list: the name to check the server certificate against"), N_("NAME")},
      {"version", 'V', 0, G_OPTION_ARG_NONE, &o.version, N_("Print the version and exit"),
       nullptr},
      {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.files, nullptr, nullptr},
      {},
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new(N_("[FILE]"));
  g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
  g_option_context_set_summary(
      ctx, _("Exports a raw image file or block device over NBD, or lists the exports of an "
             "NBD server (--list)."));
  g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
  g_autoptr(GError) error = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) return usage_error(error->message);
  if (o.version) {
    g_print("qio-nbd %s\n", PACKAGE_VERSION);
    return 0;
  }
  qom_init();
  for (char **obj = o.objects; obj && *obj; obj++) {
    if (!qom_object_add_from_string(*obj, &error)) {
      g_printerr("qio-nbd: --object %s: %s\n", *obj, error->message);
      return 1;
    }
  }
  if (o.list) {
    if (o.files && o.files[0]) return usage_error(_("--list takes no file argument"));
    return run_list(o);
  }
  return run_server(o);
}
