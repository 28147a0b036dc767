package statemachine

import (
	"slices"
	"time"
)

// Container is the materialised view of one container: the fold of its
// journal records.
type Container struct {
	ID         string   `json:"id"`
	Name       string   `json:"name,omitempty"`
	Image      string   `json:"image"`
	Command    []string `json:"command"`
	Env        []string `json:"env,omitempty"`
	Hostname   string   `json:"hostname"`
	MountID    string   `json:"mount_id"`
	AutoRemove bool     `json:"auto_remove,omitempty"`
	// ImageID is the id of the image the container was made from.
	ImageID string `json:"image_id,omitempty"`
	// Config is what the container took from its image's config and the
	// create's overrides: working directory, user, stop signal, and what
	// later issues need (ports, volumes, labels).
	Config *ContainerConfig `json:"config,omitempty"`
	// TTY gives the init a pseudo-terminal; OpenStdin lets attached
	// clients write to its stdin, and with StdinOnce the first to end its
	// input ends the init's.
	TTY       bool `json:"tty,omitempty"`
	OpenStdin bool `json:"open_stdin,omitempty"`
	StdinOnce bool `json:"stdin_once,omitempty"`
	// LogMaxSize and LogMaxFiles rotate the log (0: the daemon's default).
	LogMaxSize  int64 `json:"log_max_size,omitempty"`
	LogMaxFiles int   `json:"log_max_files,omitempty"`
	// Mounts are the container's volumes, binds and tmpfs mounts.
	Mounts []Mount `json:"mounts,omitempty"`

	State State `json:"state"`
	// Pending is an intent recorded without its outcome: a transition in
	// flight, or one interrupted by a crash.
	Pending *Pending `json:"pending,omitempty"`
	// Process is the live process of a running or paused container.
	Process *Process `json:"process,omitempty"`
	// Exit is how the last run ended.
	Exit *Exit `json:"exit,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// RestartCount is how many policy restarts happened since the user
	// last started the container (Docker's: a user start resets it).
	RestartCount int `json:"restart_count,omitempty"`
	// RestartPolicy says whether the container is started again after it
	// exits (DecideRestart).
	RestartPolicy RestartPolicy `json:"restart_policy,omitzero"`
	// UserStopped: a user's stop or kill ended (or is ending) the current
	// or last run; only a user's start clears it.
	UserStopped bool `json:"user_stopped,omitempty"`
	// RestartDelay is the delay the last policy restart waited; the next
	// one doubles it (reset by a run of 10 s, a user start).
	RestartDelay Duration `json:"restart_delay,omitempty"`
	// Seq is the last journal record folded into this view.
	Seq uint64 `json:"seq"`
}

// Pending is an unfinished intent.
type Pending struct {
	Seq   uint64 `json:"seq"`
	Event Event  `json:"event"`
	From  State  `json:"from"`
	To    State  `json:"to"`
	Args  *Args  `json:"args,omitempty"`
}

// Clone returns a deep copy, so views handed out can't alias the journal's.
func (c Container) Clone() Container {
	c.Command = slices.Clone(c.Command)
	c.Env = slices.Clone(c.Env)
	c.Mounts = slices.Clone(c.Mounts)
	if c.Pending != nil {
		p := *c.Pending
		if p.Args != nil {
			a := p.Args.clone()
			p.Args = &a
		}
		c.Pending = &p
	}
	if c.Config != nil {
		cfg := c.Config.Clone()
		c.Config = &cfg
	}
	if c.Process != nil {
		p := *c.Process
		c.Process = &p
	}
	if c.Exit != nil {
		e := *c.Exit
		if e.Code != nil {
			code := *e.Code
			e.Code = &code
		}
		c.Exit = &e
	}
	return c
}
