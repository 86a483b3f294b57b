/*
 * ChardevMux: several frontends on one backend (-chardev ...,mux=on), as
 * in QEMU: every frontend's output goes to the backend, input goes to the
 * frontend with the focus.  Escape keys (Ctrl-A, then): c switches the
 * focus to the next frontend, h prints help, x quits qiod, s flushes the
 * guest's disks, t toggles timestamps on output lines, b sends a break to
 * the focused frontend, Ctrl-A sends Ctrl-A itself.
 */
#pragma once

#include "chardev/chardev.h"

#include <functional>
#include <memory>
#include <vector>

namespace qio::chardev {

/* What C-a x and C-a s do in the host: quit as QMP quit does, and write
 * the guest's disks through to storage.  Unset members make the escape
 * do nothing (unit tests, a host without a guest). */
struct MuxActions {
  std::function<void()> quit;
  std::function<bool(GError **error)> flush_disks;
};

class ChardevMux final : public Chardev, private ChardevFrontend {
 public:
  /* @actions must outlive the mux (ChardevSet owns both). */
  ChardevMux(std::unique_ptr<Chardev> backend, const MuxActions &actions, GMainContext *context);
  ~ChardevMux() override;

  bool open(GError **error) override;
  void open_async(OpenDone done) override;
  std::string filename() const override;
  void describe(JsonObject *info) const override;

  bool attach(ChardevFrontend *frontend, GError **error) override;
  void detach(ChardevFrontend *frontend) override;
  ChardevFrontend *frontend() const override;
  gsize write(std::string_view data) override;
  void accept_input() override;

  gsize focus() const { return focus_; }
  bool timestamps() const { return timestamps_; }
  static constexpr gsize kMaxFrontends = 4;
  static constexpr char kEscape = 0x01; /* Ctrl-A */

 private:
  /* ChardevFrontend, for the backend. */
  gsize can_read() override;
  void read(std::string_view bytes) override;
  void event(ChardevEvent event) override;

  void escape(char c);
  void print_line(const char *text);
  /* Writes "[hh:mm:ss.mmm] " (time since C-a t turned stamps on). */
  bool write_timestamp();

  std::unique_ptr<Chardev> backend_;
  std::vector<ChardevFrontend *> frontends_;
  gsize focus_ = 0;
  bool escaped_ = false;
  const MuxActions &actions_;
  bool timestamps_ = false;
  gint64 timestamps_start_ = 0;
  /* The last byte written ended a line: the next one gets a timestamp. */
  bool line_start_ = true;
};

}  // namespace qio::chardev
