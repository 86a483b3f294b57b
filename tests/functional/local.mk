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
