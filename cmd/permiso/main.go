// Command permiso is the permiso authentication and authorization server.
//
// main only wires the process (signals, environment, standard streams) into
// run, which is what the tests call.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "permiso: %v\n", err)
		stop()
		os.Exit(exitCode(err))
	}
}
