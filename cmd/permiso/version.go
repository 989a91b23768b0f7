package main

import (
	"fmt"
	"io"
	"runtime"
)

func cmdVersion(args []string, stdout io.Writer) error {
	fs := newFlagSet("version", "version", stdout)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"version takes no arguments"}
	}
	backends := "postgresql, sqlite"
	if !sqliteBuilt {
		backends = "postgresql"
	}
	fmt.Fprintf(stdout, "permiso %s (%s, %s/%s; databases: %s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH, backends)
	return nil
}
