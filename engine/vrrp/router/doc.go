// Package router runs one VRRP instance: a goroutine that owns its state machine and drives the sockets, addresses and gratuitous ARPs.
package router
