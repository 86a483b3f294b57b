# Unit tests: GLib test programs, one per class.  Add one block per test.
UNIT_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
UNIT_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
unit_tests =
check_PROGRAMS += $(unit_tests)
TESTS += $(unit_tests)

unit_tests += tests/unit/test-channel-buffer
tests_unit_test_channel_buffer_SOURCES = tests/unit/test-channel-buffer.cc
tests_unit_test_channel_buffer_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_channel_buffer_LDADD = $(UNIT_LDADD)

unit_tests += tests/unit/test-guest
tests_unit_test_guest_SOURCES = tests/unit/test-guest.cc
tests_unit_test_guest_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_guest_LDADD = host/libhost.la $(UNIT_LDADD)

unit_tests += tests/unit/test-qmp-server
tests_unit_test_qmp_server_SOURCES = tests/unit/test-qmp-server.cc
tests_unit_test_qmp_server_CPPFLAGS = $(UNIT_CPPFLAGS) $(JSON_GLIB_CFLAGS)
tests_unit_test_qmp_server_LDADD = monitor/libmonitor.la $(UNIT_LDADD) $(JSON_GLIB_LIBS)
