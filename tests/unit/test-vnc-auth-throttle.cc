/* VncAuthThrottle with made-up times: free tries, then one answer at a
 * time with growing spacing, per host; success and time clear it; a flood
 * of hosts shares one entry. */
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

void test_success_and_forgetting() {
  VncAuthThrottle t;
  fail(t, "h", 10, kStart);
  g_assert_cmpint(t.reserve("h", kStart), >, 0);
  t.succeeded("h");
  g_assert_cmpint(t.reserve("h", kStart), ==, 0);
  fail(t, "h", 10, kStart);
  gint64 later = kStart + (VncAuthThrottle::kForgetSeconds + 1) * G_USEC_PER_SEC;
  g_assert_false(t.throttled("h", later));
  g_assert_cmpint(t.reserve("h", later), ==, 0);
}

/* Beyond kMaxHosts failing hosts, new ones share one entry: a flood of
 * addresses is slowed as one instead of growing the table. */
void test_many_hosts() {
  VncAuthThrottle t;
  for (gsize i = 0; i < VncAuthThrottle::kMaxHosts; i++) t.failed("h" + std::to_string(i), kStart);
  for (int i = 0; i < 5; i++) t.failed("new" + std::to_string(i), kStart);
  g_assert_true(t.throttled("newcomer", kStart));
  g_assert_cmpint(t.reserve("newcomer", kStart), >, 0);
  /* Once the old entries are forgotten, hosts are tracked one by one again. */
  gint64 later = kStart + (VncAuthThrottle::kForgetSeconds + 1) * G_USEC_PER_SEC;
  t.failed("fresh", later);
  g_assert_cmpint(t.reserve("fresh", later), ==, 0);
  g_assert_cmpint(t.reserve("newcomer", later), ==, 0);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/vnc/auth-throttle/free-tries", test_free_tries);
  g_test_add_func("/vnc/auth-throttle/queue", test_queue);
  g_test_add_func("/vnc/auth-throttle/growth", test_growth);
  g_test_add_func("/vnc/auth-throttle/success-and-forgetting", test_success_and_forgetting);
  g_test_add_func("/vnc/auth-throttle/many-hosts", test_many_hosts);
  return g_test_run();
}
