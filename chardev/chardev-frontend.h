/*
 * ChardevFrontend: what sits on the guest's side of a chardev (the serial
 * port, a monitor).  The chardev asks how much it may deliver, delivers,
 * and reports when its backend opens or closes; the frontend writes with
 * Chardev::write().
 */
#pragma once

#include <glib.h>

#include <string_view>

namespace qio::chardev {

enum class ChardevEvent {
  Opened, /* a peer connected, or a file was opened */
  Closed, /* the peer went away */
  Break,  /* a serial break (mux C-a b); frontends without one ignore it */
};

class ChardevFrontend {
 public:
  virtual ~ChardevFrontend() = default;
  /* Bytes the frontend can take now; 0 pauses reading until
   * Chardev::accept_input(). */
  virtual gsize can_read() = 0;
  virtual void read(std::string_view bytes) = 0;
  virtual void event(ChardevEvent event) = 0;
};

}  // namespace qio::chardev
