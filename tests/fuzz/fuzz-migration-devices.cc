/* The device state a migration source sends (migration_load_devices):
 * the input is the JSON of the Device record (serial console, framebuffer,
 * workload, disk metadata), loaded into one 1 MiB synthetic guest after
 * another, as a destination's main loop does. */
#include "config.h"

#include "host/guest.h"
#include "migration/migration-job.h"
#include "tests/fuzz/fuzz-util.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace {

std::unique_ptr<qio::host::Guest> make_guest() {
  fuzz::quiet_logs();
  return fuzz::make_guest();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static std::unique_ptr<qio::host::Guest> guest = make_guest();
  std::string json(reinterpret_cast<const char *>(data), size);
  bool running = false;
  GError *error = nullptr;
  qio::migration::migration_load_devices(*guest, json, running, &error);
  g_clear_error(&error);
  return 0;
}
