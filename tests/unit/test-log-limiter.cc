/* qio::LogLimiter: one line a second, and the count of those held back. */
#include "config.h"

#include "qio/log-limiter.h"

#include <atomic>
#include <thread>
#include <vector>

namespace {

void test_once_a_second() {
  qio::LogLimiter limit;
  guint held = 99;
  g_assert_true(limit.allow(&held));
  g_assert_cmpuint(held, ==, 0);
  for (int i = 0; i < 5; i++) g_assert_false(limit.allow(&held));
  g_usleep(G_USEC_PER_SEC + 50000);
  g_assert_true(limit.allow(&held));
  g_assert_cmpuint(held, ==, 5);
  g_assert_false(limit.allow());
}

void test_threads() {
  /* Many threads at once: exactly one line, the rest held back. */
  qio::LogLimiter limit;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; i++) allowed += limit.allow();
    });
  for (auto &t : threads) t.join();
  g_assert_cmpint(allowed.load(), ==, 1);
  g_usleep(G_USEC_PER_SEC + 50000);
  guint held = 0;
  g_assert_true(limit.allow(&held));
  g_assert_cmpuint(held, ==, 799);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/log-limiter/once-a-second", test_once_a_second);
  g_test_add_func("/qio/log-limiter/threads", test_threads);
  return g_test_run();
}
