/* Authorization objects: authz-simple, authz-list (exact, glob, first
 * match, default policy, JSON rules), authz-listfile (load, refresh on
 * change, broken file denies everyone) and authz-pam error handling. */
#include "config.h"

#include "assert-mentions.h"
#include "qcrypto/authz-list.h"
#include "qcrypto/authz-listfile.h"
#include "qcrypto/authz-pam.h"
#include "qcrypto/authz-simple.h"
#include "qcrypto/error.h"

#include <glib/gstdio.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>
#include <string>

static gboolean allowed(gpointer authz, const char *identity) {
  g_autoptr(GError) error = nullptr;
  gboolean ok = qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(authz), identity, &error);
  if (ok) {
    g_assert_no_error(error);
  } else {
    g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED);
    assert_mentions(error, qcrypto_authz_get_id(QCRYPTO_AUTHZ(authz)), identity);
  }
  return ok;
}

static void test_simple() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzSimple) authz =
      qcrypto_authz_simple_new("auth0", "CN=laptop.example.com,O=Example", &error);
  g_assert_no_error(error);
  g_assert_true(allowed(authz, "CN=laptop.example.com,O=Example"));
  g_assert_false(allowed(authz, "CN=laptop.example.com"));
  g_assert_false(allowed(authz, ""));

  g_autoptr(QCryptoAuthzSimple) none = qcrypto_authz_simple_new("auth1", nullptr, &error);
  g_assert_null(none);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
  assert_mentions(error, "'auth1'", "identity");
}

static void test_list_rules() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzList) list =
      qcrypto_authz_list_new("list0", QCRYPTO_AUTHZ_LIST_POLICY_DENY, &error);
  g_assert_no_error(error);
  /* Default policy with no rules. */
  g_assert_false(allowed(list, "fred"));
  qcrypto_authz_list_append_rule(list, "fred", QCRYPTO_AUTHZ_LIST_POLICY_ALLOW,
                                 QCRYPTO_AUTHZ_LIST_FORMAT_EXACT);
  qcrypto_authz_list_append_rule(list, "bad*", QCRYPTO_AUTHZ_LIST_POLICY_DENY,
                                 QCRYPTO_AUTHZ_LIST_FORMAT_GLOB);
  qcrypto_authz_list_append_rule(list, "ba?ger", QCRYPTO_AUTHZ_LIST_POLICY_ALLOW,
                                 QCRYPTO_AUTHZ_LIST_FORMAT_GLOB);
  qcrypto_authz_list_append_rule(list, "b*", QCRYPTO_AUTHZ_LIST_POLICY_ALLOW,
                                 QCRYPTO_AUTHZ_LIST_FORMAT_GLOB);
  g_assert_true(allowed(list, "fred"));
  g_assert_false(allowed(list, "fre"));
  /* Exact rules do not glob. */
  g_assert_false(allowed(list, "fred*"));
  /* First match wins: "badger" matches the deny rule before the allow. */
  g_assert_false(allowed(list, "badger"));
  g_assert_true(allowed(list, "bolt"));
  g_assert_false(allowed(list, "alice"));

  /* The default policy flips the outcome for unmatched identities only. */
  g_object_set(list, "policy", QCRYPTO_AUTHZ_LIST_POLICY_ALLOW, nullptr);
  g_assert_true(allowed(list, "alice"));
  g_assert_false(allowed(list, "badger"));

  /* The rules property round-trips as a boxed GPtrArray. */
  g_autoptr(GPtrArray) rules = nullptr;
  g_object_get(list, "rules", &rules, nullptr);
  g_assert_cmpuint(rules->len, ==, 4);
  auto *first = static_cast<QCryptoAuthzListRule *>(g_ptr_array_index(rules, 0));
  g_assert_cmpstr(first->match, ==, "fred");
  g_autoptr(QCryptoAuthzList) copy = QCRYPTO_AUTHZ_LIST(
      g_initable_new(QCRYPTO_TYPE_AUTHZ_LIST, nullptr, &error, "id", "list1", "rules", rules,
                     nullptr));
  g_assert_no_error(error);
  g_assert_true(allowed(copy, "bolt"));
  g_assert_false(allowed(copy, "alice"));
}

static void test_list_json() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzList) list =
      qcrypto_authz_list_new("list2", QCRYPTO_AUTHZ_LIST_POLICY_DENY, &error);
  g_assert_true(qcrypto_authz_list_set_rules_json(
      list,
      "[{\"match\": \"CN=*.example.com\", \"policy\": \"allow\", \"format\": \"glob\"},"
      " {\"match\": \"CN=admin\", \"policy\": \"allow\"}]",
      &error));
  g_assert_no_error(error);
  g_assert_true(allowed(list, "CN=www.example.com"));
  g_assert_true(allowed(list, "CN=admin"));
  g_assert_false(allowed(list, "CN=admin2"));

  const struct {
    const char *json;
    const char *needle;
  } bad[] = {
      {"", "JSON"},
      {"[{\"match\": \"x\", \"policy\": \"allow\"}", "JSON"},
      {"{\"match\": \"x\"}", "array"},
      {"[\"x\"]", "rule 0"},
      {"[{\"policy\": \"allow\"}]", "'match'"},
      {"[{\"match\": 3, \"policy\": \"allow\"}]", "'match'"},
      {"[{\"match\": \"x\"}]", "'policy'"},
      {"[{\"match\": \"x\", \"policy\": \"maybe\"}]", "maybe"},
      {"[{\"match\": \"x\", \"policy\": \"allow\", \"format\": \"regex\"}]", "regex"},
      {"[{\"match\": \"x\", \"policy\": \"allow\"}, {\"match\": \"y\", \"policy\": true}]",
       "rule 1"},
      {"[{\"match\": \"x\", \"policy\": \"allow\", \"colour\": \"red\"}]", "colour"},
  };
  for (const auto &c : bad) {
    g_autoptr(GError) err = nullptr;
    g_assert_false(qcrypto_authz_list_set_rules_json(list, c.json, &err));
    g_assert_error(err, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
    assert_mentions(err, "'list2'", c.needle);
  }
  /* Nested 100 000 deep: refused before json-glib recurses (found by
   * fuzzing: it overflowed the stack), and 64 levels are still parsed. */
  g_autoptr(GError) deep_err = nullptr;
  g_assert_false(qcrypto_authz_list_set_rules_json(list, std::string(100000, '[').c_str(),
                                                   &deep_err));
  assert_mentions(deep_err, "'list2'", "nested too deep");
  g_autoptr(GError) shallow_err = nullptr;
  std::string shallow = std::string(64, '[') + std::string(64, ']');
  g_assert_false(qcrypto_authz_list_set_rules_json(list, shallow.c_str(), &shallow_err));
  assert_mentions(shallow_err, "'list2'", "rule 0");
  /* Failed updates left the rules alone. */
  g_assert_true(allowed(list, "CN=admin"));
}

/* Checks from other threads while the rules change: each check sees a
 * whole rule list (copy on write), never a half-built one. */
struct CheckerData {
  QCryptoAuthzList *list;
  gint stop;
  gint wrong;
};

static gpointer checker_thread(gpointer data) {
  auto *d = static_cast<CheckerData *>(data);
  while (!g_atomic_int_get(&d->stop)) {
    if (!qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(d->list), "fred", nullptr))
      g_atomic_int_inc(&d->wrong);
    if (qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(d->list), "zed", nullptr))
      g_atomic_int_inc(&d->wrong);
  }
  return nullptr;
}

static void test_list_threads() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzList) list =
      qcrypto_authz_list_new("list3", QCRYPTO_AUTHZ_LIST_POLICY_DENY, &error);
  g_assert_true(qcrypto_authz_list_set_rules_json(
      list, "[{\"match\": \"fred\", \"policy\": \"allow\"}]", &error));
  CheckerData d = {list, 0, 0};
  GThread *threads[2];
  for (auto &t : threads) t = g_thread_new("checker", checker_thread, &d);
  for (int i = 0; i < 3000; i++) {
    g_autofree char *match = g_strdup_printf("user%d", i);
    qcrypto_authz_list_append_rule(list, match, QCRYPTO_AUTHZ_LIST_POLICY_ALLOW,
                                   QCRYPTO_AUTHZ_LIST_FORMAT_GLOB);
    if (i % 50 == 49)
      g_assert_true(qcrypto_authz_list_set_rules_json(
          list, "[{\"match\": \"f*\", \"policy\": \"allow\", \"format\": \"glob\"}]",
          &error));
  }
  g_atomic_int_set(&d.stop, 1);
  for (auto *t : threads) g_thread_join(t);
  g_assert_cmpint(d.wrong, ==, 0);
  g_autoptr(GPtrArray) rules = qcrypto_authz_list_get_rules(list);
  /* The last step replaced the list. */
  g_assert_cmpuint(rules->len, ==, 1);
}

struct ListFileFixture {
  char *dir;
  char *path;
  GMainContext *context;
};

static void listfile_setup(ListFileFixture *f, gconstpointer) {
  GError *error = nullptr;
  f->dir = g_dir_make_tmp("qio-authz-XXXXXX", &error);
  g_assert_no_error(error);
  f->path = g_build_filename(f->dir, "rules.json", nullptr);
  f->context = g_main_context_new();
  g_main_context_push_thread_default(f->context);
}

static void listfile_teardown(ListFileFixture *f, gconstpointer) {
  g_main_context_pop_thread_default(f->context);
  g_main_context_unref(f->context);
  g_unlink(f->path);
  g_rmdir(f->dir);
  g_free(f->path);
  g_free(f->dir);
}

static void write_rules(ListFileFixture *f, const char *json) {
  g_autoptr(GError) error = nullptr;
  g_assert_true(g_file_set_contents(f->path, json, -1, &error));
}

/* Runs the loop until @identity's verdict is @expect, for at most 10 s. */
static void wait_verdict(ListFileFixture *f, gpointer authz, const char *identity,
                         gboolean expect) {
  gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < deadline) {
    g_autoptr(GError) error = nullptr;
    if (qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(authz), identity, &error) == expect) return;
    g_main_context_iteration(f->context, FALSE);
    g_usleep(10000);
  }
  g_error("authz-listfile did not pick up the change for '%s'", identity);
}

static void test_listfile_load(ListFileFixture *f, gconstpointer) {
  write_rules(f, "{\"policy\": \"allow\", \"rules\": ["
                 "{\"match\": \"mallory\", \"policy\": \"deny\"},"
                 "{\"match\": \"eve*\", \"policy\": \"deny\", \"format\": \"glob\"}]}");
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzListFile) authz =
      qcrypto_authz_list_file_new("file0", f->path, FALSE, &error);
  g_assert_no_error(error);
  g_assert_true(allowed(authz, "alice"));
  g_assert_false(allowed(authz, "mallory"));
  g_assert_false(allowed(authz, "evelyn"));

  /* Policy defaults to deny; rules may be absent. */
  write_rules(f, "{}");
  g_assert_true(qcrypto_authz_list_file_reload(authz, &error));
  g_assert_false(allowed(authz, "alice"));
}

static void test_listfile_errors(ListFileFixture *f, gconstpointer) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzListFile) missing =
      qcrypto_authz_list_file_new("file1", f->path, TRUE, &error);
  g_assert_null(missing);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE);
  assert_mentions(error, "'file1'", f->path);

  const struct {
    const char *json;
    const char *needle;
  } bad[] = {
      {"{", "JSON"},
      {"[]", "object"},
      {"{\"policy\": \"perhaps\"}", "perhaps"},
      {"{\"rules\": {}}", "array"},
      {"{\"rules\": [{\"match\": \"x\"}]}", "policy"},
      {"{\"polcy\": \"allow\"}", "polcy"},
  };
  for (const auto &c : bad) {
    write_rules(f, c.json);
    g_autoptr(GError) err = nullptr;
    g_autoptr(QCryptoAuthzListFile) authz =
        qcrypto_authz_list_file_new("file2", f->path, FALSE, &err);
    g_assert_null(authz);
    assert_mentions(err, "'file2'", f->path);
    assert_mentions(err, c.needle);
  }

  g_clear_error(&error);
  g_autoptr(QCryptoAuthzListFile) nofile = qcrypto_authz_list_file_new("file3", nullptr, TRUE,
                                                                       &error);
  g_assert_null(nofile);
  assert_mentions(error, "'file3'", "filename");
}

static void test_listfile_refresh(ListFileFixture *f, gconstpointer) {
  write_rules(f, "{\"rules\": [{\"match\": \"alice\", \"policy\": \"allow\"}]}");
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzListFile) authz =
      qcrypto_authz_list_file_new("file4", f->path, TRUE, &error);
  g_assert_no_error(error);
  g_assert_true(allowed(authz, "alice"));
  g_assert_false(allowed(authz, "bob"));

  write_rules(f, "{\"rules\": [{\"match\": \"bob\", \"policy\": \"allow\"}]}");
  wait_verdict(f, authz, "bob", TRUE);
  g_assert_false(allowed(authz, "alice"));

  /* A broken file denies everyone, with a warning naming the file. */
  g_test_expect_message(nullptr, G_LOG_LEVEL_WARNING, "*'file4'*rules.json*");
  write_rules(f, "{\"rules\": [");
  wait_verdict(f, authz, "bob", FALSE);
  g_test_assert_expected_messages();
  g_autoptr(GError) denial = nullptr;
  g_assert_false(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(authz), "bob", &denial));
  g_assert_error(denial, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED);
  assert_mentions(denial, "'bob'", f->path);

  /* Fixed: works again. */
  write_rules(f, "{\"policy\": \"allow\", \"rules\": []}");
  wait_verdict(f, authz, "bob", TRUE);
  g_assert_true(allowed(authz, "carol"));

  /* A deleted file is a broken one; a new file is picked up. */
  g_test_expect_message(nullptr, G_LOG_LEVEL_WARNING, "*'file4'*rules.json*");
  g_assert_cmpint(g_unlink(f->path), ==, 0);
  wait_verdict(f, authz, "carol", FALSE);
  g_test_assert_expected_messages();
  write_rules(f, "{\"rules\": [{\"match\": \"carol\", \"policy\": \"allow\"}]}");
  wait_verdict(f, authz, "carol", TRUE);
  g_assert_false(allowed(authz, "bob"));
}

static void test_listfile_no_refresh(ListFileFixture *f, gconstpointer) {
  write_rules(f, "{\"policy\": \"allow\"}");
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzListFile) authz =
      qcrypto_authz_list_file_new("file5", f->path, FALSE, &error);
  g_assert_no_error(error);
  write_rules(f, "{\"policy\": \"deny\"}");
  /* Give a monitor, were there one, time to act. */
  for (int i = 0; i < 20; i++) {
    g_main_context_iteration(f->context, FALSE);
    g_usleep(10000);
  }
  g_assert_true(allowed(authz, "anyone"));
}

static void test_pam() {
  g_autoptr(GError) error = nullptr;
  for (const char *bad : {"", "../etc/passwd"}) {
    g_autoptr(QCryptoAuthzPAM) authz = qcrypto_authz_pam_new("pam0", bad, &error);
    g_assert_null(authz);
    g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
    assert_mentions(error, "'pam0'", "service");
    g_clear_error(&error);
  }
  g_autoptr(QCryptoAuthzPAM) none = qcrypto_authz_pam_new("pam0", nullptr, &error);
  g_assert_null(none);
  g_clear_error(&error);

  /* A service without its own file falls back to "other"; no stack lets
   * an account that does not exist through. */
  g_autoptr(QCryptoAuthzPAM) authz =
      qcrypto_authz_pam_new("pam1", "qio-test-no-such-service", &error);
  g_assert_no_error(error);
  g_assert_false(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(authz), "qio-no-such-user-x9", &error));
  g_assert_nonnull(error);
  assert_mentions(error, "'pam1'", "'qio-no-such-user-x9'");
}

/* The allow path needs a PAM stack that admits someone.  Debian's
 * "other" service runs common-account (pam_unix), which admits root when
 * run as root; elsewhere the case is skipped. */
static void test_pam_allow() {
  g_autofree char *other = nullptr;
  g_autofree char *account = nullptr;
  if (geteuid() != 0 || !g_file_get_contents("/etc/pam.d/other", &other, nullptr, nullptr) ||
      !strstr(other, "common-account") ||
      !g_file_get_contents("/etc/pam.d/common-account", &account, nullptr, nullptr) ||
      !strstr(account, "pam_unix.so")) {
    g_test_skip("needs root and Debian's PAM 'other' service with pam_unix");
    return;
  }
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoAuthzPAM) authz =
      qcrypto_authz_pam_new("pam2", "qio-test-no-such-service", &error);
  g_assert_no_error(error);
  g_assert_true(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(authz), "root", &error));
  g_assert_no_error(error);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qcrypto/authz/simple", test_simple);
  g_test_add_func("/qcrypto/authz/list/rules", test_list_rules);
  g_test_add_func("/qcrypto/authz/list/json", test_list_json);
  g_test_add_func("/qcrypto/authz/list/threads", test_list_threads);
  g_test_add("/qcrypto/authz/listfile/load", ListFileFixture, nullptr, listfile_setup,
             test_listfile_load, listfile_teardown);
  g_test_add("/qcrypto/authz/listfile/errors", ListFileFixture, nullptr, listfile_setup,
             test_listfile_errors, listfile_teardown);
  g_test_add("/qcrypto/authz/listfile/refresh", ListFileFixture, nullptr, listfile_setup,
             test_listfile_refresh, listfile_teardown);
  g_test_add("/qcrypto/authz/listfile/no-refresh", ListFileFixture, nullptr, listfile_setup,
             test_listfile_no_refresh, listfile_teardown);
  g_test_add_func("/qcrypto/authz/pam", test_pam);
  g_test_add_func("/qcrypto/authz/pam/allow", test_pam_allow);
  return g_test_run();
}
