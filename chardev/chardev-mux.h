/*
 * ChardevMux: several frontends on one backend (-chardev ...,mux=on), as
 * in QEMU: every frontend's output goes to the backend, input goes to the
 * frontend with the focus.  Escape keys (Ctrl-A, then): c switches the
 * focus to the next frontend, h prints help, Ctrl-A sends Ctrl-A itself.
 */
#pragma once

#include "chardev/chardev.h"

#include <memory>
#include <vector>

namespace qio::chardev {

class ChardevMux final : public Chardev, private ChardevFrontend {
 public:
  ChardevMux(std::unique_ptr<Chardev> backend, GMainContext *context);
  ~ChardevMux() override;

  bool open(GError **error) override;
  std::string filename() const override;
  void describe(JsonObject *info) const override;

  bool attach(ChardevFrontend *frontend, GError **error) override;
  void detach(ChardevFrontend *frontend) override;
  ChardevFrontend *frontend() const override;
  gsize write(std::string_view data) override;
  void accept_input() override;

  gsize focus() const { return focus_; }
  static constexpr gsize kMaxFrontends = 4;
  static constexpr char kEscape = 0x01; /* Ctrl-A */

 private:
  /* ChardevFrontend, for the backend. */
  gsize can_read() override;
  void read(std::string_view bytes) override;
  void event(ChardevEvent event) override;

  void escape(char c);

  std::unique_ptr<Chardev> backend_;
  std::vector<ChardevFrontend *> frontends_;
  gsize focus_ = 0;
  bool escaped_ = false;
};

}  // namespace qio::chardev
