// Package router runs one VRRP instance: a worker started when there is work steps its state machine and drives the sockets, addresses and gratuitous ARPs, its timers kept by a scheduler shared with the other instances on its socket.
package router
