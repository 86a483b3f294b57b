/* The incoming migration stream (migration/migration-incoming and the
 * record reader of migration/migration-stream) as a source sends it: the
 * input is the whole stream on the main channel (hello, then RAM, Sync,
 * Device and End records), then EOF, into a destination on an fd: URI
 * whose guest has 1 MiB of RAM, without multifd or TLS.  The destination
 * runs as qiod runs it, a thread per channel reporting to the main loop,
 * and must report success or failure once it has read EOF. */
#include "config.h"

#include "host/guest.h"
#include "migration/migration-incoming.h"
#include "tests/fuzz/fuzz-util.h"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

using namespace qio::migration;

namespace {

constexpr size_t kMaxInput = 1 << 18;

/* MigrationContext::run_on_main: at once on the main thread, else through
 * the main context, waiting for it unless the harness is done with the
 * migration (as qio::migration::Migration does). */
struct MainCalls {
  std::mutex lock;
  std::condition_variable cv;
  bool closing = false;
};

struct Call {
  std::function<void()> fn;
  std::shared_ptr<MainCalls> calls;
  bool done = false;
};

void run_on_main(const std::shared_ptr<MainCalls> &calls, std::function<void()> fn) {
  if (g_main_context_is_owner(g_main_context_default())) {
    fn();
    return;
  }
  auto call = std::make_shared<Call>(Call{std::move(fn), calls});
  g_main_context_invoke_full(
      nullptr, G_PRIORITY_DEFAULT,
      [](gpointer data) noexcept -> gboolean {
        auto &c = *static_cast<std::shared_ptr<Call> *>(data);
        std::unique_lock guard(c->calls->lock);
        if (!c->calls->closing) {
          guard.unlock();
          c->fn();
          guard.lock();
        }
        c->done = true;
        c->calls->cv.notify_all();
        return G_SOURCE_REMOVE;
      },
      new std::shared_ptr<Call>(call),
      [](gpointer data) noexcept { delete static_cast<std::shared_ptr<Call> *>(data); });
  std::unique_lock guard(calls->lock);
  calls->cv.wait(guard, [&] { return call->done || calls->closing; });
}

std::unique_ptr<qio::host::Guest> make_guest() {
  fuzz::quiet_logs();
  /* The main thread is the main loop's, as in qiod. */
  if (!g_main_context_acquire(g_main_context_default())) abort();
  qio::host::GuestConfig config;
  config.ram_size = 1 << 20;
  GError *error = nullptr;
  auto guest = qio::host::Guest::create(config, &error);
  if (!guest) {
    fprintf(stderr, "guest: %s\n", error->message);
    abort();
  }
  return guest;
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

  auto calls = std::make_shared<MainCalls>();
  MigrationContext context{*guest,
                           g_main_context_default(),
                           [](MigrationStatus) {},
                           [calls](std::function<void()> fn) { run_on_main(calls, std::move(fn)); },
                           [](const char *) {},
                           nullptr};
  bool done = false;
  auto incoming = std::make_unique<MigrationIncoming>(
      context, uri, MigrationParameters{}, MigrationCapabilities{}, nullptr, nullptr, false,
      std::make_shared<MigrationStats>(), [&done](const GError *) { done = true; });
  if (!incoming->start(&error)) {
    fprintf(stderr, "incoming migration on %s: %s\n", text.c_str(), error->message);
    abort();
  }
  /* The destination has its own descriptor now. */
  qio_channel_close(QIO_CHANNEL(pair.server), nullptr);
  fuzz::play_peer(pair.fd, data, size, 5, [&done] { return done; });
  {
    std::lock_guard guard(calls->lock);
    calls->closing = true;
  }
  calls->cv.notify_all();
  incoming.reset();
  guest->stop();
  return 0;
}
