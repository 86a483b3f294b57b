# monitor/: add one line per file (+=).
# The QMP server; it serves any QIOChannel.
noinst_LTLIBRARIES += monitor/libmonitor.la
monitor_libmonitor_la_SOURCES =
monitor_libmonitor_la_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS)
monitor_libmonitor_la_LIBADD = qio/libqio.la $(JSON_GLIB_LIBS) $(GLIB_LIBS)
monitor_libmonitor_la_SOURCES += monitor/qmp-error.h monitor/qmp-error.cc
monitor_libmonitor_la_SOURCES += monitor/json-splitter.h monitor/json-splitter.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-server.h monitor/qmp-server.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-session.h monitor/qmp-session.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-commands.h monitor/qmp-commands.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-object-commands.h monitor/qmp-object-commands.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-listener.h monitor/qmp-listener.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-fd-commands.h monitor/qmp-fd-commands.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-tls-commands.h monitor/qmp-tls-commands.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-nbd-commands.h monitor/qmp-nbd-commands.cc
monitor_libmonitor_la_SOURCES += monitor/qmp-block-jobs.h monitor/qmp-block-jobs.cc
