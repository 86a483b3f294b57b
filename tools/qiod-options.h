/*
 * qiod's command line, QEMU style: single-dash long options each taking
 * one argument (or none), key=value lists with ",," escaping a comma.
 */
#pragma once

#include "host/guest.h"

#include <glib.h>

#include <string>
#include <vector>

namespace qio::tools {

struct MonitorOption {
  std::string address; /* as qio_socket_address_parse() accepts it */
  bool wait = false;   /* wait=on: block start-up until a client connects */
  std::string tls_creds; /* tls-creds=ID: clients speak TLS */
  std::string tls_authz; /* tls-authz=ID: and must pass this check */
  std::string chardev; /* -mon chardev=ID: QMP over that chardev instead */
};

struct QiodOptions {
  enum class Action { Run, Help, Version } action = Action::Run;
  std::vector<std::string> objects;
  host::GuestConfig guest;
  bool start_paused = false;
  std::vector<MonitorOption> monitors;
  std::vector<std::string> chardevs; /* -chardev arguments, in order */
  std::string serial_chardev;        /* -serial chardev:ID */
  std::string vnc;                   /* -vnc argument, parsed at start-up */
  std::string incoming;
  std::string name;
  std::string pidfile;
  std::string logfile;
  bool daemonize = false;
};

/* Fills @opts from argv; on failure @error names the option and what is
 * wrong with it. */
bool qiod_parse_options(int argc, char **argv, QiodOptions &opts, GError **error);
/* The --help text. */
const char *qiod_usage();
/* The --help section on character devices, printed after qiod_usage(). */
const char *qiod_usage_chardev();

}  // namespace qio::tools
