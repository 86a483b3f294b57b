/*
 * ChardevPty: the "pty" backend.  A pseudo-terminal whose slave
 * (/dev/pts/N, reported by query-chardev and at start) a terminal program
 * opens.  While no one has the slave open, reads fail; the master is then
 * polled again every second, as QEMU does.
 */
#pragma once

#include "chardev/chardev.h"
#include "qio/channel-file.h"

namespace qio::chardev {

class ChardevPty final : public Chardev {
 public:
  ChardevPty(const std::string &id, GMainContext *context) : Chardev(id, "pty", context) {}
  ~ChardevPty() override;
  bool open(GError **error) override;
  std::string filename() const override { return "pty:" + slave_; }

 protected:
  void hangup() override;

 private:
  static gboolean on_poll(gpointer data) noexcept;

  QIOChannelFile *master_ = nullptr;
  std::string slave_;
  guint poll_timer_ = 0;
};

}  // namespace qio::chardev
