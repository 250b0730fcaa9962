package main

import (
	"flag"
	"fmt"
	"time"
)

// durationFlag is a time.Duration flag whose error says what a duration
// looks like: the flag package's own says only "parse error", which
// leaves a user who wrote "5" for five seconds guessing.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: give its unit, e.g. 30s, 5m or 2h", s)
	}
	*d = durationFlag(v)
	return nil
}

// durationVar defines a duration flag as flag.DurationVar does, with
// durationFlag's error.
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationFlag)(p), name, usage)
}
