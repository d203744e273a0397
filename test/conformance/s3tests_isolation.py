"""pytest plugin for s3-tests.sh --isolate: gives every test its own bucket-name prefix.

The suite's autouse fixture deletes every bucket carrying the run's prefix before and after each
test. When one bucket cannot be deleted (a server bug), every later test then errors at set-up and
the run says nothing about the areas it never reached. With a fresh prefix per test, a test only
cleans up its own buckets, so each test is measured on its own. This is a diagnostic: the
official figure is the run without --isolate.
"""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    import s3tests.functional as suite

    if suite.prefix is None:
        return  # not configured yet: the package fixture will choose the first prefix
    suite.prefix = suite.choose_bucket_prefix(template='yunhai-{random}-')
