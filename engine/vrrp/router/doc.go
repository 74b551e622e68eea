// Package router runs one VRRP instance: a goroutine that owns its state machine and drives the sockets, addresses and gratuitous ARPs, its timers kept by a scheduler shared with the other instances on its socket.
package router
