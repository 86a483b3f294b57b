/*
 * SerialFrontend: the guest's serial port as a chardev frontend.  Bytes
 * from the chardev are typed into the guest's line shell; everything the
 * guest prints goes to the chardev.
 */
#pragma once

#include "chardev/chardev.h"
#include "host/guest.h"

#include <memory>

namespace qio::chardev {

class SerialFrontend final : public ChardevFrontend {
 public:
  static std::unique_ptr<SerialFrontend> attach(host::Guest &guest, Chardev &chardev,
                                                GError **error);
  ~SerialFrontend() override;

  /* While the guest's shell is busy (a digest), only what fits its input
   * buffer; the chardev is told when it is idle again. */
  gsize can_read() override { return guest_.shell().room(); }
  void read(std::string_view bytes) override;
  /* Opened and Closed need nothing; the guest has no break handling
   * (no SysRq), so a break is dropped. */
  void event(ChardevEvent) override {}

 private:
  SerialFrontend(host::Guest &guest, Chardev &chardev) : guest_(guest), chardev_(chardev) {}

  host::Guest &guest_;
  Chardev &chardev_;
};

}  // namespace qio::chardev
