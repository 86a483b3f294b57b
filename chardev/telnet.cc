#include "config.h"

#include "chardev/telnet.h"

namespace qio::chardev {

gsize telnet_escape(std::string_view in, gsize room, std::string &out) {
  out.clear();
  gsize used = 0;
  for (char ch : in) {
    bool iac = static_cast<guchar>(ch) == 0xff;
    if (out.size() + (iac ? 2 : 1) > room) break;
    out += ch;
    if (iac) out += ch;
    used++;
  }
  return used;
}

}  // namespace qio::chardev
