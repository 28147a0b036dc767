package executor

import (
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairn-run/cairn/internal/errdefs"
)

// Config says where an Executor keeps its files, which binary runs as the
// shim and under which cgroup its containers live.
type Config struct {
	// Dir holds containers/<id>/ (spec, socket, exit record, logs) and
	// runtime/ (libcontainer's state root, one directory per container).
	Dir string
	// ShimBinary is run as `<ShimBinary> shim ...`; it must call MaybeInit
	// first and RunShim for the "shim" argument. Default: this executable.
	ShimBinary string
	// CgroupParent is the cgroup v1 path prefix: a container's cgroup is
	// /<CgroupParent>/<id> in every controller. Default: "cairn".
	CgroupParent string
	// Logger receives debug-level timings of each start and teardown, for
	// finding where a slow one spent its time; nil discards them.
	Logger *slog.Logger
}

// Executor runs containers under shims and acts on them. It holds no
// per-container state in memory: everything it needs is on disk or in the
// Process handle, so a new Executor (a restarted daemon) can take over.
type Executor struct {
	cfg     Config
	log     *slog.Logger
	mounts  cgroupMounts
	shimBin string
	shimExe *os.File // sealed copy of shimBin, see shimexe.go
	// stub identifies shimExe, the init stub of our containers, in
	// /proc/<pid>/exe (see execwait.go); nil if it could not be read.
	stub os.FileInfo
	warm *warmer // see cgroupwarm.go

	statsMu     sync.Mutex
	statsMounts map[string]string // v1 controller -> mount point, see stats.go

	exeMu     sync.RWMutex // guards shimExe against Close
	exeClosed bool

	standbyHits, standbyMisses atomic.Uint64 // see StandbyStats

	standbyMu sync.Mutex // guards the fields below, see standby.go
	standby   *shimProc
	refilling bool
	closed    bool
	refills   sync.WaitGroup
}

const (
	containersDirName = "containers"
	runtimeDirName    = "runtime"

	shimFileName   = "shim.json"
	socketName     = "shim.sock"
	exitFileName   = "exit.json"
	logFileName    = "container.log"
	shimLogName    = "shim.log"
	defaultCgroups = "cairn"
)

// New checks cfg and creates Dir's layout.
func New(cfg Config) (*Executor, error) {
	if cfg.Dir == "" || !filepath.IsAbs(cfg.Dir) {
		return nil, fmt.Errorf("executor: Dir %q must be an absolute path: %w", cfg.Dir, errdefs.ErrInvalidArgument)
	}
	cfg.Dir = filepath.Clean(cfg.Dir)
	parent, err := cleanCgroupParent(cfg.CgroupParent)
	if err != nil {
		return nil, err
	}
	cfg.CgroupParent = parent
	bin := cfg.ShimBinary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("executor: shim binary: %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, fmt.Errorf("executor: shim binary: %w", err)
	}
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, containersDirName), filepath.Join(cfg.Dir, runtimeDirName)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("executor: %w", err)
		}
	}
	mounts, err := findCgroupMounts()
	if err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	exe, err := sealedShim(bin, cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Executor{cfg: cfg, log: log, mounts: mounts, shimBin: bin, shimExe: exe, warm: &warmer{procs: mounts.selfFreezerProcs()}}
	e.stub, _ = exe.Stat()
	go e.refillStandby()
	return e, nil
}

// cleanCgroupParent normalises the parent to a relative path without
// leading or trailing slashes and refuses paths that would leave the
// hierarchy.
func cleanCgroupParent(p string) (string, error) {
	if p == "" {
		return defaultCgroups, nil
	}
	c := strings.Trim(path.Clean("/"+p), "/")
	if c == "" || c != strings.Trim(p, "/") {
		return "", fmt.Errorf("executor: cgroup parent %q is not a clean path: %w", p, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

func (e *Executor) containerDir(id string) string {
	return filepath.Join(e.cfg.Dir, containersDirName, id)
}

func (e *Executor) runtimeRoot() string {
	return filepath.Join(e.cfg.Dir, runtimeDirName)
}

// cgroupPath is the container's cgroup relative to each hierarchy's root.
func (e *Executor) cgroupPath(id string) string {
	return e.cfg.CgroupParent + "/" + id
}

// LogPath is the file that receives the container's stdout and stderr.
func (e *Executor) LogPath(id string) string {
	return filepath.Join(e.containerDir(id), logFileName)
}

// validateID accepts the ids libcontainer accepts (letters, digits, _ + - .),
// checked here so a bad id never becomes a path.
func validateID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 128 {
		return fmt.Errorf("container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '+', c == '-', c == '.':
		default:
			return fmt.Errorf("container id %q: character %q not allowed: %w", id, c, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
