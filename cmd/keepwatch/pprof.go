package main

import (
	"net/http"
	"net/http/pprof"
)

// mountPprof serves the runtime's profiles (heap, goroutine, allocs, ...)
// on mux, for `run --debug.pprof`: where the agent's memory goes is
// measured on the running agent (issue 12), not guessed.
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
