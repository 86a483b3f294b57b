/*
 * MonitorFrontend: a QMP monitor on a chardev (-mon chardev=ID,mode=control).
 * Each time the chardev opens (a peer connects, TLS included), a fresh
 * QMP session starts with its greeting, as in QEMU; it ends when the peer
 * goes.  The session is a QmpServer client on one end of a socket pair;
 * this frontend carries bytes between the other end and the chardev.
 */
#pragma once

#include "chardev/chardev.h"
#include "monitor/qmp-server.h"

#include <array>
#include <memory>
#include <string>

namespace qio::chardev {

class MonitorFrontend final : public ChardevFrontend {
 public:
  static std::unique_ptr<MonitorFrontend> attach(monitor::QmpServer &server, Chardev &chardev,
                                                 GError **error);
  ~MonitorFrontend() override;

  /* No session and nothing left for the chardev to send: what the last
   * session said (a reply to quit, SHUTDOWN) has gone out. */
  bool flushed() const { return !local_ && chardev_.pending_output() == 0; }

  gsize can_read() override;
  void read(std::string_view bytes) override;
  void event(ChardevEvent event) override;

 private:
  MonitorFrontend(monitor::QmpServer &server, Chardev &chardev)
      : server_(server), chardev_(chardev) {}

  static gboolean on_session_output(QIOChannel *ioc, GIOCondition cond, gpointer data) noexcept;
  static gboolean on_session_input(QIOChannel *ioc, GIOCondition cond, gpointer data) noexcept;
  static gboolean on_retry(gpointer data) noexcept;
  void start_session();
  void end_session();
  void watch_session_output();
  void remove_source(guint &id);

  monitor::QmpServer &server_;
  Chardev &chardev_;
  QIOChannel *local_ = nullptr; /* our end of the pair; the session has the other */
  guint out_watch_ = 0;
  guint in_watch_ = 0;
  guint retry_timer_ = 0;
  std::string to_session_;
  std::array<char, 16384> buf_;
};

}  // namespace qio::chardev
