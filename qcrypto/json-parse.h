/*
 * qcrypto_json_parse: JSON text from outside (a migration source, an authz
 * rules file, -object or object-add values) into a json-glib node.
 * json-glib 1.6 recurses once per nesting level without a limit, so text
 * nested deeper than QCRYPTO_JSON_MAX_DEPTH is refused before it is
 * parsed: 100 KB of '[' would otherwise overflow the stack.  So is text
 * with what valid JSON never has but json-glib would read past the count
 * (comments, short or unpaired \u escapes).  In-tree only
 * (not installed): the public C API has no json-glib.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* More than any document qio reads needs; as deep as QMP allows. */
#define QCRYPTO_JSON_MAX_DEPTH 64

/* A new reference to the root of @text (@len bytes, or -1: NUL-ended), or
 * NULL with @error (QCRYPTO_ERROR_INVALID_ARGUMENT) saying where it breaks
 * or that it is nested too deep. */
JsonNode *qcrypto_json_parse(const char *text, gssize len, GError **error);

G_END_DECLS
