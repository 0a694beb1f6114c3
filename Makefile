# nfs-vsock: build, install, test.
#
#   make                 release build: the host tools with a static Swift
#                        standard library, mount.vsock as a static executable
#   make install         install under $(DESTDIR)$(PREFIX) (see scripts/install.sh)
#   make uninstall       remove exactly what install added
#   make verify-units    systemd-analyze verify every unit
#   make check           scripts/test (every suite; boots VMs)
#
# PREFIX=/usr/local puts units in /usr/local/lib/systemd/system, ahead of a
# distribution's nfs-server.service in /lib/systemd/system.

PREFIX         ?= /usr/local
SBINDIR        ?= $(PREFIX)/sbin
MANDIR         ?= $(PREFIX)/share/man
UNITDIR        ?= $(PREFIX)/lib/systemd/system
GENERATORDIR   ?= $(PREFIX)/lib/systemd/system-generators
MOUNTHELPERDIR ?= /sbin
DOCDIR         ?= $(PREFIX)/share/doc/nfs-vsock
SYSCONFDIR     ?= /etc
DESTDIR        ?=
SWIFT          ?= swift
GUEST_SCRATCH   = .build/guest-static
# Where install takes the programs from.
BUILD_DIR      ?= $(CURDIR)/.build/release
GUEST_BUILD_DIR ?= $(CURDIR)/$(GUEST_SCRATCH)/release

INSTALL_VARS = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SBINDIR="$(SBINDIR)" \
  MANDIR="$(MANDIR)" UNITDIR="$(UNITDIR)" GENERATORDIR="$(GENERATORDIR)" \
  MOUNTHELPERDIR="$(MOUNTHELPERDIR)" DOCDIR="$(DOCDIR)" SYSCONFDIR="$(SYSCONFDIR)" \
  BUILD_DIR="$(BUILD_DIR)" GUEST_BUILD_DIR="$(GUEST_BUILD_DIR)"

.PHONY: all build guest install uninstall list-install verify-units check clean

all: build guest

build:
	$(SWIFT) build -c release --static-swift-stdlib

# The guest helper runs in VMs that have no Swift runtime (and maybe no
# libstdc++): a fully static executable, built apart so that the host tools
# keep glibc's NSS (getaddrinfo, netgroups, groups).
guest:
	$(SWIFT) build -c release --scratch-path $(GUEST_SCRATCH) --product mount.vsock -Xswiftc -static-executable

install:
	$(INSTALL_VARS) scripts/install.sh install

uninstall:
	$(INSTALL_VARS) scripts/install.sh uninstall

list-install:
	@$(INSTALL_VARS) scripts/install.sh list

verify-units:
	scripts/verify-units

check:
	scripts/test

clean:
	rm -rf .build
