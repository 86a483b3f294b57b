/* Error messages must name what they are about: the object id, the file,
 * the key.  Fails the test unless @error is set and its message contains
 * @a and, if given, @b. */
#pragma once

#include <glib.h>

#include <cstring>

static inline void assert_mentions(const GError *error, const char *a, const char *b = nullptr) {
  g_assert_nonnull(error);
  if (a && !strstr(error->message, a)) g_error("'%s' missing in: %s", a, error->message);
  if (b && !strstr(error->message, b)) g_error("'%s' missing in: %s", b, error->message);
}
