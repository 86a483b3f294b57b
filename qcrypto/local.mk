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
qcryptoinclude_HEADERS += qcrypto/tls-creds.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/tls-creds.cc qcrypto/tls-creds-priv.h
qcryptoinclude_HEADERS += qcrypto/tls-creds-x509.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/tls-creds-x509.cc
qcryptoinclude_HEADERS += qcrypto/tls-creds-psk.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/tls-creds-psk.cc
qcryptoinclude_HEADERS += qcrypto/tls-creds-anon.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/tls-creds-anon.cc
qcryptoinclude_HEADERS += qcrypto/tls-cipher-suites.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/tls-cipher-suites.cc
qcryptoinclude_HEADERS += qcrypto/tls-session.h
qcrypto_libqcrypto_la_SOURCES += qcrypto/tls-session.cc
