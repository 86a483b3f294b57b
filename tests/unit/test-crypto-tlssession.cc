/* QCryptoTLSSession over an in-memory transport: handshakes, peer checks,
 * named failures on both ends, bye and premature close, reload. */
#include "config.h"

#include "qcrypto/authz-simple.h"
#include "qcrypto/error.h"
#include "qcrypto/tls-creds-anon.h"
#include "qcrypto/tls-creds-psk.h"
#include "qcrypto/tls-creds-x509.h"
#include "qcrypto/tls-session.h"
#include "tests/unit/crypto-tls-x509-helpers.h"

#include <glib/gstdio.h>

#include <atomic>
#include <cstring>
#include <string>

namespace {

/* One direction of the in-memory transport. */
struct Pipe {
  std::string data;
  bool closed = false;
};

struct End {
  Pipe *in;
  Pipe *out;
};

gssize mem_push(const struct iovec *iov, gsize niov, gpointer opaque, GError **) {
  auto *end = static_cast<End *>(opaque);
  gsize total = 0;
  for (gsize i = 0; i < niov; i++) {
    end->out->data.append(static_cast<const char *>(iov[i].iov_base), iov[i].iov_len);
    total += iov[i].iov_len;
  }
  return static_cast<gssize>(total);
}

gssize mem_pull(void *buf, gsize len, gpointer opaque, GError **) {
  auto *end = static_cast<End *>(opaque);
  if (end->in->data.empty()) return end->in->closed ? 0 : QCRYPTO_TLS_SESSION_ERR_BLOCK;
  gsize n = std::min(len, end->in->data.size());
  memcpy(buf, end->in->data.data(), n);
  end->in->data.erase(0, n);
  return static_cast<gssize>(n);
}

/* A server dir and a client dir from one CA. */
struct Pki {
  TestTLSDir server_dir, client_dir;
  TestCert ca;
  Pki(const TestCertReq &server_req, const TestCertReq &client_req,
      const char *ca_cn = "qio CA", int ca_key = 0) {
    auto ca_req = test_tls_ca_req(ca_cn);
    ca_req.key = ca_key;
    ca = test_tls_make_cert(ca_req, nullptr);
    TestCert server = test_tls_make_cert(server_req, &ca);
    TestCert client = test_tls_make_cert(client_req, &ca);
    test_tls_write(server_dir.path, "ca-cert.pem", ca.pem);
    test_tls_write(server_dir.path, "server-cert.pem", server.pem);
    test_tls_write(server_dir.path, "server-key.pem", test_tls_key_pem(1));
    test_tls_write(client_dir.path, "ca-cert.pem", ca.pem);
    test_tls_write(client_dir.path, "client-cert.pem", client.pem);
    test_tls_write(client_dir.path, "client-key.pem", test_tls_key_pem(1));
  }
  Pki() : Pki(test_tls_server_req("qio.test"), test_tls_client_req("qio client")) {}
  /* A PKI of its own, unrelated to the default one. */
  explicit Pki(const char *ca_cn)
      : Pki(test_tls_server_req("qio.test"), test_tls_client_req("qio client"), ca_cn, 2) {}
};

/* Two sessions joined by two pipes. */
struct Link {
  Pipe c2s, s2c;
  End client_end{&s2c, &c2s}, server_end{&c2s, &s2c};
  QCryptoTLSSession *client = nullptr, *server = nullptr;
  GError *client_error = nullptr, *server_error = nullptr;
  bool client_done = false, server_done = false;

  Link(QCryptoTLSCreds *client_creds, QCryptoTLSCreds *server_creds, const char *hostname,
       QCryptoAuthz *authz = nullptr) {
    g_autoptr(GError) error = nullptr;
    client = qcrypto_tls_session_new(client_creds, hostname, nullptr, &error);
    g_assert_no_error(error);
    server = qcrypto_tls_session_new(server_creds, nullptr, authz, &error);
    g_assert_no_error(error);
    qcrypto_tls_session_set_callbacks(client, mem_push, mem_pull, &client_end);
    qcrypto_tls_session_set_callbacks(server, mem_push, mem_pull, &server_end);
  }
  ~Link() {
    g_object_unref(client);
    g_object_unref(server);
    g_clear_error(&client_error);
    g_clear_error(&server_error);
  }

  static void step(QCryptoTLSSession *sess, bool &done, GError *&error) {
    if (done || error) return;
    QCryptoTLSHandshakeStatus status = qcrypto_tls_session_handshake(sess, &error);
    if (status == QCRYPTO_TLS_HANDSHAKE_COMPLETE) done = true;
  }

  /* Runs both handshakes until each completed or failed (or stalled). */
  void handshake(int max_rounds = 50) {
    for (int i = 0; i < max_rounds; i++) {
      step(client, client_done, client_error);
      step(server, server_done, server_error);
      bool client_over = client_done || client_error;
      bool server_over = server_done || server_error;
      if (client_over && server_over) break;
    }
    /* In TLS 1.3 the client is done before the server has checked it: a
     * rejection reaches the client on its first read. */
    char byte;
    if (client_done && server_error &&
        qcrypto_tls_session_read(client, &byte, 1, &client_error) >= 0)
      g_error("the client read data from a server that failed");
    if (client_error) g_test_message("client: %s", client_error->message);
    if (server_error) g_test_message("server: %s", server_error->message);
  }

  void expect_ok() {
    handshake();
    g_assert_no_error(client_error);
    g_assert_no_error(server_error);
    g_assert_true(client_done && server_done);
  }

  /* Both ends fail, each naming @client_fault / @server_fault. */
  void expect_fail(const char *client_fault, const char *server_fault) {
    handshake();
    g_assert_nonnull(client_error);
    g_assert_nonnull(server_error);
    if (!strstr(client_error->message, client_fault))
      g_error("client: expected '%s' in: %s", client_fault, client_error->message);
    if (!strstr(server_error->message, server_fault))
      g_error("server: expected '%s' in: %s", server_fault, server_error->message);
  }
};

void exchange(QCryptoTLSSession *from, QCryptoTLSSession *to, const std::string &msg) {
  g_autoptr(GError) error = nullptr;
  g_assert_cmpint(qcrypto_tls_session_write(from, msg.data(), msg.size(), &error), ==,
                  static_cast<gssize>(msg.size()));
  g_assert_no_error(error);
  std::string got(msg.size(), '\0');
  gssize n = qcrypto_tls_session_read(to, got.data(), got.size(), &error);
  if (error) g_error("%s", error->message);
  g_assert_cmpint(n, ==, static_cast<gssize>(msg.size()));
  g_assert_true(got == msg);
}

void test_basic_ca() {
  Pki pki;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  Link link(cc, sc, "qio.test");
  link.expect_ok();
  exchange(link.client, link.server, "hello server");
  exchange(link.server, link.client, "hello client");
  g_autoptr(QCryptoTLSSessionReport) sr = qcrypto_tls_session_get_report(link.server);
  g_autoptr(QCryptoTLSSessionReport) cr = qcrypto_tls_session_get_report(link.client);
  g_assert_cmpstr(sr->protocol, ==, "TLS1.3");
  g_assert_cmpstr(sr->cipher, ==, "AES-128-GCM");
  g_assert_cmpstr(sr->peer_identity, ==, "O=qio test,CN=qio client");
  g_assert_cmpstr(cr->peer_identity, ==, "O=qio test,CN=qio.test");
  g_assert_cmpint(sr->handshake_us, >, 0);
}

void test_different_ca() {
  Pki pki, other("other CA");
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(other.client_dir.path, false);
  Link link(cc, sc, "qio.test");
  link.expect_fail("certificate signed by unknown CA", "does not trust the CA");
  g_assert_error(link.client_error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY);
  g_assert_error(link.server_error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE);
}

/* The server rejects the client's certificate: the client learns why. */
void test_client_unknown_ca() {
  Pki pki, other("other CA");
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  /* The client trusts the right CA but carries a certificate from another. */
  g_autofree char *client_cert = nullptr;
  g_autofree char *path = g_build_filename(other.client_dir.path, "client-cert.pem", nullptr);
  g_assert_true(g_file_get_contents(path, &client_cert, nullptr, nullptr));
  test_tls_write(pki.client_dir.path, "client-cert.pem", client_cert);
  QCryptoTLSCreds *cc = QCRYPTO_TLS_CREDS(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_X509, "id", "tls-client", "dir", pki.client_dir.path,
      "sanity-check", FALSE, nullptr));
  g_assert_true(g_initable_init(G_INITABLE(cc), nullptr, nullptr));
  Link link(cc, sc, "qio.test");
  link.expect_fail("requires a client certificate issued by a CA it trusts",
                   "no certificate issued by a CA of our ca-cert.pem");
  g_object_unref(cc);
}

void altname_case(const TestCertReq &server_req, const char *hostname, const char *fault) {
  Pki pki(server_req, test_tls_client_req("qio client"));
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  Link link(cc, sc, hostname);
  if (fault)
    link.expect_fail(fault, "rejected our certificate");
  else
    link.expect_ok();
}

void test_altnames() {
  auto req = test_tls_server_req("qio.test");
  req.dns1 = "qio.test";
  req.dns2 = "*.qio.example";
  req.ip1 = "127.0.0.1";
  req.ip2 = "::1";
  altname_case(req, "qio.test", nullptr);
  altname_case(req, "vm1.qio.example", nullptr);
  altname_case(req, "127.0.0.1", nullptr);
  altname_case(req, "::1", nullptr);
  altname_case(req, "other.test", "does not match host name 'other.test'");
  altname_case(req, "192.0.2.1", "add IP:192.0.2.1 to its subjectAltName");
  /* A link-local address's zone names our interface: the certificate
   * holds the bare address. */
  auto link_local = test_tls_server_req("qio.test");
  link_local.ip1 = "fe80::1";
  altname_case(link_local, "fe80::1%lo", nullptr);
  altname_case(link_local, "fe80::2%lo", "add IP:fe80::2 to its subjectAltName");
  auto no_ip = test_tls_server_req("127.0.0.1");
  no_ip.dns1 = "127.0.0.1";
  altname_case(no_ip, "127.0.0.1", "only matched against the certificate's IP SANs");
}

QCryptoAuthz *authz_simple(const char *identity) {
  g_autoptr(GError) error = nullptr;
  auto *authz = QCRYPTO_AUTHZ(qcrypto_authz_simple_new("auth0", identity, &error));
  g_assert_no_error(error);
  return authz;
}

void test_authz() {
  Pki pki;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  g_autoptr(QCryptoAuthz) allowed = authz_simple("O=qio test,CN=qio client");
  {
    Link link(cc, sc, "qio.test", allowed);
    link.expect_ok();
  }
  g_autoptr(QCryptoAuthz) other = authz_simple("CN=somebody else");
  Link link(cc, sc, "qio.test", other);
  link.expect_fail("authorization policy refused", "auth0");
  g_assert_error(link.client_error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED);
  g_assert_error(link.server_error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED);
}

void test_chain() {
  TestTLSDir server_dir, client_dir;
  TestCert root = test_tls_make_cert(test_tls_ca_req("qio root"), nullptr);
  TestCert inter = test_tls_make_cert(test_tls_ca_req("qio intermediate"), &root);
  TestCert server = test_tls_make_cert(test_tls_server_req("qio.test"), &inter);
  TestCert client = test_tls_make_cert(test_tls_client_req("qio client"), &inter);
  test_tls_write(server_dir.path, "ca-cert.pem", root.pem);
  test_tls_write(server_dir.path, "server-cert.pem", server.pem + inter.pem);
  test_tls_write(server_dir.path, "server-key.pem", test_tls_key_pem(1));
  test_tls_write(client_dir.path, "ca-cert.pem", root.pem);
  test_tls_write(client_dir.path, "client-cert.pem", client.pem + inter.pem);
  test_tls_write(client_dir.path, "client-key.pem", test_tls_key_pem(1));
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(client_dir.path, false);
  Link link(cc, sc, "qio.test");
  link.expect_ok();
}

void test_verify_peer_off() {
  Pki pki;
  g_autofree char *cert = g_build_filename(pki.client_dir.path, "client-cert.pem", nullptr);
  g_autofree char *key = g_build_filename(pki.client_dir.path, "client-key.pem", nullptr);
  g_unlink(cert);
  g_unlink(key);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  {
    /* A server that verifies refuses a client without a certificate. */
    g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
    Link link(cc, sc, "qio.test");
    link.handshake();
    g_assert_nonnull(link.server_error);
    g_assert_nonnull(link.client_error);
    g_test_message("without certificate: %s / %s", link.server_error->message,
                   link.client_error->message);
  }
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true, false);
  Link link(cc, sc, "qio.test");
  link.expect_ok();
  g_assert_null(qcrypto_tls_session_get_peer_identity(link.server));
}

QCryptoTLSCreds *psk_creds(const char *dir, bool server, const char *user,
                           const char *key_secret) {
  auto *creds = QCRYPTO_TLS_CREDS(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_PSK, "id", server ? "psk-server" : "psk-client", "dir", dir,
      "endpoint",
      server ? QCRYPTO_TLS_CREDS_ENDPOINT_SERVER : QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
      "username", user, "key-secret", key_secret, nullptr));
  g_autoptr(GError) error = nullptr;
  g_assert_true(g_initable_init(G_INITABLE(creds), nullptr, &error));
  g_assert_no_error(error);
  return creds;
}

void test_psk() {
  TestTLSDir dir;
  test_tls_write(dir.path, "keys.psk", "qemu:00112233445566778899\nalice:ffeeddccbbaa\n");
  g_autoptr(QCryptoTLSCreds) sc = psk_creds(dir.path, true, nullptr, nullptr);
  g_autoptr(QCryptoTLSCreds) cc = psk_creds(dir.path, false, nullptr, nullptr);
  {
    Link link(cc, sc, nullptr);
    link.expect_ok();
    exchange(link.client, link.server, "psk data");
    g_autoptr(QCryptoTLSSessionReport) sr = qcrypto_tls_session_get_report(link.server);
    g_assert_cmpstr(sr->peer_identity, ==, "qemu");
    g_assert_cmpstr(sr->protocol, ==, "TLS1.3");
  }
  /* The key from a secret object matches the file's key for "qemu". */
  test_tls_set_secrets({{"psk-secret", "00112233445566778899"}});
  g_autoptr(QCryptoTLSCreds) cs = psk_creds(nullptr, false, nullptr, "psk-secret");
  {
    Link link(cs, sc, nullptr);
    link.expect_ok();
    exchange(link.server, link.client, "psk from a secret");
  }
  g_autoptr(QCryptoTLSCreds) ss = psk_creds(nullptr, true, nullptr, "psk-secret");
  {
    Link link(cc, ss, nullptr);
    link.expect_ok();
  }
  test_tls_set_secrets({});
  /* alice's key is not the one the client holds for alice. */
  TestTLSDir other;
  test_tls_write(other.path, "keys.psk", "alice:0102030405\n");
  g_autoptr(QCryptoTLSCreds) wrong = psk_creds(other.path, false, "alice", nullptr);
  Link link(wrong, sc, nullptr);
  link.handshake();
  g_assert_nonnull(link.client_error);
  g_assert_nonnull(link.server_error);
  g_autoptr(QCryptoAuthz) alice = authz_simple("alice");
  Link denied(cc, sc, nullptr, alice);
  denied.handshake();
  g_assert_nonnull(denied.server_error);
  g_assert_error(denied.server_error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED);
}

/* Anonymous credentials (TLS 1.2: TLS 1.3 has no anonymous key exchange),
 * with the server's DH parameters. */
void test_anon() {
  TestTLSDir dir;
  test_tls_write(dir.path, "dh-params.pem", test_tls_dh_params_pem());
  g_autoptr(GError) error = nullptr;
  auto make = [&](bool server) {
    auto *creds = QCRYPTO_TLS_CREDS(g_object_new(
        QCRYPTO_TYPE_TLS_CREDS_ANON, "id", server ? "anon-server" : "anon-client", "dir",
        dir.path, "endpoint",
        server ? QCRYPTO_TLS_CREDS_ENDPOINT_SERVER : QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, nullptr));
    g_assert_true(g_initable_init(G_INITABLE(creds), nullptr, &error));
    return creds;
  };
  g_autoptr(QCryptoTLSCreds) sc = make(true);
  g_autoptr(QCryptoTLSCreds) cc = make(false);
  Link link(cc, sc, nullptr);
  link.expect_ok();
  exchange(link.client, link.server, "anonymous");
  g_autoptr(QCryptoTLSSessionReport) report = qcrypto_tls_session_get_report(link.server);
  g_assert_cmpstr(report->protocol, ==, "TLS1.2");
  g_assert_null(report->peer_identity);
  /* Authorization needs an identity, which anonymous peers lack. */
  g_autoptr(QCryptoAuthz) authz = authz_simple("anyone");
  Link denied(cc, sc, nullptr, authz);
  denied.handshake();
  g_assert_error(denied.server_error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED);
  g_assert_nonnull(strstr(denied.server_error->message, "no identity to authorize"));
}

/* The resumption data of a first (TLS 1.3) session between @cc and @sc,
 * whose server seals tickets with @key. */
GBytes *first_session_data(QCryptoTLSCreds *cc, QCryptoTLSCreds *sc, GBytes *key) {
  g_autoptr(GError) error = nullptr;
  Link link(cc, sc, "qio.test");
  g_assert_true(qcrypto_tls_session_set_ticket_key(link.server, key, &error));
  g_assert_no_error(error);
  link.expect_ok();
  g_assert_false(qcrypto_tls_session_is_resumed(link.client));
  g_autoptr(QCryptoTLSSessionReport) report = qcrypto_tls_session_get_report(link.client);
  g_assert_cmpstr(report->protocol, ==, "TLS1.3");
  g_assert_false(report->resumed);
  /* No ticket unless the server sends one: nothing waits for the client
   * after the handshake (a ticket it never read would make its close
   * reset the connection). */
  g_assert_cmpuint(link.s2c.data.size(), ==, 0);
  exchange(link.server, link.client, "no ticket yet");
  g_assert_null(qcrypto_tls_session_get_resumption_data(link.client));
  g_assert_cmpint(qcrypto_tls_session_send_ticket(link.server, &error), ==, 1);
  g_assert_no_error(error);
  /* It comes with the server's next data. */
  exchange(link.server, link.client, "ticket first");
  GBytes *data = qcrypto_tls_session_get_resumption_data(link.client);
  g_assert_nonnull(data);
  /* Servers have none to give. */
  g_assert_null(qcrypto_tls_session_get_resumption_data(link.server));
  return data;
}

/* A session of @cc offering @data to a server of @sc with ticket @key
 * (none if NULL). */
struct ResumeLink : Link {
  ResumeLink(QCryptoTLSCreds *cc, QCryptoTLSCreds *sc, GBytes *data, GBytes *key,
             QCryptoAuthz *authz = nullptr)
      : Link(cc, sc, "qio.test", authz) {
    g_autoptr(GError) error = nullptr;
    if (key) g_assert_true(qcrypto_tls_session_set_ticket_key(server, key, &error));
    g_assert_true(qcrypto_tls_session_set_resumption_data(client, data, &error));
    g_assert_no_error(error);
  }
};

void check_resumed(Link &link, gboolean resumed) {
  link.expect_ok();
  /* Resumed or not, the server sends no ticket unasked. */
  g_assert_cmpuint(link.s2c.data.size(), ==, 0);
  g_assert_cmpint(qcrypto_tls_session_is_resumed(link.client), ==, resumed);
  g_assert_cmpint(qcrypto_tls_session_is_resumed(link.server), ==, resumed);
  g_autoptr(QCryptoTLSSessionReport) sr = qcrypto_tls_session_get_report(link.server);
  g_autoptr(QCryptoTLSSessionReport) cr = qcrypto_tls_session_get_report(link.client);
  g_assert_cmpint(sr->resumed, ==, resumed);
  g_assert_cmpint(cr->resumed, ==, resumed);
  /* Resumed or not, the keys come from a fresh ECDHE: forward secrecy. */
  g_assert_nonnull(strstr(cr->kx, "ECDHE"));
  /* Both identities are known either way: authz and the reports need them. */
  g_assert_cmpstr(sr->peer_identity, ==, "O=qio test,CN=qio client");
  g_assert_cmpstr(cr->peer_identity, ==, "O=qio test,CN=qio.test");
  exchange(link.client, link.server, "after resumption");
  exchange(link.server, link.client, "and back");
}

void test_resume() {
  Pki pki;
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  g_autoptr(GBytes) key = qcrypto_tls_session_ticket_key_new(&error);
  g_assert_no_error(error);
  g_autoptr(GBytes) data = first_session_data(cc, sc, key);
  /* Several sessions (a migration's channels) resume with the same data. */
  for (int i = 0; i < 3; i++) {
    ResumeLink link(cc, sc, data, key);
    check_resumed(link, TRUE);
  }
}

/* A resumed session is authorized again, on the client's DN. */
void test_resume_authz() {
  Pki pki;
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  g_autoptr(GBytes) key = qcrypto_tls_session_ticket_key_new(&error);
  g_autoptr(GBytes) data = first_session_data(cc, sc, key);
  g_autoptr(QCryptoAuthz) allowed = authz_simple("O=qio test,CN=qio client");
  {
    ResumeLink link(cc, sc, data, key, allowed);
    check_resumed(link, TRUE);
  }
  g_autoptr(QCryptoAuthz) other = authz_simple("CN=somebody else");
  ResumeLink link(cc, sc, data, key, other);
  link.expect_fail("authorization policy refused", "denies access to 'O=qio test,CN=qio client'");
  g_assert_true(qcrypto_tls_session_is_resumed(link.server));
  g_assert_error(link.server_error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED);
}

/* Only the key that sealed a ticket opens it: another migration's server
 * (same credentials, another key), a server without tickets (another
 * consumer of the credentials) and another server run full handshakes. */
void test_resume_other_key() {
  Pki pki;
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  g_autoptr(GBytes) key = qcrypto_tls_session_ticket_key_new(&error);
  g_autoptr(GBytes) other_key = qcrypto_tls_session_ticket_key_new(&error);
  g_assert_no_error(error);
  g_assert_false(g_bytes_equal(key, other_key));
  g_autoptr(GBytes) data = first_session_data(cc, sc, key);
  {
    ResumeLink link(cc, sc, data, other_key);
    check_resumed(link, FALSE);
  }
  {
    ResumeLink link(cc, sc, data, nullptr);
    check_resumed(link, FALSE);
  }
  /* Another server, whose CA both sides trust beside the first. */
  Pki second("other CA");
  std::string both_cas;
  for (const char *dir : {pki.client_dir.path, second.server_dir.path}) {
    g_autofree char *path = g_build_filename(dir, "ca-cert.pem", nullptr);
    g_autofree char *pem = nullptr;
    g_assert_true(g_file_get_contents(path, &pem, nullptr, nullptr));
    both_cas += pem;
  }
  test_tls_write(pki.client_dir.path, "ca-cert.pem", both_cas);
  test_tls_write(second.server_dir.path, "ca-cert.pem", both_cas);
  g_autoptr(QCryptoTLSCreds) cc2 = test_tls_x509_creds(pki.client_dir.path, false);
  g_autoptr(QCryptoTLSCreds) sc2 = test_tls_x509_creds(second.server_dir.path, true);
  {
    g_autoptr(GBytes) key2 = qcrypto_tls_session_ticket_key_new(&error);
    ResumeLink link(cc2, sc2, data, key2);
    check_resumed(link, FALSE);
  }
  /* Nor is a key of the wrong size accepted. */
  g_autoptr(GBytes) short_key = g_bytes_new_static("short", 5);
  Link link(cc, sc, "qio.test");
  g_assert_false(qcrypto_tls_session_set_ticket_key(link.server, short_key, &error));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
}

/* PSK sessions neither hand out nor take resumption data. */
void test_resume_psk() {
  TestTLSDir dir;
  test_tls_write(dir.path, "keys.psk", "qemu:00112233445566778899\n");
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoTLSCreds) sc = psk_creds(dir.path, true, nullptr, nullptr);
  g_autoptr(QCryptoTLSCreds) cc = psk_creds(dir.path, false, nullptr, nullptr);
  g_autoptr(GBytes) key = qcrypto_tls_session_ticket_key_new(&error);
  Link link(cc, sc, nullptr);
  g_assert_true(qcrypto_tls_session_set_ticket_key(link.server, key, &error));
  link.expect_ok();
  exchange(link.server, link.client, "no ticket");
  exchange(link.client, link.server, "none at all");
  g_assert_null(qcrypto_tls_session_get_resumption_data(link.client));
  g_autoptr(QCryptoTLSSessionReport) report = qcrypto_tls_session_get_report(link.server);
  g_assert_false(report->resumed);
}

/* A bare GnuTLS client over @end with @priority (no certificate). */
gnutls_session_t raw_client(End *end, const char *priority,
                            gnutls_certificate_credentials_t cred) {
  gnutls_session_t client;
  gnutls_init(&client, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
  g_assert_cmpint(gnutls_priority_set_direct(client, priority, nullptr), ==, 0);
  gnutls_credentials_set(client, GNUTLS_CRD_CERTIFICATE, cred);
  gnutls_transport_set_ptr(client, end);
  gnutls_transport_set_push_function(
      client, [](gnutls_transport_ptr_t p, const void *buf, size_t len) noexcept -> ssize_t {
        struct iovec iov = {const_cast<void *>(buf), len};
        return mem_push(&iov, 1, p, nullptr);
      });
  gnutls_transport_set_pull_function(
      client, [](gnutls_transport_ptr_t p, void *buf, size_t len) noexcept -> ssize_t {
        gssize n = mem_pull(buf, len, p, nullptr);
        if (n == QCRYPTO_TLS_SESSION_ERR_BLOCK) {
          errno = EAGAIN;
          return -1;
        }
        return n;
      });
  return client;
}

/* Runs a bare client's handshake beside @server's; the client's result. */
int raw_handshake(gnutls_session_t client, QCryptoTLSSession *server,
                  QCryptoTLSHandshakeStatus *status, GError **error) {
  int client_ret = GNUTLS_E_AGAIN;
  *status = QCRYPTO_TLS_HANDSHAKE_NEEDS_READ;
  for (int i = 0; i < 20; i++) {
    if (client_ret == GNUTLS_E_AGAIN) client_ret = gnutls_handshake(client);
    if (*status > 0) *status = qcrypto_tls_session_handshake(server, error);
  }
  return client_ret;
}

/* A peer offering only TLS 1.0/1.1 is refused with a clear message. */
void test_old_versions_refused() {
  Pki pki;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoTLSSession) server = qcrypto_tls_session_new(sc, nullptr, nullptr, &error);
  Pipe c2s, s2c;
  End server_end{&c2s, &s2c}, client_end{&s2c, &c2s};
  qcrypto_tls_session_set_callbacks(server, mem_push, mem_pull, &server_end);

  gnutls_certificate_credentials_t cred;
  gnutls_certificate_allocate_credentials(&cred);
  gnutls_session_t client = raw_client(
      &client_end, "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0:%VERIFY_ALLOW_X509_V1_CA_CRT",
      cred);
  QCryptoTLSHandshakeStatus status;
  int client_ret = raw_handshake(client, server, &status, &error);
  g_assert_cmpint(status, ==, QCRYPTO_TLS_HANDSHAKE_FAILED);
  g_assert_cmpint(client_ret, <, 0);
  g_assert_cmpint(client_ret, !=, GNUTLS_E_AGAIN);
  g_test_message("server: %s; client: %s", error->message, gnutls_strerror(client_ret));
  g_assert_nonnull(strstr(error->message, "older than 1.2"));
  gnutls_deinit(client);
  gnutls_certificate_free_credentials(cred);
}

/* TLS 1.2 resumption would reuse the first session's master secret with no
 * fresh key exchange: TLS 1.2 sessions give no resumption data, and our
 * servers give TLS 1.2 clients no tickets. */
void test_resume_tls12() {
  Pki pki;
  g_autoptr(GError) error = nullptr;
  auto *cc = QCRYPTO_TLS_CREDS(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_X509, "id", "tls-client", "dir", pki.client_dir.path, "endpoint",
      QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, "priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2", nullptr));
  g_assert_true(g_initable_init(G_INITABLE(cc), nullptr, &error));
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true, false);
  g_autoptr(GBytes) key = qcrypto_tls_session_ticket_key_new(&error);
  {
    Link link(cc, sc, "qio.test");
    g_assert_true(qcrypto_tls_session_set_ticket_key(link.server, key, &error));
    link.expect_ok();
    /* Asked for a ticket, a TLS 1.2 server sends none and does not fail
     * (a migration's main channel asks whatever was negotiated). */
    g_assert_cmpint(qcrypto_tls_session_send_ticket(link.server, &error), ==, 1);
    g_assert_no_error(error);
    exchange(link.server, link.client, "TLS 1.2");
    g_autoptr(QCryptoTLSSessionReport) report = qcrypto_tls_session_get_report(link.client);
    g_assert_cmpstr(report->protocol, ==, "TLS1.2");
    g_assert_null(qcrypto_tls_session_get_resumption_data(link.client));
  }
  g_object_unref(cc);
#if GNUTLS_VERSION_NUMBER >= 0x030705
  g_autoptr(QCryptoTLSSession) server = qcrypto_tls_session_new(sc, nullptr, nullptr, &error);
  g_assert_true(qcrypto_tls_session_set_ticket_key(server, key, &error));
  Pipe c2s, s2c;
  End server_end{&c2s, &s2c}, client_end{&s2c, &c2s};
  qcrypto_tls_session_set_callbacks(server, mem_push, mem_pull, &server_end);
  gnutls_certificate_credentials_t cred;
  gnutls_certificate_allocate_credentials(&cred);
  gnutls_session_t client = raw_client(&client_end, "NORMAL:-VERS-ALL:+VERS-TLS1.2", cred);
  QCryptoTLSHandshakeStatus status;
  g_assert_cmpint(raw_handshake(client, server, &status, &error), ==, 0);
  g_assert_no_error(error);
  g_assert_cmpint(status, ==, QCRYPTO_TLS_HANDSHAKE_COMPLETE);
  g_assert_cmpint(gnutls_protocol_get_version(client), ==, GNUTLS_TLS1_2);
  g_assert_false(gnutls_session_get_flags(client) & GNUTLS_SFLAGS_SESSION_TICKET);
  gnutls_deinit(client);
  gnutls_certificate_free_credentials(cred);
#endif
}

void test_bye_and_premature_close() {
  Pki pki;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  g_autoptr(GError) error = nullptr;
  char buf[16];
  {
    Link link(cc, sc, "qio.test");
    link.expect_ok();
    g_assert_cmpint(qcrypto_tls_session_bye(link.client, &error), ==, 1);
    g_assert_no_error(error);
    g_assert_cmpint(qcrypto_tls_session_read(link.server, buf, sizeof(buf), &error), ==, 0);
    g_assert_no_error(error);
    /* The other direction stays open after a bye. */
    exchange(link.server, link.client, "still here");
  }
  Link link(cc, sc, "qio.test");
  link.expect_ok();
  g_assert_cmpint(qcrypto_tls_session_read(link.server, buf, sizeof(buf), &error), ==,
                  QCRYPTO_TLS_SESSION_ERR_BLOCK);
  link.c2s.closed = true;
  g_assert_cmpint(qcrypto_tls_session_read(link.server, buf, sizeof(buf), &error), ==, -1);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_PREMATURE_CLOSE);
  g_assert_nonnull(strstr(error->message, "without a TLS bye"));
}

void test_key_update() {
  Pki pki;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  Link link(cc, sc, "qio.test");
  link.expect_ok();
  g_autoptr(GError) error = nullptr;
  /* Records before and after a key update arrive together.  (GnuTLS
   * accepts at most 8 key updates per second.) */
  std::string big(40000, 'k');
  for (int i = 0; i < 2; i++) {
    g_assert_cmpint(qcrypto_tls_session_write(link.client, big.data(), big.size(), &error), >, 0);
    g_assert_cmpint(qcrypto_tls_session_update_keys(link.client, FALSE, &error), ==, 1);
  }
  gsize got = 0;
  while (got < 2 * big.size()) {
    char buf[5000];
    gssize n = qcrypto_tls_session_read(link.server, buf, sizeof(buf), &error);
    g_assert_no_error(error);
    g_assert_cmpint(n, >, 0);
    got += static_cast<gsize>(n);
  }
  /* Both sides update their keys with records in flight both ways. */
  for (int i = 0; i < 2; i++) {
    g_assert_cmpint(qcrypto_tls_session_write(link.client, big.data(), big.size(), &error), >, 0);
    g_assert_cmpint(qcrypto_tls_session_write(link.server, big.data(), big.size(), &error), >, 0);
    g_assert_cmpint(qcrypto_tls_session_update_keys(link.client, FALSE, &error), ==, 1);
    g_assert_cmpint(qcrypto_tls_session_update_keys(link.server, FALSE, &error), ==, 1);
    g_assert_cmpint(qcrypto_tls_session_write(link.client, big.data(), 100, &error), >, 0);
    g_assert_cmpint(qcrypto_tls_session_write(link.server, big.data(), 100, &error), >, 0);
  }
  for (QCryptoTLSSession *reader : {link.server, link.client}) {
    got = 0;
    while (got < 2 * (big.size() + 100)) {
      char buf[5000];
      gssize n = qcrypto_tls_session_read(reader, buf, sizeof(buf), &error);
      g_assert_no_error(error);
      g_assert_cmpint(n, >, 0);
      got += static_cast<gsize>(n);
    }
  }
  for (int i = 0; i < 2; i++) {
    g_assert_cmpint(qcrypto_tls_session_update_keys(link.client, TRUE, &error), ==, 1);
    g_assert_no_error(error);
    exchange(link.client, link.server, "after key update");
    exchange(link.server, link.client, "answer after key update");
  }
}

/* Reloading while handshakes are half done: each session keeps the state
 * it started with (run under ASan to prove no use-after-free). */
void test_reload_during_handshake() {
  Pki pki;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  g_autoptr(GError) error = nullptr;
  for (int round = 0; round < 5; round++) {
    Link link(cc, sc, "qio.test");
    /* One step each: the hellos are out, nothing is verified yet. */
    Link::step(link.client, link.client_done, link.client_error);
    Link::step(link.server, link.server_done, link.server_error);
    g_assert_true(qcrypto_tls_creds_reload(sc, &error));
    g_assert_true(qcrypto_tls_creds_reload(cc, &error));
    g_assert_no_error(error);
    link.expect_ok();
    exchange(link.client, link.server, "reloaded");
  }
}

struct ReloadThread {
  QCryptoTLSCreds *creds;
  std::atomic<bool> stop{false};
  int reloads = 0;
};

void test_reload_concurrent() {
  Pki pki;
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(pki.server_dir.path, true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(pki.client_dir.path, false);
  ReloadThread rt{sc};
  GThread *thread = g_thread_new(
      "reload",
      [](gpointer data) noexcept -> gpointer {
        auto *rt = static_cast<ReloadThread *>(data);
        while (!rt->stop.load()) {
          g_assert_true(qcrypto_tls_creds_reload(rt->creds, nullptr));
          rt->reloads++;
        }
        return nullptr;
      },
      &rt);
  for (int i = 0; i < 20; i++) {
    Link link(cc, sc, "qio.test");
    link.expect_ok();
  }
  rt.stop = true;
  g_thread_join(thread);
  g_assert_cmpint(rt.reloads, >, 0);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qcrypto/tlssession/basicca", test_basic_ca);
  g_test_add_func("/qcrypto/tlssession/differentca", test_different_ca);
  g_test_add_func("/qcrypto/tlssession/clientunknownca", test_client_unknown_ca);
  g_test_add_func("/qcrypto/tlssession/altnames", test_altnames);
  g_test_add_func("/qcrypto/tlssession/authz", test_authz);
  g_test_add_func("/qcrypto/tlssession/cachain", test_chain);
  g_test_add_func("/qcrypto/tlssession/verifypeeroff", test_verify_peer_off);
  g_test_add_func("/qcrypto/tlssession/psk", test_psk);
  g_test_add_func("/qcrypto/tlssession/oldversions", test_old_versions_refused);
  g_test_add_func("/qcrypto/tlssession/anon", test_anon);
  g_test_add_func("/qcrypto/tlssession/resume", test_resume);
  g_test_add_func("/qcrypto/tlssession/resume-authz", test_resume_authz);
  g_test_add_func("/qcrypto/tlssession/resume-other-key", test_resume_other_key);
  g_test_add_func("/qcrypto/tlssession/resume-tls12", test_resume_tls12);
  g_test_add_func("/qcrypto/tlssession/resume-psk", test_resume_psk);
  g_test_add_func("/qcrypto/tlssession/bye-and-premature-close", test_bye_and_premature_close);
  g_test_add_func("/qcrypto/tlssession/keyupdate", test_key_update);
  g_test_add_func("/qcrypto/tlssession/reload-during-handshake", test_reload_during_handshake);
  g_test_add_func("/qcrypto/tlssession/reload-concurrent", test_reload_concurrent);
  return g_test_run();
}
