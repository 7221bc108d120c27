package main

import (
	"runtime"
	"runtime/debug"
)

func goVersion() string {
	v := runtime.Version()
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "connectrpc.com/connect" {
				v += " connect-go " + dep.Version
			}
		}
	}
	return v
}
