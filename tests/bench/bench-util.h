/*
 * Helpers shared by the benchmarks: sizes with K/M/G suffixes, medians,
 * the `bench` output line, and a CA with server and client credential
 * directories in a temporary directory.
 */
#pragma once

#include "tests/unit/crypto-tls-x509-helpers.h"

#include <glib.h>
#include <glib/gstdio.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

inline guint64 bench_parse_size(const char *s) {
  char *end = nullptr;
  guint64 v = g_ascii_strtoull(s, &end, 10);
  switch (g_ascii_toupper(*end)) {
    case 'K': return v << 10;
    case 'M': return v << 20;
    case 'G': return v << 30;
    default: return v;
  }
}

inline double bench_median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

inline void bench_print(const char *name, double value, const char *unit, double baseline) {
  printf("bench name=%s value=%.3f unit=%s baseline=%.3f ratio=%.3f\n", name, value, unit,
         baseline, baseline > 0 ? value / baseline : 0.0);
  fflush(stdout);
}

/* For paired measurements: @ratio is the median of the per-pair ratios,
 * @value and @baseline the medians of each side. */
inline void bench_print_paired(const char *name, double value, const char *unit,
                               double baseline, double ratio) {
  printf("bench name=%s value=%.3f unit=%s baseline=%.3f ratio=%.3f paired=yes\n", name, value,
         unit, baseline, ratio);
  fflush(stdout);
}

/* A CA, server and client directories in a temporary directory. */
struct BenchPki {
  char *top = test_tls_mkdir();
  char *server = g_build_filename(top, "server", nullptr);
  char *client = g_build_filename(top, "client", nullptr);
  BenchPki() {
    g_mkdir(server, 0700);
    g_mkdir(client, 0700);
    TestCert ca = test_tls_make_cert(test_tls_ca_req("bench CA"), nullptr);
    auto sreq = test_tls_server_req("localhost");
    sreq.ip1 = "127.0.0.1";
    TestCert srv = test_tls_make_cert(sreq, &ca);
    TestCert cli = test_tls_make_cert(test_tls_client_req("bench client"), &ca);
    test_tls_write(server, "ca-cert.pem", ca.pem);
    test_tls_write(server, "server-cert.pem", srv.pem);
    test_tls_write(server, "server-key.pem", test_tls_key_pem(1));
    test_tls_write(client, "ca-cert.pem", ca.pem);
    test_tls_write(client, "client-cert.pem", cli.pem);
    test_tls_write(client, "client-key.pem", test_tls_key_pem(1));
  }
  ~BenchPki() {
    test_tls_rmdir(server);
    test_tls_rmdir(client);
    test_tls_rmdir(top);
    g_free(server);
    g_free(client);
    g_free(top);
  }
  std::string file(bool srv, const char *name) const {
    g_autofree char *p = g_build_filename(srv ? server : client, name, nullptr);
    return p;
  }
};
