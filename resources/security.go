package resources

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Security are a container's security options. The zero value is Docker's
// default: the 14 capabilities of DefaultCapabilities, the default seccomp
// profile, a writable root.
type Security struct {
	// CapAdd and CapDrop change the default capability set; names are
	// normalised to CAP_X, and "ALL" means every capability.
	CapAdd  []string `json:"cap_add,omitempty"`
	CapDrop []string `json:"cap_drop,omitempty"`
	// Privileged gives every capability, no seccomp filter, no masked or
	// read-only /proc and /sys paths and access to every device.
	Privileged bool `json:"privileged,omitempty"`
	// Seccomp is "" for the default profile, SeccompUnconfined for none, or
	// a profile in Docker's JSON format.
	Seccomp string `json:"seccomp,omitempty"`
	// NoNewPrivileges stops setuid binaries and file capabilities from
	// granting more than the container's process has.
	NoNewPrivileges bool `json:"no_new_privileges,omitempty"`
	// ReadOnly mounts the root filesystem read-only.
	ReadOnly bool `json:"read_only,omitempty"`
	// Tmpfs are tmpfs mounts, in order.
	Tmpfs []Tmpfs `json:"tmpfs,omitempty"`
}

// Tmpfs is a tmpfs mount at Path with mount(8)-style options such as
// "size=64m,mode=1777".
type Tmpfs struct {
	Path    string `json:"path"`
	Options string `json:"options,omitempty"`
}

// SeccompUnconfined disables the seccomp filter (--security-opt seccomp=unconfined).
const SeccompUnconfined = "unconfined"

// MaxSeccompProfileBytes bounds a custom profile journaled with its create
// (Docker's default profile is about 20 KB of JSON).
const MaxSeccompProfileBytes = 256 << 10

// DefaultCapabilities is Docker's default set.
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
	"CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// allCapabilities are the capabilities of Linux 6.x, in number order.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
	"CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// AllCapabilities returns every capability cairn knows.
func AllCapabilities() []string { return slices.Clone(allCapabilities) }

// NormalizeCapability turns "chown", "CHOWN" or "cap_chown" into
// "CAP_CHOWN"; "all" is "ALL". Unknown names are ErrInvalidArgument.
func NormalizeCapability(name string) (string, error) {
	up := strings.ToUpper(name)
	if up == "ALL" {
		return up, nil
	}
	if !strings.HasPrefix(up, "CAP_") {
		up = "CAP_" + up
	}
	if !slices.Contains(allCapabilities, up) {
		return "", fmt.Errorf("unknown capability %s: %w", errdefs.Quote(name), errdefs.ErrInvalidArgument)
	}
	return up, nil
}

// Normalize validates s and returns it with its capabilities spelt CAP_X
// and sorted, so that the journaled form is canonical.
func (s Security) Normalize() (Security, error) {
	out := s
	var err error
	if out.CapAdd, err = normalizeCaps(s.CapAdd); err != nil {
		return s, err
	}
	if out.CapDrop, err = normalizeCaps(s.CapDrop); err != nil {
		return s, err
	}
	if len(s.Seccomp) > MaxSeccompProfileBytes {
		return s, fmt.Errorf("seccomp profile of %d bytes, at most %d are allowed: %w", len(s.Seccomp), MaxSeccompProfileBytes, errdefs.ErrInvalidArgument)
	}
	if s.Seccomp != "" && s.Seccomp != SeccompUnconfined && !strings.HasPrefix(strings.TrimSpace(s.Seccomp), "{") {
		return s, fmt.Errorf("seccomp: want %q or a JSON profile, got %s: %w", SeccompUnconfined, errdefs.Quote(s.Seccomp), errdefs.ErrInvalidArgument)
	}
	seen := map[string]bool{}
	out.Tmpfs = slices.Clone(s.Tmpfs)
	for i, t := range out.Tmpfs {
		if !path.IsAbs(t.Path) || strings.ContainsAny(t.Path, "\x00,:") {
			return s, fmt.Errorf("tmpfs mount point %s must be an absolute path without ',' or ':': %w", errdefs.Quote(t.Path), errdefs.ErrInvalidArgument)
		}
		p := path.Clean(t.Path)
		if p == "/" {
			return s, fmt.Errorf("tmpfs cannot be mounted on /: %w", errdefs.ErrInvalidArgument)
		}
		if seen[p] {
			return s, fmt.Errorf("tmpfs %s given twice: %w", errdefs.Quote(p), errdefs.ErrInvalidArgument)
		}
		seen[p] = true
		if err := validTmpfsOptions(t.Options); err != nil {
			return s, err
		}
		out.Tmpfs[i].Path = p
	}
	return out, nil
}

func normalizeCaps(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, err := NormalizeCapability(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// tmpfsOptions are the options a --tmpfs may carry (Docker's list, the
// ones that make sense for tmpfs).
var tmpfsOptions = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "ro", "rw", "noexec", "exec",
	"nosuid", "suid", "nodev", "dev", "noatime", "atime", "nodiratime", "diratime", "relatime", "norelatime",
	"strictatime", "nostrictatime", "sync", "async", "dirsync"}

func validTmpfsOptions(opts string) error {
	if opts == "" {
		return nil
	}
	if len(opts) > 512 {
		return fmt.Errorf("tmpfs options longer than 512 bytes: %w", errdefs.ErrInvalidArgument)
	}
	for o := range strings.SplitSeq(opts, ",") {
		key, _, _ := strings.Cut(o, "=")
		if !slices.Contains(tmpfsOptions, key) {
			return fmt.Errorf("unknown tmpfs option %s: %w", errdefs.Quote(o), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Capabilities is the capability set of a container with options s, as
// Docker computes it: every capability when privileged; else the default
// set (or none, with a drop of ALL) minus CapDrop plus CapAdd (ALL: every
// capability). It is sorted.
func Capabilities(s Security) []string {
	if s.Privileged || slices.Contains(s.CapAdd, "ALL") {
		return AllCapabilities()
	}
	var caps []string
	if !slices.Contains(s.CapDrop, "ALL") {
		for _, c := range DefaultCapabilities {
			if !slices.Contains(s.CapDrop, c) {
				caps = append(caps, c)
			}
		}
	}
	for _, c := range s.CapAdd {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	slices.Sort(caps)
	return caps
}

// Clone returns a deep copy.
func (s Security) Clone() Security {
	s.CapAdd = slices.Clone(s.CapAdd)
	s.CapDrop = slices.Clone(s.CapDrop)
	s.Tmpfs = slices.Clone(s.Tmpfs)
	return s
}

// IsZero reports the default options.
func (s Security) IsZero() bool {
	return len(s.CapAdd) == 0 && len(s.CapDrop) == 0 && !s.Privileged && s.Seccomp == "" && !s.NoNewPrivileges && !s.ReadOnly && len(s.Tmpfs) == 0
}
