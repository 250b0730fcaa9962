package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// helpRequest is what a command returns when it was asked for --help or
// -h: run prints it on stdout and exits 0. Every command's help is
// rendered here, so they all look alike: the synopsis, a summary, the
// subcommands or the flags by group, each flag with its default and its
// environment twin, then notes.
type helpRequest struct {
	// cmd is the command's path: "serve", "queue list". It selects the
	// flags' groups (helpgroups.go) and their environment twins.
	cmd      string
	synopsis string // "outbox queue list [flags]"
	fs       *flag.FlagSet
	subs     []subcommand // for a command made of subcommands
	notes    string
}

// subcommand is one line of a command's list of subcommands.
type subcommand struct{ name, summary string }

func (h *helpRequest) Error() string { return "help shown" }

// Is makes a helpRequest count as errHelpShown for callers that test for
// it.
func (h *helpRequest) Is(target error) bool { return target == errHelpShown }

// helpFor is the help of command cmd with the flags of fs.
func helpFor(cmd string, fs *flag.FlagSet) *helpRequest {
	return &helpRequest{cmd: cmd, synopsis: "outbox " + cmd + " [flags]", fs: fs}
}

// helpWidth is where help text is wrapped.
const helpWidth = 78

// write renders the help.
func (h *helpRequest) write(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n", h.synopsis)
	if s := commandSummaries[h.cmd]; s != "" {
		fmt.Fprintln(w)
		writeWrapped(w, "", s)
	}
	if len(h.subs) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, s := range h.subs {
			fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'outbox %s COMMAND --help' for a command's flags.\n", h.cmd)
	}
	if h.fs != nil {
		h.writeFlags(w)
	}
	if h.notes != "" {
		for _, para := range strings.Split(h.notes, "\n\n") {
			fmt.Fprintln(w)
			writeWrapped(w, "", para)
		}
	}
}

// writeFlags prints the flags under their groups' headings, in the
// groups' order; a flag without a group is printed last under "Other"
// (TestEveryFlagHasAGroup fails for it).
func (h *helpRequest) writeFlags(w io.Writer) {
	byGroup := map[string][]*flag.Flag{}
	h.fs.VisitAll(func(f *flag.Flag) {
		g := flagGroup(h.cmd, f.Name)
		byGroup[g] = append(byGroup[g], f)
	})
	for _, g := range append(helpGroups, helpGroup{"", "Other"}) {
		flags := byGroup[g.key]
		if len(flags) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, f := range flags {
			h.writeFlag(w, f)
		}
	}
}

func (h *helpRequest) writeFlag(w io.Writer, f *flag.Flag) {
	metavar, usage := flag.UnquoteUsage(f)
	if _, ok := f.Value.(*durationFlag); ok && metavar == "value" {
		metavar = "duration"
	}
	switch metavar {
	case "string", "value":
		metavar = "VALUE"
	case "duration":
		metavar = "DURATION"
	case "int", "uint", "int64", "uint64":
		metavar = "N"
	}
	dash := "--"
	if len(f.Name) == 1 {
		dash = "-"
	}
	head := "  " + dash + f.Name
	if metavar != "" {
		head += " " + strings.ToUpper(metavar)
	}
	fmt.Fprintln(w, head)
	writeWrapped(w, "        ", usage)
	var facts []string
	if d := shownDefault(f); d != "" {
		facts = append(facts, "default "+d)
	}
	if env := envTwin(h.cmd, f); env != "" {
		facts = append(facts, "env "+env)
	}
	if h.cmd == "serve" && f.Name != "config" {
		facts = append(facts, "config "+configKey(f.Name))
		if reloadableFlag(f.Name) {
			facts = append(facts, "reloaded on SIGHUP")
		}
	}
	if len(facts) > 0 {
		writeWrapped(w, "        ", strings.Join(facts, "; "))
	}
}

// shownDefault is a flag's default as help shows it: nothing for a zero
// value, durations without their trailing zero units ("5m", not "5m0s").
func shownDefault(f *flag.Flag) string {
	switch d := f.DefValue; d {
	case "", "0", "false", "0s":
		return ""
	default:
		for _, z := range []string{"m0s", "h0m"} {
			if strings.HasSuffix(d, z) {
				d = strings.TrimSuffix(d, z[1:])
			}
		}
		return d
	}
}

// writeWrapped writes text wrapped at helpWidth, every line indented.
func writeWrapped(w io.Writer, indent, text string) {
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > helpWidth {
			fmt.Fprintln(w, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	if len(line) > len(indent) {
		fmt.Fprintln(w, line)
	}
}

// configKey is a serve flag's key in the config file: --max-lifetime is
// "max_lifetime".
func configKey(flagName string) string { return strings.ReplaceAll(flagName, "-", "_") }

// wantsHelp reports whether args ask for help: its first is -h, --help
// or help.
func wantsHelp(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}
