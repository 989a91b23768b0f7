package main

import (
	"fmt"
	"io"
	"runtime"
)

func cmdVersion(args []string, stdout io.Writer) error {
	fs := newFlagSet("version", "version", stdout)
	if help, err := fs.parse(args); help || err != nil {
		return err
	}
	backends := "postgresql, sqlite"
	if !sqliteBuilt {
		backends = "postgresql"
	}
	fmt.Fprintf(stdout, "permiso %s (%s, %s/%s; databases: %s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH, backends)
	return nil
}
