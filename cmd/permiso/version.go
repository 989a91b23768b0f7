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
	fmt.Fprintf(stdout, "permiso %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
