# Functional and interop tests: TAP-speaking scripts or programs.
functional_tests =
TESTS += $(functional_tests)
EXTRA_DIST += $(functional_tests)

functional_tests += tests/functional/test-layering.sh
functional_tests += tests/functional/test-po.sh
functional_tests += tests/functional/test-qiod.py
EXTRA_DIST += tests/functional/qiodtest.py
functional_tests += tests/functional/test-qio-ctl.py
