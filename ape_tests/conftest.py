"""Fixtures for the ape-style contract tests: `ape test ape_tests/` on ape's local test chain."""

import pytest


@pytest.fixture
def deployer(accounts):
    return accounts[0]


@pytest.fixture
def bettor(accounts):
    return accounts[1]


@pytest.fixture
def guardian(accounts):
    return accounts[2]


@pytest.fixture
def token(project, deployer):
    return project.WagerToken.deploy(sender=deployer)


@pytest.fixture
def book(project, deployer, token, guardian, accounts):
    return project.Sportsbook.deploy(token.address, accounts[3].address, guardian.address, sender=deployer)
