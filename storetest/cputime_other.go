//go:build !unix

package storetest

import "time"

// cpuTime is not measured here: the cpu-ns/op of the benchmarks reads 0.
func cpuTime() time.Duration { return 0 }
