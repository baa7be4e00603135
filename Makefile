# The two entry points of the README. Both install what they need first (scripts/setup.sh).
.PHONY: setup fight-night smoke test test-backends

setup:
	./scripts/setup.sh

fight-night: setup
	.venv/bin/wagerlab run scenarios/fight_night.toml --out runs/fight_night

smoke: setup
	.venv/bin/wagerlab run scenarios/smoke.toml --out runs/smoke

test: setup
	.venv/bin/python -m pytest

# The tests whose behaviour depends on the database or the cache, and a smoke run, on the
# PostgreSQL and Redis servers below. The tests create their database if it is missing
# and a schema per test inside it; they flush Redis database 14 and the run uses 15.
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/wagerlab_ci
TEST_REDIS_URL ?= redis://127.0.0.1:6379/14
RUN_REDIS_URL ?= redis://127.0.0.1:6379/15
BACKEND_TESTS = tests/test_backends.py tests/test_backends_redis.py \
	tests/platform/test_api_bets.py tests/platform/test_api_markets.py tests/platform/test_api_users.py \
	tests/platform/test_chainapi.py tests/platform/test_monitors_apply.py tests/platform/test_monitors_node.py \
	tests/platform/test_monitors_supervisor.py

test-backends: setup
	.venv/bin/wagerlab run scenarios/smoke.toml --no-progress --out runs/smoke-postgres --db $(PG_URL)_smoke --redis $(RUN_REDIS_URL)
	WAGERLAB_TEST_DB_URL=$(PG_URL) WAGERLAB_TEST_REDIS_URL=$(TEST_REDIS_URL) .venv/bin/python -m pytest $(BACKEND_TESTS)
