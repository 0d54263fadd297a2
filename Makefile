# SPDX-License-Identifier: GPL-2.0
#
# scullv: `make help` lists the targets.
#
# `make` builds scullv.ko here against the cached test kernel (built on first
# use); `make KDIR=<tree>` builds it against any Rust-enabled kernel tree, as
# the Rust-for-Linux out-of-tree template does, e.g.
# `make KDIR=/lib/modules/$(uname -r)/build`. For a Debian kernel, whose headers
# package cannot build Rust modules, `make debian-kdir` prepares such a tree and
# prints it; that tree carries a `scullv-make` that runs make with Debian's
# toolchain and flags, which is used here when present.

ifeq ($(KDIR),)
KMAKE = scripts/kmake.sh
else ifneq ($(wildcard $(KDIR)/scullv-make),)
KMAKE = $(KDIR)/scullv-make -C $(KDIR) M=$(CURDIR)
else
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR)
endif

.PHONY: modules clean rust-analyzer demo vm check lint bench bench-readme debian-kdir help

modules:
	$(KMAKE) modules

clean:
	$(KMAKE) clean

rust-analyzer:
	$(KMAKE) rust-analyzer

demo:
	scripts/demo.sh

vm:
	scripts/run-vm.sh --shell $(if $(DEBUG),--debug) $(if $(KERNEL),--kernel $(KERNEL))

check:
	scripts/check.sh $(if $(KERNEL),--kernel $(KERNEL)) $(if $(TEST),-t $(TEST))

lint:
	scripts/lint.sh

bench:
	scripts/bench.sh $(if $(QUICK),--quick) $(if $(KERNEL),--kernel $(KERNEL))

bench-readme:
	scripts/bench-readme.sh

debian-kdir:
	scripts/debian-kdir.sh $(if $(RELEASE),--release $(RELEASE))

help:
	@echo "scullv targets (set-up of toolchain, kernel source and test kernels is automatic):"
	@echo "  make                build scullv.ko against the cached test kernel"
	@echo "  make KDIR=<tree>    build scullv.ko against your own Rust-enabled kernel tree"
	@echo "  make demo           boot the test kernel in QEMU and run the book's shell example"
	@echo "  make debian-kdir [RELEASE=r]  prepare a KDIR for Debian's kernel r (default: the"
	@echo "                      running one) with Debian's toolchain; prints the KDIR"
	@echo "  make vm [KERNEL=k]  a shell in the guest with the module loaded (base, debug, debian)"
	@echo "  make check          the whole test suite on the base, debug and Debian kernels"
	@echo "                      (KERNEL=base|debug|debian for one, TEST=name-part for some tests)"
	@echo "  make lint           rustfmt (kernel settings) and a CLIPPY=1 build, warnings as errors;"
	@echo "                      the README's benchmark block against results/summary.md"
	@echo "  make bench [QUICK=1] [KERNEL=debian]  benchmarks against tmpfs, in one guest"
	@echo "  make bench-readme   the README's benchmark block from results/ (a full run does it)"
	@echo "  make rust-analyzer  rust-project.json for editors"
	@echo "  make clean          remove build outputs from this folder"
