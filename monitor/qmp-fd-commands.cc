#include "config.h"

#include "monitor/qmp-fd-commands.h"
#include "monitor/qmp-error.h"
#include "monitor/qmp-session.h"
#include "qio/socket-address.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include <cerrno>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <string>

namespace qio::monitor {

namespace {

/* Looked up from migration threads as well as the main loop. */
std::mutex fd_lock;
std::map<std::string, int> named_fds;

int lookup_fd(const char *name, gpointer, GError **error) noexcept {
  {
    std::lock_guard guard(fd_lock);
    auto it = named_fds.find(name);
    if (it != named_fds.end()) {
      int fd = it->second;
      named_fds.erase(it);
      return fd;
    }
  }
  char *end = nullptr;
  errno = 0;
  long num = strtol(name, &end, 10);
  if (!*name || *end || errno || num < 0 || num > G_MAXINT) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("No file descriptor is named '%s'; pass one with getfd first"), name);
    return -1;
  }
  int fd = fcntl(static_cast<int>(num), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    int errsv = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                _("Unable to use inherited file descriptor %s: %s"), name, g_strerror(errsv));
  }
  return fd;
}

}  // namespace

void qmp_register_fd_commands(QmpServer &server) {
  qio_socket_address_set_fd_lookup(lookup_fd, nullptr);
  server.add_command({"getfd", {{"fdname", QmpArgType::String}}, false,
                      [&server](JsonObject *args, GError **error) -> JsonNode * {
                        const char *name = json_object_get_string_member(args, "fdname");
                        QmpSession *session = server.current_session();
                        int fd = session ? session->take_fd() : -1;
                        if (fd < 0) {
                          g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                                      _("getfd '%s': no file descriptor was received with the "
                                        "command; send one with SCM_RIGHTS over a UNIX socket"),
                                      name);
                          return nullptr;
                        }
                        if (g_ascii_isdigit(name[0])) {
                          g_close(fd, nullptr);
                          g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                                      _("getfd '%s': a descriptor name must not start with a "
                                        "digit (numbers name inherited descriptors)"),
                                      name);
                          return nullptr;
                        }
                        std::lock_guard guard(fd_lock);
                        auto [it, fresh] = named_fds.try_emplace(name, fd);
                        if (!fresh) {
                          /* As QEMU does: the new descriptor replaces the old. */
                          g_close(it->second, nullptr);
                          it->second = fd;
                        }
                        return qmp_empty_object();
                      }});
  server.add_command({"closefd", {{"fdname", QmpArgType::String}}, false,
                      [](JsonObject *args, GError **error) -> JsonNode * {
                        const char *name = json_object_get_string_member(args, "fdname");
                        std::lock_guard guard(fd_lock);
                        auto it = named_fds.find(name);
                        if (it == named_fds.end()) {
                          g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                                      _("File descriptor named '%s' not found"), name);
                          return nullptr;
                        }
                        g_close(it->second, nullptr);
                        named_fds.erase(it);
                        return qmp_empty_object();
                      }});
}

}  // namespace qio::monitor
