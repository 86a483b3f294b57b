# ui/: add one line per file (+=).
# The VNC server qiod offers for the guest's display, and its QMP commands.
noinst_LTLIBRARIES += ui/libui.la
ui_libui_la_SOURCES =
ui_libui_la_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS) $(ZLIB_CFLAGS)
ui_libui_la_LIBADD = host/libhost.la qom/libqom.la qio/libqio.la qcrypto/libqcrypto.la \
	$(JSON_GLIB_LIBS) $(GLIB_LIBS) $(ZLIB_LIBS)
ui_libui_la_SOURCES += ui/vnc-pixel-format.h ui/vnc-pixel-format.cc
ui_libui_la_SOURCES += ui/vnc-tight-encoder.h ui/vnc-tight-encoder.cc
ui_libui_la_SOURCES += ui/vnc-auth-throttle.h ui/vnc-auth-throttle.cc
ui_libui_la_SOURCES += ui/vnc-server.h ui/vnc-server.cc
ui_libui_la_SOURCES += ui/qmp-vnc-commands.h ui/qmp-vnc-commands.cc
