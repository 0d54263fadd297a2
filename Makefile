# SPDX-License-Identifier: GPL-2.0
#
# scullv: `make help` lists the targets.
#
# `make` builds scullv.ko here against the cached test kernel (built on first
# use); `make KDIR=<tree>` builds it against any Rust-enabled kernel tree, as
# the Rust-for-Linux out-of-tree template does, e.g.
# `make KDIR=/lib/modules/$(uname -r)/build`.

ifeq ($(KDIR),)
KMAKE = scripts/kmake.sh
else
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR)
endif

.PHONY: modules clean rust-analyzer demo vm check lint bench help

modules:
	$(KMAKE) modules

clean:
	$(KMAKE) clean

rust-analyzer:
	$(KMAKE) rust-analyzer

demo:
	scripts/demo.sh

vm:
	scripts/run-vm.sh --shell $(if $(DEBUG),--debug)

check:
	scripts/check.sh $(if $(KERNEL),--kernel $(KERNEL)) $(if $(TEST),-t $(TEST))

lint:
	scripts/lint.sh

bench:
	scripts/bench.sh $(if $(QUICK),--quick)

help:
	@echo "scullv targets (set-up of toolchain, kernel source and test kernels is automatic):"
	@echo "  make                build scullv.ko against the cached test kernel"
	@echo "  make KDIR=<tree>    build scullv.ko against your own Rust-enabled kernel tree"
	@echo "  make demo           boot the test kernel in QEMU and run the book's shell example"
	@echo "  make vm [DEBUG=1]   a shell in the guest with the module loaded"
	@echo "  make check          the whole test suite on the base and the debug kernel"
	@echo "                      (KERNEL=base|debug for one, TEST=name-part for some tests)"
	@echo "  make lint           rustfmt (kernel settings) and a CLIPPY=1 build, warnings as errors"
	@echo "  make bench [QUICK=1] benchmarks against tmpfs, in one guest"
	@echo "  make rust-analyzer  rust-project.json for editors"
	@echo "  make clean          remove build outputs from this folder"
