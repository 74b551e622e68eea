// Package vm boots a Linux kernel with an initramfs under qemu, so tests can run against a real kernel subsystem (IPVS) this host's kernel lacks.
package vm
