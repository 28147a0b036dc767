package statemachine

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Restart policies, as Docker names them. A container's policy is recorded
// in its create record (and in the record of an update of it); what a
// policy does after an exit is the pure function DecideRestart.
const (
	RestartNo            = "no"
	RestartOnFailure     = "on-failure"
	RestartAlways        = "always"
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy says whether a container is started again after it exits.
// The zero value is "no".
type RestartPolicy struct {
	Name string `json:"name,omitempty"`
	// MaxRetries bounds the restarts of on-failure; 0 is no bound.
	MaxRetries int `json:"max_retries,omitempty"`
}

// maxRestartRetries bounds on-failure:N, so a typo cannot overflow anything.
const maxRestartRetries = 1 << 20

// ParseRestartPolicy reads Docker's spelling: "" or "no", "always",
// "unless-stopped", "on-failure" or "on-failure:N". Anything else is
// ErrInvalidArgument.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	switch name {
	case "", RestartNo, RestartAlways, RestartUnlessStopped:
		if hasCount {
			return RestartPolicy{}, fmt.Errorf("restart policy %s: only on-failure takes a maximum retry count: %w", errdefs.Quote(s), errdefs.ErrInvalidArgument)
		}
		if name == RestartNo {
			name = ""
		}
		return RestartPolicy{Name: name}, nil
	case RestartOnFailure:
		p := RestartPolicy{Name: name}
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 || n > maxRestartRetries {
				return RestartPolicy{}, fmt.Errorf("restart policy %s: the maximum retry count must be an integer from 0 to %d: %w", errdefs.Quote(s), maxRestartRetries, errdefs.ErrInvalidArgument)
			}
			p.MaxRetries = n
		}
		return p, nil
	}
	return RestartPolicy{}, fmt.Errorf("restart policy %s: want no, on-failure[:N], always or unless-stopped: %w", errdefs.Quote(s), errdefs.ErrInvalidArgument)
}

// String is Docker's spelling of p.
func (p RestartPolicy) String() string {
	switch {
	case p.Name == "":
		return RestartNo
	case p.Name == RestartOnFailure && p.MaxRetries > 0:
		return fmt.Sprintf("%s:%d", p.Name, p.MaxRetries)
	}
	return p.Name
}

// IsNone: the container is never restarted by the daemon.
func (p RestartPolicy) IsNone() bool { return p.Name == "" || p.Name == RestartNo }

// Docker's backoff: the first restart waits RestartDelayFirst, each next
// one twice the previous, up to RestartDelayMax; a run of at least
// RestartResetAfter starts again from the first.
const (
	RestartDelayFirst = 100 * time.Millisecond
	RestartDelayMax   = time.Minute
	RestartResetAfter = 10 * time.Second
)

// RestartInput is everything the restart decision depends on; the daemon
// fills it from the container's view (the fold of its journal).
type RestartInput struct {
	Policy RestartPolicy
	// ExitCode is the code of the exit; nil when nobody can know it (the
	// machine rebooted, the shim was lost): on-failure then takes it for
	// not-a-failure (moby#35166, #47846).
	ExitCode *int
	// UserStopped: the run ended by a user's stop or kill.
	UserStopped bool
	// RestartCount is how many policy restarts happened since the user
	// last started the container.
	RestartCount int
	// RanFor is how long the run that ended lasted (0 if unknown).
	RanFor time.Duration
	// PrevDelay is the delay before the previous policy restart (0: none
	// since the user last started it).
	PrevDelay time.Duration
	// AtDaemonStart: decided while cairnd starts (recovery), not at an
	// exit it watched. Only there does `always` bring back a container
	// the user stopped, as Docker's does.
	AtDaemonStart bool
	// Rebooted: the machine booted since the container ran (implies
	// AtDaemonStart). The run did not crash-loop, so backoff starts over.
	Rebooted bool
}

// RestartDecision says whether and when to start the container again.
type RestartDecision struct {
	Restart bool
	// Delay is how long after the exit the restart happens; it is the
	// delay the policy-restart record carries, from which the next one
	// doubles.
	Delay time.Duration
	// Count is the restart count once this restart is done.
	Count int
	// Reason says why, for the log.
	Reason string
}

// DecideRestart is the restart policy's decision table. It is pure.
//
//	policy          user stopped           exit                decision
//	no              any                    any                 never
//	any             yes (live)             any                 never (moby#11008, #12118)
//	always          yes, at daemon start   any                 restart (Docker: only a daemon restart brings it back)
//	unless-stopped  yes, at daemon start   any                 never
//	on-failure      yes, at daemon start   any                 never
//	always          no                     any                 restart
//	unless-stopped  no                     any                 restart
//	on-failure[:N]  no                     0 / unknown         never (unknown is not a failure)
//	on-failure[:N]  no                     non-zero            restart while count < N (N = 0: no bound)
//
// A restart waits 100 ms after the first exit, twice the previous delay
// after each next one, at most 1 min; a run of 10 s or more, or a reboot,
// starts again from 100 ms.
func DecideRestart(in RestartInput) RestartDecision {
	never := func(why string) RestartDecision { return RestartDecision{Count: in.RestartCount, Reason: why} }
	p := in.Policy
	switch {
	case p.IsNone():
		return never("restart policy no")
	case in.UserStopped && !(in.AtDaemonStart && p.Name == RestartAlways):
		return never("stopped by the user")
	case p.Name == RestartOnFailure:
		if in.ExitCode == nil {
			return never("exit code unknown, which on-failure does not take for a failure")
		}
		if *in.ExitCode == 0 {
			return never("exited with 0")
		}
		if p.MaxRetries > 0 && in.RestartCount >= p.MaxRetries {
			return never(fmt.Sprintf("restarted %d times, the most on-failure:%d allows", in.RestartCount, p.MaxRetries))
		}
	case p.Name != RestartAlways && p.Name != RestartUnlessStopped:
		return never(fmt.Sprintf("unknown restart policy %q", p.Name))
	}
	return RestartDecision{Restart: true, Delay: nextRestartDelay(in), Count: in.RestartCount + 1, Reason: "restart policy " + p.String()}
}

// nextRestartDelay is Docker's backoff (moby's restartmanager).
func nextRestartDelay(in RestartInput) time.Duration {
	prev := in.PrevDelay
	if in.RanFor >= RestartResetAfter || in.Rebooted {
		prev = 0
	}
	if prev <= 0 {
		return RestartDelayFirst
	}
	return min(2*prev, RestartDelayMax)
}

// restartInput is the decision's input from a stopped container's view.
func restartInput(c Container, atDaemonStart, rebooted bool) RestartInput {
	in := RestartInput{
		Policy: c.RestartPolicy, UserStopped: c.UserStopped, RestartCount: c.RestartCount,
		PrevDelay: time.Duration(c.RestartDelay), AtDaemonStart: atDaemonStart || rebooted, Rebooted: rebooted,
	}
	if c.Exit != nil {
		in.ExitCode = c.Exit.Code
	}
	if !c.StartedAt.IsZero() && c.FinishedAt.After(c.StartedAt) {
		in.RanFor = c.FinishedAt.Sub(c.StartedAt)
	}
	return in
}
