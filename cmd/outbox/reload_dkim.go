package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/outbox-mail/outbox/dkim"
)

// dkimKeyIDs names each --dkim key by its domain and selector, with a
// fingerprint of its public key (nothing secret), so that a reload can
// say which keys it added, removed or replaced.
func dkimKeyIDs(specs []string) (map[string]string, error) {
	ids := make(map[string]string, len(specs))
	for i, s := range specs {
		k, err := dkim.ParseSpec(s)
		if err != nil {
			return nil, usagef("--dkim #%d: %v", i+1, err)
		}
		der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
		if err != nil {
			return nil, usagef("--dkim #%d: %v", i+1, err)
		}
		sum := sha256.Sum256(der)
		ids[k.Domain+"/"+k.Selector] = hex.EncodeToString(sum[:8])
	}
	return ids, nil
}

// prepareDKIM reads the --dkim keys again (a rotation may have replaced a
// key file) and puts a new signer in force; mail under way keeps the keys
// it started with.
func (d *service) prepareDKIM(_, next *serveConfig) (func(), []string, error) {
	ids, err := dkimKeyIDs(next.deliver.dkim)
	if err != nil {
		return nil, nil, err
	}
	signer, err := loadDKIM(next.deliver.dkim)
	if err != nil {
		return nil, nil, err
	}
	var changes []string
	for _, k := range slices.Sorted(maps.Keys(ids)) {
		switch old, ok := d.dkimIDs[k]; {
		case !ok:
			changes = append(changes, fmt.Sprintf("added %s (public key %s)", k, ids[k]))
		case old != ids[k]:
			changes = append(changes, fmt.Sprintf("key replaced for %s (public key %s)", k, ids[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.dkimIDs)) {
		if _, ok := ids[k]; !ok {
			changes = append(changes, "removed "+k)
		}
	}
	if len(changes) == 0 {
		return nil, nil, nil
	}
	return func() {
		d.client.SetDKIM(signer)
		d.dkimIDs = ids
	}, changes, nil
}
