/* The object registry: -object key=value and JSON parsing, QMP
 * object-add/object-del, typed lookup, "in use", and a corpus of
 * malformed options that must each fail with a clear error. */
#include "config.h"

#include "assert-mentions.h"
#include "qcrypto/authz-list.h"
#include "qcrypto/authz-pam.h"
#include "qcrypto/authz-simple.h"
#include "qcrypto/error.h"
#include "qcrypto/secret.h"
#include "qcrypto/tls-creds-anon.h"
#include "qcrypto/tls-creds-x509.h"
#include "qom/keyval.h"
#include "qom/object-registry.h"

#include <glib/gstdio.h>

#include <cstring>
#include <initializer_list>
#include <string>

/* A test type with one property of each kind the parser converts. */
struct TestThing {
  GObject parent_instance;
  char *id;
  char *name;
  int count;
  guint64 size;
  gboolean flag;
  double ratio;
  QCryptoSecretFormat mode;
};

struct TestThingClass {
  GObjectClass parent_class;
};

enum { PROP_0, PROP_ID, PROP_NAME, PROP_COUNT, PROP_SIZE, PROP_FLAG, PROP_RATIO, PROP_MODE };

G_DEFINE_TYPE(TestThing, test_thing, G_TYPE_OBJECT)
#define TEST_TYPE_THING (test_thing_get_type())
#define TEST_THING(o) (G_TYPE_CHECK_INSTANCE_CAST((o), TEST_TYPE_THING, TestThing))

static void test_thing_set_property(GObject *object, guint id, const GValue *value, GParamSpec *) {
  auto *thing = TEST_THING(object);
  switch (id) {
    case PROP_ID: g_free(thing->id); thing->id = g_value_dup_string(value); break;
    case PROP_NAME: g_free(thing->name); thing->name = g_value_dup_string(value); break;
    case PROP_COUNT: thing->count = g_value_get_int(value); break;
    case PROP_SIZE: thing->size = g_value_get_uint64(value); break;
    case PROP_FLAG: thing->flag = g_value_get_boolean(value); break;
    case PROP_RATIO: thing->ratio = g_value_get_double(value); break;
    case PROP_MODE: thing->mode = static_cast<QCryptoSecretFormat>(g_value_get_enum(value)); break;
  }
}

static void test_thing_get_property(GObject *, guint, GValue *, GParamSpec *) {}

static void test_thing_finalize(GObject *object) {
  g_free(TEST_THING(object)->id);
  g_free(TEST_THING(object)->name);
  G_OBJECT_CLASS(test_thing_parent_class)->finalize(object);
}

static void test_thing_class_init(TestThingClass *klass) {
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  oc->set_property = test_thing_set_property;
  oc->get_property = test_thing_get_property;
  oc->finalize = test_thing_finalize;
  auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(oc, PROP_ID, g_param_spec_string("id", "", "", nullptr, rw));
  g_object_class_install_property(oc, PROP_NAME,
                                  g_param_spec_string("name", "", "", nullptr, rw));
  g_object_class_install_property(oc, PROP_COUNT,
                                  g_param_spec_int("count", "", "", -5, 100, 0, rw));
  g_object_class_install_property(
      oc, PROP_SIZE, g_param_spec_uint64("size", "", "", 0, G_MAXUINT64, 0, rw));
  g_object_class_install_property(oc, PROP_FLAG,
                                  g_param_spec_boolean("flag", "", "", FALSE, rw));
  g_object_class_install_property(
      oc, PROP_RATIO, g_param_spec_double("ratio", "", "", -1.0, 1e9, 0, rw));
  g_object_class_install_property(
      oc, PROP_MODE, g_param_spec_enum("mode", "", "", QCRYPTO_TYPE_SECRET_FORMAT,
                                       QCRYPTO_SECRET_FORMAT_RAW, rw));
}

static void test_thing_init(TestThing *) {}

static TestThing *add_thing(const char *opts) {
  g_autoptr(GError) error = nullptr;
  GObject *object = qom_object_add_from_string(opts, &error);
  g_assert_no_error(error);
  return TEST_THING(object);
}

static void add_fails(const char *opts, const char *a, const char *b = nullptr) {
  g_autoptr(GError) error = nullptr;
  GObject *object = qom_object_add_from_string(opts, &error);
  if (object) g_error("'%s' was accepted", opts);
  assert_mentions(error, a, b);
}

static void test_keyval() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(JsonObject) o =
      qom_keyval_parse("secret,id=s0,data=a,,b,,,,c,file=", "qom-type", &error);
  g_assert_no_error(error);
  g_assert_cmpstr(json_object_get_string_member(o, "qom-type"), ==, "secret");
  g_assert_cmpstr(json_object_get_string_member(o, "id"), ==, "s0");
  g_assert_cmpstr(json_object_get_string_member(o, "data"), ==, "a,b,,c");
  g_assert_cmpstr(json_object_get_string_member(o, "file"), ==, "");

  g_autoptr(JsonObject) d = qom_keyval_parse(
      "authz-list,id=a,rules.1.match=y,rules.0.match=x,rules.0.policy=allow,rules.1.policy=deny,"
      "x.y.z=1",
      "qom-type", &error);
  g_assert_no_error(error);
  JsonArray *rules = json_object_get_array_member(d, "rules");
  g_assert_nonnull(rules);
  g_assert_cmpuint(json_array_get_length(rules), ==, 2);
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(rules, 0), "match"),
                  ==, "x");
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(rules, 1), "policy"),
                  ==, "deny");
  JsonObject *x = json_object_get_object_member(d, "x");
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(x, "y"), "z"), ==,
                  "1");

  g_autofree char *id = qom_keyval_find_id("secret,data=a,,id=no,id=yes,,x");
  g_assert_cmpstr(id, ==, "yes,x");
}

static void test_scalar_properties() {
  TestThing *t = add_thing("test-thing,id=t1,name=a,,b,count=-5,size=1.5k,flag=on,ratio=0.25,"
                           "mode=base64");
  g_assert_cmpstr(t->id, ==, "t1");
  g_assert_cmpstr(t->name, ==, "a,b");
  g_assert_cmpint(t->count, ==, -5);
  g_assert_cmpuint(t->size, ==, 1536);
  g_assert_true(t->flag);
  g_assert_cmpfloat(t->ratio, ==, 0.25);
  g_assert_cmpint(t->mode, ==, QCRYPTO_SECRET_FORMAT_BASE64);

  const struct {
    const char *text;
    guint64 value;
  } sizes[] = {{"0", 0},         {"42", 42},          {"1k", 1024},      {"1K", 1024},
               {"2M", 2 << 20},  {"3G", 3ull << 30},  {"1T", 1ull << 40}, {"0x10", 16},
               {"7b", 7},        {"0.5M", 512 << 10}, {"18446744073709551615", G_MAXUINT64}};
  for (const auto &c : sizes) {
    g_autofree char *opts = g_strdup_printf("test-thing,id=sz,size=%s", c.text);
    g_assert_cmpuint(add_thing(opts)->size, ==, c.value);
    g_assert_true(qom_object_del("sz", nullptr));
  }
  const struct {
    const char *text;
    gboolean value;
  } bools[] = {{"on", TRUE}, {"yes", TRUE}, {"true", TRUE},
               {"off", FALSE}, {"no", FALSE}, {"false", FALSE}};
  for (const auto &c : bools) {
    g_autofree char *opts = g_strdup_printf("test-thing,id=b,flag=%s", c.text);
    g_assert_cmpint(add_thing(opts)->flag, ==, c.value);
    g_assert_true(qom_object_del("b", nullptr));
  }

  /* Wrong values name the id, the key and what was expected. */
  add_fails("test-thing,id=t2,flag=maybe", "'t2'", "'flag' expects a boolean");
  add_fails("test-thing,id=t2,flag=ON", "'t2'", "'flag'");
  add_fails("test-thing,id=t2,flag=", "'t2'", "'flag'");
  add_fails("test-thing,id=t2,count=101", "'t2'", "'count' expects an integer in -5..100");
  add_fails("test-thing,id=t2,count=-6", "'t2'", "'count'");
  add_fails("test-thing,id=t2,count=1k", "'t2'", "'count'");
  add_fails("test-thing,id=t2,count=", "'t2'", "'count'");
  add_fails("test-thing,id=t2,size=-1", "'t2'", "'size'");
  add_fails("test-thing,id=t2,size=18446744073709551616", "'t2'", "'size'");
  add_fails("test-thing,id=t2,size=16E", "'t2'", "'size'");
  add_fails("test-thing,id=t2,size=12q", "'t2'", "'size'");
  add_fails("test-thing,id=t2,size=1.5", "'t2'", "'size'");
  add_fails("test-thing,id=t2,size=0x", "'t2'", "'size'");
  add_fails("test-thing,id=t2,size=k", "'t2'", "'size'");
  add_fails("test-thing,id=t2,size= 1", "'t2'", "'size'");
  add_fails("test-thing,id=t2,ratio=fast", "'t2'", "'ratio' expects a number");
  add_fails("test-thing,id=t2,mode=hex", "'t2'", "'mode' expects one of raw, base64, not 'hex'");
  add_fails("test-thing,id=t2,name.x=1", "'t2'", "'name' expects a string");
  g_assert_null(qom_object_lookup("t2"));
  g_assert_true(qom_object_del("t1", nullptr));
}

static void test_malformed_corpus() {
  const struct {
    const char *opts;
    const char *a;
    const char *b;
  } corpus[] = {
      {"", "no type and no id", nullptr},
      {",", "Trailing ','", nullptr},
      {"secret,id=e1,,,data=x", "'e1,'", nullptr},
      {"secret,id=e1,,,,data=x", "'e1,,data=x'", nullptr},
      {"secret,,,id=e2", "'e2'", "unknown type 'secret,'"},
      {"secret,id=e3,,data=x", "Invalid object id 'e3,data=x'", nullptr},
      {",,", "Unknown object type ','", nullptr},
      {"secret,", "Trailing ','", nullptr},
      {"secret,,id=x", "Unknown object type 'secret,id=x'", "authz-list"},
      {"secret,id", "Expected '=' after parameter 'id'", nullptr},
      {"secret,id=", "Invalid object id ''", nullptr},
      {"secret,=x", "Invalid parameter name ''", nullptr},
      {"secret,id=s1,data", "'s1'", "Expected '=' after parameter 'data'"},
      {"secret,id=s1,da ta=x", "'s1'", "'da ta'"},
      {"secret,id=s1,data=x,data=y", "'s1'", "'data' is given more than once"},
      {"secret,id=s1,data=x,data.y=2", "'s1'", "'data'"},
      {"secret,id=s1,data.y=2,data=x", "'s1'", "'data'"},
      {"secret,id=s1,data..y=2", "'s1'", "'data..y'"},
      {"secret,id=1abc,data=x", "Invalid object id '1abc'", nullptr},
      {"secret,id=a/b,data=x", "Invalid object id 'a/b'", nullptr},
      {"nosuch,id=x1", "'x1'", "unknown type 'nosuch'; valid types are authz-list"},
      {"id=x2,data=y", "'x2' has no type", nullptr},
      {"secret,data=x", "type 'secret' has no id", nullptr},
      {"secret,id=s1,format=hex,data=x", "'s1'", "'format' expects one of raw, base64"},
      {"secret,id=s1,bogus=1,data=x", "'s1'", "no property 'bogus'; valid properties are data, file, format, iv, keyid"},
      {"secret,id=s1,Data=x", "'s1'", "'Data'"},
      {"secret,id=s1,key_id=x,data=x", "'s1'", "'key_id'"},
      {"secret,id=s1,id.x=1", "'s1'", "'id' is used both"},
      {"secret,id.x=1", "'id' must be a string", nullptr},
      {"secret,id=s1,qom-type=secret", "'s1'", "'qom-type' is given more than once"},
      {"secret,id=s1", "'s1'", "neither 'data' nor 'file'"},
      {"secret,id=s1,data=x,file=/nonexistent", "'s1'", "both"},
      {"secret,id=s1,file=/nonexistent/qio", "'s1'", "/nonexistent/qio"},
      {"secret,id=s1,data=x,keyid=nokey,iv=AAAAAAAAAAAAAAAAAAAAAA==", "'s1'", "'nokey'"},
      {"authz-simple,id=z1", "'z1'", "'identity'"},
      {"authz-list,id=a1,rules.1.match=x,rules.1.policy=allow", "'a1'", "'rules.0' is missing"},
      {"authz-list,id=a1,rules.0.match=x,rules.x.y=1", "'a1'", "'rules'"},
      {"authz-list,id=a1,rules.0.match=x", "'a1'", "rule 0 needs a 'policy'"},
      {"authz-list,id=a1,rules.0.match=x,rules.0.policy=maybe", "'a1'", "maybe"},
      {"authz-list,id=a1,rules.0.match=x,rules.0.policy=allow,rules.0.colour=red", "'a1'",
       "colour"},
      {"authz-list,id=a1,rules.01.match=x", "'a1'", "'rules'"},
      {"authz-list,id=a1,rules=[{\"match\":1}]", "'a1'", "'rules'"},
      {"authz-list,id=a1,rules=not json", "'a1'", "JSON"},
      {"authz-list,id=a1,policy=maybe", "'a1'", "'policy' expects one of deny, allow"},
      {"authz-listfile,id=f1,filename=/nonexistent/rules.json", "'f1'", "/nonexistent/rules.json"},
      {"authz-listfile,id=f1,filename=/x,refresh=perhaps", "'f1'", "'refresh'"},
      {"authz-pam,id=p1", "'p1'", "'service'"},
      {"{", "not valid JSON", nullptr},
      {"{}", "no type and no id", nullptr},
      {"{\"id\": \"j2\"}", "'j2' has no type", nullptr},
      {"{\"qom-type\": \"secret\"}", "has no id", nullptr},
      {"{\"qom-type\": 1, \"id\": \"j1\"}", "'qom-type' must be a string", nullptr},
      {"{\"qom-type\": \"secret\", \"id\": [\"j1\"]}", "'id' must be a string", nullptr},
      {"{\"qom-type\": \"secret\", \"id\": \"j1\", \"data\": 5}", "'j1'", "'data' expects a string, not 5"},
      {"{\"qom-type\": \"test-thing\", \"id\": \"j1\", \"flag\": \"on\"}", "'j1'", "'flag'"},
      {"{\"qom-type\": \"test-thing\", \"id\": \"j1\", \"count\": \"1\"}", "'j1'", "'count'"},
      {"{\"qom-type\": \"test-thing\", \"id\": \"j1\", \"count\": 1.5}", "'j1'", "'count'"},
      {"{\"qom-type\": \"test-thing\", \"id\": \"j1\", \"count\": 1000}", "'j1'", "-5..100"},
      {"{\"qom-type\": \"test-thing\", \"id\": \"j1\", \"mode\": 1}", "'j1'", "'mode'"},
      {"{\"qom-type\": \"test-thing\", \"id\": \"j1\", \"name\": null}", "'j1'", "'name'"},
      {"{\"qom-type\": \"test-thing\", \"id\": \"j1\", \"name\": {}}", "'j1'", "'name'"},
      {"{\"qom-type\": \"secret\", \"id\": \"j1\", \"data\": \"x\", \"props\": {\"data\": \"y\"}}",
       "'j1'", "'data' is given twice"},
      {"{\"qom-type\": \"authz-list\", \"id\": \"j1\", \"rules\": {\"match\": \"x\"}}", "'j1'",
       "'rules'"},
      {"[\"secret\"]", "Unknown object type '[\"secret\"]'; valid types are", nullptr},
      {"{\"qom-type\": \"secret\", \"id\": \"j1\"} trailing", "not valid JSON", nullptr},
      {" [1]", "Unknown object type", nullptr},
  };
  for (const auto &c : corpus) add_fails(c.opts, c.a, c.b);
  g_auto(GStrv) ids = qom_object_list_ids();
  g_assert_cmpuint(g_strv_length(ids), ==, 0);
}

/* Random strings over the syntax's alphabet: an object or a clear error,
 * never a crash. */
static void test_random_options() {
  const char alphabet[] = ",,,==..{}[]\"\": 0a1-_xyz";
  const char *prefixes[] = {"", "secret,", "secret,id=r,", "authz-list,id=r,rules.",
                            "test-thing,id=r,", "{\"qom-type\":\"test-thing\",\"id\":\"r\","};
  GRand *rand = g_rand_new_with_seed(12345);
  for (int i = 0; i < 3000; i++) {
    GString *s = g_string_new(prefixes[g_rand_int_range(rand, 0, G_N_ELEMENTS(prefixes))]);
    int len = g_rand_int_range(rand, 0, 24);
    for (int j = 0; j < len; j++)
      g_string_append_c(s, alphabet[g_rand_int_range(rand, 0, sizeof alphabet - 1)]);
    GError *error = nullptr;
    GObject *object = qom_object_add_from_string(s->str, &error);
    if (object) {
      g_assert_no_error(error);
      qom_object_del_all();
    } else {
      g_assert_nonnull(error);
      g_assert_cmpstr(error->message, !=, "");
      g_error_free(error);
    }
    g_string_free(s, TRUE);
  }
  g_rand_free(rand);
}

static void test_secrets_by_id() {
  g_autoptr(GError) error = nullptr;
  g_assert_nonnull(qom_object_add_from_string("secret,id=key0,format=base64,"
                                              "data=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                                              &error));
  g_assert_no_error(error);
  /* Decryption finds the key secret through the registry's hook.  The
   * ciphertext is "registry secret" under AES-256-CBC with key bytes 0..31
   * and iv bytes 0..15, PKCS#7 padded (as test-secret's encrypt() makes it). */
  GObject *enc = qom_object_add_from_string(
      "secret,id=enc0,format=base64,data=aE9UcxkbW9p0+b3pOGovOQ==,keyid=key0,"
      "iv=AAECAwQFBgcICQoLDA0ODw==",
      &error);
  g_assert_no_error(error);
  g_autofree char *decrypted = qcrypto_secret_get_text(QCRYPTO_SECRET(enc), &error);
  g_assert_cmpstr(decrypted, ==, "registry secret");
  g_assert_nonnull(qom_object_add_from_string("secret,id=pw0,data=plain,,text", &error));
  g_assert_no_error(error);
  g_autofree char *text = nullptr;
  g_assert_true(qcrypto_secret_lookup_text("pw0", &text, &error));
  g_assert_cmpstr(text, ==, "plain,text");
  g_autoptr(GBytes) key = nullptr;
  g_assert_true(qcrypto_secret_lookup_bytes("key0", &key, &error));
  g_assert_cmpuint(g_bytes_get_size(key), ==, 32);

  /* A keyid that names no object, and one that names a non-secret. */
  add_fails("secret,id=pw1,data=AAAAAAAAAAAAAAAAAAAAAA==,format=base64,keyid=nokey,"
            "iv=AAAAAAAAAAAAAAAAAAAAAA==",
            "'pw1'", "'nokey'");
  g_assert_nonnull(qom_object_add_from_string("authz-simple,id=az0,identity=x", &error));
  add_fails("secret,id=pw1,data=AAAAAAAAAAAAAAAAAAAAAA==,format=base64,keyid=az0,"
            "iv=AAAAAAAAAAAAAAAAAAAAAA==",
            "'pw1'", "'az0'");
  g_autoptr(GBytes) none = nullptr;
  g_assert_false(qcrypto_secret_lookup_bytes("az0", &none, &error));
  assert_mentions(error, "'az0'");
  qom_object_del_all();
}

static void test_json_form() {
  g_autoptr(GError) error = nullptr;
  GObject *object = qom_object_add_from_string(
      "  {\"qom-type\": \"authz-list\", \"id\": \"a0\", \"policy\": \"deny\", \"rules\": ["
      "{\"match\": \"CN=*.example.com\", \"policy\": \"allow\", \"format\": \"glob\"},"
      "{\"match\": \"CN=bad.example.com\", \"policy\": \"deny\"}]}",
      &error);
  g_assert_no_error(error);
  g_assert_true(QCRYPTO_IS_AUTHZ_LIST(object));
  auto *authz = QCRYPTO_AUTHZ(object);
  g_assert_cmpstr(qcrypto_authz_get_id(authz), ==, "a0");
  g_assert_true(qcrypto_authz_is_allowed(authz, "CN=www.example.com", nullptr));
  /* First match wins: the glob allows before the exact deny is reached. */
  g_assert_true(qcrypto_authz_is_allowed(authz, "CN=bad.example.com", nullptr));
  g_assert_false(qcrypto_authz_is_allowed(authz, "CN=example.org", &error));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED);
  g_clear_error(&error);

  /* JSON types are strict: booleans and numbers are JSON values. */
  TestThing *t = TEST_THING(qom_object_add_from_string(
      "{\"qom-type\": \"test-thing\", \"id\": \"t5\", \"flag\": true, \"count\": -3, "
      "\"size\": 4096, \"ratio\": 2, \"mode\": \"base64\"}",
      &error));
  g_assert_no_error(error);
  g_assert_true(t->flag);
  g_assert_cmpint(t->count, ==, -3);
  g_assert_cmpuint(t->size, ==, 4096);
  g_assert_cmpfloat(t->ratio, ==, 2.0);

  /* The same rules through dotted keys and through JSON text. */
  object = qom_object_add_from_string(
      "authz-list,id=a1,rules.0.match=fred,rules.0.policy=allow,rules.1.match=b*,"
      "rules.1.format=glob,rules.1.policy=allow,policy=deny",
      &error);
  g_assert_no_error(error);
  g_assert_true(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(object), "fred", nullptr));
  g_assert_true(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(object), "bob", nullptr));
  g_assert_false(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(object), "alice", nullptr));
  object = qom_object_add_from_string(
      "authz-list,id=a2,rules=[{\"match\":\"fred\",,\"policy\":\"allow\"}]", &error);
  g_assert_no_error(error);
  g_assert_true(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(object), "fred", nullptr));
  qom_object_del_all();
}

static void test_other_types() {
  g_autoptr(GError) error = nullptr;
  g_autofree char *dir = g_dir_make_tmp("qio-qom-XXXXXX", &error);
  g_autofree char *path = g_build_filename(dir, "rules.json", nullptr);
  g_assert_true(g_file_set_contents(
      path, "{\"policy\": \"allow\", \"rules\": [{\"match\": \"eve\", \"policy\": \"deny\"}]}",
      -1, &error));
  g_autofree char *opts = g_strdup_printf("authz-listfile,id=f0,filename=%s,refresh=off", path);
  GObject *listfile = qom_object_add_from_string(opts, &error);
  g_assert_no_error(error);
  g_assert_true(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(listfile), "alice", nullptr));
  g_assert_false(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(listfile), "eve", nullptr));
  GObject *pam = qom_object_add_from_string("authz-pam,id=p0,service=qio-test", &error);
  g_assert_no_error(error);
  g_autofree char *service = nullptr;
  g_object_get(pam, "service", &service, nullptr);
  g_assert_cmpstr(service, ==, "qio-test");
  g_assert_nonnull(qom_object_add_from_string("authz-simple,id=z0,identity=CN=a,,O=b", &error));
  g_assert_true(qcrypto_authz_is_allowed(QCRYPTO_AUTHZ(qom_object_lookup("z0")), "CN=a,O=b",
                                         nullptr));
  qom_object_del_all();
  g_unlink(path);
  g_rmdir(dir);
}

/* TLS credentials go through the same -object path and complete step. */
static void test_tls_creds() {
  g_autoptr(GError) error = nullptr;
  GObject *anon = qom_object_add_from_string("tls-creds-anon,id=anon0,endpoint=server", &error);
  g_assert_no_error(error);
  g_assert_true(QCRYPTO_IS_TLS_CREDS_ANON(anon));
  g_assert_cmpint(qcrypto_tls_creds_get_endpoint(QCRYPTO_TLS_CREDS(anon)), ==,
                  QCRYPTO_TLS_CREDS_ENDPOINT_SERVER);
  /* A missing directory fails the complete step, naming the object and the file. */
  add_fails("tls-creds-x509,id=x0,endpoint=server,dir=/nonexistent/qio-pki", "'x0'",
            "/nonexistent/qio-pki");
  g_assert_null(qom_object_lookup("x0"));
  add_fails("tls-creds-x509,id=x1,endpoint=sideways", "'x1'", "endpoint");
  gpointer creds = qom_object_ref_typed("anon0", QCRYPTO_TYPE_TLS_CREDS, "TLS credentials", &error);
  g_assert_no_error(error);
  g_assert_false(qom_object_del("anon0", &error));
  g_assert_error(error, QOM_ERROR, QOM_ERROR_IN_USE);
  g_clear_error(&error);
  g_object_unref(creds);
  g_assert_true(qom_object_del("anon0", &error));
  g_assert_no_error(error);
}

static JsonObject *json_args(const char *text) {
  g_autoptr(JsonNode) node = json_from_string(text, nullptr);
  g_assert_nonnull(node);
  return json_object_ref(json_node_get_object(node));
}

static void test_qmp() {
  g_autoptr(GError) error = nullptr;
  /* QEMU 7+: properties at the top level. */
  g_autoptr(JsonObject) flat =
      json_args("{\"qom-type\": \"secret\", \"id\": \"q0\", \"data\": \"pw\"}");
  g_assert_nonnull(qom_object_add_qmp(flat, &error));
  g_assert_no_error(error);
  /* Older clients: inside "props". */
  g_autoptr(JsonObject) nested =
      json_args("{\"qom-type\": \"secret\", \"id\": \"q1\", \"props\": {\"data\": \"pw1\"}}");
  g_assert_nonnull(qom_object_add_qmp(nested, &error));
  g_autofree char *text = nullptr;
  g_assert_true(qcrypto_secret_lookup_text("q1", &text, &error));
  g_assert_cmpstr(text, ==, "pw1");

  g_assert_null(qom_object_add_qmp(flat, &error));
  g_assert_error(error, QOM_ERROR, QOM_ERROR_EXISTS);
  assert_mentions(error, "'q0'", "'secret'");
  g_clear_error(&error);

  g_autoptr(JsonObject) del = json_args("{\"id\": \"q0\"}");
  g_assert_true(qom_object_del_qmp(del, &error));
  g_assert_null(qom_object_lookup("q0"));
  g_assert_false(qom_object_del_qmp(del, &error));
  g_assert_error(error, QOM_ERROR, QOM_ERROR_NOT_FOUND);
  assert_mentions(error, "'q0'");
  g_clear_error(&error);
  g_autoptr(JsonObject) noid = json_args("{\"ident\": \"q1\"}");
  g_assert_false(qom_object_del_qmp(noid, &error));
  assert_mentions(error, "\"id\"");
  g_clear_error(&error);

  /* The id is free again after deletion. */
  g_assert_nonnull(qom_object_add_qmp(flat, &error));
  g_auto(GStrv) ids = qom_object_list_ids();
  g_assert_cmpuint(g_strv_length(ids), ==, 2);
  g_assert_cmpstr(ids[0], ==, "q0");
  g_assert_cmpstr(ids[1], ==, "q1");
  qom_object_del_all();
}

static void test_in_use_and_typed_lookup() {
  g_autoptr(GError) error = nullptr;
  g_assert_nonnull(qom_object_add_from_string("secret,id=tls0,data=x", &error));
  g_assert_nonnull(qom_object_add_from_string("authz-simple,id=auth0,identity=alice", &error));

  gpointer wrong = qom_object_ref_typed("tls0", QCRYPTO_TYPE_AUTHZ, "an authorization object",
                                        &error);
  g_assert_null(wrong);
  g_assert_error(error, QOM_ERROR, QOM_ERROR_WRONG_TYPE);
  assert_mentions(error, "Object 'tls0' is of type 'secret', not an authorization object");
  g_clear_error(&error);
  g_assert_null(qom_object_ref_typed("nope", QCRYPTO_TYPE_AUTHZ, "an authorization object",
                                     &error));
  g_assert_error(error, QOM_ERROR, QOM_ERROR_NOT_FOUND);
  assert_mentions(error, "'nope'", "an authorization object");
  g_clear_error(&error);

  /* A consumer's reference makes the object in use. */
  auto *authz = static_cast<QCryptoAuthz *>(
      qom_object_ref_typed("auth0", QCRYPTO_TYPE_AUTHZ, "an authorization object", &error));
  g_assert_no_error(error);
  g_assert_true(QCRYPTO_IS_AUTHZ_SIMPLE(authz));
  g_assert_false(qom_object_del("auth0", &error));
  g_assert_error(error, QOM_ERROR, QOM_ERROR_IN_USE);
  assert_mentions(error, "'auth0'", "in use");
  g_clear_error(&error);
  g_assert_true(qom_object_lookup("auth0") == G_OBJECT(authz));
  g_object_unref(authz);
  g_assert_true(qom_object_del("auth0", &error));
  g_assert_no_error(error);

  /* The secret hook's reference is transient: no lasting use. */
  g_autoptr(GBytes) bytes = nullptr;
  g_assert_true(qcrypto_secret_lookup_bytes("tls0", &bytes, &error));
  g_assert_true(qom_object_del("tls0", &error));
}

static void test_types() {
  g_autofree char *list = qom_type_list();
  g_assert_cmpstr(list, ==,
                  "authz-list, authz-listfile, authz-pam, authz-simple, secret, test-thing, "
                  "tls-cipher-suites, tls-creds-anon, tls-creds-psk, tls-creds-x509");
  g_assert_true(qom_type_lookup("authz-pam") == QCRYPTO_TYPE_AUTHZ_PAM);
  g_assert_true(qom_type_lookup("tls-creds-x509") == QCRYPTO_TYPE_TLS_CREDS_X509);
  g_assert_cmpstr(qom_type_name(QCRYPTO_TYPE_SECRET), ==, "secret");
  g_assert_null(qom_type_name(G_TYPE_OBJECT));
}

/* Input nested without bound (found by fuzzing): dotted keys cost the
 * square of their depth, and JSON nested 100 000 deep overflowed the
 * stack in json-glib; all are refused, naming the fault. */
static void test_deep_input() {
  std::string dots = "secret,id=deep1,";
  for (int i = 0; i < 60000; i++) dots += "a.";
  dots += "a=x";
  g_autoptr(GError) error = nullptr;
  g_assert_null(qom_object_add_from_string(dots.c_str(), &error));
  g_assert_nonnull(strstr(error->message, "more than 32 dotted components"));
  g_clear_error(&error);
  std::string deep_json = "{\"qom-type\":\"secret\",\"id\":\"deep2\",\"data\":" +
                          std::string(100000, '[');
  g_assert_null(qom_object_add_from_string(deep_json.c_str(), &error));
  g_assert_nonnull(strstr(error->message, "nested too deep"));
  g_clear_error(&error);
  /* What json-glib reads differently from plain JSON must not hide
   * brackets: a '"' in single quotes is counted past; comments (json-glib
   * starts one at any '/') and short or unpaired \u escapes (after which
   * it skips characters, quotes included) are refused outright. */
  const struct {
    const char *hide, *why;
  } hiding[] = {{"'\"', ", "nested too deep"},
                {"/* \" */ ", "comments are not JSON"},
                {"1 /\"/ ,", "comments are not JSON"},
                {"\"\\u0\"x\", ", "without four hex digits"},
                {"\"\\uD800\"x\", ", "unpaired"},
                {"\"\\uDC00\", ", "unpaired"}};
  for (const auto &h : hiding) {
    std::string hidden = "{\"qom-type\":\"secret\",\"id\":\"deep5\",\"data\":[" +
                         std::string(h.hide) + std::string(100000, '[');
    g_assert_null(qom_object_add_from_string(hidden.c_str(), &error));
    if (!strstr(error->message, h.why)) g_error("%s: %s", h.hide, error->message);
    g_clear_error(&error);
  }
  /* Valid escapes and surrogate pairs still parse. */
  GObject *escaped = qom_object_add_from_string(
      "{\"qom-type\":\"secret\",\"id\":\"esc1\",\"data\":\"a\\u00e9\\uD83D\\uDE00\\\"/\"}",
      &error);
  g_assert_no_error(error);
  g_assert_nonnull(escaped);
  qom_object_del("esc1", nullptr);
  std::string deep_rules = "authz-list,id=deep3,rules=" + std::string(100000, '[');
  g_assert_null(qom_object_add_from_string(deep_rules.c_str(), &error));
  g_assert_nonnull(strstr(error->message, "nested too deep"));
  g_clear_error(&error);
  /* 31 dots (32 components) are still keys, refused only as unknown. */
  std::string ok = "secret,id=deep4,data=x";
  for (int i = 0; i < 31; i++) ok += i ? ".a" : ",a";
  ok += "=1";
  g_assert_null(qom_object_add_from_string(ok.c_str(), &error));
  g_assert_nonnull(strstr(error->message, "no property 'a'"));
  g_assert_null(qom_object_lookup("deep1"));
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  qom_init();
  qom_type_register("test-thing", TEST_TYPE_THING);
  g_test_add_func("/qom/keyval", test_keyval);
  g_test_add_func("/qom/properties/scalar", test_scalar_properties);
  g_test_add_func("/qom/malformed-corpus", test_malformed_corpus);
  g_test_add_func("/qom/random-options", test_random_options);
  g_test_add_func("/qom/secrets-by-id", test_secrets_by_id);
  g_test_add_func("/qom/json-form", test_json_form);
  g_test_add_func("/qom/other-types", test_other_types);
  g_test_add_func("/qom/qmp", test_qmp);
  g_test_add_func("/qom/in-use-and-typed-lookup", test_in_use_and_typed_lookup);
  g_test_add_func("/qom/types", test_types);
  g_test_add_func("/qom/tls-creds", test_tls_creds);
  g_test_add_func("/qom/deep-input", test_deep_input);
  int rc = g_test_run();
  qom_object_del_all();
  return rc;
}
