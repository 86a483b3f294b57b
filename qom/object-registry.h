/* The object registry: user-creatable objects (TLS credentials, secrets,
 * authorization objects) created once by id and shared by every consumer.
 *
 * One code path serves the three ways of creating an object:
 *   -object TYPE,id=ID,key=value,...      qom_object_add_from_string()
 *   -object '{"qom-type":TYPE,"id":ID,...}'  (same function, JSON form)
 *   QMP object-add {"qom-type":..., "id":..., props at top level}
 *                                         qom_object_add_qmp()
 * and QMP object-del / deletion:          qom_object_del(), qom_object_del_qmp()
 * See docs/objects.md for the syntax.
 *
 * Types: a QOM type name ("secret", "authz-list", "tls-creds-x509", ...)
 * maps to a GType.  The object gets its properties from the options (GObject
 * property names, dashes as in QEMU); the "id" property, when the class has
 * one, is set to the object id; an object implementing GInitable is then
 * completed with g_initable_init(), whose error fails the creation.
 *
 * "In use": the registry holds one reference to every object.  A consumer
 * that keeps an object takes its own reference (qom_object_ref_typed()) and
 * drops it when it lets go.  qom_object_del() refuses (QOM_ERROR_IN_USE)
 * while any reference other than the registry's exists, i.e. while the
 * GObject reference count is above 1.
 *
 * Thread safety: lookups and qom_object_ref_typed() may be called from any
 * thread; adding and deleting objects belongs to the main thread. */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

#include "qom/error.h"

G_BEGIN_DECLS

/* Registers the built-in types (secret, authz-*) and installs the secret
 * lookup hook (qcrypto_secret_set_lookup_func) that resolves secret ids
 * through the registry.  Idempotent; call once before anything else. */
void qom_init(void);

/* Makes @type creatable as @name.  Registering a name again replaces it. */
void qom_type_register(const char *name, GType type);
/* The GType registered as @name, or G_TYPE_INVALID. */
GType qom_type_lookup(const char *name);
/* The QOM type name @type was registered under (the most derived
 * registered type of @type), or NULL. */
const char *qom_type_name(GType type);
/* Every registered type name, sorted, comma separated (for messages). */
char *qom_type_list(void);

/* Converts a JSON value to a property of a structured (boxed) type, e.g.
 * authz-list's "rules".  In the key=value form such a value arrives either
 * as a JSON array/object built from dotted keys (rules.0.match=...) or as a
 * string holding JSON text; @parse sees the JsonNode either way. */
typedef gboolean (*QomPropertyParseFunc)(JsonNode *node, GValue *value, GError **error);
void qom_property_type_register(GType value_type, QomPropertyParseFunc parse);

/* Creates an object of QOM type @type named @id with @props (JSON-typed
 * values: booleans as JSON booleans, integers as JSON numbers, enums as
 * their nick strings; may be NULL) and adds it to the registry.  Returns
 * the object (owned by the registry) or NULL with @error set. */
GObject *qom_object_add(const char *type, const char *id, JsonObject *props, GError **error);

/* Parses a -object argument (key=value form, or JSON when it starts with
 * '{') and adds the object. */
GObject *qom_object_add_from_string(const char *optarg, GError **error);

/* QMP object-add: @args holds "qom-type", "id" and the properties, either
 * at the top level or (older clients) inside "props". */
GObject *qom_object_add_qmp(JsonObject *args, GError **error);

/* Deletes the object named @id; refused while it is in use (see above). */
gboolean qom_object_del(const char *id, GError **error);
/* QMP object-del: @args holds "id". */
gboolean qom_object_del_qmp(JsonObject *args, GError **error);

/* The object named @id (owned by the registry) or NULL. Main thread only. */
GObject *qom_object_lookup(const char *id);

/* A new reference to the object named @id, which must be an instance of
 * @type; @kind describes @type for the message (e.g. "TLS credentials",
 * "a secret", "an authorization object").  Errors: QOM_ERROR_NOT_FOUND,
 * QOM_ERROR_WRONG_TYPE ("Object 'tls0' is a secret, not TLS credentials").
 * Holding the reference marks the object in use. */
gpointer qom_object_ref_typed(const char *id, GType type, const char *kind, GError **error);

/* The ids of all objects, sorted; free with g_strfreev(). */
char **qom_object_list_ids(void);

/* Drops every object (the registry's references), for shutdown and tests. */
void qom_object_del_all(void);

G_END_DECLS
