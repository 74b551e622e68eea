// Package netiftest provides in-memory stand-ins for netif's interfaces, for unit tests of code that drives the network.
package netiftest
