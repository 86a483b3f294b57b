#include "config.h"

#include "chardev/serial-frontend.h"

namespace qio::chardev {

std::unique_ptr<SerialFrontend> SerialFrontend::attach(host::Guest &guest, Chardev &chardev,
                                                       GError **error) {
  std::unique_ptr<SerialFrontend> self(new SerialFrontend(guest, chardev));
  if (!chardev.attach(self.get(), error)) return nullptr;
  Chardev *dev = &chardev;
  guest.set_serial_output([dev](std::string_view out) { dev->write(out); });
  guest.shell().set_room_listener([dev] { dev->accept_input(); });
  return self;
}

SerialFrontend::~SerialFrontend() {
  guest_.set_serial_output(nullptr);
  guest_.shell().set_room_listener(nullptr);
  chardev_.detach(this);
}

void SerialFrontend::read(std::string_view bytes) {
  /* The shell's reply reaches the chardev through the output sink. */
  guest_.serial_input(bytes);
}

}  // namespace qio::chardev
