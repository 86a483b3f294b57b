#include "config.h"

#include "migration/main-loop-caller.h"

#include <condition_variable>
#include <mutex>

namespace qio::migration {

/* Outlives the caller while calls are queued in the main context. */
struct MainLoopCaller::Shared {
  std::mutex lock;
  std::condition_variable cv;
  bool closing = false;
};

MainLoopCaller::MainLoopCaller() : shared_(std::make_shared<Shared>()) {}

MainLoopCaller::~MainLoopCaller() { close(); }

void MainLoopCaller::close() {
  {
    std::lock_guard guard(shared_->lock);
    shared_->closing = true;
  }
  shared_->cv.notify_all();
}

void MainLoopCaller::run(std::function<void()> fn) {
  GMainContext *main = g_main_context_default();
  if (g_main_context_is_owner(main)) {
    fn();
    return;
  }
  struct Queued {
    std::function<void()> fn;
    std::shared_ptr<Shared> shared;
    bool done = false;
  };
  auto call = std::make_shared<Queued>(Queued{std::move(fn), shared_});
  g_main_context_invoke_full(
      main, G_PRIORITY_DEFAULT,
      [](gpointer data) noexcept -> gboolean {
        auto &c = *static_cast<std::shared_ptr<Queued> *>(data);
        std::unique_lock guard(c->shared->lock);
        if (!c->shared->closing) {
          guard.unlock();
          c->fn();
          guard.lock();
        }
        c->done = true;
        c->shared->cv.notify_all();
        return G_SOURCE_REMOVE;
      },
      new std::shared_ptr<Queued>(call),
      [](gpointer data) noexcept { delete static_cast<std::shared_ptr<Queued> *>(data); });
  std::unique_lock guard(shared_->lock);
  shared_->cv.wait(guard, [&] { return call->done || shared_->closing; });
}

}  // namespace qio::migration
