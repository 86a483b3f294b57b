#include "config.h"
#include "qom/error.h"

G_DEFINE_QUARK(qom-error-quark, qom_error)
