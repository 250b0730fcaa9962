package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/help/*.golden from the current help")

// helpOf returns the help a command gives for --help, straight from its
// run function, so the test sees its flag set.
func helpOf(t *testing.T, path []string) *helpRequest {
	t.Helper()
	var runFn func(context.Context, []string, io.Writer, io.Writer) error
	for _, c := range commands() {
		if c.name == path[0] {
			runFn = c.run
		}
	}
	if runFn == nil {
		t.Fatalf("no command %q", path[0])
	}
	err := runFn(context.Background(), append(slices.Clone(path[1:]), "--help"), io.Discard, io.Discard)
	var h *helpRequest
	if !errors.As(err, &h) {
		t.Fatalf("outbox %s --help: %v, want its help", strings.Join(path, " "), err)
	}
	return h
}

// allCommands is every command and subcommand, found from the commands'
// own lists, so a new one is checked without being named here.
func allCommands(t *testing.T) [][]string {
	var out [][]string
	for _, c := range commands() {
		out = append(out, []string{c.name})
		for _, s := range helpOf(t, []string{c.name}).subs {
			out = append(out, []string{c.name, s.name})
		}
	}
	return out
}

// TestHelpGolden checks every command's --help and -h: on stdout, exit 0,
// nothing on stderr, and as in testdata/help (go test -run TestHelpGolden
// -update rewrites them).
func TestHelpGolden(t *testing.T) {
	cmds := append([][]string{{}}, allCommands(t)...)
	for _, path := range cmds {
		name := strings.Join(path, "-")
		if name == "" {
			name = "outbox"
		}
		var outs []string
		for _, h := range []string{"--help", "-h"} {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append(slices.Clone(path), h), &stdout, &stderr)
			if code != 0 || stderr.Len() > 0 || stdout.Len() == 0 {
				t.Fatalf("outbox %s %s: exit %d, stdout %d bytes, stderr %q", strings.Join(path, " "), h, code, stdout.Len(), stderr.String())
			}
			outs = append(outs, stdout.String())
		}
		if outs[0] != outs[1] {
			t.Errorf("outbox %s: --help and -h differ", strings.Join(path, " "))
		}
		golden := filepath.Join("testdata", "help", name+".golden")
		if *update {
			os.MkdirAll(filepath.Dir(golden), 0o755)
			if err := os.WriteFile(golden, []byte(outs[0]), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./cmd/outbox -run TestHelpGolden -update to write it)", err)
		}
		if outs[0] != string(want) {
			t.Errorf("outbox %s --help differs from %s (go test ./cmd/outbox -run TestHelpGolden -update rewrites it after review):\n%s",
				strings.Join(path, " "), golden, outs[0])
		}
	}
	// "outbox help queue list" is "outbox queue list --help"; "help help"
	// is the usage.
	for _, pair := range [][2][]string{
		{{"help", "queue", "list"}, {"queue", "list", "--help"}},
		{{"help", "serve"}, {"serve", "-h"}},
		{{"help", "--help"}, {"--help"}},
		{{"--help", "help"}, {"help"}},
	} {
		var a, b bytes.Buffer
		ca := run(context.Background(), pair[0], &a, io.Discard)
		cb := run(context.Background(), pair[1], &b, io.Discard)
		if ca != 0 || cb != 0 || a.String() != b.String() || a.Len() == 0 {
			t.Errorf("outbox %v (exit %d) differs from outbox %v (exit %d)", pair[0], ca, pair[1], cb)
		}
	}
}

// TestEveryFlagHasAGroup fails for a flag that help would have to show
// under "Other": give it a group in helpgroups.go. It also fails for an
// entry there that names no flag, or a group that does not exist.
func TestEveryFlagHasAGroup(t *testing.T) {
	known := map[string]bool{}
	for _, g := range helpGroups {
		known[g.key] = true
	}
	used := map[string]map[string]bool{} // command → flags that exist in it or below
	for _, path := range allCommands(t) {
		h := helpOf(t, path)
		if h.fs == nil {
			continue
		}
		cmd := strings.Join(path, " ")
		h.fs.VisitAll(func(f *flag.Flag) {
			g := flagGroup(cmd, f.Name)
			switch {
			case g == "":
				t.Errorf("flag --%s of 'outbox %s' has no help group: add %q: \"<group>\" to flagGroups[%q] in helpgroups.go",
					f.Name, cmd, f.Name, cmd)
			case !known[g]:
				t.Errorf("flag --%s of 'outbox %s' is in group %q, which helpGroups lacks", f.Name, cmd, g)
			}
			for c := cmd; ; {
				if used[c] == nil {
					used[c] = map[string]bool{}
				}
				used[c][f.Name] = true
				i := strings.LastIndexByte(c, ' ')
				if i < 0 {
					break
				}
				c = c[:i]
			}
		})
		var out bytes.Buffer
		h.write(&out)
		if strings.Contains(out.String(), "\nOther:\n") {
			t.Errorf("outbox %s --help has an Other group", cmd)
		}
	}
	for cmd, flags := range flagGroups {
		for name := range flags {
			if !used[cmd][name] {
				t.Errorf("flagGroups[%q] lists --%s, which 'outbox %s' does not have", cmd, name, cmd)
			}
		}
	}
}

// TestServeHelpSaysEverything checks what each serve flag's help holds: its
// default, its environment twin and its config key.
func TestServeHelpSaysEverything(t *testing.T) {
	var out bytes.Buffer
	run(context.Background(), []string{"serve", "--help"}, &out, io.Discard)
	text := out.String()
	serveFlags(&serveConfig{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(text, "--"+f.Name+" ") && !strings.Contains(text, "--"+f.Name+"\n") {
			t.Errorf("serve --help lacks --%s", f.Name)
		}
		if !strings.Contains(text, "env "+envName(f.Name)) {
			t.Errorf("serve --help lacks %s", envName(f.Name))
		}
	})
	for _, want := range []string{"default 127.0.0.1:8025", "default 25MiB", "default 5m;", "default 120h;",
		"config api_token;", "reloaded on SIGHUP", "Precedence:", "Listeners:", "Access:", "TLS:"} {
		if !strings.Contains(text, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
}
