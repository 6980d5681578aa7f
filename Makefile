# Airlock: `make run` (install deps, build, start airlockd, run the brief's example)
#          `make test` (build everything, run every test, ASan/UBSan included)
# meson + ninja do the building; this file installs what they need and wires
# the steps together. Everything runs as root (namespaces, cgroups).

PY      := /usr/bin/python3
BUILD   := build
ASAN    := build-asan
FUZZ    := build-fuzz
RUNDIR  := $(CURDIR)/.run
PORT    ?= 7070
REGION  ?= eu

# What Python in the default `host` template can import for data work
# (tests/e2e/test_sdk.py checks each one inside a sandbox). python3-ipython
# is the Python REPL's engine (runner/airlock_runner.py; without it the
# runner falls back to its plain engine). r-base-core and r-cran-jsonlite
# serve run_code language="r" (runner/airlock_runner.R), nodejs
# language="javascript" (runner/airlock_runner.mjs); without them those
# languages answer a clear 400 (src/agent/lang.c).
TEMPLATE_PKGS := python3-pandas python3-numpy python3-matplotlib python3-scipy python3-openpyxl python3-jinja2 \
                 python3-ipython python3-pil r-base-core r-cran-jsonlite nodejs

# Building templates (docs/templates.md): Debian trees from the signed
# archive, and their erofs images for the vm backend.
TEMPLATE_BUILD_PKGS := mmdebstrap debian-archive-keyring erofs-utils

# The vm backend (docs/vm.md): QEMU, and what `make vm` packs the guest with.
# (defined before APT_PKGS: := expands at once, and a later definition left
# cpio out of a fresh machine's install)
VM_PKGS := qemu-system-x86 cpio binutils

APT_PKGS := meson ninja-build pkg-config gcc libc6-dev \
	libmicrohttpd-dev libjansson-dev libseccomp-dev libcap-dev libsqlite3-dev \
	libssl-dev libcurl4-openssl-dev libhttp-parser-dev libmnl-dev libnftables-dev nftables \
	python3 python3-dev python3-pip python3-pytest python3-setuptools \
	$(TEMPLATE_PKGS) \
	iproute2 curl procps openssl \
	$(TEMPLATE_BUILD_PKGS) \
	$(VM_PKGS)

VM_DIR := $(BUILD)/vm
# the `host` template's root image holds these packages and their closure
# (and Debian's essential tools, which no package lists as a dependency)
VM_HOST_PKGS := python3 $(TEMPLATE_PKGS) base-files bash dash coreutils debianutils diffutils findutils grep gzip \
	hostname libc-bin mawk ncurses-bin perl-base sed tar util-linux iproute2 procps python3-pip strace

# The fuzz build (make fuzz, fuzz-smoke): clang with libFuzzer and the
# sanitizer runtimes (libclang_rt.fuzzer, asan, ubsan).
FUZZ_PKGS := clang libclang-rt-14-dev

# make fuzz: each harness in fuzz/ runs this long; fuzz-smoke: 30 s each.
FUZZ_SECONDS ?= 300
FUZZ_HARNESSES := proto agent http egress
# UBSan only prints by default: a finding must stop the run and be saved
FUZZ_ENV := UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

.PHONY: all deps build build-asan build-fuzz vm run stop test test-unit test-jail test-agent test-e2e test-ts test-mcp test-e2b test-security bench bench-lang soak \
	test-faults test-py test-vm test-security-vm bench-vm bench-pause bench-fork lint-openapi \
	test-templates-slow \
	fuzz fuzz-smoke fuzz-run fuzz-regress clean

all: build

# The guest of the vm backend: Debian's cloud kernel (fetched, never
# installed), the initramfs (the static agent as /init), the host
# template's root image (cached by the hash of its packages). airlockd
# finds them in vm/ next to itself; the ASan build links to the same.
vm: build
	vm/fetch-kernel.sh $(VM_DIR)/kernel
	vm/build-initramfs.sh $(VM_DIR)/kernel $(BUILD)/airlock-agent runner/airlock_runner.py $(VM_DIR)/initramfs.cpio
	vm/build-host-image.sh $(VM_DIR) $(VM_HOST_PKGS)
	@if [ -d $(ASAN) ]; then ln -sfn ../$(BUILD)/vm $(ASAN)/vm; fi

# Install only what is missing, but always refresh the package lists first
# when something is (a fresh machine has stale or empty lists).
deps:
	@missing=""; for p in $(APT_PKGS) $(FUZZ_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD)

$(ASAN)/build.ninja:
	meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuild_agent=false -Dfault_injection=true

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# An ASan build dir set up before fault injection existed gets it turned on.
build-asan: deps $(ASAN)/build.ninja
	@meson configure $(ASAN) | grep -qE '^ *fault_injection +true' || meson setup --reconfigure $(ASAN) -Dfault_injection=true
	ninja -C $(ASAN)

# ---- fuzzing (fuzz/README.md). Everything is instrumented for coverage;
# only the harnesses link libFuzzer. Each run works on a copy of its seed
# corpus (the repository's corpus never grows in place), also reads the saved
# regressions, and writes whatever it finds to $(FUZZ)/artifacts/.
$(FUZZ)/build.ninja:
	CC=clang meson setup $(FUZZ) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuild_agent=false

build-fuzz: deps $(FUZZ)/build.ninja
	ninja -C $(FUZZ) $(foreach h,$(FUZZ_HARNESSES),fuzz/fuzz_$(h) fuzz/fuzz_$(h)_replay)

fuzz: build-fuzz
	@$(MAKE) --no-print-directory fuzz-run FUZZ_RUN_SECONDS=$(FUZZ_SECONDS)

# CI: every regression input and seed replayed, then 30 s of each harness;
# fails if anything crashes.
fuzz-smoke: build-fuzz
	@$(MAKE) --no-print-directory fuzz-regress
	@$(MAKE) --no-print-directory fuzz-run FUZZ_RUN_SECONDS=30

fuzz-regress:
	@for h in $(FUZZ_HARNESSES); do \
	  echo "== replay fuzz/regressions/$$h fuzz/corpus/$$h"; \
	  $(FUZZ_ENV) $(FUZZ)/fuzz/fuzz_$${h}_replay fuzz/regressions/$$h fuzz/corpus/$$h || exit 1; \
	done

# tmpfs when there is one: fuzz_agent rebuilds a scratch root for every input.
# fuzz_http: the daemon frees a request's memory on its connection thread,
# after the answer, so libFuzzer's after-each-input leak check races it and
# reports what is about to be freed; its leaks are checked at exit instead,
# after the harness stops the daemon (then nothing may be left).
fuzz-run:
	@mkdir -p $(FUZZ)/artifacts $(FUZZ)/logs; failed=""; \
	base=/tmp; [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm; \
	for h in $(FUZZ_HARNESSES); do \
	  scratch=$$(mktemp -d $$base/airlock-fuzz-$$h.XXXXXX) || exit 1; \
	  mkdir $$scratch/corpus $$scratch/tmp && cp fuzz/corpus/$$h/* $$scratch/corpus/; \
	  dict=fuzz/proto.dict; extra=""; \
	  if [ $$h = http ]; then dict=fuzz/http.dict; extra=-detect_leaks=0; fi; \
	  echo "== fuzz_$$h for $(FUZZ_RUN_SECONDS) s (log: $(FUZZ)/logs/$$h.log)"; \
	  $(FUZZ_ENV) FUZZ_TMPDIR=$$scratch/tmp $(FUZZ)/fuzz/fuzz_$$h -max_total_time=$(FUZZ_RUN_SECONDS) -timeout=25 \
	    -max_len=65536 -dict=$$dict $$extra -print_final_stats=1 -artifact_prefix=$(FUZZ)/artifacts/$$h- \
	    $$scratch/corpus fuzz/regressions/$$h > $(FUZZ)/logs/$$h.log 2>&1; rc=$$?; \
	  grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ)/logs/$$h.log | tail -1; \
	  if [ $$rc -ne 0 ]; then \
	    failed="$$failed $$h"; grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written' $(FUZZ)/logs/$$h.log | head -20; \
	    rm -rf $(FUZZ)/artifacts/$$h-corpus; mv $$scratch/corpus $(FUZZ)/artifacts/$$h-corpus; \
	    echo "the run's corpus is in $(FUZZ)/artifacts/$$h-corpus (a leak found at exit names no input: replay it)"; \
	  fi; \
	  rm -rf $$scratch; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzzing found problems in:$$failed (inputs in $(FUZZ)/artifacts/)"; exit 1; fi

# Start a daemon (replacing one this target started before), then run the
# brief's example against it. The daemon keeps running: `make stop` ends it.
run: build stop
	@mkdir -p $(RUNDIR) && chmod 700 $(RUNDIR)
	@[ -s $(RUNDIR)/api.key ] || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/^/ak_/' > $(RUNDIR)/api.key)
	@AIRLOCK_API_KEY=$$(cat $(RUNDIR)/api.key) setsid $(BUILD)/airlockd --listen 127.0.0.1:$(PORT) \
	  --state-dir $(RUNDIR)/state --region $(REGION) > $(RUNDIR)/airlockd.log 2>&1 < /dev/null & echo $$! > $(RUNDIR)/airlockd.pid
	@for i in $$(seq 1 100); do curl -sf http://127.0.0.1:$(PORT)/v1/healthz >/dev/null && break; sleep 0.1; done; \
	  curl -sf http://127.0.0.1:$(PORT)/v1/healthz >/dev/null || { echo "airlockd did not start:"; cat $(RUNDIR)/airlockd.log; exit 1; }
	@echo "airlockd running on http://127.0.0.1:$(PORT) (pid $$(cat $(RUNDIR)/airlockd.pid), log $(RUNDIR)/airlockd.log)"
	@echo "--- examples/seed_example.py ---"
	@AIRLOCK_URL=http://127.0.0.1:$(PORT) AIRLOCK_API_KEY=$$(cat $(RUNDIR)/api.key) PYTHONPATH=$(CURDIR)/sdk/python $(PY) examples/seed_example.py
	@echo "---"
	@echo "Try it:  export AIRLOCK_URL=http://127.0.0.1:$(PORT) AIRLOCK_API_KEY=\$$(cat $(RUNDIR)/api.key)"
	@echo "         $(BUILD)/airlock run examples/hello.py      (stop the daemon with: make stop)"

stop:
	@if [ -s $(RUNDIR)/airlockd.pid ] && kill -0 $$(cat $(RUNDIR)/airlockd.pid) 2>/dev/null; then \
	  kill -TERM $$(cat $(RUNDIR)/airlockd.pid); \
	  for i in $$(seq 1 100); do kill -0 $$(cat $(RUNDIR)/airlockd.pid) 2>/dev/null || break; sleep 0.1; done; \
	  echo "stopped airlockd"; fi; rm -f $(RUNDIR)/airlockd.pid

# Unit tests run under ASan/UBSan; the jail and agent suites create real
# namespaces, cgroups and seccomp filters; e2e runs the ASan daemon.
test: build build-asan vm lint-openapi
	$(MAKE) --no-print-directory test-unit test-jail test-agent test-e2e test-vm test-ts test-mcp test-e2b test-security fuzz-smoke

# docs/openapi.yaml through a real OpenAPI linter (@redocly/cli, pinned in
# tools/openapi/package-lock.json; npm ci reuses npm's cache when offline).
lint-openapi:
	command -v npm >/dev/null || { apt-get update && apt-get install -y --no-install-recommends nodejs npm; }
	cd tools/openapi && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	cd tools/openapi && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	  npx --no-install redocly lint --config redocly.yaml $(CURDIR)/docs/openapi.yaml

test-unit:
	meson test -C $(ASAN) --print-errorlogs

test-jail:
	$(ASAN)/tests/jail/test_jail $(CURDIR)/$(BUILD)/tests/jail/jail_probe

test-agent:
	AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py \
	  $(PY) -m pytest -q -p no:cacheprovider tests/agent

test-e2e:
	AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -p no:cacheprovider tests/e2e

# The vm backend (tests/vm): the same API on QEMU microvms, under TCG here;
# then the escape suite's cross-sandbox and filesystem attacks with every
# sandbox a VM (all of it: make test-security-vm).
VM_SECURITY_FAST := tests/security/test_cross_sandbox.py tests/security/test_filesystem.py
test-vm: build build-asan vm
	AIRLOCK_VM_DIR=$(CURDIR)/$(VM_DIR) AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -p no:cacheprovider tests/vm
	AIRLOCK_SECURITY_ISOLATION=vm AIRLOCK_VM_DIR=$(CURDIR)/$(VM_DIR) \
	  AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -p no:cacheprovider $(VM_SECURITY_FAST)

# The escape suite with every sandbox a VM (victim and attackers alike).
test-security-vm: build build-asan vm
	AIRLOCK_SECURITY_ISOLATION=vm AIRLOCK_VM_DIR=$(CURDIR)/$(VM_DIR) \
	  AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -p no:cacheprovider tests/security $(SECURITY_VM_ARGS)

# Fault injection (tests/e2e/test_faults.py, src/daemon/faultinj.h): every N
# until the fault stops firing, JSON allocations included; `make test-e2e`
# runs a short sweep without them.
test-faults: build build-asan
	AIRLOCK_FAULT_SWEEP=full AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/e2e/test_faults.py

# Every Python suite in one pytest run (tests/conftest.py fills in the same
# AIRLOCK_* as test-e2e; each suite still runs alone through its target).
# The TypeScript SDK (sdk/typescript) against a real ASan airlockd the test
# starts itself; typescript is pinned in its package-lock.json.
test-ts: build build-asan
	command -v npm >/dev/null || { apt-get update && apt-get install -y --no-install-recommends nodejs npm; }
	cd sdk/typescript && npm ci --prefer-offline --no-audit --no-fund && npm run build
	cd sdk/typescript && AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  node --test test/

# `airlock mcp` driven by the official MCP TypeScript SDK's client over stdio
# and Streamable HTTP, against a real ASan airlockd the tests start;
# @modelcontextprotocol/sdk is pinned in tests/mcp/package-lock.json and
# npm ci reuses npm's cache when offline.
test-mcp: build build-asan
	command -v npm >/dev/null || { apt-get update && apt-get install -y --no-install-recommends nodejs npm; }
	cd tests/mcp && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	cd tests/mcp && AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  node --test

# airlockd's E2B-compatible listener driven by E2B's own, unmodified npm
# packages (e2b, @e2b/code-interpreter; pinned in tests/e2b/package-lock.json).
test-e2b: build build-asan
	command -v npm >/dev/null || { apt-get update && apt-get install -y --no-install-recommends nodejs npm; }
	cd tests/e2b && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	cd tests/e2b && AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  node --test

test-py: build build-asan
	AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -p no:cacheprovider tests

# The state soak (tests/e2e/test_soak.py) for 10 minutes; `make test-e2e`
# runs it for AIRLOCK_SOAK_S (default 30) seconds.
SOAK_SECONDS ?= 600
soak: build build-asan
	AIRLOCK_SOAK_S=$(SOAK_SECONDS) AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/e2e/test_soak.py

# The escape suite: attacks from inside a sandbox against the ASan daemon,
# with a summary table by category (tests/security/conftest.py).
test-security:
	AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  AIRLOCK_ZYGOTE=$(CURDIR)/$(BUILD)/airlock-zygote \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -p no:cacheprovider tests/security

# The big `datasci` template: built once per machine (then cached by spec
# hash), the brief's pandas analysis on it, an offline wheel install.
test-templates-slow: build build-asan
	AIRLOCK_SLOW=1 AIRLOCK_DAEMON=$(CURDIR)/$(ASAN)/airlockd AIRLOCK_AGENT=$(CURDIR)/$(BUILD)/airlock-agent \
	  AIRLOCK_RUNNER=$(CURDIR)/runner/airlock_runner.py AIRLOCK_CLI=$(CURDIR)/$(ASAN)/airlock \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/e2e/test_templates_slow.py

# bubblewrap is the side-by-side baseline (a fresh sandboxed python3 per
# request). The full run holds 1,000 sandboxes and takes ~10 minutes;
# `make bench BENCH_ARGS=--quick` is a short one (200 live, fewer runs).
BENCH_ARGS ?=
bench: build
	@dpkg-query -W -f='$${Status}' bubblewrap 2>/dev/null | grep -q 'install ok installed' || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap; }
	$(PY) bench/bench.py --daemon $(BUILD)/airlockd $(BENCH_ARGS)
	$(PY) bench/context_first_call.py --daemon $(BUILD)/airlockd
	$(MAKE) --no-print-directory bench-lang
	$(MAKE) --no-print-directory bench-vm
	$(MAKE) --no-print-directory bench-pause

# First-call latency of Python, R and JavaScript cells in a fresh sandbox,
# with and without --warm-languages (bench/lang_bench.py, docs/benchmarks.md).
bench-lang: build
	W=$(CURDIR) N=$${N:-20} $(PY) bench/lang_bench.py

# The vm backend beside the jail in one run (bench/bench_vm.py, docs/benchmarks.md).
BENCH_VM_ARGS ?=
bench-vm: build vm
	$(PY) bench/bench_vm.py --daemon $(BUILD)/airlockd --vm-dir $(VM_DIR) $(BENCH_VM_ARGS)
	$(PY) bench/bench_fork.py --daemon $(BUILD)/airlockd --vm-dir $(VM_DIR)

# fork(n) alone (bench/bench_fork.py): vm full state, jail files
bench-fork: build vm
	$(PY) bench/bench_fork.py --daemon $(BUILD)/airlockd --vm-dir $(VM_DIR) $(BENCH_FORK_ARGS)

# Pause/resume round trip, jail and vm (bench/pause_bench.py, docs/benchmarks.md).
bench-pause: build vm
	$(PY) bench/pause_bench.py --daemon $(BUILD)/airlockd --vm-dir $(VM_DIR)

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
