// Command sealnet is the single binary of the sealnet metadata-hiding
// network. Its subcommands are the roles: see `sealnet help`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"version":  {"print the version", runVersion},
	"geometry": {"print the packet geometry this build uses, and its hash", runGeometry},
	"relay":    {"run a mix node or provider: relay --config relay.toml", runRelay},
	"dirauth":  {"run a directory authority: dirauth --config dirauth.toml", runDirauth},
	"mailbox":  {"run a provider with its mailbox: mailbox --config mailbox.toml", runMailbox},
	"testnet":  {"run a whole network on loopback: testnet up|load --dir DIR", runTestnet},
	"init":     {"create your identity: init --address NAME@PROVIDER --testnet DIR", runInit},
	"register": {"register with your provider and upload prekeys", runRegister},
	"send":     {"send a message: send --to NAME@PROVIDER TEXT (or --file, or stdin)", runSend},
	"fetch":    {"fetch, verify and show new messages", runFetch},
	"history":  {"show the encrypted local history", runHistory},
	"contacts": {"list contacts and fingerprints; contacts trust NAME@PROVIDER", runContacts},
	"daemon":   {"run the client: Poisson sending, cover traffic, fetching", runClientDaemon},
	"sim":      {"simulate traffic analysis: sim run|sweep|analyze ...", runSim},
}

// errUsage marks a command-line mistake: exit status 2 after the usage.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sealnet: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			return 2
		}
		fmt.Fprintf(stderr, "sealnet %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sealnet: a metadata-hiding relay network with sealed-sender delivery")
	fmt.Fprintln(w, "\nUsage: sealnet <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun `sealnet <command> -h` for a command's flags. Docs: docs/ in the source tree.")
}

// newFlagSet returns a flag set that prints its usage to stderr and whose
// parse errors map to errUsage.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sealnet %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlagSet("version", "version", stderr), args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sealnet %s\n", version)
	return nil
}
