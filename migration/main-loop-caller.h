/*
 * MainLoopCaller: runs functions on the main loop for migration threads
 * (MigrationContext::run_on_main): at once when called on the main loop's
 * thread, otherwise through the default GMainContext, waiting until the
 * function ran.  close() ends every wait and drops calls not yet run, so
 * a migration being torn down (on the main loop) never waits on a thread
 * that waits on it.
 */
#pragma once

#include <glib.h>

#include <functional>
#include <memory>

namespace qio::migration {

class MainLoopCaller {
 public:
  MainLoopCaller();
  ~MainLoopCaller();
  MainLoopCaller(const MainLoopCaller &) = delete;
  MainLoopCaller &operator=(const MainLoopCaller &) = delete;

  void run(std::function<void()> fn);
  void close();

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace qio::migration
