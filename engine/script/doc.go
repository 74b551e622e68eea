// Package script runs keepalived-style scripts: direct exec as a chosen user, with a timeout that kills the whole process group.
package script
