package executor

import "testing"

func TestParseOOMKills(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3},                // v1 memory.oom_control
		{"low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n", 1}, // v2 memory.events
		{"oom_kill_disable 0\nunder_oom 0\n", 0},                            // kernel before 4.13
		{"", 0},
	} {
		if got := parseOOMKills([]byte(tc.in)); got != tc.want {
			t.Errorf("%q: got %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseNetDev(t *testing.T) {
	dev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    5000      20    0    0    0     0          0         0     7000      30    0    0    0     0       0          0
  eth1:      10       1    0    0    0     0          0         0       20       2    0    0    0     0       0          0
`
	if rx, tx := parseNetDev([]byte(dev)); rx != 5010 || tx != 7020 {
		t.Errorf("got rx %d tx %d, want 5010 7020 (loopback excluded)", rx, tx)
	}
}
