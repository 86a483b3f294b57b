# host/: add one line per file (+=).
# The synthetic guest: RAM, workload, disks, serial shell, framebuffer.
noinst_LTLIBRARIES += host/libhost.la
host_libhost_la_SOURCES =
host_libhost_la_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
host_libhost_la_LIBADD = qio/libqio.la $(GLIB_LIBS)
host_libhost_la_SOURCES += host/guest-ram.h host/guest-ram.cc
host_libhost_la_SOURCES += host/guest-disk.h host/guest-disk.cc
host_libhost_la_SOURCES += host/workload.h host/workload.cc
host_libhost_la_SOURCES += host/font.h host/font.cc
host_libhost_la_SOURCES += host/framebuffer.h host/framebuffer.cc
host_libhost_la_SOURCES += host/serial-shell.h host/serial-shell.cc
host_libhost_la_SOURCES += host/guest.h host/guest.cc
host_libhost_la_SOURCES += host/block-mirror.h host/block-mirror.cc
host_libhost_la_LIBADD += nbd/libnbd-qio.la
