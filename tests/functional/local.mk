# Functional and interop tests: TAP-speaking scripts or programs.
functional_tests =
TESTS += $(functional_tests)
EXTRA_DIST += $(functional_tests)

functional_tests += tests/functional/test-layering.sh
functional_tests += tests/functional/test-po.sh

check_PROGRAMS += tests/functional/nbd-client-check
tests_functional_nbd_client_check_SOURCES = tests/functional/nbd-client-check.cc
tests_functional_nbd_client_check_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_functional_nbd_client_check_LDADD = nbd/libnbd-qio.la qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
functional_tests += tests/functional/test-nbd-interop.sh
functional_tests += tests/functional/test-nbd-libnbd.py
functional_tests += tests/functional/test-websock-interop.py
check_PROGRAMS += tests/functional/websock-echo-server
tests_functional_websock_echo_server_SOURCES = tests/functional/websock-echo-server.cc
tests_functional_websock_echo_server_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_functional_websock_echo_server_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
check_PROGRAMS += tests/functional/websock-client
tests_functional_websock_client_SOURCES = tests/functional/websock-client.cc
tests_functional_websock_client_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_functional_websock_client_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
functional_tests += tests/functional/test-qiod.py
EXTRA_DIST += tests/functional/qiodtest.py
functional_tests += tests/functional/test-qio-ctl.py
functional_tests += tests/functional/test-tls-interop.sh
check_PROGRAMS += tests/functional/tls-endpoint
tests_functional_tls_endpoint_SOURCES = tests/functional/tls-endpoint.cc
tests_functional_tls_endpoint_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_functional_tls_endpoint_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
functional_tests += tests/functional/test-nbd-tls.sh
functional_tests += tests/functional/test-qiod-tls.py
EXTRA_DIST += tests/functional/nbd-pki.sh
functional_tests += tests/functional/test-qiod-nbd.py
