#include "config.h"

#include "qcrypto/secret.h"
#include "qcrypto/base64.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <cstring>

struct _QCryptoSecret {
  GObject parent_instance;
  char *id;
  char *data;
  char *file;
  QCryptoSecretFormat format;
  char *keyid;
  char *iv;
  GBytes *value; /* the plaintext, set by a successful init */
};

namespace {

enum { PROP_0, PROP_ID, PROP_DATA, PROP_FILE, PROP_FORMAT, PROP_KEYID, PROP_IV, N_PROPS };

constexpr gsize kAesKeyLen = 32;
constexpr gsize kAesBlockLen = 16;

G_LOCK_DEFINE_STATIC(lookup_hook);
QCryptoSecretLookupFunc lookup_func;
gpointer lookup_data;

/* Plaintext memory is wiped before it is freed. */
struct Plain {
  guint8 *mem;
  gsize len;
};

void plain_free(gpointer data) noexcept {
  auto *plain = static_cast<Plain *>(data);
  if (plain->mem) explicit_bzero(plain->mem, plain->len); /* an empty secret has none */
  g_free(plain->mem);
  g_free(plain);
}

GBytes *bytes_take_wiped(guint8 *mem, gsize len) {
  auto *plain = g_new(Plain, 1);
  plain->mem = mem;
  plain->len = len;
  return g_bytes_new_with_free_func(mem, len, plain_free, plain);
}


}  // namespace

static GParamSpec *secret_props[N_PROPS];

static void qcrypto_secret_initable_iface_init(GInitableIface *iface);

G_DEFINE_ENUM_TYPE(QCryptoSecretFormat, qcrypto_secret_format,
                   G_DEFINE_ENUM_VALUE(QCRYPTO_SECRET_FORMAT_RAW, "raw"),
                   G_DEFINE_ENUM_VALUE(QCRYPTO_SECRET_FORMAT_BASE64, "base64"))

G_DEFINE_FINAL_TYPE_WITH_CODE(QCryptoSecret, qcrypto_secret, G_TYPE_OBJECT,
                              G_IMPLEMENT_INTERFACE(G_TYPE_INITABLE,
                                                    qcrypto_secret_initable_iface_init))

/* Where the input came from, for messages. */
static char *secret_source(QCryptoSecret *secret) {
  return secret->file ? g_strdup_printf(_("file '%s'"), secret->file)
                      : g_strdup(_("property 'data'"));
}

static GBytes *secret_decrypt(QCryptoSecret *secret, const char *input, gsize input_len,
                              GError **error) {
  const char *id = qcrypto_secret_get_id(secret);
  if (!secret->iv) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Secret '%s' names a key secret (keyid '%s') but no 'iv'; give the "
                  "base64-encoded 16-byte initialization vector used to encrypt it"),
                id, secret->keyid);
    return nullptr;
  }
  g_autoptr(GBytes) key = nullptr;
  if (!qcrypto_secret_lookup_bytes(secret->keyid, &key, error)) {
    g_prefix_error(error, _("Secret '%s' cannot be decrypted: "), id);
    return nullptr;
  }
  gsize key_len;
  gconstpointer key_data = g_bytes_get_data(key, &key_len);
  if (key_len != kAesKeyLen) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Secret '%s' cannot be decrypted: key secret '%s' holds %lu bytes, AES-256-CBC needs a 32-byte key"),
                id, secret->keyid, static_cast<unsigned long>(key_len));
    return nullptr;
  }
  gsize iv_len = 0;
  g_autofree guint8 *iv = qcrypto_base64_decode_strict(secret->iv, strlen(secret->iv), &iv_len);
  if (!iv || iv_len != kAesBlockLen) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Secret '%s' has an invalid 'iv'; it must be 16 bytes encoded in base64"), id);
    return nullptr;
  }
  g_autofree guint8 *cipher = nullptr;
  gsize cipher_len = 0;
  if (secret->format == QCRYPTO_SECRET_FORMAT_BASE64) {
    cipher = qcrypto_base64_decode_strict(input, input_len, &cipher_len);
    if (!cipher) {
      g_autofree char *source = secret_source(secret);
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("Secret '%s': the ciphertext in %s is not valid base64; encode it with "
                    "'base64 -w0' or set format=raw"),
                  id, source);
      return nullptr;
    }
  } else {
    cipher = static_cast<guint8 *>(g_memdup2(input, input_len));
    cipher_len = input_len;
  }
  if (cipher_len == 0 || cipher_len % kAesBlockLen != 0) {
    g_autofree char *source = secret_source(secret);
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Secret '%s': the ciphertext in %s is %lu bytes long, not a multiple of the AES block size "
                  "(16); check the data and its format"),
                id, source, static_cast<unsigned long>(cipher_len));
    return nullptr;
  }

  gnutls_datum_t key_datum = {static_cast<unsigned char *>(const_cast<void *>(key_data)),
                              static_cast<unsigned int>(key_len)};
  gnutls_datum_t iv_datum = {iv, static_cast<unsigned int>(iv_len)};
  gnutls_cipher_hd_t handle;
  int rc = gnutls_cipher_init(&handle, GNUTLS_CIPHER_AES_256_CBC, &key_datum, &iv_datum);
  if (rc < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("Secret '%s': cannot set up AES-256-CBC: %s"), id, gnutls_strerror(rc));
    return nullptr;
  }
  auto *plain = static_cast<guint8 *>(g_malloc(cipher_len));
  rc = gnutls_cipher_decrypt2(handle, cipher, cipher_len, plain, cipher_len);
  gnutls_cipher_deinit(handle);
  /* PKCS#7 padding: the last byte says how many bytes, all equal to it, to
   * drop.  Anything else means a wrong key or iv. */
  guint8 pad = plain[cipher_len - 1];
  gboolean padding_ok = rc >= 0 && pad >= 1 && pad <= kAesBlockLen;
  for (gsize i = 0; padding_ok && i < pad; i++)
    padding_ok = plain[cipher_len - 1 - i] == pad;
  if (!padding_ok) {
    explicit_bzero(plain, cipher_len);
    g_free(plain);
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Secret '%s' did not decrypt with the key in secret '%s' (invalid padding); "
                  "check 'keyid', 'iv' and the ciphertext"),
                id, secret->keyid);
    return nullptr;
  }
  return bytes_take_wiped(plain, cipher_len - pad);
}

static gboolean qcrypto_secret_initable_init(GInitable *initable, GCancellable *,
                                             GError **error) {
  auto *secret = QCRYPTO_SECRET(initable);
  const char *id = qcrypto_secret_get_id(secret);
  if (secret->value) return TRUE;
  if (!!secret->data == !!secret->file) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                secret->data ? _("Secret '%s' has both 'data' and 'file'; give exactly one")
                             : _("Secret '%s' has neither 'data' nor 'file'; give exactly one"),
                id);
    return FALSE;
  }
  if (secret->iv && !secret->keyid) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Secret '%s' has an 'iv' but no 'keyid'; name the secret holding the key, or "
                  "drop 'iv'"),
                id);
    return FALSE;
  }

  g_autofree char *file_contents = nullptr;
  const char *input = secret->data;
  gsize input_len = secret->data ? strlen(secret->data) : 0;
  if (secret->file) {
    GError *local = nullptr;
    if (!g_file_get_contents(secret->file, &file_contents, &input_len, &local)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                  _("Secret '%s' cannot read file '%s': %s; check the path and its permissions"),
                  id, secret->file, local->message);
      g_error_free(local);
      return FALSE;
    }
    input = file_contents;
  }

  GBytes *value = nullptr;
  if (secret->keyid) {
    value = secret_decrypt(secret, input, input_len, error);
  } else if (secret->format == QCRYPTO_SECRET_FORMAT_BASE64) {
    gsize len = 0;
    guint8 *decoded = qcrypto_base64_decode_strict(input, input_len, &len);
    if (decoded) {
      value = bytes_take_wiped(decoded, len);
    } else {
      g_autofree char *source = secret_source(secret);
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("Secret '%s': %s is not valid base64; fix the encoding or set format=raw"),
                  id, source);
    }
  } else {
    value = bytes_take_wiped(static_cast<guint8 *>(g_memdup2(input, input_len)), input_len);
  }
  if (file_contents) explicit_bzero(file_contents, input_len);
  if (!value) return FALSE;
  secret->value = value;
  return TRUE;
}

static void qcrypto_secret_initable_iface_init(GInitableIface *iface) {
  iface->init = qcrypto_secret_initable_init;
}

static void qcrypto_secret_set_property(GObject *object, guint prop_id, const GValue *value,
                                        GParamSpec *pspec) {
  auto *secret = QCRYPTO_SECRET(object);
  char **target = nullptr;
  switch (prop_id) {
    case PROP_ID: target = &secret->id; break;
    case PROP_DATA: target = &secret->data; break;
    case PROP_FILE: target = &secret->file; break;
    case PROP_KEYID: target = &secret->keyid; break;
    case PROP_IV: target = &secret->iv; break;
    case PROP_FORMAT:
      secret->format = static_cast<QCryptoSecretFormat>(g_value_get_enum(value));
      return;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      return;
  }
  g_free(*target);
  *target = g_value_dup_string(value);
}

static void qcrypto_secret_get_property(GObject *object, guint prop_id, GValue *value,
                                        GParamSpec *pspec) {
  auto *secret = QCRYPTO_SECRET(object);
  switch (prop_id) {
    case PROP_ID: g_value_set_string(value, secret->id); break;
    case PROP_DATA: g_value_set_string(value, secret->data); break;
    case PROP_FILE: g_value_set_string(value, secret->file); break;
    case PROP_KEYID: g_value_set_string(value, secret->keyid); break;
    case PROP_IV: g_value_set_string(value, secret->iv); break;
    case PROP_FORMAT: g_value_set_enum(value, secret->format); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_secret_finalize(GObject *object) {
  auto *secret = QCRYPTO_SECRET(object);
  g_free(secret->id);
  if (secret->data) explicit_bzero(secret->data, strlen(secret->data));
  g_free(secret->data);
  g_free(secret->file);
  g_free(secret->keyid);
  g_free(secret->iv);
  g_clear_pointer(&secret->value, g_bytes_unref);
  G_OBJECT_CLASS(qcrypto_secret_parent_class)->finalize(object);
}

static void qcrypto_secret_class_init(QCryptoSecretClass *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_secret_set_property;
  object_class->get_property = qcrypto_secret_get_property;
  object_class->finalize = qcrypto_secret_finalize;
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                        G_PARAM_STATIC_STRINGS);
  secret_props[PROP_ID] = g_param_spec_string("id", "ID", "Object id", nullptr, flags);
  secret_props[PROP_DATA] =
      g_param_spec_string("data", "Data", "The secret, inline", nullptr, flags);
  secret_props[PROP_FILE] =
      g_param_spec_string("file", "File", "File holding the secret", nullptr, flags);
  secret_props[PROP_FORMAT] =
      g_param_spec_enum("format", "Format", "Encoding of the data: raw or base64",
                        QCRYPTO_TYPE_SECRET_FORMAT, QCRYPTO_SECRET_FORMAT_RAW, flags);
  secret_props[PROP_KEYID] = g_param_spec_string(
      "keyid", "Key id", "Secret holding the AES-256 key the data is encrypted with", nullptr,
      flags);
  secret_props[PROP_IV] = g_param_spec_string(
      "iv", "IV", "Base64 AES-CBC initialization vector (16 bytes)", nullptr, flags);
  g_object_class_install_properties(object_class, N_PROPS, secret_props);
}

static void qcrypto_secret_init(QCryptoSecret *) {}

QCryptoSecret *qcrypto_secret_new(GError **error, const char *first_property_name, ...) {
  va_list args;
  va_start(args, first_property_name);
  GObject *object = g_initable_new_valist(QCRYPTO_TYPE_SECRET, first_property_name, args,
                                          nullptr, error);
  va_end(args);
  return object ? QCRYPTO_SECRET(object) : nullptr;
}

const char *qcrypto_secret_get_id(QCryptoSecret *secret) {
  g_return_val_if_fail(QCRYPTO_IS_SECRET(secret), "");
  return secret->id ? secret->id : "";
}

GBytes *qcrypto_secret_get_bytes(QCryptoSecret *secret) {
  g_return_val_if_fail(QCRYPTO_IS_SECRET(secret), nullptr);
  g_return_val_if_fail(secret->value != nullptr, nullptr);
  return g_bytes_ref(secret->value);
}

char *qcrypto_secret_get_text(QCryptoSecret *secret, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_SECRET(secret), nullptr);
  g_return_val_if_fail(secret->value != nullptr, nullptr);
  gsize len;
  auto *data = static_cast<const char *>(g_bytes_get_data(secret->value, &len));
  if (len > 0 && !g_utf8_validate_len(data, len, nullptr)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Secret '%s' is not valid UTF-8 text (or contains a NUL byte); a text value "
                  "is needed here, store it as UTF-8"),
                qcrypto_secret_get_id(secret));
    return nullptr;
  }
  return g_strndup(data, len);
}

void qcrypto_secret_set_lookup_func(QCryptoSecretLookupFunc lookup, gpointer data) {
  G_LOCK(lookup_hook);
  lookup_func = lookup;
  lookup_data = data;
  G_UNLOCK(lookup_hook);
}

QCryptoSecret *qcrypto_secret_lookup(const char *id, GError **error) {
  g_return_val_if_fail(id != nullptr, nullptr);
  G_LOCK(lookup_hook);
  QCryptoSecretLookupFunc func = lookup_func;
  gpointer data = lookup_data;
  G_UNLOCK(lookup_hook);
  QCryptoSecret *secret = func ? func(id, data) : nullptr;
  if (!secret) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("No secret with id '%s'; create it first with -object secret,id=%s,..."), id,
                id);
  }
  return secret;
}

/* A secret usable as a value: found and completed. */
static QCryptoSecret *lookup_complete(const char *id, GError **error) {
  QCryptoSecret *secret = qcrypto_secret_lookup(id, error);
  if (secret && !secret->value) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Secret '%s' is not complete yet; create it before the objects using it"), id);
    g_clear_object(&secret);
  }
  return secret;
}

gboolean qcrypto_secret_lookup_bytes(const char *id, GBytes **out, GError **error) {
  g_autoptr(QCryptoSecret) secret = lookup_complete(id, error);
  if (!secret) return FALSE;
  *out = g_bytes_ref(secret->value);
  return TRUE;
}

gboolean qcrypto_secret_lookup_text(const char *id, char **out, GError **error) {
  g_autoptr(QCryptoSecret) secret = lookup_complete(id, error);
  if (!secret) return FALSE;
  *out = qcrypto_secret_get_text(secret, error);
  return *out != nullptr;
}
