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
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if isHelp(args[0]) {
		if len(args) > 1 && args[0] == "help" {
			// `sealnet help COMMAND` is `sealnet COMMAND --help`.
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sealnet: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(args[1:], stdout, stderr); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			return 0 // asked for help: the usage went to stdout
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "sealnet %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// isHelp reports whether a command-line word asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
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

// newFlagSet returns a flag set whose errors and usage go to stderr;
// parseFlags sends the usage to stdout instead when it is asked for.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sealnet %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, which must all be flags.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := parseFlagsArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// parseFlagsArgs parses the flags of args, leaving the arguments after
// them in fs.Args(). Asked for help (-h, --help), it prints the usage to
// stdout and returns flag.ErrHelp, which run turns into exit status 0; on
// a mistake it prints the error and the usage to fs.Output() (stderr) and
// returns errUsage, exit status 2.
func parseFlagsArgs(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	usage := fs.Usage
	fs.Usage = func() {} // Parse would print it, to stderr, in both cases
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		stderr := fs.Output()
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return flag.ErrHelp
	case err != nil:
		fs.Usage()
		return errUsage
	}
	return nil
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlagSet("version", "version", stderr), args, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sealnet %s\n", version)
	return nil
}
