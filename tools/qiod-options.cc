#include "config.h"

#include "tools/qiod-options.h"
#include "qio/error.h"
#include "qom/keyval.h"

#include <glib/gi18n-lib.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace qio::tools {

namespace {

using KeyVals = std::vector<std::pair<std::string, std::string>>;

#define OPT_ERROR(error, ...) g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED, __VA_ARGS__)

/* QEMU's key=value syntax, parsed by qom/ as -object is; only flat string
 * values are meaningful here. */
bool split_keyvals(const char *opt, const char *arg, const char *implied, KeyVals &out,
                   GError **error) {
  g_autoptr(GError) local = nullptr;
  g_autoptr(JsonObject) obj = qom_keyval_parse(arg, implied, &local);
  if (!obj) {
    OPT_ERROR(error, "%s: %s", opt, local->message);
    return false;
  }
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *l = members; l; l = l->next) {
    auto *key = static_cast<const char *>(l->data);
    JsonNode *v = json_object_get_member(obj, key);
    if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING) {
      OPT_ERROR(error, _("%s: '%s' takes a plain value, not a structure"), opt, key);
      return false;
    }
    out.emplace_back(key, json_node_get_string(v));
  }
  return true;
}

bool parse_u64(const char *opt, const char *key, const std::string &text, guint64 *out,
               GError **error) {
  char *end = nullptr;
  errno = 0;
  guint64 v = g_ascii_strtoull(text.c_str(), &end, 10);
  if (text.empty() || !g_ascii_isdigit(text[0]) || *end != '\0' || errno != 0) {
    OPT_ERROR(error, _("%s: %s='%s' is not a non-negative integer"), opt, key, text.c_str());
    return false;
  }
  *out = v;
  return true;
}

bool parse_bool(const char *opt, const char *key, const std::string &text, bool *out,
                GError **error) {
  if (text == "on" || text == "yes" || text == "true" || text.empty()) {
    *out = true;
    return true;
  }
  if (text == "off" || text == "no" || text == "false") {
    *out = false;
    return true;
  }
  OPT_ERROR(error, _("%s: %s='%s' must be on or off"), opt, key, text.c_str());
  return false;
}

/* "64M", "1G", "512" (MiB, as QEMU), "65536K", "2GiB", "4096B". */
bool parse_size(const char *opt, const char *text, guint64 *out, GError **error) {
  static const std::pair<const char *, guint> units[] = {
      {"", 20},   {"B", 0},    {"K", 10},   {"KB", 10}, {"KIB", 10}, {"M", 20},
      {"MB", 20}, {"MIB", 20}, {"G", 30},   {"GB", 30}, {"GIB", 30}, {"T", 40},
      {"TB", 40}, {"TIB", 40}};
  char *end = nullptr;
  errno = 0;
  guint64 v = g_ascii_strtoull(text, &end, 10);
  g_autofree char *suffix = g_ascii_strup(end, -1);
  int shift = -1;
  for (const auto &[name, s] : units)
    if (g_str_equal(suffix, name)) shift = static_cast<int>(s);
  if (!g_ascii_isdigit(text[0]) || errno != 0 || shift < 0 || v == 0 ||
      v > (G_MAXUINT64 >> shift)) {
    OPT_ERROR(error, _("%s: invalid size '%s'; use a number with an optional K, M, G or T "
                       "suffix, such as 64M"), opt, text);
    return false;
  }
  *out = v << shift;
  return true;
}

bool parse_drive(const char *arg, host::GuestConfig &guest, GError **error) {
  KeyVals kv;
  if (!split_keyvals("-drive", arg, nullptr, kv, error)) return false;
  host::DriveConfig drive;
  for (const auto &[k, v] : kv) {
    if (k == "file") {
      drive.file = v;
    } else if (k == "id") {
      drive.id = v;
    } else if (k == "format") {
      if (v != "raw") {
        OPT_ERROR(error, _("-drive: format '%s' is not supported; qiod drives are raw images "
                           "(format=raw)"), v.c_str());
        return false;
      }
    } else {
      OPT_ERROR(error, _("-drive: unknown parameter '%s'; accepted: file, format, id"), k.c_str());
      return false;
    }
  }
  if (drive.file.empty() || drive.id.empty()) {
    OPT_ERROR(error, _("-drive: '%s' needs both file=PATH and id=NAME"), arg);
    return false;
  }
  guest.drives.push_back(std::move(drive));
  return true;
}

bool parse_guest(const char *arg, host::GuestConfig &guest, GError **error) {
  KeyVals kv;
  if (!split_keyvals("-guest", arg, nullptr, kv, error)) return false;
  for (const auto &[k, v] : kv) {
    guint64 *target = k == "dirty-rate" ? &guest.dirty_rate
                      : k == "disk-rate" ? &guest.disk_rate
                      : k == "seed"      ? &guest.seed
                                         : nullptr;
    if (!target) {
      OPT_ERROR(error, _("-guest: unknown parameter '%s'; accepted: dirty-rate, disk-rate, seed"),
                k.c_str());
      return false;
    }
    if (!parse_u64("-guest", k.c_str(), v, target, error)) return false;
  }
  return true;
}

/* unix:PATH,server=on,wait=off  tcp:HOST:PORT,server=on  (QEMU chardev
 * syntax for a listening socket). */
bool parse_monitor(const char *opt, const char *arg, QiodOptions &opts, GError **error) {
  KeyVals kv;
  if (!split_keyvals(opt, arg, "address", kv, error)) return false;
  MonitorOption mon;
  bool server = true;
  for (const auto &[k, v] : kv) {
    if (k == "address") {
      mon.address = g_str_has_prefix(v.c_str(), "tcp:") ? "inet:" + v.substr(4) : v;
    } else if (k == "server") {
      if (!parse_bool(opt, "server", v, &server, error)) return false;
    } else if (k == "wait") {
      if (!parse_bool(opt, "wait", v, &mon.wait, error)) return false;
    } else if (k == "tls-creds") {
      mon.tls_creds = v;
    } else if (k == "tls-authz") {
      mon.tls_authz = v;
    } else if (k == "chardev" && g_str_equal(opt, "-mon")) {
      mon.chardev = v;
    } else if (k == "mode" && g_str_equal(opt, "-mon")) {
      if (v != "control") {
        OPT_ERROR(error, _("%s: mode '%s' is not supported; qiod's monitor speaks QMP "
                           "(mode=control)"), opt, v.c_str());
        return false;
      }
    } else if (k == "pretty" && g_str_equal(opt, "-mon")) {
      bool pretty = false;
      if (!parse_bool(opt, "pretty", v, &pretty, error)) return false;
      if (pretty) {
        OPT_ERROR(error, _("%s: pretty=on is not supported; QMP replies are one line each"),
                  opt);
        return false;
      }
    } else {
      OPT_ERROR(error, _("%s: unknown parameter '%s'; accepted: server, wait, tls-creds, tls-authz"),
                opt, k.c_str());
      return false;
    }
  }
  if (!server) {
    OPT_ERROR(error, _("%s: qiod's monitor only listens; use server=on"), opt);
    return false;
  }
  if (!mon.chardev.empty()) {
    if (!mon.address.empty() || !mon.tls_creds.empty() || !mon.tls_authz.empty()) {
      OPT_ERROR(error, _("%s: give either chardev=ID or an address, not both (a chardev "
                         "takes tls-creds and tls-authz itself)"), opt);
      return false;
    }
    opts.monitors.push_back(std::move(mon));
    return true;
  }
  if (mon.address.empty()) {
    OPT_ERROR(error, _("%s: '%s' has no address; use unix:PATH or tcp:HOST:PORT"), opt, arg);
    return false;
  }
  opts.monitors.push_back(std::move(mon));
  return true;
}

bool check_incoming(const char *arg, GError **error) {
  static const char *const schemes[] = {"tcp:", "unix:", "exec:", "fd:", "file:"};
  if (g_str_equal(arg, "defer")) return true;
  for (const char *s : schemes)
    if (g_str_has_prefix(arg, s) && arg[strlen(s)] != '\0') return true;
  OPT_ERROR(error, _("-incoming: '%s' is not a migration URI; use defer, tcp:HOST:PORT, "
                     "unix:PATH, exec:CMD, fd:NAME or file:PATH"), arg);
  return false;
}

}  // namespace

const char *qiod_usage() {
  return _("Usage: qiod [options]\n"
           "\n"
           "The qio VM host daemon: a synthetic guest served over QMP.\n"
           "\n"
           "  -m SIZE                   guest RAM (default 128M; suffix K, M, G, T)\n"
           "  -guest dirty-rate=N,disk-rate=N,seed=N\n"
           "                            workload: pages/s written to RAM, blocks/s to\n"
           "                            the disks, and the seed RAM is filled from\n"
           "  -drive file=PATH,format=raw,id=ID\n"
           "                            a raw disk image the guest writes\n"
           "  -S                        start with the guest paused\n"
           "  -object TYPE,id=ID,...    create an object (TLS credentials, secret, ...)\n"
           "  -qmp ADDRESS[,server=on][,wait=off][,tls-creds=ID][,tls-authz=ID]\n"
           "  -mon ADDRESS[,...]        serve QMP on unix:PATH or tcp:HOST:PORT,\n"
           "                            with TLS when tls-creds is given\n"
           "  -incoming URI|defer       wait for an incoming migration\n"
           "  -vnc HOST:DISPLAY[,OPTIONS] serve the guest's display over VNC on port\n"
           "                            5900+DISPLAY (or unix:PATH); see docs/vnc.md\n"
           "  -name NAME                the guest's name\n"
           "  -pidfile PATH             write the daemon's process id to PATH\n"
           "  -daemonize                detach once the monitors listen\n"
           "  -D LOGFILE                write log messages to LOGFILE\n"
           "  -h, --help                show this help\n"
           "  -V, --version             show the version\n"
           "\n"
           "Exit status: 0 after quit or SIGTERM/SIGINT, 1 on a bad command line or a\n"
           "failure to start.\n");
}

const char *qiod_usage_chardev() {
  return _("\n"
           "Character devices (see docs/chardev.md):\n"
           "  -chardev BACKEND,id=ID,...  socket, file, pipe, pty, stdio, ringbuf, null\n"
           "  -serial chardev:ID        attach the guest's serial port to chardev ID\n"
           "  -mon chardev=ID,mode=control\n"
           "                            serve QMP on chardev ID\n");
}

bool qiod_parse_options(int argc, char **argv, QiodOptions &opts, GError **error) {
  for (int i = 1; i < argc; i++) {
    std::string name = argv[i];
    if (g_str_has_prefix(name.c_str(), "--")) name.erase(0, 1);
    if (name == "-h" || name == "-help") {
      opts.action = QiodOptions::Action::Help;
      return true;
    }
    if (name == "-V" || name == "-version") {
      opts.action = QiodOptions::Action::Version;
      return true;
    }
    if (name == "-daemonize") {
      opts.daemonize = true;
      continue;
    }
    if (name == "-S") {
      opts.start_paused = true;
      continue;
    }
    static const char *const with_arg[] = {"-object", "-m",     "-drive", "-qmp", "-mon",
                                           "-incoming", "-name", "-pidfile", "-D", "-guest",
                                           "-chardev", "-serial", "-vnc"};
    bool known = false;
    for (const char *o : with_arg) known |= name == o;
    if (!known) {
      OPT_ERROR(error, _("unknown option '%s'; see qiod --help"), argv[i]);
      return false;
    }
    if (i + 1 >= argc) {
      OPT_ERROR(error, _("option '%s' needs an argument; see qiod --help"), argv[i]);
      return false;
    }
    const char *arg = argv[++i];
    const char *opt = name.c_str();
    bool ok = true;
    if (name == "-object") {
      opts.objects.emplace_back(arg);
    } else if (name == "-m") {
      const char *size = g_str_has_prefix(arg, "size=") ? arg + 5 : arg;
      ok = parse_size(opt, size, &opts.guest.ram_size, error);
    } else if (name == "-drive") {
      ok = parse_drive(arg, opts.guest, error);
    } else if (name == "-guest") {
      ok = parse_guest(arg, opts.guest, error);
    } else if (name == "-qmp" || name == "-mon") {
      ok = parse_monitor(opt, arg, opts, error);
    } else if (name == "-incoming") {
      ok = check_incoming(arg, error);
      opts.incoming = arg;
    } else if (name == "-name") {
      opts.name = g_str_has_prefix(arg, "guest=") ? arg + 6 : arg;
    } else if (name == "-pidfile") {
      opts.pidfile = arg;
    } else if (name == "-D") {
      opts.logfile = arg;
    } else if (name == "-chardev") {
      opts.chardevs.emplace_back(arg);
    } else if (name == "-vnc") {
      if (!opts.vnc.empty()) {
        OPT_ERROR(error, _("-vnc given twice; qiod serves one VNC display"));
        return false;
      }
      opts.vnc = arg;
    } else if (name == "-serial") {
      if (!g_str_has_prefix(arg, "chardev:") || !arg[8]) {
        OPT_ERROR(error, _("-serial: '%s' is not supported; create the backend with -chardev "
                           "and use -serial chardev:ID"), arg);
        return false;
      }
      opts.serial_chardev = arg + 8;
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace qio::tools
