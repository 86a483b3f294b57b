/* A real Cyrus SASL setup for the SASL tests: qio.conf and a sasldb made
 * by saslpasswd2 in a temporary directory named by SASL_CONF_PATH, and an
 * in-memory exchange between a server and a client session. */
#pragma once

#include "qcrypto/sasl-session.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <vector>

/* Cyrus SASL's DIGEST-MD5 module never frees the cipher it fetches from
 * OpenSSL for each session (Debian 12, 2.1.28).  Without frame pointers in
 * libcrypto the module's frame is not in the leak's stack, so the
 * suppression names libcrypto, which qio itself does not use.  Include
 * this header from one file per test program: LeakSanitizer looks up the
 * hook by name, and programs built without it never call it. */
extern "C" const char *__lsan_default_suppressions() { return "leak:libcrypto.so\n"; }

/* SASL reads the configuration once per process: make it in main(),
 * before the first session. */
struct SaslTestConfig {
  char *dir = nullptr;
  char *db = nullptr;

  explicit SaslTestConfig(const char *mech_list) {
    GError *error = nullptr;
    dir = g_dir_make_tmp("qio-sasl-XXXXXX", &error);
    g_assert_no_error(error);
    db = g_build_filename(dir, "passwd.db", nullptr);
    g_autofree char *conf = g_build_filename(dir, "qio.conf", nullptr);
    g_autofree char *text = g_strdup_printf("mech_list: %s\nsasldb_path: %s\n", mech_list, db);
    g_assert_true(g_file_set_contents(conf, text, -1, &error));
    g_assert_no_error(error);
    g_assert_true(g_setenv("SASL_CONF_PATH", dir, TRUE));
  }
  SaslTestConfig(const SaslTestConfig &) = delete;
  SaslTestConfig &operator=(const SaslTestConfig &) = delete;
  ~SaslTestConfig() {
    g_autoptr(GDir) d = g_dir_open(dir, 0, nullptr);
    for (const char *name; d && (name = g_dir_read_name(d));) {
      g_autofree char *path = g_build_filename(dir, name, nullptr);
      g_remove(path);
    }
    g_rmdir(dir);
    g_free(db);
    g_free(dir);
  }

  /* Adds @user to the sasldb in @realm (NULL: the host's name, the realm
   * a server uses for names without "@realm"), as an operator would. */
  void add_user(const char *user, const char *realm, const char *password) {
    g_autofree char *tool = g_find_program_in_path("saslpasswd2");
    if (!tool) tool = g_strdup("/usr/sbin/saslpasswd2");
    if (!g_file_test(tool, G_FILE_TEST_IS_EXECUTABLE))
      g_error("saslpasswd2 not found: install sasl2-bin (scripts/packages.txt)");
    std::vector<const char *> argv = {tool, "-c", "-p", "-f", db, "-a", "qio"};
    if (realm) argv.insert(argv.end(), {"-u", realm});
    argv.insert(argv.end(), {user, nullptr});
    GError *error = nullptr;
    g_autoptr(GSubprocess) proc = g_subprocess_newv(
        argv.data(),
        static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                      G_SUBPROCESS_FLAGS_STDERR_PIPE),
        &error);
    g_assert_no_error(error);
    g_autofree char *err = nullptr;
    g_assert_true(g_subprocess_communicate_utf8(proc, password, nullptr, nullptr, &err, &error));
    g_assert_no_error(error);
    if (!g_subprocess_get_successful(proc)) g_error("saslpasswd2 %s failed: %s", user, err);
  }
};

/* Runs a whole exchange in memory: the client picks from @mechlist (NULL:
 * what the server lists).  TRUE when both sides are done; otherwise the
 * side that failed has its error set. */
static inline gboolean sasl_test_exchange(QCryptoSASLSession *server, QCryptoSASLSession *client,
                                          const char *mechlist, GError **server_error,
                                          GError **client_error) {
  g_autofree char *offered = nullptr;
  if (!mechlist) {
    offered = qcrypto_sasl_session_list_mechanisms(server, server_error);
    if (!offered) return FALSE;
    mechlist = offered;
  }
  const char *mech, *cout, *sout;
  gsize coutlen, soutlen;
  QCryptoSASLStep cs =
      qcrypto_sasl_session_client_start(client, mechlist, &mech, &cout, &coutlen, client_error);
  if (!cs) return FALSE;
  QCryptoSASLStep ss =
      qcrypto_sasl_session_server_start(server, mech, cout, coutlen, &sout, &soutlen, server_error);
  while (ss == QCRYPTO_SASL_STEP_CONTINUE) {
    /* A client that is done has nothing more to answer a challenge with. */
    g_assert_cmpint(cs, ==, QCRYPTO_SASL_STEP_CONTINUE);
    cs = qcrypto_sasl_session_client_step(client, sout, soutlen, &cout, &coutlen, client_error);
    if (!cs) return FALSE;
    ss = qcrypto_sasl_session_server_step(server, cout, coutlen, &sout, &soutlen, server_error);
  }
  if (!ss) return FALSE;
  /* The server's last word (success data), if the client still needs it. */
  if (cs == QCRYPTO_SASL_STEP_CONTINUE)
    cs = qcrypto_sasl_session_client_step(client, sout, soutlen, &cout, &coutlen, client_error);
  return cs == QCRYPTO_SASL_STEP_DONE;
}
