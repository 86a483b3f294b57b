#include "config.h"

#include "chardev/chardev-null.h"

namespace qio::chardev {

bool ChardevNull::open(GError **) {
  set_open(true);
  return true;
}

}  // namespace qio::chardev
