/* -object and QMP object-add text: the input is what follows -object,
 * either QEMU's key=value form or its JSON form, and creates any
 * registered object type (secrets, TLS credentials, authz rules and
 * files) with whatever properties it names.  Every object it created must
 * then be deletable by its id, leaving the registry empty. */
#include "config.h"

#include "qom/object-registry.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const bool initialized = (qom_init(), true);
  (void)initialized;
  std::string text(reinterpret_cast<const char *>(data), size);
  GError *error = nullptr;
  GObject *obj = qom_object_add_from_string(text.c_str(), &error);
  g_clear_error(&error);
  if (!obj) return 0;
  char **ids = qom_object_list_ids();
  for (char **id = ids; *id; id++) {
    if (!qom_object_del(*id, &error)) {
      fprintf(stderr, "object '%s' was created but cannot be deleted: %s\n", *id,
              error->message);
      abort();
    }
  }
  g_strfreev(ids);
  return 0;
}
