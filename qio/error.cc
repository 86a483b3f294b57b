#include "config.h"
#include "qio/error.h"

G_DEFINE_QUARK(qio-error-quark, qio_error)
