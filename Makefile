# The two entry points of the README. Both install what they need first (scripts/setup.sh).
.PHONY: setup fight-night smoke test

setup:
	./scripts/setup.sh

fight-night: setup
	.venv/bin/wagerlab run scenarios/fight_night.toml --out runs/fight_night

smoke: setup
	.venv/bin/wagerlab run scenarios/smoke.toml --out runs/smoke

test: setup
	.venv/bin/python -m pytest
