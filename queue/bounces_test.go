package queue

import "testing"

func TestHardBounce(t *testing.T) {
	for _, tc := range []struct {
		code     int
		enhanced string
		want     bool
	}{
		{550, "5.1.1", true}, {550, "", true}, {0, "5.1.2", true}, {550, "5.1.10", true},
		{550, "5.2.1", true}, {550, "5.0.0", true}, {553, "5.1.3", true},
		{554, "5.7.1", false}, {552, "5.2.2", false}, {552, "5.3.4", false}, {550, "5.4.4", false},
		{500, "5.5.2", false}, {554, "5.6.0", false}, {450, "4.1.1", false}, {0, "4.4.7", false},
		{450, "", false}, {0, "", false}, {550, "4.1.1", false}, {250, "2.0.0", false}, {0, "5", false},
	} {
		if got := hardBounce(tc.code, tc.enhanced); got != tc.want {
			t.Errorf("hardBounce(%d, %q) = %v, want %v", tc.code, tc.enhanced, got, tc.want)
		}
	}
}

func TestUniqueSuppressions(t *testing.T) {
	rows := []Suppression{{Address: "a", Reason: "1"}, {Address: "b"}, {Address: "a", Reason: "2"}, {Address: "a", Scope: "d"}}
	got := uniqueSuppressions(rows)
	if len(got) != 3 || got[0].Address != "b" || got[1].Reason != "2" || got[2].Scope != "d" {
		t.Errorf("uniqueSuppressions = %+v", got)
	}
}
