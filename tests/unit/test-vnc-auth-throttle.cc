/* VncAuthThrottle with made-up times: free tries, then one answer at a
 * time with growing spacing, per source; forget() and time clear it; a
 * flood of sources never slows one that did not fail; IPv6 peers count by
 * their /64. */
#include "config.h"

#include "ui/vnc-auth-throttle.h"

#include <glib.h>

#include <string>

using qio::ui::VncAuthThrottle;

namespace {

constexpr gint64 kMs = G_TIME_SPAN_MILLISECOND;
constexpr gint64 kStart = 1000 * G_USEC_PER_SEC;

void fail(VncAuthThrottle &t, const std::string &host, int times, gint64 at) {
  for (int i = 0; i < times; i++) t.failed(host, at);
}

void test_free_tries() {
  VncAuthThrottle t;
  fail(t, "10.0.0.1", VncAuthThrottle::kFreeFailures - 1, kStart);
  g_assert_cmpint(t.reserve("10.0.0.1", kStart), ==, 0);
  g_assert_false(t.throttled("10.0.0.1", kStart));
}

/* Parallel attempts queue: each waits its turn, kFirstDelayMs apart. */
void test_queue() {
  VncAuthThrottle t;
  fail(t, "10.0.0.1", VncAuthThrottle::kFreeFailures, kStart);
  g_assert_true(t.throttled("10.0.0.1", kStart));
  g_assert_cmpint(t.reserve("10.0.0.1", kStart), ==, 250 * kMs);
  g_assert_cmpint(t.reserve("10.0.0.1", kStart), ==, 500 * kMs);
  g_assert_cmpint(t.reserve("10.0.0.1", kStart + 100 * kMs), ==, 650 * kMs);
  /* Another host is not slowed. */
  g_assert_cmpint(t.reserve("10.0.0.2", kStart), ==, 0);
  /* At most kMaxWaitingTurns wait: more are refused, not queued. */
  for (int i = 3; i < VncAuthThrottle::kMaxWaitingTurns; i++)
    g_assert_cmpint(t.reserve("10.0.0.1", kStart + 100 * kMs), ==, (i + 1) * 250 * kMs - 100 * kMs);
  g_assert_cmpint(t.reserve("10.0.0.1", kStart + 100 * kMs), ==, -1);
}

/* The spacing doubles with each failure, up to kMaxDelayMs. */
void test_growth() {
  VncAuthThrottle t;
  gint64 now = kStart;
  fail(t, "h", VncAuthThrottle::kFreeFailures, now);
  for (gint64 ms : {250, 500, 1000, 2000, 4000, 5000, 5000}) {
    now += 10 * G_USEC_PER_SEC; /* past every earlier turn, before forgetting */
    g_assert_cmpint(t.reserve("h", now), ==, 0);
    g_assert_cmpint(t.reserve("h", now), ==, ms * kMs);
    t.failed("h", now);
  }
}

void test_forgetting() {
  VncAuthThrottle t;
  fail(t, "h", 10, kStart);
  g_assert_cmpint(t.reserve("h", kStart), >, 0);
  t.forget("h");
  g_assert_cmpint(t.reserve("h", kStart), ==, 0);
  fail(t, "h", 10, kStart);
  gint64 later = kStart + (VncAuthThrottle::kForgetSeconds + 1) * G_USEC_PER_SEC;
  g_assert_false(t.throttled("h", later));
  g_assert_cmpint(t.reserve("h", later), ==, 0);
}

/* Beyond kMaxSources failing sources, the one that failed longest ago is
 * forgotten; a source that never failed is never slowed. */
void test_many_sources() {
  VncAuthThrottle t;
  fail(t, "first", 5, kStart);
  for (gsize i = 1; i < VncAuthThrottle::kMaxSources; i++)
    fail(t, "h" + std::to_string(i), 5, kStart + 1 + static_cast<gint64>(i));
  g_assert_true(t.throttled("first", kStart + 10000));
  fail(t, "newest", 5, kStart + 10000);
  g_assert_false(t.throttled("first", kStart + 10000));
  g_assert_true(t.throttled("newest", kStart + 10000));
  g_assert_true(t.throttled("h1", kStart + 10000));
  g_assert_cmpint(t.reserve("never-failed", kStart + 10000), ==, 0);
}

void test_sources() {
  const struct {
    const char *host, *source;
  } cases[] = {{"192.0.2.7", "192.0.2.7"},
               {"::ffff:192.0.2.7", "192.0.2.7"},
               {"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
               {"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
               {"unix", "unix"}};
  for (const auto &c : cases) {
    std::string source = VncAuthThrottle::source_of(c.host);
    g_assert_cmpstr(source.c_str(), ==, c.source);
  }
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/vnc/auth-throttle/free-tries", test_free_tries);
  g_test_add_func("/vnc/auth-throttle/queue", test_queue);
  g_test_add_func("/vnc/auth-throttle/growth", test_growth);
  g_test_add_func("/vnc/auth-throttle/forgetting", test_forgetting);
  g_test_add_func("/vnc/auth-throttle/many-sources", test_many_sources);
  g_test_add_func("/vnc/auth-throttle/sources", test_sources);
  return g_test_run();
}
