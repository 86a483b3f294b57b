# Functional and interop tests: TAP-speaking scripts or programs.
functional_tests =
TESTS += $(functional_tests)
EXTRA_DIST += $(functional_tests)

functional_tests += tests/functional/test-layering.sh
functional_tests += tests/functional/test-po.sh
functional_tests += tests/functional/test-qiod.py
EXTRA_DIST += tests/functional/qiodtest.py
functional_tests += tests/functional/test-qio-ctl.py
functional_tests += tests/functional/test-tls-interop.sh
check_PROGRAMS += tests/functional/tls-endpoint
tests_functional_tls_endpoint_SOURCES = tests/functional/tls-endpoint.cc
tests_functional_tls_endpoint_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_functional_tls_endpoint_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
