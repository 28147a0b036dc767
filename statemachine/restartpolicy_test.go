package statemachine

import (
	"errors"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestParseRestartPolicy(t *testing.T) {
	good := map[string]RestartPolicy{
		"": {}, "no": {}, "always": {Name: RestartAlways}, "unless-stopped": {Name: RestartUnlessStopped},
		"on-failure": {Name: RestartOnFailure}, "on-failure:3": {Name: RestartOnFailure, MaxRetries: 3},
		"on-failure:0": {Name: RestartOnFailure},
	}
	for in, want := range good {
		got, err := ParseRestartPolicy(in)
		if err != nil || got != want {
			t.Errorf("%q: got %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"sometimes", "always:3", "no:1", "on-failure:-1", "on-failure:x", "on-failure:", "on-failure:99999999999", "Always"} {
		if _, err := ParseRestartPolicy(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: got %v, want ErrInvalidArgument", in, err)
		}
	}
	for _, s := range []string{"no", "always", "unless-stopped", "on-failure", "on-failure:5"} {
		p, _ := ParseRestartPolicy(s)
		if p.String() != s {
			t.Errorf("%q reads back as %q", s, p.String())
		}
	}
}

func TestDecideRestart_Table(t *testing.T) {
	code := func(c int) *int { return &c }
	always := RestartPolicy{Name: RestartAlways}
	unless := RestartPolicy{Name: RestartUnlessStopped}
	onFailure := RestartPolicy{Name: RestartOnFailure}
	onFailure3 := RestartPolicy{Name: RestartOnFailure, MaxRetries: 3}
	ms := time.Millisecond
	cases := []struct {
		name  string
		in    RestartInput
		want  bool
		delay time.Duration
	}{
		{"no never", RestartInput{ExitCode: code(1)}, false, 0},
		{"always after exit 0", RestartInput{Policy: always, ExitCode: code(0)}, true, 100 * ms},
		{"always after exit 1", RestartInput{Policy: always, ExitCode: code(1)}, true, 100 * ms},
		{"always with an unknown exit", RestartInput{Policy: always}, true, 100 * ms},
		{"unless-stopped after exit 0", RestartInput{Policy: unless, ExitCode: code(0)}, true, 100 * ms},
		{"on-failure after exit 0", RestartInput{Policy: onFailure, ExitCode: code(0)}, false, 0},
		{"on-failure after exit 1", RestartInput{Policy: onFailure, ExitCode: code(1)}, true, 100 * ms},
		{"on-failure after SIGKILL", RestartInput{Policy: onFailure, ExitCode: code(137)}, true, 100 * ms},
		{"on-failure unknown exit is no failure", RestartInput{Policy: onFailure}, false, 0},
		{"on-failure unknown exit after a reboot", RestartInput{Policy: onFailure, Rebooted: true, AtDaemonStart: true}, false, 0},
		{"on-failure:3 with 2 done", RestartInput{Policy: onFailure3, ExitCode: code(1), RestartCount: 2, PrevDelay: 200 * ms}, true, 400 * ms},
		{"on-failure:3 with 3 done", RestartInput{Policy: onFailure3, ExitCode: code(1), RestartCount: 3, PrevDelay: 400 * ms}, false, 0},
		{"on-failure unbounded with 1000 done", RestartInput{Policy: onFailure, ExitCode: code(1), RestartCount: 1000, PrevDelay: time.Minute}, true, time.Minute},
		{"user stopped always, live", RestartInput{Policy: always, ExitCode: code(143), UserStopped: true}, false, 0},
		{"user stopped unless-stopped, live", RestartInput{Policy: unless, ExitCode: code(143), UserStopped: true}, false, 0},
		{"user stopped on-failure, live", RestartInput{Policy: onFailure, ExitCode: code(137), UserStopped: true}, false, 0},
		{"user stopped always, daemon start", RestartInput{Policy: always, ExitCode: code(143), UserStopped: true, AtDaemonStart: true}, true, 100 * ms},
		{"user stopped unless-stopped, daemon start", RestartInput{Policy: unless, ExitCode: code(143), UserStopped: true, AtDaemonStart: true}, false, 0},
		{"user stopped on-failure, daemon start", RestartInput{Policy: onFailure, ExitCode: code(143), UserStopped: true, AtDaemonStart: true}, false, 0},
		{"user stopped unless-stopped, reboot", RestartInput{Policy: unless, UserStopped: true, AtDaemonStart: true, Rebooted: true}, false, 0},
		{"unless-stopped after a reboot", RestartInput{Policy: unless, AtDaemonStart: true, Rebooted: true, PrevDelay: 800 * ms}, true, 100 * ms},
		{"always after a reboot", RestartInput{Policy: always, AtDaemonStart: true, Rebooted: true, PrevDelay: 800 * ms}, true, 100 * ms},
		{"backoff doubles", RestartInput{Policy: always, ExitCode: code(0), PrevDelay: 100 * ms, RanFor: 50 * ms}, true, 200 * ms},
		{"backoff continues at daemon start", RestartInput{Policy: always, ExitCode: code(0), PrevDelay: 1600 * ms, AtDaemonStart: true}, true, 3200 * ms},
		{"backoff caps at a minute", RestartInput{Policy: always, ExitCode: code(0), PrevDelay: 40 * time.Second}, true, time.Minute},
		{"backoff stays at a minute", RestartInput{Policy: always, ExitCode: code(0), PrevDelay: time.Minute}, true, time.Minute},
		{"a 10 s run resets the backoff", RestartInput{Policy: always, ExitCode: code(0), PrevDelay: time.Minute, RanFor: 10 * time.Second}, true, 100 * ms},
		{"a 9.9 s run does not", RestartInput{Policy: always, ExitCode: code(0), PrevDelay: 400 * ms, RanFor: 9900 * ms}, true, 800 * ms},
		{"unknown policy never", RestartInput{Policy: RestartPolicy{Name: "sometimes"}, ExitCode: code(1)}, false, 0},
	}
	for _, tc := range cases {
		got := DecideRestart(tc.in)
		if got.Restart != tc.want || got.Delay != tc.delay {
			t.Errorf("%s: got restart=%v delay=%v (%s), want restart=%v delay=%v", tc.name, got.Restart, got.Delay, got.Reason, tc.want, tc.delay)
		}
		wantCount := tc.in.RestartCount
		if tc.want {
			wantCount++
		}
		if got.Count != wantCount || got.Reason == "" {
			t.Errorf("%s: count %d (want %d), reason %q", tc.name, got.Count, wantCount, got.Reason)
		}
	}
}

func TestRestartInput_FromTheView(t *testing.T) {
	code := 3
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Container{
		State: StateStopped, RestartPolicy: RestartPolicy{Name: RestartOnFailure, MaxRetries: 2}, RestartCount: 1,
		RestartDelay: Duration(100 * time.Millisecond), UserStopped: true,
		StartedAt: start, FinishedAt: start.Add(3 * time.Second), Exit: &Exit{Code: &code, FinishedAt: start.Add(3 * time.Second)},
	}
	in := restartInput(c, false, true)
	if in.Policy != c.RestartPolicy || *in.ExitCode != 3 || in.RestartCount != 1 || in.PrevDelay != 100*time.Millisecond ||
		in.RanFor != 3*time.Second || !in.UserStopped || !in.AtDaemonStart || !in.Rebooted {
		t.Fatalf("input %+v", in)
	}
}
