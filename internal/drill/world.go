package drill

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/inspect"
)

// World is what the machine shows of one drill's daemon, read from the
// kernel rather than asked of the daemon.
type World struct {
	// ExecDir is the executor directory: a shim whose working directory it
	// is has no container yet (the standby shim).
	ExecDir   string
	DaemonPID int
	// Procs holds every process of interest by pid: those discovered and
	// those the containers name (pid, shim_pid), gone ones included.
	Procs map[int]Proc
	// Discovered are the live processes of this daemon found on the
	// machine: command line naming the root, or member of its cgroups.
	Discovered []int
	Mounts     []string            // mount points under the drill's directory
	Cgroups    map[string][]string // child of the cgroup parent (a container id) → its directories
	Freezer    map[string]string   // container id → freezer.state
	Markers    map[string]Marker   // container id → its upper/marker
	// LayerDirs and Scratch are what the layer store holds on disk: its
	// layer directories (layers/) and its scratch entries (tmp/).
	LayerDirs, Scratch []string
	// ExecRecords are the exit records of exec sessions the shims keep
	// until the daemon releases them: container id → session ids.
	ExecRecords map[string][]string
	// VolumeDirs are the directories under the daemon's volumes/ and
	// VolumeNoData those of them without a _data directory.
	VolumeDirs, VolumeNoData []string
	// VolumeBlob is what the drill's volume holds: the sha256 of its blob,
	// and the sum a container wrote beside it when it made it.
	VolumeBlob VolumeBlob
	// NetNS are the namespace files under the daemon's network run
	// directory, by container id, each true when it is a bind mount.
	NetNS map[string]bool
	// HalfVerified are the verified layers an interrupted pull kept
	// (verified/) that lack their marker, layer directory or blob: what
	// no start may leave.
	HalfVerified []string
}

// VolumeBlob is the drill volume's content as the host reads it.
type VolumeBlob struct {
	Sum, Want string
	Err       string
}

// readVolumeBlob reads the drill volume's blob and the checksum written
// with it (sha256sum's output: "<hex>  <path>").
func readVolumeBlob(data string) VolumeBlob {
	blob, err := os.ReadFile(filepath.Join(data, "blob"))
	if err != nil {
		return VolumeBlob{Err: err.Error()}
	}
	want, err := os.ReadFile(filepath.Join(data, "blob.sha256"))
	if err != nil {
		return VolumeBlob{Err: err.Error()}
	}
	sum := sha256.Sum256(blob)
	hexSum, _, _ := strings.Cut(string(want), " ")
	return VolumeBlob{Sum: hex.EncodeToString(sum[:]), Want: hexSum}
}

// Proc is one process as /proc shows it.
type Proc struct {
	PID     int
	Gone    bool // no /proc entry
	Stat    inspect.Stat
	Cmdline string
	Cwd     string
	// Cgroup is the child of the cgroup parent whose freezer cgroup holds
	// the process, "/" for the parent itself, "" for neither.
	Cgroup string
	// Shim is set for a `cairn shim` of this daemon's executor.
	Shim bool
}

// Marker is the content of a container's /marker in its writable layer;
// Err is set when the file exists but cannot be read.
type Marker struct {
	Content string
	Err     string
}

func (p Proc) alive(startTime uint64) bool {
	return !p.Gone && !p.Stat.Dead() && p.Stat.StartTime == startTime
}

func (p Proc) String() string {
	if p.Gone {
		return fmt.Sprintf("pid %d gone", p.PID)
	}
	s := fmt.Sprintf("pid %d [%c ppid %d start %d] %q", p.PID, p.Stat.State, p.Stat.PPID, p.Stat.StartTime, p.Cmdline)
	if p.Cgroup != "" {
		s += " in cgroup " + shortID(p.Cgroup)
	}
	if p.Cwd != "" {
		s += " cwd " + p.Cwd
	}
	return s
}

func (w World) describePID(pid int) string {
	if pid <= 0 {
		return fmt.Sprintf("pid %d", pid)
	}
	p, ok := w.Procs[pid]
	if !ok {
		return fmt.Sprintf("pid %d not observed", pid)
	}
	return p.String()
}

// observer reads the world of one drill daemon.
type observer struct {
	dir, execDir, layerDir, cgroupParent string
	// volumeDir is the daemon's volumes/ ("": the drill has no volumes).
	volumeDir string
	netnsDir  string // "": the daemon has no network run directory of the drill's
}

// observe reads the machine for the containers listed.
func (ob observer) observe(daemonPID int, cs []*cairnv1.Container) World {
	w := World{
		ExecDir: ob.execDir, DaemonPID: daemonPID, Procs: map[int]Proc{},
		Mounts: inspect.MountsUnder(ob.dir), Cgroups: map[string][]string{},
		Freezer: map[string]string{}, Markers: map[string]Marker{}, ExecRecords: map[string][]string{},
	}
	for _, dir := range inspect.CgroupDirs(ob.cgroupParent) {
		if id, ok := inspect.CgroupOwner(ob.cgroupParent, dir); ok {
			w.Cgroups[id] = append(w.Cgroups[id], dir)
		}
	}
	for id := range w.Cgroups {
		if state, err := inspect.FreezerState(ob.cgroupParent, id); err == nil {
			w.Freezer[id] = state
		}
	}
	w.LayerDirs, w.Scratch = dirNames(filepath.Join(ob.layerDir, "layers")), dirNames(filepath.Join(ob.layerDir, "tmp"))
	if ob.volumeDir != "" {
		w.VolumeDirs = dirNames(ob.volumeDir)
		for _, name := range w.VolumeDirs {
			if fi, err := os.Stat(filepath.Join(ob.volumeDir, name, "_data")); err != nil || !fi.IsDir() {
				w.VolumeNoData = append(w.VolumeNoData, name)
			}
		}
		w.VolumeBlob = readVolumeBlob(filepath.Join(ob.volumeDir, drillVolume, "_data"))
	}
	w.NetNS = map[string]bool{}
	if ob.netnsDir != "" {
		for _, id := range dirNames(ob.netnsDir) {
			w.NetNS[id] = isNetNS(filepath.Join(ob.netnsDir, id))
		}
	}
	for _, id := range dirNames(filepath.Join(ob.layerDir, "verified")) {
		for _, part := range []string{"verified.json", "layer", "blob"} {
			if _, err := os.Lstat(filepath.Join(ob.layerDir, "verified", id, part)); err != nil {
				w.HalfVerified = append(w.HalfVerified, id)
				break
			}
		}
	}
	w.Discovered = inspect.ProcessesOf(ob.dir, ob.cgroupParent)
	for _, pid := range w.Discovered {
		w.Procs[pid] = ob.proc(pid)
	}
	for _, c := range cs {
		for _, pid := range []int{int(c.Pid), int(c.ShimPid)} {
			if _, seen := w.Procs[pid]; pid > 0 && !seen {
				w.Procs[pid] = ob.proc(pid)
			}
		}
		if c.Layers != nil && c.Layers.Upper != "" {
			w.Markers[c.Id] = readMarker(filepath.Join(c.Layers.Upper, "marker"))
		}
		for _, name := range dirNames(filepath.Join(ob.execDir, "containers", c.Id, "execs")) {
			if id, ok := strings.CutSuffix(name, ".json"); ok {
				w.ExecRecords[c.Id] = append(w.ExecRecords[c.Id], id)
			}
		}
	}
	return w
}

// observeExecProcs adds the processes of running exec sessions to w.
func (ob observer) observeExecProcs(w World, execs map[string]*cairnv1.ExecSession) {
	for _, x := range execs {
		if pid := int(x.Pid); pid > 0 && x.State == cairnv1.ExecState_EXEC_STATE_RUNNING {
			if _, seen := w.Procs[pid]; !seen {
				w.Procs[pid] = ob.proc(pid)
			}
		}
	}
}

func (ob observer) proc(pid int) Proc {
	st, err := inspect.ReadStat(pid)
	if err != nil {
		return Proc{PID: pid, Gone: true}
	}
	cmdline := inspect.Cmdline(pid)
	return Proc{
		PID: pid, Stat: st, Cmdline: cmdline, Cwd: inspect.Cwd(pid),
		Cgroup: ob.cgroupChild(pid),
		Shim:   isShimCmdline(cmdline, ob.execDir),
	}
}

// cgroupChild finds which child of the cgroup parent holds pid in the
// freezer hierarchy: "/" for the parent itself, "" for none.
func (ob observer) cgroupChild(pid int) string {
	path, parent := inspect.CgroupOf(pid, "freezer"), "/"+ob.cgroupParent
	switch {
	case path == parent:
		return "/"
	case strings.HasPrefix(path, parent+"/"):
		return strings.SplitN(strings.TrimPrefix(path, parent+"/"), "/", 2)[0]
	}
	return ""
}

func readMarker(path string) Marker {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Marker{}
	case err != nil:
		return Marker{Err: err.Error()}
	}
	return Marker{Content: string(data)}
}

// dirNames lists a directory's entries (none when it cannot be read).
func dirNames(dir string) []string {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// isNetNS reports whether path is a bind-mounted namespace (nsfs).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == 0x6e736673
}
