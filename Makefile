# The two set-up commands on a fresh Debian 12 or 13 machine, as root:  make demo   and   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INVENTORY ?= inventory/lab.py
# podman runs the lab hosts (with runc: crun refuses cgroup v1/v2 hybrid hosts); mmdebstrap builds their image.
SYSTEM_PACKAGES := podman runc netavark aardvark-dns iptables mmdebstrap openssh-client python3-venv

.PHONY: demo test unit lint docs locks bench check check-deep status enrol rotate-ca rotate-token faults lab-up lab-down lab-status system-deps venv clean

demo: system-deps venv ## Build the lab and deploy the appliance into it
	$(BIN)/python -m lab up
	$(BIN)/pyinfra -y $(INVENTORY) deploys/full.py
	@echo
	@$(BIN)/python -m lab status
	@echo
	-@$(BIN)/python tools/status.py --inventory $(INVENTORY)  # exits 1 while an alert fires: shown, not an error
	@echo "The monitor's password (user clawlan): .lab/site/secrets/monitor-password"
	@echo "Log in with: $(BIN)/python -m lab ssh lab-back   (remove the lab with: make lab-down)"

# The e2e suite opens the dashboard in Debian's Chromium (tests/support/browser.py); a target-specific value reaches
# system-deps as test's prerequisite.
test: SYSTEM_PACKAGES += chromium
test: system-deps venv ## Every test: unit, then end to end on a lab it builds and removes (and the 25 slowest steps)
	$(BIN)/pytest --durations=25

unit: venv ## Unit tests only (no lab)
	$(BIN)/pytest -m "not e2e"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: venv ## The docs' settings tables, made from the settings classes (a unit test fails when they drift)
	$(BIN)/python -m tools.docs

locks: venv ## Lock files with hashes (locks/): make locks [PIN=openclaw==X] [LOCK=package==Y] [REFRESH=1]
	$(BIN)/python tools/locks.py $(foreach p,$(PIN),--pin $(p)) $(foreach l,$(LOCK),--lock $(l)) $(if $(REFRESH),--refresh)

bench: system-deps venv ## On the lab (brought up if it is not, and left up): no-op re-run time of deploys/full.py, people at once (1 against 8 chats)
	$(BIN)/python bench/noop_rerun.py --keep
	$(BIN)/python bench/at_once.py --inventory inventory/lab.py

check: venv ## Drift, compliance and latency of a running site: make check INVENTORY=inventory/site.py
	$(BIN)/python tools/check.py --inventory $(INVENTORY) $(CHECK_ARGS)

check-deep: venv ## make check, and the checks that take minutes: the prompt cache's answers, the longest prompt, people at once
	$(BIN)/python tools/check.py --inventory $(INVENTORY) --deep $(CHECK_ARGS)

status: venv ## The appliance at a glance from its Prometheus: memory, latency, speed, pool, alerts firing
	$(BIN)/python tools/status.py --inventory $(INVENTORY)

enrol: venv ## Trust a (replacement) box's SSH host key: make enrol HOST=claw-back [FINGERPRINT=SHA256:...]
	$(BIN)/python tools/enrol.py --inventory "$(INVENTORY)" "$(HOST)" $(if $(FINGERPRINT),--fingerprint "$(FINGERPRINT)")

faults: venv ## The faults suite on a deployed lab (make demo first): each fault injected, detected, recovered
	CLAWLAN_REUSE_LAB=1 CLAWLAN_KEEP_LAB=1 $(BIN)/pytest -p no:cacheprovider tests/e2e/test_11_faults.py

rotate-ca: venv ## Rotate the site CA, one step at a time, a deploy after each: make rotate-ca STEP=begin|switch|finish|status
	$(BIN)/python tools/rotate_ca.py --inventory "$(INVENTORY)" "$(STEP)"

rotate-token: venv ## A new gateway token (or SECRET=monitor-password|model-api-key); deploy after it
	$(BIN)/python tools/rotate_secret.py --inventory "$(INVENTORY)" "$(or $(SECRET),gateway-token)"

lab-up: system-deps venv
	$(BIN)/python -m lab up
lab-down: venv
	$(BIN)/python -m lab down
lab-status: venv
	$(BIN)/python -m lab status

system-deps: ## Debian packages the lab needs, installed only when missing
	@missing=$$(for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(BIN)/.installed $(BIN)/promtool

# Every package of the control machine's virtualenv comes from locks/control.txt, checked against its hashes;
# clawlan itself is installed without its dependencies (the lock has them) and without an unchecked build backend.
$(BIN)/.installed: pyproject.toml locks/control.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r locks/control.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# promtool checks and unit-tests the alert rules (make unit). Debian 13 packages it alone (promtool); Debian 12's
# prometheus package (2.42, as on the monitor) carries it, but installing that package would set up a Prometheus
# service on this control machine. Either way: take the .deb and extract the one binary. apt-get download needs
# package lists, so refresh them once if it fails; the sandbox user is root because _apt cannot write into mktemp's
# private directory.
$(BIN)/promtool: | $(BIN)/.installed
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	get() { apt-get download -qq -o APT::Sandbox::User=root promtool 2>/dev/null || \
		apt-get download -qq -o APT::Sandbox::User=root prometheus; } && \
	{ get 2>/dev/null || { apt-get update -qq && get; }; } && \
	dpkg-deb --fsys-tarfile *.deb | tar -xO ./usr/bin/promtool > "$(abspath $@).tmp" && \
	chmod 755 "$(abspath $@).tmp" && mv "$(abspath $@).tmp" "$(abspath $@)"
	$@ --version | head -1

clean:
	rm -rf $(VENV) build *.egg-info
