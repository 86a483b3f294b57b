#include "config.h"

#include "qcrypto/x509-issuer.h"
#include "qcrypto/error.h"

#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <fcntl.h>
#include <sys/file.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

namespace {

struct StagedFile {
  std::string dir;
  std::string name;
  std::string text;
  int mode;
  bool ca;              /* one of a CA's own files (not a leaf's copy of ca-cert.pem) */
  bool update = false;  /* replaces its older self without force (the CRL) */
};

}  // namespace

struct _QCryptoX509Issuer {
  gnutls_x509_crt_t cert = nullptr;
  gnutls_x509_privkey_t key = nullptr;
  std::vector<StagedFile> staged;
  int crl_lock = -1; /* the CA directory, locked from reading its CRL until commit */
};

namespace {

/* Longer validity overflows nothing but is not a certificate anyone
 * should hold. */
constexpr guint kMaxDays = 36500;
/* Backdated so that a peer whose clock is a little behind accepts it. */
constexpr time_t kBackdate = 3600;

struct Crt {
  gnutls_x509_crt_t p = nullptr;
  ~Crt() {
    if (p) gnutls_x509_crt_deinit(p);
  }
  gnutls_x509_crt_t release() { return std::exchange(p, nullptr); }
};

struct Key {
  gnutls_x509_privkey_t p = nullptr;
  ~Key() {
    if (p) gnutls_x509_privkey_deinit(p);
  }
  gnutls_x509_privkey_t release() { return std::exchange(p, nullptr); }
};

struct Crl {
  gnutls_x509_crl_t p = nullptr;
  ~Crl() {
    if (p) gnutls_x509_crl_deinit(p);
  }
};

/* A PEM certificate into @crt; GnuTLS's error code, or 0. */
int import_cert(Crt &crt, const gnutls_datum_t &pem) {
  int ret = gnutls_x509_crt_init(&crt.p);
  return ret < 0 ? ret : std::min(gnutls_x509_crt_import(crt.p, &pem, GNUTLS_X509_FMT_PEM), 0);
}

bool gnutls_failed(int ret, const char *what, GError **error) {
  if (ret >= 0) return false;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED, _("Unable to %s: %s"), what,
              gnutls_strerror(ret));
  return true;
}

std::string take_datum(gnutls_datum_t datum) {
  std::string text(reinterpret_cast<const char *>(datum.data), datum.size);
  gnutls_free(datum.data);
  return text;
}

bool generate_key(QCryptoX509KeyType type, Key &key, GError **error) {
  if (gnutls_failed(gnutls_x509_privkey_init(&key.p), _("create a private key"), error))
    return false;
  int ret = type == QCRYPTO_X509_KEY_RSA_3072
                ? gnutls_x509_privkey_generate(key.p, GNUTLS_PK_RSA, 3072, 0)
                : gnutls_x509_privkey_generate(
                      key.p, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
  return !gnutls_failed(ret, _("generate a private key"), error);
}

bool check_days(guint days, GError **error) {
  if (days >= 1 && days <= kMaxDays) return true;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
              _("A validity of %u days is out of range; give 1 to %u days"), days, kMaxDays);
  return false;
}

/* Letters, digits and '-' in labels of 1 to 63, at most 253 in all; a
 * leading "*." makes a wildcard. */
bool valid_host_name(const char *name) {
  std::string_view rest(name);
  if (rest.substr(0, 2) == "*.") rest.remove_prefix(2);
  if (rest.empty() || rest.size() > 253) return false;
  gsize label = 0;
  for (gsize i = 0; i <= rest.size(); i++) {
    if (i == rest.size() || rest[i] == '.') {
      if (label == 0 || label > 63) return false;
      label = 0;
    } else if (g_ascii_isalnum(rest[i]) || rest[i] == '-') {
      label++;
    } else {
      return false;
    }
  }
  return true;
}

/* Fields shared by the CA and the certificates it issues. */
bool fill_common(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *dn, time_t now,
                 time_t not_after, GError **error) {
  if (!dn || !*dn) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("The distinguished name is empty; give one like \"O=Example,CN=host\""));
    return false;
  }
  const char *bad = nullptr;
  if (gnutls_x509_crt_set_dn(crt, dn, &bad) < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("The distinguished name '%s' is malformed at '%s'; write it as in RFC 4514, "
                  "like \"O=Example,CN=host\""),
                dn, bad && *bad ? bad : dn);
    return false;
  }
  /* "#" starts a hex-encoded BER value, which GnuTLS stores as it is and
   * other programs cannot read as a name. */
  if (strstr(dn, "=#")) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("The distinguished name '%s' has a hex-encoded (#...) value; write the value "
                  "as text"),
                dn);
    return false;
  }
  guint8 serial[20];
  if (gnutls_failed(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial), _("make a serial number"),
                    error))
    return false;
  serial[0] = (serial[0] & 0x7f) | 0x01; /* positive, and no leading zero byte in DER */
  guint8 key_id[64];
  size_t key_id_size = sizeof key_id;
  return !gnutls_failed(gnutls_x509_crt_set_version(crt, 3), _("set the version"), error) &&
         !gnutls_failed(gnutls_x509_crt_set_serial(crt, serial, sizeof serial),
                        _("set the serial number"), error) &&
         !gnutls_failed(gnutls_x509_crt_set_activation_time(crt, now - kBackdate),
                        _("set the activation time"), error) &&
         !gnutls_failed(gnutls_x509_crt_set_expiration_time(crt, not_after),
                        _("set the expiration time"), error) &&
         !gnutls_failed(gnutls_x509_crt_set_key(crt, key), _("set the public key"), error) &&
         !gnutls_failed(gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, key_id, &key_id_size),
                        _("compute the key identifier"), error) &&
         !gnutls_failed(gnutls_x509_crt_set_subject_key_id(crt, key_id, key_id_size),
                        _("set the subject key identifier"), error);
}

bool sign(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer_cert, gnutls_x509_privkey_t issuer_key,
          GError **error) {
  gnutls_privkey_t signer = nullptr;
  if (gnutls_failed(gnutls_privkey_init(&signer), _("sign the certificate"), error)) return false;
  int ret = gnutls_privkey_import_x509(signer, issuer_key, 0);
  if (ret >= 0) ret = gnutls_x509_crt_privkey_sign(crt, issuer_cert, signer, GNUTLS_DIG_SHA256, 0);
  gnutls_privkey_deinit(signer);
  return !gnutls_failed(ret, _("sign the certificate"), error);
}

bool export_cert(gnutls_x509_crt_t crt, std::string &pem, GError **error) {
  gnutls_datum_t out = {nullptr, 0};
  if (gnutls_failed(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out),
                    _("write the certificate"), error))
    return false;
  pem = take_datum(out);
  return true;
}

bool export_key(gnutls_x509_privkey_t key, std::string &pem, GError **error) {
  gnutls_datum_t out = {nullptr, 0};
  if (gnutls_failed(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, nullptr,
                                                      GNUTLS_PKCS_PLAIN, &out),
                    _("write the private key"), error))
    return false;
  pem = take_datum(out);
  return true;
}

bool has_file(const std::string &dir, const char *name) {
  g_autofree char *path = g_build_filename(dir.c_str(), name, nullptr);
  return g_file_test(path, G_FILE_TEST_EXISTS);
}

bool staged_here(const std::vector<StagedFile> &files, const std::string &dir, const char *name) {
  return std::any_of(files.begin(), files.end(),
                     [&](const StagedFile &f) { return f.dir == dir && f.name == name; });
}

/* What no --force may do: mix a CA's key with a service's certificates,
 * or give a directory a ca-cert.pem that the certificate of the other
 * role there (not being replaced) does not chain to. */
bool check_layout(const std::vector<StagedFile> &files, GError **error) {
  for (const auto &f : files) {
    if (f.update) continue; /* a CRL brings neither keys nor certificates */
    const bool ca_key_there = has_file(f.dir, "ca-key.pem") || staged_here(files, f.dir, "ca-key.pem");
    const char *other = nullptr;
    for (const char *cert : {"server-cert.pem", "client-cert.pem"})
      if (has_file(f.dir, cert) && !staged_here(files, f.dir, cert)) other = cert;
    if (f.ca && other) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("'%s' holds %s: a CA's key does not belong beside a service's "
                    "certificates; give the CA a directory of its own"),
                  f.dir.c_str(), other);
      return false;
    }
    if (!f.ca && ca_key_there) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("'%s' holds a CA key (ca-key.pem): a service's certificates do not belong "
                    "beside it; give them another directory"),
                  f.dir.c_str());
      return false;
    }
    if (!f.ca && f.name == "ca-cert.pem" && other) {
      g_autofree char *path = g_build_filename(f.dir.c_str(), "ca-cert.pem", nullptr);
      g_autofree char *old = nullptr;
      gsize old_len = 0;
      if (g_file_get_contents(path, &old, &old_len, nullptr) &&
          std::string_view(old, old_len) != f.text) {
        g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                    _("'%s' also holds %s, issued by another CA: a new ca-cert.pem would "
                      "break it; use another directory"),
                    f.dir.c_str(), other);
        return false;
      }
    }
  }
  return true;
}

/* Directories that do not exist yet, outermost first. */
std::vector<std::string> missing_dirs(const std::string &dir) {
  std::vector<std::string> missing;
  for (std::string d = dir; !d.empty() && !g_file_test(d.c_str(), G_FILE_TEST_EXISTS);) {
    missing.insert(missing.begin(), d);
    g_autofree char *parent = g_path_get_dirname(d.c_str());
    if (d == parent) break;
    d = parent;
  }
  return missing;
}

bool write_temp(const StagedFile &file, std::string &temp, GError **error) {
  g_autofree char *tmpl = g_strdup_printf("%s/.%s.XXXXXX", file.dir.c_str(), file.name.c_str());
  int fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, file.mode);
  if (fd < 0) {
    int err = errno;
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE, _("Unable to write in '%s': %s"),
                file.dir.c_str(), g_strerror(err));
    return false;
  }
  temp = tmpl;
  const char *p = file.text.data();
  gsize left = file.text.size();
  while (left > 0) {
    gssize n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<gsize>(n);
  }
  int err = left ? errno : fsync(fd) < 0 ? errno : 0;
  close(fd);
  if (err) {
    g_unlink(tmpl); /* maybe half a key */
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE, _("Unable to write '%s': %s"), tmpl,
                g_strerror(err));
    return false;
  }
  return true;
}

/* Every check comes first; then each file is written under a temporary
 * name beside its target, and only when all are written are they renamed
 * into place: a failure before that leaves no file, and no directory
 * this made, behind. */
bool write_files(std::vector<StagedFile> files, gboolean force, GError **error) {
  if (!check_layout(files, error)) return false;
  std::vector<StagedFile> todo;
  for (auto &file : files) {
    g_autofree char *path = g_build_filename(file.dir.c_str(), file.name.c_str(), nullptr);
    g_autofree char *old = nullptr;
    gsize old_len = 0;
    if (!file.ca && file.name == "ca-cert.pem" &&
        g_file_get_contents(path, &old, &old_len, nullptr) &&
        std::string_view(old, old_len) == file.text)
      continue;
    if (g_file_test(path, G_FILE_TEST_EXISTS) && !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                  _("'%s' is not a regular file; nothing was written"), path);
      return false;
    }
    if (!force && !file.update && g_file_test(path, G_FILE_TEST_EXISTS)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_EXISTS,
                  _("'%s' already exists; nothing was written"), path);
      return false;
    }
    todo.push_back(std::move(file));
  }
  std::vector<std::string> made, temps;
  auto undo = [&] {
    for (const auto &t : temps) g_unlink(t.c_str());
    for (auto it = made.rbegin(); it != made.rend(); ++it) g_rmdir(it->c_str());
  };
  for (const auto &file : todo) {
    for (const auto &d : missing_dirs(file.dir)) {
      /* A CA's own directory is its owner's alone; those above it are not. */
      if (g_mkdir(d.c_str(), file.ca && d == file.dir ? 0700 : 0755) < 0) {
        int err = errno;
        undo();
        g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                    _("Unable to create directory '%s': %s; nothing was written"), d.c_str(),
                    g_strerror(err));
        return false;
      }
      made.push_back(d);
    }
    std::string temp;
    if (!write_temp(file, temp, error)) {
      undo();
      return false;
    }
    temps.push_back(temp);
  }
  for (gsize i = 0; i < todo.size(); i++) {
    g_autofree char *path = g_build_filename(todo[i].dir.c_str(), todo[i].name.c_str(), nullptr);
    if (g_rename(temps[i].c_str(), path) < 0) {
      int err = errno;
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                  _("Unable to put '%s' in place: %s; the files before it were written"), path,
                  g_strerror(err));
      for (gsize j = i; j < temps.size(); j++) g_unlink(temps[j].c_str());
      return false;
    }
  }
  return true;
}

bool read_file(const char *dir, const char *name, gnutls_datum_t &datum, char *&contents,
               GError **error) {
  g_autofree char *path = g_build_filename(dir, name, nullptr);
  gsize len = 0;
  GError *read_error = nullptr;
  if (!g_file_get_contents(path, &contents, &len, &read_error)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("Unable to read the CA's '%s': %s; give the directory qio-pki wrote the CA "
                  "into"),
                path, read_error->message);
    g_error_free(read_error);
    return false;
  }
  datum = {reinterpret_cast<unsigned char *>(contents), static_cast<unsigned>(len)};
  return true;
}

std::string hex(const guint8 *data, size_t len) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < len; i++) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

/* @path's contents in @text (free it) and @datum; with @missing_ok a file
 * that is not there is no error, and leaves @text NULL. */
bool read_datum(const char *path, bool missing_ok, char *&text, gnutls_datum_t &datum,
                GError **error) {
  gsize len = 0;
  GError *read_error = nullptr;
  if (!g_file_get_contents(path, &text, &len, &read_error)) {
    bool missing = g_error_matches(read_error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    if (!missing || !missing_ok)
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE, _("Unable to read '%s': %s"), path,
                  read_error->message);
    g_error_free(read_error);
    text = nullptr;
    return missing && missing_ok;
  }
  datum = {reinterpret_cast<unsigned char *>(text), static_cast<unsigned>(len)};
  return true;
}

/* RFC 5280: a CRL number is a positive integer of at most 20 octets. */
constexpr size_t kMaxCrlNumber = 20;

/* The previous CRL in @path, if any, which must be signed by @ca (however
 * old: renewing an expired list must keep what it revokes): entries and
 * number carry over into @crl and @number (big-endian, no leading zeros). */
bool carry_over_crl(gnutls_x509_crt_t ca, const char *path, gnutls_x509_crl_t crl,
                    std::vector<guint8> &number, GError **error) {
  g_autofree char *text = nullptr;
  gnutls_datum_t datum;
  if (!read_datum(path, true, text, datum, error)) return false;
  if (!text) return true; /* the first list */
  Crl old;
  int ret = gnutls_x509_crl_init(&old.p);
  if (ret >= 0) ret = gnutls_x509_crl_import(old.p, &datum, GNUTLS_X509_FMT_PEM);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("'%s' cannot be read as a CRL (%s); put this CA's list there, or move the "
                  "file away to start a new list"),
                path, gnutls_strerror(ret));
    return false;
  }
  /* GnuTLS 3.7 checks a CRL's dates whatever the flags: its date bits
   * come with GNUTLS_CERT_INVALID, every other failure with a bit of its
   * own (signer not found or not a CA, signature failure, weak algorithm). */
  unsigned status = 0;
  ret = gnutls_x509_crl_verify(old.p, &ca, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &status);
  constexpr unsigned kDates = GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED |
                              GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE | GNUTLS_CERT_INVALID;
  if (ret < 0 || (status & ~kDates) != 0 ||
      (status != 0 && !(status & ~GNUTLS_CERT_INVALID))) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("'%s' is not a CRL signed by this CA; put this CA's list there, or move the "
                  "file away to start a new list"),
                path);
    return false;
  }
  int count = gnutls_x509_crl_get_crt_count(old.p);
  for (int i = 0; i < count; i++) {
    guint8 serial[64];
    size_t serial_size = sizeof serial;
    time_t when = 0;
    ret = gnutls_x509_crl_get_crt_serial(old.p, i, serial, &serial_size, &when);
    if (ret >= 0) ret = gnutls_x509_crl_set_crt_serial(crl, serial, serial_size, when);
    if (gnutls_failed(ret, _("copy the revoked certificates of the previous CRL"), error))
      return false;
  }
  guint8 num[64];
  size_t num_size = sizeof num;
  unsigned critical = 0;
  number.clear();
  ret = gnutls_x509_crl_get_number(old.p, num, &num_size, &critical);
  if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) return true; /* numbering starts */
  if (ret < 0) {
    /* Restarting at 1 would break RFC 5280's growing numbers. */
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("The CRL number of '%s' cannot be read (%s); start a new CA"), path,
                gnutls_strerror(ret));
    return false;
  }
  size_t first = 0;
  while (first < num_size && num[first] == 0) first++;
  number.assign(num + first, num + num_size);
  return true;
}

/* @number + 1, kept positive (a leading zero octet when the top bit is set). */
bool next_crl_number(std::vector<guint8> &number, const char *path, GError **error) {
  auto digit = number.rbegin();
  for (; digit != number.rend() && *digit == 0xff; ++digit) *digit = 0;
  if (digit == number.rend())
    number.insert(number.begin(), 1);
  else
    ++*digit;
  if (number.front() & 0x80) number.insert(number.begin(), 0);
  if (number.size() <= kMaxCrlNumber) return true;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
              _("The CRL number of '%s' has reached its largest value (20 octets); start a new "
                "CA"),
              path);
  return false;
}

/* Two qio-pki runs updating one CRL at once would each drop the other's
 * entry: the second waits here for the first's commit. */
bool lock_crl(QCryptoX509Issuer *issuer, const char *dir, GError **error) {
  if (issuer->crl_lock >= 0) return true;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int ret = fd < 0 ? -1 : flock(fd, LOCK_EX);
  if (ret < 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE, _("Unable to lock '%s': %s"), dir,
                g_strerror(err));
    return false;
  }
  issuer->crl_lock = fd;
  return true;
}

void unlock_crl(QCryptoX509Issuer *issuer) {
  if (issuer->crl_lock >= 0) close(std::exchange(issuer->crl_lock, -1));
}

}  // namespace

QCryptoX509Issuer *qcrypto_x509_issuer_new(const char *dn, guint days, QCryptoX509KeyType key_type,
                                           GError **error) {
  if (!check_days(days, error)) return nullptr;
  const time_t now = time(nullptr);
  Key key;
  Crt crt;
  if (!generate_key(key_type, key, error) ||
      gnutls_failed(gnutls_x509_crt_init(&crt.p), _("create a certificate"), error) ||
      !fill_common(crt.p, key.p, dn, now, now + static_cast<time_t>(days) * 86400, error) ||
      gnutls_failed(gnutls_x509_crt_set_basic_constraints(crt.p, 1, -1),
                    _("set the basic constraints"), error) ||
      gnutls_failed(gnutls_x509_crt_set_key_usage(crt.p, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN),
                    _("set the key usage"), error) ||
      !sign(crt.p, crt.p, key.p, error))
    return nullptr;
  return new _QCryptoX509Issuer{crt.release(), key.release(), {}};
}

QCryptoX509Issuer *qcrypto_x509_issuer_load(const char *dir, GError **error) {
  g_autofree char *cert_text = nullptr, *key_text = nullptr;
  gnutls_datum_t cert_datum, key_datum;
  if (!read_file(dir, "ca-cert.pem", cert_datum, cert_text, error) ||
      !read_file(dir, "ca-key.pem", key_datum, key_text, error))
    return nullptr;
  Crt crt;
  Key key;
  int ret = import_cert(crt, cert_datum);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("The CA certificate in '%s' cannot be read: %s"), dir, gnutls_strerror(ret));
    return nullptr;
  }
  ret = gnutls_x509_privkey_init(&key.p);
  if (ret >= 0) ret = gnutls_x509_privkey_import2(key.p, &key_datum, GNUTLS_X509_FMT_PEM, nullptr, 0);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("The CA key in '%s' cannot be read: %s (an encrypted key must be decrypted "
                  "first, e.g. with certtool --to-p8 --empty-password)"),
                dir, gnutls_strerror(ret));
    return nullptr;
  }
  unsigned critical = 0, is_ca = 0;
  if (gnutls_x509_crt_get_basic_constraints(crt.p, &critical, &is_ca, nullptr) <= 0 || !is_ca) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("The certificate '%s/ca-cert.pem' is not a CA certificate (no basic constraint "
                  "CA:TRUE); give the directory of a CA"),
                dir);
    return nullptr;
  }
  guint8 cert_id[64], key_id[64];
  size_t cert_id_size = sizeof cert_id, key_id_size = sizeof key_id;
  if (gnutls_x509_crt_get_key_id(crt.p, 0, cert_id, &cert_id_size) < 0 ||
      gnutls_x509_privkey_get_key_id(key.p, 0, key_id, &key_id_size) < 0 ||
      cert_id_size != key_id_size || memcmp(cert_id, key_id, key_id_size) != 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("The CA key in '%s' does not belong to its certificate; put the matching "
                  "ca-cert.pem and ca-key.pem together"),
                dir);
    return nullptr;
  }
  if (gnutls_x509_crt_get_expiration_time(crt.p) <= time(nullptr)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("The CA certificate in '%s' has expired; make a new CA"), dir);
    return nullptr;
  }
  return new _QCryptoX509Issuer{crt.release(), key.release(), {}};
}

void qcrypto_x509_issuer_free(QCryptoX509Issuer *issuer) {
  if (!issuer) return;
  unlock_crl(issuer);
  gnutls_x509_crt_deinit(issuer->cert);
  gnutls_x509_privkey_deinit(issuer->key);
  delete issuer;
}

gboolean qcrypto_x509_issuer_stage_ca(QCryptoX509Issuer *issuer, const char *dir, GError **error) {
  g_return_val_if_fail(issuer != nullptr, FALSE);
  std::string cert_pem, key_pem;
  if (!export_cert(issuer->cert, cert_pem, error) || !export_key(issuer->key, key_pem, error))
    return FALSE;
  issuer->staged.push_back({dir, "ca-cert.pem", std::move(cert_pem), 0644, true});
  issuer->staged.push_back({dir, "ca-key.pem", std::move(key_pem), 0600, true});
  return TRUE;
}

gboolean qcrypto_x509_issuer_commit(QCryptoX509Issuer *issuer, gboolean force, GError **error) {
  g_return_val_if_fail(issuer != nullptr, FALSE);
  gboolean ok = write_files(std::exchange(issuer->staged, {}), force, error);
  unlock_crl(issuer);
  return ok;
}

gboolean qcrypto_x509_issuer_stage_issued(QCryptoX509Issuer *issuer, const QCryptoX509LeafSpec *spec,
                                          const char *dir, GError **error) {
  g_return_val_if_fail(issuer != nullptr && spec != nullptr, FALSE);
  if (!check_days(spec->days, error)) return FALSE;
  const bool server = spec->role == QCRYPTO_X509_ROLE_SERVER;
  const time_t ca_expiry = gnutls_x509_crt_get_expiration_time(issuer->cert);
  /* One "now" for the check and the certificate, so that what passes the
   * check is what gets written. */
  const time_t now = time(nullptr);
  const time_t expiry = now + static_cast<time_t>(spec->days) * 86400;
  if (expiry > ca_expiry) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("A certificate valid for %u days would outlive its CA, which expires in %lld "
                  "days; give fewer days or make a new CA"),
                spec->days, static_cast<long long>((ca_expiry - now) / 86400));
    return FALSE;
  }
  std::vector<std::pair<gnutls_x509_subject_alt_name_t, std::string>> sans;
  for (const char *const *name = spec->dns_names; name && *name; name++) {
    /* A DNS name "127.0.0.1" matches nobody: clients check addresses
     * against IP names only. */
    if (g_hostname_is_ip_address(*name)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("'%s' is an IP address, not a host name: put it in the IP address list"),
                  *name);
      return FALSE;
    }
    if (!valid_host_name(*name)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("'%s' is not a host name: use letters, digits, '-' and '.' (IP addresses "
                    "go in the IP address list)"),
                  *name);
      return FALSE;
    }
    sans.emplace_back(GNUTLS_SAN_DNSNAME, *name);
  }
  for (const char *const *ip = spec->ip_addresses; ip && *ip; ip++) {
    g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(*ip);
    if (!addr) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("'%s' is not an IPv4 or IPv6 address"), *ip);
      return FALSE;
    }
    sans.emplace_back(GNUTLS_SAN_IPADDRESS,
                      std::string(reinterpret_cast<const char *>(g_inet_address_to_bytes(addr)),
                                  g_inet_address_get_native_size(addr)));
  }
  if (server && sans.empty()) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("A server certificate needs the host names or IP addresses clients connect "
                  "to; give at least one"));
    return FALSE;
  }

  Key key;
  Crt crt;
  if (!generate_key(spec->key_type, key, error) ||
      gnutls_failed(gnutls_x509_crt_init(&crt.p), _("create a certificate"), error) ||
      !fill_common(crt.p, key.p, spec->dn, now, expiry, error))
    return FALSE;
  unsigned usage = GNUTLS_KEY_DIGITAL_SIGNATURE;
  if (spec->key_type == QCRYPTO_X509_KEY_RSA_3072) usage |= GNUTLS_KEY_KEY_ENCIPHERMENT;
  guint8 ca_id[64];
  size_t ca_id_size = sizeof ca_id;
  unsigned ca_id_critical = 0;
  if (gnutls_failed(gnutls_x509_crt_set_basic_constraints(crt.p, 0, -1),
                    _("set the basic constraints"), error) ||
      gnutls_failed(gnutls_x509_crt_set_key_usage(crt.p, usage), _("set the key usage"), error) ||
      gnutls_failed(gnutls_x509_crt_set_key_purpose_oid(
                        crt.p, server ? GNUTLS_KP_TLS_WWW_SERVER : GNUTLS_KP_TLS_WWW_CLIENT, 0),
                    _("set the key purpose"), error))
    return FALSE;
  /* A CA made elsewhere may lack a subject key identifier: then the
   * authority key identifier is simply left out. */
  if (gnutls_x509_crt_get_subject_key_id(issuer->cert, ca_id, &ca_id_size, &ca_id_critical) >= 0 &&
      gnutls_failed(gnutls_x509_crt_set_authority_key_id(crt.p, ca_id, ca_id_size),
                    _("set the authority key identifier"), error))
    return FALSE;
  for (const auto &[type, value] : sans)
    if (gnutls_failed(gnutls_x509_crt_set_subject_alt_name(crt.p, type, value.data(),
                                                           static_cast<unsigned>(value.size()),
                                                           GNUTLS_FSAN_APPEND),
                      _("set the subject alternative names"), error))
      return FALSE;
  std::string ca_pem, cert_pem, key_pem;
  if (!sign(crt.p, issuer->cert, issuer->key, error) ||
      !export_cert(issuer->cert, ca_pem, error) || !export_cert(crt.p, cert_pem, error) ||
      !export_key(key.p, key_pem, error))
    return FALSE;
  const std::string prefix = server ? "server" : "client";
  issuer->staged.push_back({dir, "ca-cert.pem", std::move(ca_pem), 0644, false});
  issuer->staged.push_back({dir, prefix + "-cert.pem", std::move(cert_pem), 0644, false});
  issuer->staged.push_back({dir, prefix + "-key.pem", std::move(key_pem), 0600, false});
  return TRUE;
}

char *qcrypto_x509_issuer_get_dn(QCryptoX509Issuer *issuer) {
  g_return_val_if_fail(issuer != nullptr, nullptr);
  gnutls_datum_t out = {nullptr, 0};
  if (gnutls_x509_crt_get_dn3(issuer->cert, &out, 0) < 0) return g_strdup("");
  return g_strdup(take_datum(out).c_str());
}

gint64 qcrypto_x509_issuer_get_expiry(QCryptoX509Issuer *issuer) {
  g_return_val_if_fail(issuer != nullptr, 0);
  return gnutls_x509_crt_get_expiration_time(issuer->cert);
}

void qcrypto_x509_crl_report_clear(QCryptoX509CrlReport *report) {
  g_clear_pointer(&report->revoked_dn, g_free);
  g_clear_pointer(&report->revoked_serial, g_free);
}

gboolean qcrypto_x509_issuer_stage_crl(QCryptoX509Issuer *issuer, const char *dir,
                                       const char *cert_path, guint days,
                                       QCryptoX509CrlReport *report, GError **error) {
  g_return_val_if_fail(issuer != nullptr && dir != nullptr && report != nullptr, FALSE);
  *report = {};
  if (!check_days(days, error)) return FALSE;
  const time_t now = time(nullptr);
  const time_t next = now + static_cast<time_t>(days) * 86400;
  const time_t ca_expiry = gnutls_x509_crt_get_expiration_time(issuer->cert);
  if (ca_expiry - now < 86400) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("The CA in '%s' expires within a day; make a new CA"), dir);
    return FALSE;
  }
  if (next > ca_expiry) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("A CRL valid for %u days would outlive its CA, which expires in %lld days; "
                  "give fewer days"),
                days, static_cast<long long>((ca_expiry - now) / 86400));
    return FALSE;
  }
  unsigned usage = 0, usage_critical = 0;
  if (gnutls_x509_crt_get_key_usage(issuer->cert, &usage, &usage_critical) >= 0 &&
      !(usage & GNUTLS_KEY_CRL_SIGN)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("The CA certificate in '%s' may not sign CRLs (its key usage lacks "
                  "cRLSign), so peers would reject its list; make a new CA with qio-pki ca"),
                dir);
    return FALSE;
  }
  if (!lock_crl(issuer, dir, error)) return FALSE;
  Crl crl;
  std::vector<guint8> number;
  g_autofree char *crl_path = g_build_filename(dir, "ca-crl.pem", nullptr);
  if (gnutls_failed(gnutls_x509_crl_init(&crl.p), _("create a CRL"), error) ||
      !carry_over_crl(issuer->cert, crl_path, crl.p, number, error) ||
      !next_crl_number(number, crl_path, error))
    return FALSE;
  if (cert_path) {
    g_autofree char *text = nullptr;
    gnutls_datum_t datum;
    if (!read_datum(cert_path, false, text, datum, error)) return FALSE;
    Crt crt;
    int ret = import_cert(crt, datum);
    if (ret < 0) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                  _("'%s' holds no PEM certificate: %s"), cert_path, gnutls_strerror(ret));
      return FALSE;
    }
    unsigned critical = 0, is_ca = 0;
    if (gnutls_x509_crt_get_basic_constraints(crt.p, &critical, &is_ca, nullptr) >= 0 && is_ca) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("'%s' is a CA certificate; a CA's list revokes the certificates it issued, "
                    "not CAs"),
                  cert_path);
      return FALSE;
    }
    /* Expired certificates too: revoking one is harmless. */
    unsigned status = 0;
    ret = gnutls_x509_crt_verify(crt.p, &issuer->cert, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS,
                                 &status);
    if (ret < 0 || status != 0) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                  _("'%s' was not issued by this CA; revoke it with the CA that issued it"),
                  cert_path);
      return FALSE;
    }
    guint8 serial[64];
    size_t serial_size = sizeof serial;
    if (gnutls_failed(gnutls_x509_crt_get_serial(crt.p, serial, &serial_size),
                      _("read the certificate's serial number"), error))
      return FALSE;
    int count = gnutls_x509_crl_get_crt_count(crl.p);
    for (int i = 0; i < count && !report->already; i++) {
      guint8 listed[64];
      size_t listed_size = sizeof listed;
      time_t when = 0;
      report->already = gnutls_x509_crl_get_crt_serial(crl.p, i, listed, &listed_size, &when) >= 0 &&
                        listed_size == serial_size && memcmp(listed, serial, serial_size) == 0;
    }
    if (!report->already &&
        gnutls_failed(gnutls_x509_crl_set_crt(crl.p, crt.p, now), _("add to the CRL"), error))
      return FALSE;
    gnutls_datum_t dn = {nullptr, 0};
    report->revoked_dn = g_strdup(gnutls_x509_crt_get_dn3(crt.p, &dn, 0) >= 0
                                      ? take_datum(dn).c_str()
                                      : "");
    report->revoked_serial = g_strdup(hex(serial, serial_size).c_str());
  }
  guint8 ca_id[64];
  size_t ca_id_size = sizeof ca_id;
  unsigned ca_id_critical = 0;
  gnutls_privkey_t signer = nullptr;
  int ret = gnutls_x509_crl_set_version(crl.p, 2);
  /* Backdated as certificates are, for peers whose clocks are behind. */
  if (ret >= 0) ret = gnutls_x509_crl_set_this_update(crl.p, now - kBackdate);
  if (ret >= 0) ret = gnutls_x509_crl_set_next_update(crl.p, next);
  if (ret >= 0) ret = gnutls_x509_crl_set_number(crl.p, number.data(), number.size());
  if (ret >= 0 &&
      gnutls_x509_crt_get_subject_key_id(issuer->cert, ca_id, &ca_id_size, &ca_id_critical) >= 0)
    ret = gnutls_x509_crl_set_authority_key_id(crl.p, ca_id, ca_id_size);
  if (ret >= 0) ret = gnutls_privkey_init(&signer);
  if (ret >= 0) ret = gnutls_privkey_import_x509(signer, issuer->key, 0);
  if (ret >= 0) ret = gnutls_x509_crl_privkey_sign(crl.p, issuer->cert, signer, GNUTLS_DIG_SHA256, 0);
  if (signer) gnutls_privkey_deinit(signer);
  gnutls_datum_t out = {nullptr, 0};
  if (ret >= 0) ret = gnutls_x509_crl_export2(crl.p, GNUTLS_X509_FMT_PEM, &out);
  if (gnutls_failed(ret, _("sign the CRL"), error)) {
    qcrypto_x509_crl_report_clear(report);
    return FALSE;
  }
  report->count = static_cast<guint>(std::max(gnutls_x509_crl_get_crt_count(crl.p), 0));
  report->next_update = next;
  StagedFile file{dir, "ca-crl.pem", take_datum(out), 0644, true};
  file.update = true;
  issuer->staged.push_back(std::move(file));
  return TRUE;
}
