package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/outbox-mail/outbox/dkim"
)

const dkimUsage = "usage: outbox dkim keygen --domain D --selector S [--type rsa|ed25519] [--bits 2048] --out KEYFILE [--force]"

// runDKIM implements 'outbox dkim'; keygen is its one subcommand.
func runDKIM(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", dkimUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return &helpRequest{cmd: "dkim", synopsis: "outbox dkim COMMAND [flags]",
			subs: []subcommand{{"keygen", "generate a key and print its DNS record"}}}
	case "keygen":
		return dkimKeygen(args[1:], stdout, stderr)
	}
	return usagef("unknown subcommand %q; %s", args[0], dkimUsage)
}

// dkimKeygen writes a new private key (mode 0600, never over an existing
// file unless --force) and prints the TXT record that publishes it.
func dkimKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dkim keygen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	domain := fs.String("domain", "", "signing `DOMAIN` (d=), e.g. example.com")
	selector := fs.String("selector", "", "`SELECTOR` (s=): the key is published at SELECTOR._domainkey.DOMAIN")
	kind := fs.String("type", "rsa", "key `TYPE`: rsa or ed25519")
	bits := fs.Int("bits", 2048, "RSA key size in `BITS` (2048 to 4096)")
	out := fs.String("out", "", "`FILE` to write the private key to (PEM, PKCS#8)")
	force := fs.Bool("force", false, "overwrite KEYFILE if it exists")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			h := helpFor("dkim keygen", fs)
			h.synopsis = strings.TrimPrefix(dkimUsage, "usage: ")
			return h
		}
		return usagef("%v", err)
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q; %s", fs.Arg(0), dkimUsage)
	case *domain == "" || *selector == "" || *out == "":
		return usagef("--domain, --selector and --out are required; %s", dkimUsage)
	}
	key, err := dkim.GenerateKey(*kind, *bits)
	if err != nil {
		return usagef("%v", err)
	}
	// Check domain and selector before anything is written.
	if _, err := dkim.NewSigner(dkim.Key{Domain: *domain, Selector: *selector, Signer: key}); err != nil {
		return usagef("%v", err)
	}
	pemBytes, err := dkim.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeKeyFile(*out, pemBytes, *force); err != nil {
		return err
	}
	// Read the file back: what is published is what --dkim will load.
	k, err := dkim.LoadKey(*domain, *selector, *out)
	if err != nil {
		return err
	}
	value, err := dkim.TXTRecord(k.Signer.Public())
	if err != nil {
		return err
	}
	name := dkim.RecordName(k.Selector, k.Domain)
	fmt.Fprintf(stderr, "wrote a new %s key to %s (mode 0600); publish the record below, then sign with --dkim %s:%s:%s\n",
		*kind, *out, k.Domain, k.Selector, *out)
	fmt.Fprintf(stdout, "%s. IN TXT \"%s\"\n", name, strings.Join(dkim.SplitTXT(value), "\" \""))
	fmt.Fprintf(stdout, "name:  %s\nvalue: %s\n", name, value)
	return nil
}

// writeKeyFile writes a private key readable by its owner only. Without
// force an existing file is refused (O_EXCL: no race); with force the key
// goes to a temporary file first and replaces the old one in one rename.
func writeKeyFile(path string, data []byte, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; not overwriting a key (use --force to replace it)", path)
		}
		if err != nil {
			return err
		}
		return finishKeyFile(f, path, data)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".dkim-key-*")
	if err != nil {
		return err
	}
	if err := finishKeyFile(f, f.Name(), data); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// finishKeyFile writes data to f (created as name, mode 0600), syncs and
// closes it, and removes it on failure.
func finishKeyFile(f *os.File, name string, data []byte) error {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}
