package drill

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// This file is the judge: pure functions from what the drill did (Crash) and
// what it observed after the recovery (Observed) to violations. Nothing
// here touches the machine, so every invariant is table-tested without root.

// Violation is one broken invariant, said so that the reader can act on it.
type Violation struct {
	Cycle     int
	Container string // "" for findings about the machine as a whole
	Invariant string // state, survivor, exit-code, marker, leak, pending, journal, daemon
	Expected  string
	Seen      string
	// subject tells apart findings of one kind about different things (a
	// pid, a mount), so that a finding can be followed across looks.
	subject string
}

func finding(cycle int, id, invariant, expected, seen string) Violation {
	return Violation{Cycle: cycle, Container: id, Invariant: invariant, Expected: expected, Seen: seen}
}

// key identifies a finding across looks at a changing machine.
func (v Violation) key() string {
	return strings.Join([]string{v.Container, v.Invariant, v.Expected, v.subject}, "\x00")
}

func (v Violation) String() string {
	who := "-"
	if v.Container != "" {
		who = shortID(v.Container)
	}
	return fmt.Sprintf("cycle %d container %s: %s: expected %s; seen %s", v.Cycle, who, v.Invariant, v.Expected, v.Seen)
}

// shortID is the 12-character form of a container id, as `cairn ps` shows it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Exit codes the drill's commands can produce: 0 and 3 by themselves, 42
// from the TERM trap, 137 and 143 from SIGKILL and an untrapped SIGTERM.
var possibleExitCodes = []int32{0, 3, 42, 137, 143}

// Exit codes that prove a run got past `echo start >> /marker`: both are
// produced by the command after that line.
var provingExitCodes = []int32{3, 42}

const (
	markerLine  = "start"
	sigkillCode = 137
)

var (
	stateRunning = cairnv1.ContainerState_CONTAINER_STATE_RUNNING
	statePaused  = cairnv1.ContainerState_CONTAINER_STATE_PAUSED
	stateCreated = cairnv1.ContainerState_CONTAINER_STATE_CREATED
	stateStopped = cairnv1.ContainerState_CONTAINER_STATE_STOPPED
	stateRemoved = cairnv1.ContainerState_CONTAINER_STATE_REMOVED
)

func hasProcess(s cairnv1.ContainerState) bool { return s == stateRunning || s == statePaused }

func stateName(s cairnv1.ContainerState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CONTAINER_STATE_"))
}

// Crash is what the drill knows about the moment it killed the daemon and
// what it did before the restart.
type Crash struct {
	Cycle int
	// Before is the daemon's list right before the kill; nil when it could
	// not be read.
	Before []*cairnv1.Container
	// Touched are containers an operation was in flight on when Before was
	// read, or started on after: they may have changed after Before.
	Touched map[string]bool
	// Signaled maps containers the drill sent a signal through the API to
	// the pid signaled (0: unknown): that process may still be dying.
	Signaled map[string]int64
	// KilledProc and KilledShim are the containers whose process or shim
	// the drill SIGKILLed while the daemon was down (shim first).
	KilledProc, KilledShim map[string]bool
	// ShimLost are containers whose shim the drill killed in this or an
	// earlier cycle: only for them can an exit code be unknown.
	ShimLost map[string]bool
	// Execs are the exec sessions whose start the daemon answered: session
	// id → container id.
	Execs map[string]string
}

// Settled reports whether c, as listed before the crash, had nothing going
// on that could change it across the crash: no operation in flight or
// pending, no signal on its way, and a command that does not end by itself.
func (cr Crash) Settled(c *cairnv1.Container) bool {
	if cr.Touched[c.Id] || c.PendingEvent != "" {
		return false
	}
	if pid, ok := cr.Signaled[c.Id]; ok && (pid == 0 || pid == c.Pid) && hasProcess(c.State) {
		return false
	}
	if hasPolicy(c) && !hasProcess(c.State) {
		return false // its restart policy may start it across the crash
	}
	return !(hasProcess(c.State) && endsByItself(c.Command))
}

// Observed is what the drill saw once the daemon served again.
type Observed struct {
	Containers []*cairnv1.Container
	// Images are every image the daemon lists, as its Get describes them.
	Images []*cairnv1.Image
	// Volumes are every volume the daemon lists; nil when the drill has
	// none (then the volume invariants are not checked).
	Volumes []*cairnv1.Volume
	// History holds each container's journal records, in order.
	History map[string][]*cairnv1.JournalRecord
	// Execs are the exec sessions of the listed containers, by id, as
	// ExecInspect shows them.
	Execs map[string]*cairnv1.ExecSession
	World World
}

// Check runs every invariant.
func Check(cr Crash, o Observed) []Violation {
	var out []Violation
	for _, check := range []func(Crash, Observed) []Violation{
		checkStates, checkSurvivors, checkExitCodes, checkMarkers, checkLeaks, checkPending, checkImages, checkExecs, checkVolumes, checkNetwork, checkRestarts,
	} {
		out = append(out, check(cr, o)...)
	}
	return out
}

// checkStates: every listed container is in the state the machine shows.
func checkStates(cr Crash, o Observed) []Violation {
	var out []Violation
	for _, c := range o.Containers {
		bad := func(expected, seen string) {
			out = append(out, finding(cr.Cycle, c.Id, "state", expected, seen))
		}
		switch c.State {
		case stateRunning, statePaused:
			want := "THAWED"
			if c.State == statePaused {
				want = "FROZEN"
			}
			if p, ok := o.World.Procs[int(c.Pid)]; c.Pid <= 0 || !ok || !p.alive(c.PidStartTime) {
				bad(fmt.Sprintf("%s: pid %d alive with start time %d", stateName(c.State), c.Pid, c.PidStartTime), o.World.describePID(int(c.Pid)))
			}
			if got, ok := o.World.Freezer[c.Id]; !ok || got != want {
				seen := got
				if !ok {
					seen = "no freezer cgroup"
				}
				bad(fmt.Sprintf("%s: freezer.state %s", stateName(c.State), want), seen)
			}
			if c.Layers == nil {
				bad(stateName(c.State)+": layer paths", "none")
			}
		case stateCreated, stateStopped:
			if c.Pid != 0 {
				bad(stateName(c.State)+": no pid", fmt.Sprintf("pid %d (%s)", c.Pid, o.World.describePID(int(c.Pid))))
			}
			if dirs := o.World.Cgroups[c.Id]; len(dirs) > 0 {
				bad(stateName(c.State)+": no cgroup", strings.Join(dirs, ", "))
			}
			if c.Layers == nil {
				bad(stateName(c.State)+": its layers kept", "no layer paths")
			}
		case stateRemoved:
		default:
			bad("a known state", c.State.String())
		}
	}
	return out
}

// checkSurvivors: what nothing touched comes back as it was; a running or
// paused container keeps its process, and paused stays paused.
func checkSurvivors(cr Crash, o Observed) []Violation {
	var out []Violation
	after := byID(o.Containers)
	for _, b := range cr.Before {
		if !cr.Settled(b) || cr.KilledProc[b.Id] || cr.KilledShim[b.Id] || b.State == stateRemoved {
			continue
		}
		was := describeContainer(b)
		a, ok := after[b.Id]
		switch {
		case !ok:
			out = append(out, finding(cr.Cycle, b.Id, "survivor", "still listed as "+was, "gone"))
		case a.State != b.State || a.Pid != b.Pid || a.PidStartTime != b.PidStartTime:
			out = append(out, finding(cr.Cycle, b.Id, "survivor", was+" (untouched across the crash)", describeContainer(a)))
		case b.State == stateStopped && exitString(a) != exitString(b):
			out = append(out, finding(cr.Cycle, b.Id, "survivor", "exit "+exitString(b)+" kept", "exit "+exitString(a)))
		}
	}
	return out
}

// checkExitCodes: exit codes are what happened, never made up.
func checkExitCodes(cr Crash, o Observed) []Violation {
	var out []Violation
	after := byID(o.Containers)
	bad := func(id, expected, seen string) {
		out = append(out, finding(cr.Cycle, id, "exit-code", expected, seen))
	}
	for _, id := range sortedKeys(cr.KilledProc, cr.KilledShim) {
		a, ok := after[id]
		if ok && hasPolicy(a) && (hasProcess(a.State) || a.PendingEvent == "policy-restart") {
			continue // started again by its restart policy; checkRestarts counts it
		}
		seen := "gone"
		if ok {
			seen = describeContainer(a)
		}
		switch {
		case cr.KilledProc[id] && cr.KilledShim[id]:
			if !ok || a.State != stateStopped || a.ExitCode != nil || a.ExitReason == "" {
				bad(id, "stopped with exit code unknown and a reason (shim and process were SIGKILLed)", seen)
			}
		case cr.KilledProc[id]:
			if !ok || a.State != stateStopped || a.ExitCode == nil || *a.ExitCode != sigkillCode {
				bad(id, "stopped with exit code 137 (process SIGKILLed, shim alive)", seen)
			}
		default: // shim only: the process may be killed by the recovery, but its code cannot be seen
			if ok && a.State == stateStopped && a.ExitCode != nil && *a.ExitCode != sigkillCode {
				bad(id, "exit code unknown or 137 (shim SIGKILLed, process left alive)", seen)
			}
		}
	}
	for _, c := range o.Containers {
		if c.State != stateStopped {
			continue
		}
		switch {
		case c.ExitCode != nil && !slices.Contains(possibleExitCodes, *c.ExitCode):
			bad(c.Id, fmt.Sprintf("an exit code its command can produce %v", possibleExitCodes), fmt.Sprintf("%d (reason %q)", *c.ExitCode, c.ExitReason))
		case c.ExitCode == nil && c.ExitReason == "":
			bad(c.Id, "a reason with an unknown exit code", "no exit code and no reason")
		case c.ExitCode == nil && !cr.ShimLost[c.Id]:
			bad(c.Id, "a known exit code (the drill never killed its shim)", "unknown: "+c.ExitReason)
		}
	}
	return out
}

// checkMarkers: what containers wrote to their writable layer is still
// there, whole. Every run that provably got past the echo left a line.
func checkMarkers(cr Crash, o Observed) []Violation {
	var out []Violation
	for _, c := range o.Containers {
		if c.State == stateRemoved || c.Layers == nil {
			continue
		}
		m := o.World.Markers[c.Id]
		bad := func(expected, seen string) {
			out = append(out, finding(cr.Cycle, c.Id, "marker", expected, seen))
		}
		if m.Err != "" {
			bad("a readable "+c.Layers.Upper+"/marker", m.Err)
			continue
		}
		lines, malformed := parseMarker(m.Content)
		if malformed != "" {
			bad(`only "start" lines in `+c.Layers.Upper+"/marker", malformed)
		}
		live := c.State == stateRunning && o.World.Procs[int(c.Pid)].alive(c.PidStartTime) && o.World.Freezer[c.Id] == "THAWED"
		starts, proven := provenStarts(o.History[c.Id], live)
		if lines < proven {
			bad(fmt.Sprintf("at least %d %q lines (%d of %d completed starts proven to have run the echo)", proven, markerLine, proven, starts),
				fmt.Sprintf("%d", lines))
		}
	}
	return out
}

// parseMarker counts the lines of a marker file and describes the first
// sign of damage: a line that is not "start" or a missing final newline.
func parseMarker(content string) (lines int, malformed string) {
	if content == "" {
		return 0, ""
	}
	if !strings.HasSuffix(content, "\n") {
		malformed = "no final newline"
	}
	for i, line := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
		if line != markerLine && malformed == "" {
			malformed = fmt.Sprintf("line %d is %q", i+1, line)
		}
		lines++
	}
	return lines, malformed
}

// provenStarts walks a container's journal: starts counts the completed
// starts and restarts (DONE or RECONCILED into running); proven counts the
// runs that certainly executed the echo: those that ended with an exit code
// only the command's later lines produce, and the current run if it is
// live. A run stopped or killed right after its start may not have echoed
// yet, so it proves nothing.
func provenStarts(records []*cairnv1.JournalRecord, live bool) (starts, proven int) {
	open := false
	for _, r := range records {
		if r.ExecId != "" {
			continue // an exec session's record: its exit is not the container's
		}
		finished := r.Kind == cairnv1.RecordKind_RECORD_KIND_DONE || r.Kind == cairnv1.RecordKind_RECORD_KIND_RECONCILED
		if !finished && r.Kind != cairnv1.RecordKind_RECORD_KIND_FAILED {
			continue
		}
		// An exit (of an exit, stop, restart or remove, even a failed one)
		// ends the open run.
		if exited, code := recordExit(r); exited && open {
			if code != nil && slices.Contains(provingExitCodes, *code) {
				proven++
			}
			open = false
		}
		if finished && (r.Event == "start" || r.Event == "restart" || r.Event == "policy-restart") && r.ToState == "running" {
			starts++
			open = true
		}
	}
	if open && live {
		proven++
	}
	return starts, proven
}

// recordExit reads the exit a record's details carry, if any.
func recordExit(r *cairnv1.JournalRecord) (exited bool, code *int32) {
	if r.DetailsJson == "" {
		return false, nil
	}
	var d struct {
		Result *struct {
			Exit *struct {
				Code *int32 `json:"code"`
			} `json:"exit"`
		} `json:"result"`
	}
	if json.Unmarshal([]byte(r.DetailsJson), &d) != nil || d.Result == nil || d.Result.Exit == nil {
		return false, nil
	}
	return true, d.Result.Exit.Code
}

// checkLeaks: the machine holds exactly what the running and paused
// containers need: one overlay mount and one cgroup each, their shims and
// processes, and at most one standby shim.
func checkLeaks(cr Crash, o Observed) []Violation {
	var out []Violation
	leak := func(id, expected, seen, subject string) {
		out = append(out, Violation{Cycle: cr.Cycle, Container: id, Invariant: "leak", Expected: expected, Seen: seen, subject: subject})
	}
	live := map[string]*cairnv1.Container{}
	shims := map[int]string{}
	for _, c := range o.Containers {
		if hasProcess(c.State) {
			live[c.Id] = c
			shims[int(c.ShimPid)] = c.Id
		}
	}
	mounted := map[string]int{}
	for _, m := range o.World.Mounts {
		mounted[m]++
	}
	for _, c := range sortedContainers(live) {
		if c.Layers == nil {
			continue // reported by checkStates
		}
		if n := mounted[c.Layers.Rootfs]; n != 1 {
			leak(c.Id, "its rootfs mounted once at "+c.Layers.Rootfs, fmt.Sprintf("mounted %d times", n), "")
		}
		delete(mounted, c.Layers.Rootfs)
		// A container whose shim the drill killed keeps running without one:
		// recovery reattaches it and records that its exit code will be
		// unknown. Every other running or paused container has its shim.
		if p, ok := o.World.Procs[int(c.ShimPid)]; !cr.ShimLost[c.Id] && (c.ShimPid <= 0 || !ok || !p.Shim || p.Stat.Dead()) {
			leak(c.Id, fmt.Sprintf("a live shim (shim_pid %d) for a %s container", c.ShimPid, stateName(c.State)), o.World.describePID(int(c.ShimPid)), "")
		}
	}
	for _, m := range sortedKeys(mounted) {
		leak(ownerOfPath(o.Containers, m), "no mount but the rootfs of running and paused containers", "mount "+m, m)
	}
	for _, id := range sortedKeys(o.World.Cgroups) {
		if live[id] == nil {
			leak(id, "cgroups only for running and paused containers", strings.Join(o.World.Cgroups[id], ", "), id)
		}
	}
	standby := 0
	for _, pid := range o.World.Discovered {
		p := o.World.Procs[pid]
		switch {
		case p.Gone || p.Stat.Dead(): // ended since it was found: nothing left to leak
		case pid == o.World.DaemonPID:
		case p.Shim && shims[pid] != "":
		case p.Shim && p.Cwd == o.World.ExecDir:
			if standby++; standby > 1 {
				leak("", "at most one standby shim", p.String(), fmt.Sprint(pid))
			}
		case !p.Shim && p.Cgroup != "" && live[p.Cgroup] != nil:
		default:
			leak(p.Cgroup, "no process but the daemon, shims and processes of running and paused containers", p.String(), fmt.Sprint(pid))
		}
	}
	return out
}

// checkPending: recovery finishes or undoes every transition it finds.
func checkPending(cr Crash, o Observed) []Violation {
	var out []Violation
	for _, c := range o.Containers {
		if c.PendingEvent != "" {
			out = append(out, finding(cr.Cycle, c.Id, "pending", "no unfinished transition after recovery", "pending "+c.PendingEvent))
		}
	}
	return out
}

// checkImages: every image listed is whole and settled (no unfinished
// load, tag or remove), and every layer directory on disk belongs to an
// image: the layer store holds one directory per chain position of the
// listed images (a layer shared by images stored once), none half-loaded
// and none orphaned, and no scratch file outlives a recovery.
func checkImages(cr Crash, o Observed) []Violation {
	var out []Violation
	bad := func(invariant, expected, seen, subject string) {
		out = append(out, Violation{Cycle: cr.Cycle, Invariant: invariant, Expected: expected, Seen: seen, subject: subject})
	}
	chains := map[string]bool{}
	for _, img := range o.Images {
		if img.PendingEvent != "" {
			bad("pending", "no unfinished image operation after recovery", fmt.Sprintf("image %s pending %s", img.Id, img.PendingEvent), img.Id)
		}
		if len(img.DiffIds) == 0 || img.ChainId == "" || img.Config == nil {
			bad("image", "every image listed with its layers and config", fmt.Sprintf("image %s: %d layers, chain %q", img.Id, len(img.DiffIds), img.ChainId), img.Id)
		}
		for i := range img.DiffIds {
			chains[strings.Join(img.DiffIds[:i+1], " ")] = true
		}
	}
	if len(o.World.LayerDirs) != len(chains) {
		bad("image", fmt.Sprintf("%d layer directories, one per chain position of the listed images", len(chains)),
			fmt.Sprintf("%d in layers/", len(o.World.LayerDirs)), "layers")
	}
	if len(o.World.Scratch) > 0 {
		bad("leak", "an empty layer store tmp/ after recovery", strings.Join(o.World.Scratch, ", "), "tmp")
	}
	if len(o.World.HalfVerified) > 0 {
		bad("leak", "every verified layer kept for a resumed pull whole (marker, layer, blob)", strings.Join(o.World.HalfVerified, ", "), "verified")
	}
	return out
}

// checkVolumes: the volume directories on disk are exactly the listed
// volumes, each with its _data, none pending; and the drill's volume holds
// the bytes it was made with ("volume bytes intact").
func checkVolumes(cr Crash, o Observed) []Violation {
	if o.Volumes == nil {
		return nil
	}
	var out []Violation
	bad := func(invariant, expected, seen, subject string) {
		out = append(out, Violation{Cycle: cr.Cycle, Invariant: invariant, Expected: expected, Seen: seen, subject: subject})
	}
	var listed []string
	for _, v := range o.Volumes {
		listed = append(listed, v.Name)
		if v.PendingEvent != "" {
			bad("pending", "no unfinished volume operation after recovery", fmt.Sprintf("volume %s pending %s", v.Name, v.PendingEvent), v.Name)
		}
	}
	sort.Strings(listed)
	onDisk := slices.Sorted(slices.Values(o.World.VolumeDirs))
	if !slices.Equal(listed, onDisk) {
		bad("volume", "one directory per listed volume, nothing half-made", fmt.Sprintf("listed %v, on disk %v", listed, onDisk), "volumes")
	}
	if len(o.World.VolumeNoData) > 0 {
		bad("volume", "every volume directory with its _data", "without: "+strings.Join(o.World.VolumeNoData, ", "), "_data")
	}
	b := o.World.VolumeBlob
	switch {
	case b.Err != "":
		bad("volume-bytes", "the drill volume's blob and its checksum readable", b.Err, "blob")
	case b.Sum == "" || b.Sum != b.Want:
		bad("volume-bytes", "the drill volume's blob to match the checksum written with it ("+b.Want+")", "sha256 "+b.Sum, "blob")
	}
	return out
}

func byID(cs []*cairnv1.Container) map[string]*cairnv1.Container {
	out := make(map[string]*cairnv1.Container, len(cs))
	for _, c := range cs {
		out[c.Id] = c
	}
	return out
}

func sortedContainers(m map[string]*cairnv1.Container) []*cairnv1.Container {
	out := make([]*cairnv1.Container, 0, len(m))
	for _, id := range sortedKeys(m) {
		out = append(out, m[id])
	}
	return out
}

// sortedKeys returns the union of the maps' keys, sorted, so that reports
// come out in a stable order.
func sortedKeys[V any](maps ...map[string]V) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range maps {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ownerOfPath names the container whose layer directory holds path, if any.
func ownerOfPath(cs []*cairnv1.Container, path string) string {
	for _, c := range cs {
		if c.Layers != nil && c.Layers.Rootfs != "" && strings.HasPrefix(path, c.Layers.Rootfs) {
			return c.Id
		}
	}
	return ""
}

func describeContainer(c *cairnv1.Container) string {
	s := stateName(c.State)
	if hasProcess(c.State) || c.Pid != 0 {
		s += fmt.Sprintf(" pid %d (start %d)", c.Pid, c.PidStartTime)
	}
	if c.State == stateStopped {
		s += " exit " + exitString(c)
	}
	if c.PendingEvent != "" {
		s += " pending " + c.PendingEvent
	}
	return s
}

func exitString(c *cairnv1.Container) string {
	if c.ExitCode == nil {
		return fmt.Sprintf("unknown (%q)", c.ExitReason)
	}
	return fmt.Sprint(*c.ExitCode)
}

// Exit codes an exec session of the drill can end with: its own, or the
// SIGKILL or SIGTERM its container's end gave it.
var execExitCodes = []int32{execCode, 137, 143}

// checkExecs: no exec session is lost or leaked. Every session whose start
// the daemon answered is there while its container is; none is left
// pending; one the journal calls running has its process alive in a
// running or paused container; one that exited has an exit code it can
// have had (or, unknown, the reason), and its shim's exit record of it is
// gone.
func checkExecs(cr Crash, o Observed) []Violation {
	var out []Violation
	bad := func(container, invariant, expected, seen, subject string) {
		out = append(out, Violation{Cycle: cr.Cycle, Container: container, Invariant: invariant, Expected: expected, Seen: seen, subject: subject})
	}
	listed := byID(o.Containers)
	for _, id := range sortedKeys(cr.Execs) {
		c := listed[cr.Execs[id]]
		if c != nil && !slices.Contains(c.ExecIds, id) {
			bad(c.Id, "exec lost", "every exec session the daemon started, while its container exists", "session "+shortID(id)+" is gone", id)
		}
	}
	for _, id := range sortedKeys(o.Execs) {
		x := o.Execs[id]
		c := listed[x.ContainerId]
		switch {
		case x.PendingEvent != "":
			bad(x.ContainerId, "pending", "no unfinished exec transition after recovery", "session "+shortID(id)+" pending "+x.PendingEvent, id)
		case x.State == cairnv1.ExecState_EXEC_STATE_RUNNING:
			p, seen := o.World.Procs[int(x.Pid)]
			switch {
			case c == nil || !hasProcess(c.State):
				bad(x.ContainerId, "exec leaked", "running exec sessions only in running or paused containers", "session "+shortID(id)+" running", id)
			case !seen || p.Gone || p.Stat.Dead():
				bad(x.ContainerId, "exec leaked", "the process of a running exec session alive", "session "+shortID(id)+": "+o.World.describePID(int(x.Pid)), id)
			}
		case x.State == cairnv1.ExecState_EXEC_STATE_EXITED:
			switch {
			case x.ExitCode == nil && x.ExitReason == "":
				bad(x.ContainerId, "exit code", "an exec session's unknown exit code to say why", "session "+shortID(id)+": no code, no reason", id)
			case x.ExitCode != nil && !slices.Contains(execExitCodes, *x.ExitCode):
				bad(x.ContainerId, "exit code", fmt.Sprintf("an exec session's exit code among %v", execExitCodes), fmt.Sprintf("session %s: %d", shortID(id), *x.ExitCode), id)
			}
			if slices.Contains(o.World.ExecRecords[x.ContainerId], id) {
				bad(x.ContainerId, "exec leaked", "no exit record of an exec session whose exit is journaled", "session "+shortID(id)+": its exit record is still there", id)
			}
		default:
			bad(x.ContainerId, "exec state", "exec sessions running or exited after recovery", "session "+shortID(id)+" "+x.State.String(), id)
		}
	}
	return out
}

// checkNetwork: every running or paused container is attached, settled,
// with its namespace file mounted; a container settled across the crash
// keeps its IP; no attachment is left unfinished, and no namespace file
// belongs to a container without an attachment.
func checkNetwork(cr Crash, o Observed) []Violation {
	var out []Violation
	bad := func(id, expected, seen string) {
		out = append(out, finding(cr.Cycle, id, "network", expected, seen))
	}
	before := byID(cr.Before)
	attached := map[string]bool{}
	for _, c := range o.Containers {
		a := c.Network
		if a != nil {
			attached[c.Id] = true
			if a.PendingEvent != "" {
				bad(c.Id, "no unfinished attach or detach after recovery", "pending "+a.PendingEvent)
			}
		}
		if !hasProcess(c.State) {
			continue
		}
		if a == nil || a.IpAddress == "" {
			bad(c.Id, "a "+stateName(c.State)+" container attached with an IP", "no attachment")
			continue
		}
		if !o.World.NetNS[c.Id] {
			bad(c.Id, "its namespace file mounted", "not mounted")
		}
		if b := before[c.Id]; b != nil && b.Network != nil && b.Network.IpAddress != "" && hasProcess(b.State) && cr.Settled(b) && b.Network.IpAddress != a.IpAddress {
			bad(c.Id, "the IP it had before the crash, "+b.Network.IpAddress, a.IpAddress)
		}
	}
	for _, id := range sortedKeys(o.World.NetNS) {
		if !attached[id] {
			bad(id, "namespace files only for attached containers", "netns file of "+shortID(id))
		}
	}
	return out
}
