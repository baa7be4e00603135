"""Test support for wagerlab and for projects that test against it (see `wagerlab.pytest_plugin`)."""
