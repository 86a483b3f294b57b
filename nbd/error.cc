#include "config.h"

#include "nbd/error.h"

G_DEFINE_QUARK(nbd-error-quark, nbd_error)
