/*
 * qiod: the qio VM host daemon.  Hosts the synthetic guest, creates the
 * -object objects, and serves QMP on every -qmp/-mon address from one
 * GMainLoop.  SIGTERM and SIGINT shut it down cleanly.
 */
#include "config.h"

#include "chardev/chardev-qmp.h"
#include "chardev/chardev-set.h"
#include "chardev/monitor-frontend.h"
#include "chardev/serial-frontend.h"
#include "host/guest.h"
#include "monitor/qmp-block-jobs.h"
#include "migration/migration.h"
#include "migration/qmp-migration-commands.h"
#include "monitor/qmp-commands.h"
#include "monitor/qmp-fd-commands.h"
#include "monitor/qmp-listener.h"
#include "monitor/qmp-nbd-commands.h"
#include "monitor/qmp-object-commands.h"
#include "monitor/qmp-tls-commands.h"
#include "monitor/qmp-server.h"
#include "qom/object-registry.h"
#include "tools/qiod-options.h"
#include "ui/qmp-vnc-commands.h"
#include "ui/vnc-server.h"

#include <glib-unix.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

using namespace qio;

namespace {

FILE *log_file = nullptr;

GLogWriterOutput log_to_file(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                             gpointer) noexcept {
  if (level & G_LOG_LEVEL_DEBUG) return G_LOG_WRITER_HANDLED;
  const char *message = "";
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal(fields[i].key, "MESSAGE")) message = static_cast<const char *>(fields[i].value);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *stamp = g_date_time_format_iso8601(now);
  const char *what = (level & G_LOG_LEVEL_ERROR)      ? "error"
                     : (level & G_LOG_LEVEL_CRITICAL) ? "critical"
                     : (level & G_LOG_LEVEL_WARNING)  ? "warning"
                     : (level & G_LOG_LEVEL_MESSAGE)  ? "message"
                                                      : "info";
  fprintf(log_file, "%s qiod[%d] %s: %s\n", stamp, static_cast<int>(getpid()), what, message);
  fflush(log_file);
  return G_LOG_WRITER_HANDLED;
}

struct Daemon {
  tools::QiodOptions opts;
  GMainLoop *loop = nullptr;
  std::unique_ptr<host::Guest> guest;
  std::unique_ptr<monitor::QmpServer> server;
  std::unique_ptr<migration::Migration> migration;
  std::vector<std::unique_ptr<monitor::QmpListener>> listeners;
  /* For migration's switch-over: completes the ready mirrors. */
  std::weak_ptr<monitor::BlockJobs> block_jobs;
  std::unique_ptr<chardev::ChardevSet> chardevs;
  std::unique_ptr<chardev::SerialFrontend> serial;
  std::unique_ptr<ui::VncServer> vnc;
  std::vector<std::unique_ptr<chardev::MonitorFrontend>> chardev_monitors;
  bool shutting_down = false;
  int exit_status = 0;
  gint64 chardev_flush_deadline = 0;

  ~Daemon() {
    migration.reset();
    vnc.reset();
    listeners.clear();
    chardev_monitors.clear();
    serial.reset();
    chardevs.reset();
    server.reset();
    guest.reset();
    qom_object_del_all();
    if (!opts.pidfile.empty()) g_unlink(opts.pidfile.c_str());
    if (loop) g_main_loop_unref(loop);
  }

  /* SHUTDOWN goes to every client, their queues drain (at most 2 s for
   * clients that do not read), then the loop ends. */
  void shutdown(const char *reason) {
    if (shutting_down) return;
    shutting_down = true;
    g_info(_("shutting down (%s)"), reason);
    guest->stop();
    JsonObject *data = json_object_new();
    json_object_set_boolean_member(data, "guest", FALSE);
    json_object_set_string_member(data, "reason", reason);
    server->emit_event("SHUTDOWN", monitor::qmp_take_object(data));
    for (auto &l : listeners) l->disconnect();
    server->drain(2000, [this] { quit_when_chardevs_flushed(); });
  }

  /* QMP quit and mux C-a x: shuts down from the main loop, after the
   * command's reply or the chardev's read. */
  void request_quit() {
    g_idle_add_full(
        G_PRIORITY_DEFAULT,
        [](gpointer data) noexcept -> gboolean {
          static_cast<Daemon *>(data)->shutdown("host-qmp-quit");
          return G_SOURCE_REMOVE;
        },
        this, nullptr);
  }

  /* QMP sessions on chardevs end with their output in the chardev's
   * queue: give it up to a second to reach the peer. */
  void quit_when_chardevs_flushed() {
    chardev_flush_deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
    g_timeout_add(10, [](gpointer data) noexcept -> gboolean {
      auto *self = static_cast<Daemon *>(data);
      bool flushed = true;
      for (auto &fe : self->chardev_monitors) flushed &= fe->flushed();
      if (!flushed && g_get_monotonic_time() < self->chardev_flush_deadline)
        return G_SOURCE_CONTINUE;
      g_main_loop_quit(self->loop);
      return G_SOURCE_REMOVE;
    }, this);
  }

  bool serve_monitor(const tools::MonitorOption &mon, GError **error) {
    if (!mon.chardev.empty()) {
      chardev::Chardev *dev = chardevs->lookup(mon.chardev, error);
      if (!dev) {
        g_prefix_error(error, "-mon: ");
        return false;
      }
      auto fe = chardev::MonitorFrontend::attach(*server, *dev, error);
      if (!fe) return false;
      chardev_monitors.push_back(std::move(fe));
      return true;
    }
    auto listener = monitor::QmpListener::open(
        *server, {mon.address, mon.wait, mon.tls_creds, mon.tls_authz}, error);
    if (!listener) return false;
    listeners.push_back(std::move(listener));
    return true;
  }

  bool write_pidfile(GError **error) {
    g_autofree char *pid = g_strdup_printf("%d\n", static_cast<int>(getpid()));
    return g_file_set_contents(opts.pidfile.c_str(), pid, -1, error);
  }
};

/* Forks; the parent waits until the child reports start-up (one byte on a
 * pipe: 0 ok, 1 failed) and exits with that status. */
int daemonize(int *ready_fd) {
  int fds[2];
  g_autoptr(GError) error = nullptr;
  if (!g_unix_open_pipe(fds, FD_CLOEXEC, &error)) {
    fprintf(stderr, "qiod: %s\n", error->message);
    return 1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, _("qiod: -daemonize: fork failed: %s\n"), g_strerror(errno));
    return 1;
  }
  if (pid > 0) {
    close(fds[1]);
    char status = 1;
    ssize_t n;
    do n = read(fds[0], &status, 1);
    while (n < 0 && errno == EINTR);
    _exit(n == 1 ? status : 1);
  }
  close(fds[0]);
  setsid();
  *ready_fd = fds[1];
  return 0;
}

void report_ready(int ready_fd, char status) {
  if (ready_fd < 0) return;
  if (write(ready_fd, &status, 1) != 1) {
    /* The parent is gone; nothing left to tell. */
  }
  close(ready_fd);
  if (status != 0) return;
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  dup2(null, STDIN_FILENO);
  dup2(null, STDOUT_FILENO);
  dup2(null, STDERR_FILENO);
  close(null);
}

}  // namespace

int main(int argc, char **argv) {
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  signal(SIGPIPE, SIG_IGN);

  Daemon d;
  g_autoptr(GError) error = nullptr;
  if (!tools::qiod_parse_options(argc, argv, d.opts, &error)) {
    fprintf(stderr, "qiod: %s\n", error->message);
    return 1;
  }
  if (d.opts.action == tools::QiodOptions::Action::Help) {
    fputs(tools::qiod_usage(), stdout);
    fputs(tools::qiod_usage_chardev(), stdout);
    return 0;
  }
  if (d.opts.action == tools::QiodOptions::Action::Version) {
    printf("qiod (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
    return 0;
  }
  if (!d.opts.logfile.empty()) {
    log_file = fopen(d.opts.logfile.c_str(), "ae");
    if (!log_file) {
      fprintf(stderr, _("qiod: -D: cannot open log file '%s': %s\n"), d.opts.logfile.c_str(),
              g_strerror(errno));
      return 1;
    }
    g_log_set_writer_func(log_to_file, nullptr, nullptr);
  }
  int ready_fd = -1;
  if (d.opts.daemonize && daemonize(&ready_fd) != 0) return 1;

  auto fail = [&](const GError *e) {
    fprintf(stderr, "qiod: %s\n", e->message);
    if (log_file) g_warning("%s", e->message);
    report_ready(ready_fd, 1);
    return 1;
  };

  qom_init();
  for (const auto &obj : d.opts.objects)
    if (!qom_object_add_from_string(obj.c_str(), &error)) return fail(error);

  d.guest = host::Guest::create(d.opts.guest, &error);
  if (!d.guest) return fail(error);
  if (d.opts.start_paused || !d.opts.incoming.empty()) d.guest->stop();
  if (!d.opts.incoming.empty()) d.guest->set_status("inmigrate");
  d.guest->set_run_after_migration(!d.opts.start_paused);

  d.loop = g_main_loop_new(nullptr, FALSE);
  d.server = std::make_unique<monitor::QmpServer>();
  monitor::qmp_register_core_commands(*d.server, *d.guest, [&d] { d.request_quit(); });
  monitor::qmp_register_object_commands(*d.server, [&d] {
    monitor::qmp_check_tls_expiry(*d.server, monitor::kExpiryWarningDays);
  });
  monitor::qmp_register_tls_commands(*d.server);
  monitor::qmp_register_nbd_commands(*d.server, *d.guest);
  monitor::qmp_register_block_job_commands(*d.server, *d.guest, &d.block_jobs);
  monitor::qmp_register_fd_commands(*d.server);
  d.migration = std::make_unique<migration::Migration>(
      *d.guest, [&d](const char *name, JsonNode *data) { d.server->emit_event(name, data); },
      [&d](const GError *e) {
        if (!e) {
          g_info(_("incoming migration completed"));
          return;
        }
        /* A destination whose migration failed holds no usable guest. */
        fprintf(stderr, "qiod: %s\n", e->message);
        if (log_file) g_warning("%s", e->message);
        d.exit_status = 1;
        d.shutdown("host-error");
      });
  d.migration->set_complete_mirrors([&d](std::function<void(bool)> done) {
    if (auto jobs = d.block_jobs.lock())
      jobs->complete_ready(std::move(done));
    else
      done(true);
  });
  migration::qmp_register_migration_commands(*d.server, *d.migration);
  std::string name = d.opts.name;
  d.server->add_command({"query-name", {}, false, [name](JsonObject *, GError **) {
                           JsonObject *obj = json_object_new();
                           if (!name.empty()) json_object_set_string_member(obj, "name", name.c_str());
                           return monitor::qmp_take_object(obj);
                         }});

  d.chardevs = std::make_unique<chardev::ChardevSet>();
  /* C-a x on a mux quits as QMP quit does. */
  d.chardevs->mux_actions().quit = [&d] { d.request_quit(); };
  d.chardevs->mux_actions().flush_disks = [&d](GError **error) {
    for (const auto &disk : d.guest->disks())
      if (!disk->flush(error)) return false;
    return true;
  };
  chardev::qmp_register_chardev_commands(*d.server, *d.chardevs);
  for (const auto &text : d.opts.chardevs)
    if (!d.chardevs->add_from_string(text.c_str(), &error)) return fail(error);
  if (!d.opts.serial_chardev.empty()) {
    chardev::Chardev *dev = d.chardevs->lookup(d.opts.serial_chardev, &error);
    if (dev) d.serial = chardev::SerialFrontend::attach(*d.guest, *dev, &error);
    if (!d.serial) {
      g_prefix_error(&error, "-serial: ");
      return fail(error);
    }
  }

  if (!d.opts.vnc.empty()) {
    ui::VncConfig vnc_config;
    if (!ui::VncConfig::parse(d.opts.vnc.c_str(), vnc_config, &error)) return fail(error);
    d.vnc = ui::VncServer::create(vnc_config, *d.guest, &error);
    if (!d.vnc) return fail(error);
  }
  ui::qmp_register_vnc_commands(*d.server, d.vnc.get());

  for (const auto &mon : d.opts.monitors)
    if (!d.serve_monitor(mon, &error)) return fail(error);
  if (!d.opts.incoming.empty()) {
    d.migration->set_deferred();
    if (d.opts.incoming != "defer" && !d.migration->incoming(d.opts.incoming.c_str(), &error)) {
      g_prefix_error(&error, "-incoming: ");
      return fail(error);
    }
  }
  if (!d.opts.pidfile.empty() && !d.write_pidfile(&error)) return fail(error);

  auto on_signal = [](gpointer data) noexcept -> gboolean {
    static_cast<Daemon *>(data)->shutdown("host-signal");
    return G_SOURCE_CONTINUE;
  };
  /* Certificates expiring soon: qcrypto logs them when it loads them; the
   * monitor's clients get an event after object-add and from a daily check. */
  monitor::qmp_check_tls_expiry(*d.server, monitor::kExpiryWarningDays);
  g_timeout_add_seconds(
      24 * 60 * 60,
      [](gpointer data) noexcept -> gboolean {
        monitor::qmp_check_tls_expiry(*static_cast<Daemon *>(data)->server,
                                      monitor::kExpiryWarningDays);
        return G_SOURCE_CONTINUE;
      },
      &d);
  g_unix_signal_add(SIGTERM, on_signal, &d);
  g_unix_signal_add(SIGINT, on_signal, &d);
  g_unix_signal_add(SIGHUP, on_signal, &d);

  g_info(_("qiod %s started: guest with %llu bytes of RAM, %u QMP address(es)"),
            PACKAGE_VERSION, static_cast<unsigned long long>(d.opts.guest.ram_size),
            static_cast<unsigned>(d.opts.monitors.size()));
  report_ready(ready_fd, 0);
  g_main_loop_run(d.loop);
  return d.exit_status;
}
