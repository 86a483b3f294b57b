# libqcrypto: the only code that includes GnuTLS or SASL headers.
# Add one line per file (+=), so that branches merge.
lib_LTLIBRARIES += qcrypto/libqcrypto.la
qcryptoincludedir = $(includedir)/qio-1.0/qcrypto
qcryptoinclude_HEADERS =
qcrypto_libqcrypto_la_SOURCES =
qcrypto_libqcrypto_la_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(GNUTLS_CFLAGS)
qcrypto_libqcrypto_la_LIBADD = $(GLIB_LIBS) $(GNUTLS_LIBS) $(SASL_LIBS) $(PAM_LIBS)
qcrypto_libqcrypto_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined

qcryptoinclude_HEADERS += qcrypto/error.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/error.cc
qcryptoinclude_HEADERS += qcrypto/authz.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/authz.cc
qcryptoinclude_HEADERS += qcrypto/secret.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/secret.cc
