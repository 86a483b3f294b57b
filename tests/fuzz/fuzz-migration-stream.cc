/* The incoming migration stream (migration/migration-incoming and the
 * record reader of migration/migration-stream) as a source sends it: the
 * input is the whole stream on the main channel (hello, then RAM, Sync,
 * Device and End records), then EOF, into a destination on an fd: URI
 * whose guest has 1 MiB of RAM, without multifd or TLS.  The destination
 * runs as qiod runs it, a thread per channel reporting to the main loop,
 * and must report success or failure once it has read EOF. */
#include "config.h"

#include "host/guest.h"
#include "migration/main-loop-caller.h"
#include "migration/migration-incoming.h"
#include "tests/fuzz/fuzz-util.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

using namespace qio::migration;

namespace {

constexpr size_t kMaxInput = 1 << 18;

std::unique_ptr<qio::host::Guest> make_guest() {
  fuzz::quiet_logs();
  /* The main thread is the main loop's, as in qiod. */
  if (!g_main_context_acquire(g_main_context_default())) abort();
  return fuzz::make_guest();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static std::unique_ptr<qio::host::Guest> guest = make_guest();
  if (size > kMaxInput) return 0;
  fuzz::PeerPair pair;
  GError *error = nullptr;
  MigrationUri uri;
  std::string text = "fd:" + std::to_string(qio_channel_socket_get_fd(pair.server));
  if (!migration_uri_parse(text.c_str(), uri, &error)) abort();

  MainLoopCaller main_calls;
  MigrationContext context{*guest,
                           g_main_context_default(),
                           [](MigrationStatus) {},
                           [&main_calls](std::function<void()> fn) { main_calls.run(std::move(fn)); },
                           [](const char *) {},
                           nullptr};
  bool done = false;
  auto incoming = std::make_unique<MigrationIncoming>(
      context, uri, MigrationParameters{}, MigrationCapabilities{}, nullptr, nullptr,
      std::make_shared<MigrationStats>(), [&done](const GError *) { done = true; });
  if (!incoming->start(&error)) {
    fprintf(stderr, "incoming migration on %s: %s\n", text.c_str(), error->message);
    abort();
  }
  /* The destination has its own descriptor now. */
  qio_channel_close(QIO_CHANNEL(pair.server), nullptr);
  fuzz::play_peer(pair.fd, data, size, 5, [&done] { return done; });
  main_calls.close();
  incoming.reset();
  guest->stop();
  return 0;
}
