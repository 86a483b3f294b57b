/* QCryptoSASLSession against itself with the real Cyrus SASL modules and a
 * sasldb made by saslpasswd2: DIGEST-MD5 with its security layer, SCRAM
 * and PLAIN only over an external (TLS) layer, wrong passwords, unknown
 * users, malformed data, and the layer's encode/decode. */
#include "config.h"

#include "qcrypto/error.h"
#include "qcrypto/sasl-session.h"
#include "tests/unit/assert-mentions.h"
#include "tests/unit/sasl-test-helpers.h"

#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace {

constexpr char kServerAddr[] = "127.0.0.1;5900";
constexpr char kClientAddr[] = "127.0.0.1;40000";
constexpr char kBob[] = "bob@qio.test";
constexpr char kBobPassword[] = "bob's secret";
/* An external layer as strong as a TLS session's AES-256. */
constexpr guint kTLSSSF = 256;

QCryptoSASLSession *server_new(guint external_ssf = 0) {
  g_autoptr(GError) error = nullptr;
  QCryptoSASLSession *sess =
      qcrypto_sasl_session_new_server("vnc", kServerAddr, kClientAddr, &error);
  g_assert_no_error(error);
  if (external_ssf) qcrypto_sasl_session_set_external_ssf(sess, external_ssf);
  return sess;
}

QCryptoSASLSession *client_new(const char *user, const char *password, guint external_ssf = 0) {
  g_autoptr(GError) error = nullptr;
  QCryptoSASLSession *sess = qcrypto_sasl_session_new_client(
      "vnc", "qio.test", kClientAddr, kServerAddr, user, password, &error);
  g_assert_no_error(error);
  if (external_ssf) qcrypto_sasl_session_set_external_ssf(sess, external_ssf);
  return sess;
}

std::set<std::string> split(const char *list) {
  g_auto(GStrv) names = g_strsplit(list, ",", -1);
  return std::set<std::string>(names, names + g_strv_length(names));
}

/* qio.conf's mech_list decides what is offered, and without an external
 * layer only mechanisms with a security layer are (CRAM-MD5, also
 * installed, is not in mech_list). */
void test_mechanisms() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoSASLSession) plain = server_new();
  g_autofree char *list = qcrypto_sasl_session_list_mechanisms(plain, &error);
  g_assert_no_error(error);
  g_assert_true(split(list) == std::set<std::string>({"DIGEST-MD5"}));

  g_autoptr(QCryptoSASLSession) tls = server_new(kTLSSSF);
  g_autofree char *tls_list = qcrypto_sasl_session_list_mechanisms(tls, &error);
  g_assert_no_error(error);
  g_assert_true(split(tls_list) ==
                std::set<std::string>({"DIGEST-MD5", "SCRAM-SHA-256", "PLAIN"}));
}

void test_digest_md5() {
  g_autoptr(QCryptoSASLSession) server = server_new();
  g_autoptr(QCryptoSASLSession) client = client_new(kBob, kBobPassword);
  g_assert_null(qcrypto_sasl_session_get_username(server));
  g_autoptr(GError) server_error = nullptr;
  g_autoptr(GError) client_error = nullptr;
  g_assert_true(sasl_test_exchange(server, client, nullptr, &server_error, &client_error));
  g_assert_no_error(server_error);
  g_assert_no_error(client_error);
  g_assert_cmpstr(qcrypto_sasl_session_get_username(server), ==, kBob);
  /* The client's name stays as it logged in (the realm is the server's). */
  g_assert_cmpstr(qcrypto_sasl_session_get_username(client), ==, kBob);
  /* DIGEST-MD5's strongest cipher, on both ends. */
  g_assert_cmpuint(qcrypto_sasl_session_get_ssf(server), ==, 128);
  g_assert_cmpuint(qcrypto_sasl_session_get_ssf(client), ==, 128);
  g_assert_cmpuint(qcrypto_sasl_session_get_maxoutbuf(server), >, 1024);
  g_assert_cmpuint(qcrypto_sasl_session_get_maxoutbuf(client), >, 1024);

  /* A finished session takes no more steps. */
  const char *out;
  gsize outlen;
  g_assert_cmpint(qcrypto_sasl_session_server_step(server, "x", 1, &out, &outlen, &server_error),
                  ==, QCRYPTO_SASL_STEP_FAILED);
  assert_mentions(server_error, "already done", kClientAddr);
  g_assert_cmpstr(qcrypto_sasl_session_get_username(server), ==, kBob);
}

/* A name without "@realm" is looked up in the host's realm. */
void test_default_realm() {
  g_autoptr(QCryptoSASLSession) server = server_new();
  g_autoptr(QCryptoSASLSession) client = client_new("alice", "alice's secret");
  g_autoptr(GError) server_error = nullptr;
  g_autoptr(GError) client_error = nullptr;
  g_assert_true(sasl_test_exchange(server, client, nullptr, &server_error, &client_error));
  g_assert_no_error(server_error);
  g_assert_cmpstr(qcrypto_sasl_session_get_username(server), ==, "alice");
}

/* Over TLS: the mechanism gives no second layer (SSF 0). */
void external_ok(const char *mech) {
  g_autoptr(QCryptoSASLSession) server = server_new(kTLSSSF);
  g_autoptr(QCryptoSASLSession) client = client_new(kBob, kBobPassword, kTLSSSF);
  g_autoptr(GError) server_error = nullptr;
  g_autoptr(GError) client_error = nullptr;
  g_assert_true(sasl_test_exchange(server, client, mech, &server_error, &client_error));
  g_assert_no_error(server_error);
  g_assert_no_error(client_error);
  g_assert_cmpstr(qcrypto_sasl_session_get_username(server), ==, kBob);
  g_assert_cmpuint(qcrypto_sasl_session_get_ssf(server), ==, 0);
  g_assert_cmpuint(qcrypto_sasl_session_get_ssf(client), ==, 0);
}

void test_scram_external() { external_ok("SCRAM-SHA-256"); }
void test_plain_external() { external_ok("PLAIN"); }
void test_digest_md5_external() { external_ok("DIGEST-MD5"); }

/* Without TLS, a mechanism without a security layer is refused by a
 * client, and by a server even when a client (told of TLS) picks it. */
void refused_without_tls(const char *mech) {
  g_autoptr(QCryptoSASLSession) client = client_new(kBob, kBobPassword);
  g_autoptr(GError) error = nullptr;
  const char *chosen, *out;
  gsize outlen;
  g_assert_cmpint(qcrypto_sasl_session_client_start(client, mech, &chosen, &out, &outlen, &error),
                  ==, QCRYPTO_SASL_STEP_FAILED);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE);
  assert_mentions(error, "qio.test", "PLAIN and SCRAM need TLS");
  assert_mentions(error, mech);
  g_clear_error(&error);

  g_autoptr(QCryptoSASLSession) server = server_new();
  g_autoptr(QCryptoSASLSession) tls_client = client_new(kBob, kBobPassword, kTLSSSF);
  g_autoptr(GError) client_error = nullptr;
  g_assert_false(sasl_test_exchange(server, tls_client, mech, &error, &client_error));
  g_assert_no_error(client_error);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE);
  assert_mentions(error, mech, kClientAddr);
  assert_mentions(error, "not offered (offered: DIGEST-MD5)");
  g_assert_null(qcrypto_sasl_session_get_username(server));
}

void test_plain_refused_without_tls() { refused_without_tls("PLAIN"); }
void test_scram_refused_without_tls() { refused_without_tls("SCRAM-SHA-256"); }

/* A refusal names the client and says what to check; no user name. */
void refused(const char *mech, guint external_ssf, const char *user, const char *password) {
  g_autoptr(QCryptoSASLSession) server = server_new(external_ssf);
  g_autoptr(QCryptoSASLSession) client = client_new(user, password, external_ssf);
  g_autoptr(GError) server_error = nullptr;
  g_autoptr(GError) client_error = nullptr;
  g_assert_false(sasl_test_exchange(server, client, mech, &server_error, &client_error));
  g_assert_no_error(client_error);
  g_assert_error(server_error, QCRYPTO_ERROR, QCRYPTO_ERROR_AUTHENTICATION);
  assert_mentions(server_error, "SASL service 'vnc', client 127.0.0.1;40000");
  g_autofree char *who = g_strdup_printf("user '%s'", user);
  assert_mentions(server_error, who);
  assert_mentions(server_error, "check the user name and password", "saslpasswd2");
  g_assert_null(qcrypto_sasl_session_get_username(server));
  g_assert_cmpuint(qcrypto_sasl_session_get_ssf(server), ==, 0);
}

void test_wrong_password_digest_md5() { refused("DIGEST-MD5", 0, kBob, "not bob's secret"); }
void test_wrong_password_scram() { refused("SCRAM-SHA-256", kTLSSSF, kBob, "not bob's secret"); }
void test_wrong_password_plain() { refused("PLAIN", kTLSSSF, kBob, "not bob's secret"); }
void test_unknown_user_digest_md5() { refused("DIGEST-MD5", 0, "eve@qio.test", kBobPassword); }
void test_unknown_user_scram() { refused("SCRAM-SHA-256", kTLSSSF, "eve", kBobPassword); }
/* The right password in another realm is another user. */
void test_wrong_realm() { refused("DIGEST-MD5", 0, "bob@elsewhere.test", kBobPassword); }

/* Garbage where a mechanism's first message belongs. */
void test_garbage_start() {
  static const char garbage[] = "\x01\xff garbage, not a SCRAM client-first message";
  g_autoptr(QCryptoSASLSession) server = server_new(kTLSSSF);
  g_autoptr(GError) error = nullptr;
  const char *out;
  gsize outlen;
  g_assert_cmpint(qcrypto_sasl_session_server_start(server, "SCRAM-SHA-256", garbage,
                                                    sizeof(garbage) - 1, &out, &outlen, &error),
                  ==, QCRYPTO_SASL_STEP_FAILED);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE);
  assert_mentions(error, kClientAddr, "check that it speaks SASL");
  g_assert_null(out);
  g_clear_error(&error);
  /* A failed session stays failed. */
  g_assert_cmpint(qcrypto_sasl_session_server_step(server, "n,,n=bob,r=abc", 14, &out, &outlen,
                                                   &error),
                  ==, QCRYPTO_SASL_STEP_FAILED);
  assert_mentions(error, "already failed");
  g_clear_error(&error);

  /* A mechanism name that is none. */
  g_autoptr(QCryptoSASLSession) other = server_new(kTLSSSF);
  g_assert_cmpint(qcrypto_sasl_session_server_start(other, "NO-SUCH-MECH", nullptr, 0, &out,
                                                    &outlen, &error),
                  ==, QCRYPTO_SASL_STEP_FAILED);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE);
  assert_mentions(error, "'NO-SUCH-MECH', which is not offered");
}

/* Garbage where DIGEST-MD5's response (server) or challenge (client)
 * belongs. */
void test_garbage_step() {
  static const char garbage[] = "username=\"bob\",nonce=,\x7f\x80 not a digest response";
  g_autoptr(QCryptoSASLSession) server = server_new();
  g_autoptr(GError) error = nullptr;
  const char *out;
  gsize outlen;
  g_assert_cmpint(
      qcrypto_sasl_session_server_start(server, "DIGEST-MD5", nullptr, 0, &out, &outlen, &error),
      ==, QCRYPTO_SASL_STEP_CONTINUE);
  g_assert_no_error(error);
  g_assert_nonnull(out);
  g_assert_cmpint(qcrypto_sasl_session_server_step(server, garbage, sizeof(garbage) - 1, &out,
                                                   &outlen, &error),
                  ==, QCRYPTO_SASL_STEP_FAILED);
  g_assert_nonnull(error);
  g_assert_true(error->domain == QCRYPTO_ERROR);
  g_assert_cmpint(error->code, !=, QCRYPTO_ERROR_FAILED);
  assert_mentions(error, kClientAddr);
  g_assert_null(qcrypto_sasl_session_get_username(server));
  g_clear_error(&error);

  g_autoptr(QCryptoSASLSession) client = client_new(kBob, kBobPassword);
  const char *mech;
  g_assert_cmpint(
      qcrypto_sasl_session_client_start(client, "DIGEST-MD5", &mech, &out, &outlen, &error), ==,
      QCRYPTO_SASL_STEP_CONTINUE);
  g_assert_no_error(error);
  g_assert_cmpstr(mech, ==, "DIGEST-MD5");
  static const char challenge[] = "realm=\"qio.test\",algorithm=md5-sess,\x01\x02";
  g_assert_cmpint(qcrypto_sasl_session_client_step(client, challenge, sizeof(challenge) - 1, &out,
                                                   &outlen, &error),
                  ==, QCRYPTO_SASL_STEP_FAILED);
  g_assert_nonnull(error);
  g_assert_true(error->domain == QCRYPTO_ERROR);
  assert_mentions(error, "SASL service 'vnc' on qio.test");
}

/* A client without a password cannot use DIGEST-MD5, and says so rather
 * than prompting. */
void test_client_without_password() {
  g_autoptr(QCryptoSASLSession) server = server_new();
  g_autoptr(QCryptoSASLSession) client = client_new(kBob, nullptr);
  g_autoptr(GError) server_error = nullptr;
  g_autoptr(GError) client_error = nullptr;
  g_assert_false(sasl_test_exchange(server, client, nullptr, &server_error, &client_error));
  g_assert_no_error(server_error);
  g_assert_error(client_error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE);
  assert_mentions(client_error, "server's mechanisms (DIGEST-MD5)", "(user name, password)");
}

std::vector<char> encode(QCryptoSASLSession *sess, const std::string &text) {
  g_autoptr(GError) error = nullptr;
  const char *out;
  gsize outlen;
  g_assert_true(qcrypto_sasl_session_encode(sess, text.data(), text.size(), &out, &outlen, &error));
  g_assert_no_error(error);
  return std::vector<char>(out, out + outlen);
}

std::string decode(QCryptoSASLSession *sess, const std::vector<char> &packet) {
  g_autoptr(GError) error = nullptr;
  const char *out;
  gsize outlen;
  g_assert_true(
      qcrypto_sasl_session_decode(sess, packet.data(), packet.size(), &out, &outlen, &error));
  g_assert_no_error(error);
  return std::string(out ? out : "", outlen);
}

/* DIGEST-MD5's layer: both directions, packets split anywhere, the size
 * limit, and a packet altered on the way. */
void test_security_layer() {
  g_autoptr(QCryptoSASLSession) server = server_new();
  g_autoptr(QCryptoSASLSession) client = client_new(kBob, kBobPassword);
  g_autoptr(GError) error = nullptr;
  const char *out;
  gsize outlen;
  g_assert_false(qcrypto_sasl_session_encode(client, "x", 1, &out, &outlen, &error));
  assert_mentions(error, "before authentication completed");
  g_clear_error(&error);
  g_autoptr(GError) client_error = nullptr;
  g_assert_true(sasl_test_exchange(server, client, nullptr, &error, &client_error));

  std::string hello = "hello from the client";
  std::vector<char> packet = encode(client, hello);
  g_assert_cmpuint(packet.size(), >, hello.size());
  g_assert_null(memmem(packet.data(), packet.size(), "hello", 5));
  g_assert_true(decode(server, packet) == hello);
  std::string reply(qcrypto_sasl_session_get_maxoutbuf(server), 'r');
  g_assert_true(decode(client, encode(server, reply)) == reply);

  /* Split in two: nothing until the packet is whole. */
  packet = encode(client, "second");
  std::vector<char> head(packet.begin(), packet.begin() + 7);
  std::vector<char> tail(packet.begin() + 7, packet.end());
  g_assert_cmpuint(decode(server, head).size(), ==, 0);
  g_assert_true(decode(server, tail) == "second");

  std::string big(qcrypto_sasl_session_get_maxoutbuf(client) + 1, 'b');
  g_assert_false(
      qcrypto_sasl_session_encode(client, big.data(), big.size(), &out, &outlen, &error));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
  assert_mentions(error, "SASL_MAXOUTBUF");
  g_clear_error(&error);

  packet = encode(client, "third");
  packet[packet.size() / 2] ^= 0x20;
  g_assert_false(
      qcrypto_sasl_session_decode(server, packet.data(), packet.size(), &out, &outlen, &error));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED);
  assert_mentions(error, kClientAddr, "decoding failed");
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  SaslTestConfig config("DIGEST-MD5 SCRAM-SHA-256 PLAIN");
  config.add_user("bob", "qio.test", kBobPassword);
  config.add_user("alice", nullptr, "alice's secret");
  g_test_add_func("/qcrypto/sasl-session/mechanisms", test_mechanisms);
  g_test_add_func("/qcrypto/sasl-session/digest-md5", test_digest_md5);
  g_test_add_func("/qcrypto/sasl-session/default-realm", test_default_realm);
  g_test_add_func("/qcrypto/sasl-session/external/scram-sha-256", test_scram_external);
  g_test_add_func("/qcrypto/sasl-session/external/plain", test_plain_external);
  g_test_add_func("/qcrypto/sasl-session/external/digest-md5", test_digest_md5_external);
  g_test_add_func("/qcrypto/sasl-session/plain-refused-without-tls",
                  test_plain_refused_without_tls);
  g_test_add_func("/qcrypto/sasl-session/scram-refused-without-tls",
                  test_scram_refused_without_tls);
  g_test_add_func("/qcrypto/sasl-session/wrong-password/digest-md5",
                  test_wrong_password_digest_md5);
  g_test_add_func("/qcrypto/sasl-session/wrong-password/scram-sha-256", test_wrong_password_scram);
  g_test_add_func("/qcrypto/sasl-session/wrong-password/plain", test_wrong_password_plain);
  g_test_add_func("/qcrypto/sasl-session/unknown-user/digest-md5", test_unknown_user_digest_md5);
  g_test_add_func("/qcrypto/sasl-session/unknown-user/scram-sha-256", test_unknown_user_scram);
  g_test_add_func("/qcrypto/sasl-session/wrong-realm", test_wrong_realm);
  g_test_add_func("/qcrypto/sasl-session/garbage-start", test_garbage_start);
  g_test_add_func("/qcrypto/sasl-session/garbage-step", test_garbage_step);
  g_test_add_func("/qcrypto/sasl-session/client-without-password", test_client_without_password);
  g_test_add_func("/qcrypto/sasl-session/security-layer", test_security_layer);
  return g_test_run();
}
