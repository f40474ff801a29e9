package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// profile starts a CPU profile (if cpuFile is set) and returns a function
// that stops it and writes a heap profile (if memFile is set). These are
// hidden flags for measuring dashcam itself (make bench).
func profile(cpuFile, memFile string) (func(), error) {
	var cpu *os.File
	if cpuFile != "" {
		f, err := os.Create(cpuFile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		cpu = f
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if memFile != "" {
			f, err := os.Create(memFile)
			if err != nil {
				fmt.Fprintf(os.Stderr, "dashcam: error: %v\n", err)
				return
			}
			defer f.Close()
			runtime.GC()
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
		}
	}, nil
}
