/* The key=value syntax of -object (QEMU's keyval rules):
 *   TYPE,id=ID,key=value,other=value
 * - elements are separated by ','; ",," in a value is a literal comma;
 * - the first element may omit "key=": it is then the value of
 *   @implied_key (for -object, "qom-type");
 * - keys are letters, digits, '-', '_' and dots; a dotted key builds
 *   structure: rules.0.match=x,rules.0.policy=allow gives
 *   {"rules": [{"match": "x", "policy": "allow"}]} (objects whose keys are
 *   0, 1, 2, ... become arrays);
 * - every value is a string; its meaning is up to the consumer.
 * Errors name the parameter and say what is wrong (QOM_ERROR_INVALID_ARGUMENT). */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

JsonObject *qom_keyval_parse(const char *text, const char *implied_key, GError **error);

/* The value of "id=" in @text, found without full parsing, so that a parse
 * error can still name the object; NULL if there is none. */
char *qom_keyval_find_id(const char *text);

G_END_DECLS
