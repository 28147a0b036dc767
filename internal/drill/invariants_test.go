package drill

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/inspect"
)

const (
	testExecDir = "/d/root/exec"
	idRunning   = "aaaa000000000000000000000000000000000000000000000000000000000000"
	idPaused    = "bbbb000000000000000000000000000000000000000000000000000000000000"
	idStopped   = "cccc000000000000000000000000000000000000000000000000000000000000"
	idCreated   = "dddd000000000000000000000000000000000000000000000000000000000000"
)

func code(c int32) *int32 { return &c }

func layers(id string) *cairnv1.LayerPaths {
	return &cairnv1.LayerPaths{Rootfs: "/d/root/layer/mounts/" + id[:4] + "/merged", Upper: "/d/root/layer/mounts/" + id[:4] + "/upper"}
}

func rec(kind cairnv1.RecordKind, event, to, details string) *cairnv1.JournalRecord {
	return &cairnv1.JournalRecord{Kind: kind, Event: event, ToState: to, DetailsJson: details}
}

const (
	done       = cairnv1.RecordKind_RECORD_KIND_DONE
	intent     = cairnv1.RecordKind_RECORD_KIND_INTENT
	failed     = cairnv1.RecordKind_RECORD_KIND_FAILED
	reconciled = cairnv1.RecordKind_RECORD_KIND_RECONCILED
	exit42     = `{"result":{"exit":{"code":42}}}`
	exit137    = `{"result":{"exit":{"code":137}}}`
	exit3      = `{"result":{"exit":{"code":3}}}`
	exitLost   = `{"result":{"exit":{"reason":"lost"}}}`
)

func proc(pid int, start uint64, cmdline, cgroup string) Proc {
	return Proc{PID: pid, Stat: inspect.Stat{State: 'S', StartTime: start}, Cmdline: cmdline, Cgroup: cgroup}
}

func shimProc(pid int, cwd string) Proc {
	p := proc(pid, uint64(pid)*10, "/usr/bin/cairn shim --exec-dir "+testExecDir, "")
	p.Shim, p.Cwd = true, cwd
	return p
}

// healthy is a recovery that got everything right: a running and a paused
// container with their processes, shims, mounts and cgroups, a stopped and
// a created one with none, a standby shim, and markers that match the
// journal. Each call returns fresh values a case may change.
func healthy() (Crash, Observed) {
	cs := []*cairnv1.Container{
		{Id: idRunning, State: stateRunning, Command: longCommand, Pid: 200, PidStartTime: 2000, ShimPid: 201, Layers: layers(idRunning),
			Network: &cairnv1.NetworkAttachment{Network: "bridge", IpAddress: "10.1.0.2"}},
		{Id: idPaused, State: statePaused, Command: longCommand, Pid: 300, PidStartTime: 3000, ShimPid: 301, Layers: layers(idPaused),
			Network: &cairnv1.NetworkAttachment{Network: "bridge", IpAddress: "10.1.0.3"}},
		{Id: idStopped, State: stateStopped, Command: longCommand, ExitCode: code(42), Layers: layers(idStopped)},
		{Id: idCreated, State: stateCreated, Command: shortCommand, Layers: layers(idCreated)},
	}
	before := make([]*cairnv1.Container, len(cs))
	for i, c := range cs {
		before[i] = proto.Clone(c).(*cairnv1.Container)
	}
	w := World{
		ExecDir: testExecDir, DaemonPID: 100,
		Procs: map[int]Proc{
			100: proc(100, 1000, "/usr/bin/cairnd --root /d/root", ""),
			200: proc(200, 2000, "sh -c ...", idRunning),
			210: proc(210, 2100, "sleep 0.05", idRunning),
			201: shimProc(201, "/d/root/exec/containers/"+idRunning),
			300: proc(300, 3000, "sh -c ...", idPaused),
			301: shimProc(301, "/d/root/exec/containers/"+idPaused),
			400: shimProc(400, testExecDir),
		},
		Discovered: []int{100, 200, 210, 201, 300, 301, 400},
		Mounts:     []string{layers(idRunning).Rootfs, layers(idPaused).Rootfs},
		Cgroups: map[string][]string{
			idRunning: {"/sys/fs/cgroup/freezer/p/" + idRunning, "/sys/fs/cgroup/memory/p/" + idRunning},
			idPaused:  {"/sys/fs/cgroup/freezer/p/" + idPaused},
		},
		Freezer: map[string]string{idRunning: "THAWED", idPaused: "FROZEN"},
		NetNS:   map[string]bool{idRunning: true, idPaused: true},
		Markers: map[string]Marker{
			idRunning: {Content: "start\n"},
			idPaused:  {Content: "start\nstart\n"},
			idStopped: {Content: "start\n"},
		},
	}
	history := map[string][]*cairnv1.JournalRecord{
		idRunning: {rec(intent, "start", "running", ""), rec(done, "start", "running", "")},
		idPaused: {rec(done, "start", "running", ""), rec(done, "restart", "running", exit42),
			rec(done, "pause", "paused", "")},
		idStopped: {rec(done, "start", "running", ""), rec(done, "stop", "stopped", exit42)},
	}
	cr := Crash{
		Cycle: 7, Before: before, Touched: map[string]bool{}, Signaled: map[string]int64{},
		KilledProc: map[string]bool{}, KilledShim: map[string]bool{}, ShimLost: map[string]bool{},
	}
	// Two images sharing their first layer: three chain positions, three
	// layer directories.
	images := []*cairnv1.Image{
		{Id: "sha256:1", DiffIds: []string{"sha256:a", "sha256:b"}, ChainId: "sha256:ab", Config: &cairnv1.ImageConfig{}},
		{Id: "sha256:2", DiffIds: []string{"sha256:a", "sha256:c"}, ChainId: "sha256:ac", Config: &cairnv1.ImageConfig{}},
	}
	w.LayerDirs = []string{"d1", "d2", "d3"}
	w.VolumeDirs = []string{drillVolume, "drill-scratch-1"}
	w.VolumeBlob = VolumeBlob{Sum: "ab12", Want: "ab12"}
	volumes := []*cairnv1.Volume{{Name: drillVolume}, {Name: "drill-scratch-1"}}
	return cr, Observed{Containers: cs, Images: images, Volumes: volumes, History: history, World: w}
}

func find(o Observed, id string) *cairnv1.Container {
	for _, c := range o.Containers {
		if c.Id == id {
			return c
		}
	}
	panic("no container " + id)
}

// stopRunning turns the running container into a stopped one with code,
// everything of its run gone from the machine.
func stopRunning(o *Observed, exitCode *int32, reason string) {
	c := find(*o, idRunning)
	c.State, c.Pid, c.PidStartTime, c.ShimPid, c.ExitCode, c.ExitReason = stateStopped, 0, 0, 0, exitCode, reason
	o.World.Mounts = o.World.Mounts[1:]
	delete(o.World.Cgroups, idRunning)
	delete(o.World.Freezer, idRunning)
	o.World.Discovered = slices.DeleteFunc(o.World.Discovered, func(pid int) bool { return pid == 200 || pid == 201 || pid == 210 })
	o.World.Procs[200] = Proc{PID: 200, Gone: true}
	o.World.Procs[201] = Proc{PID: 201, Gone: true}
}

func invariants(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Invariant)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestCheck_HealthyRecoveryIsQuiet(t *testing.T) {
	cr, o := healthy()
	if vs := Check(cr, o); len(vs) != 0 {
		t.Fatalf("violations on a healthy recovery:\n%v", vs)
	}
}

func TestCheck_EachInvariantFiresOnItsViolation(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(*Crash, *Observed)
		want   []string // the invariants that must fire, and no other
	}{
		{"a volume whose bytes changed", func(cr *Crash, o *Observed) {
			o.World.VolumeBlob.Sum = "cd34"
		}, []string{"volume-bytes"}},
		{"a volume whose blob is gone", func(cr *Crash, o *Observed) {
			o.World.VolumeBlob = VolumeBlob{Err: "no such file"}
		}, []string{"volume-bytes"}},
		{"a volume directory no volume owns", func(cr *Crash, o *Observed) {
			o.World.VolumeDirs = append(o.World.VolumeDirs, "drill-scratch-0")
		}, []string{"volume"}},
		{"a listed volume without its directory", func(cr *Crash, o *Observed) {
			o.World.VolumeDirs = o.World.VolumeDirs[:1]
		}, []string{"volume"}},
		{"a volume directory without _data", func(cr *Crash, o *Observed) {
			o.World.VolumeNoData = []string{"drill-scratch-1"}
		}, []string{"volume"}},
		{"a volume with an unfinished remove", func(cr *Crash, o *Observed) {
			o.Volumes[1].PendingEvent = "volume-remove"
		}, []string{"pending"}},
		{"an image with an unfinished load", func(cr *Crash, o *Observed) {
			o.Images[0].PendingEvent = "load"
		}, []string{"pending"}},
		{"an orphan layer directory", func(cr *Crash, o *Observed) {
			o.World.LayerDirs = append(o.World.LayerDirs, "orphan")
		}, []string{"image"}},
		{"an image whose layer directory is gone", func(cr *Crash, o *Observed) {
			o.World.LayerDirs = o.World.LayerDirs[:2]
		}, []string{"image"}},
		{"an image listed without layers", func(cr *Crash, o *Observed) {
			o.Images[1].DiffIds, o.World.LayerDirs = nil, o.World.LayerDirs[:2]
		}, []string{"image"}},
		{"a scratch file left in tmp/", func(cr *Crash, o *Observed) {
			o.World.Scratch = []string{"stage-123"}
		}, []string{"leak"}},
		{"a verified layer without its marker", func(cr *Crash, o *Observed) {
			o.World.HalfVerified = []string{"0123456789abcdef0123456789abcdef"}
		}, []string{"leak"}},
		{"running container whose process died", func(cr *Crash, o *Observed) {
			o.World.Procs[200] = Proc{PID: 200, Gone: true}
		}, []string{"state"}},
		{"running container whose pid was reused", func(cr *Crash, o *Observed) {
			o.World.Procs[200] = proc(200, 9999, "other", "")
			o.World.Discovered = slices.DeleteFunc(o.World.Discovered, func(pid int) bool { return pid == 200 })
		}, []string{"state"}},
		{"running container left frozen", func(cr *Crash, o *Observed) {
			o.World.Freezer[idRunning] = "FROZEN"
		}, []string{"state"}},
		{"paused container thawed", func(cr *Crash, o *Observed) {
			o.World.Freezer[idPaused] = "THAWED"
		}, []string{"state"}},
		{"stopped container with a pid", func(cr *Crash, o *Observed) {
			find(*o, idStopped).Pid = 500
		}, []string{"state", "survivor"}},
		{"stopped container with a cgroup", func(cr *Crash, o *Observed) {
			o.World.Cgroups[idStopped] = []string{"/sys/fs/cgroup/freezer/p/" + idStopped}
		}, []string{"leak", "state"}},
		{"created container that lost its layers", func(cr *Crash, o *Observed) {
			find(*o, idCreated).Layers = nil
		}, []string{"state"}},
		{"untouched running container restarted by recovery", func(cr *Crash, o *Observed) {
			c := find(*o, idRunning)
			c.Pid, c.PidStartTime = 250, 2500
			o.World.Procs[250] = proc(250, 2500, "sh -c ...", idRunning)
			o.World.Discovered = append(o.World.Discovered, 250)
			o.World.Procs[200] = Proc{PID: 200, Gone: true}
		}, []string{"survivor"}},
		{"untouched paused container thawed by recovery", func(cr *Crash, o *Observed) {
			find(*o, idPaused).State = stateRunning
			o.World.Freezer[idPaused] = "THAWED"
		}, []string{"survivor"}},
		{"untouched container gone", func(cr *Crash, o *Observed) {
			o.Containers = slices.DeleteFunc(o.Containers, func(c *cairnv1.Container) bool { return c.Id == idCreated })
		}, []string{"survivor"}},
		{"untouched stopped container changed its exit code", func(cr *Crash, o *Observed) {
			find(*o, idStopped).ExitCode = code(137)
		}, []string{"survivor"}},
		{"exit code nobody can produce", func(cr *Crash, o *Observed) {
			find(*o, idStopped).ExitCode = code(255)
			find(*cr.observedBefore(), idStopped).ExitCode = code(255)
		}, []string{"exit-code"}},
		{"unknown exit code without a reason", func(cr *Crash, o *Observed) {
			cr.ShimLost[idStopped] = true
			unknownExit(cr, o, idStopped, "")
		}, []string{"exit-code"}},
		{"unknown exit code though the shim was never killed", func(cr *Crash, o *Observed) {
			unknownExit(cr, o, idStopped, "shim gone")
		}, []string{"exit-code"}},
		{"process SIGKILLed under a live shim, exit code not 137", func(cr *Crash, o *Observed) {
			cr.KilledProc[idRunning] = true
			stopRunning(o, code(143), "")
		}, []string{"exit-code"}},
		{"process SIGKILLed under a live shim, still running", func(cr *Crash, o *Observed) {
			cr.KilledProc[idRunning] = true
			o.World.Procs[200] = Proc{PID: 200, Gone: true}
		}, []string{"exit-code", "state"}},
		{"shim and process SIGKILLed, a made-up exit code", func(cr *Crash, o *Observed) {
			cr.KilledProc[idRunning], cr.KilledShim[idRunning], cr.ShimLost[idRunning] = true, true, true
			stopRunning(o, code(137), "")
		}, []string{"exit-code"}},
		{"shim SIGKILLed, an exit code other than 137", func(cr *Crash, o *Observed) {
			cr.KilledShim[idRunning], cr.ShimLost[idRunning] = true, true
			stopRunning(o, code(0), "")
		}, []string{"exit-code"}},
		{"marker lost its lines", func(cr *Crash, o *Observed) {
			o.World.Markers[idStopped] = Marker{}
		}, []string{"marker"}},
		{"marker of the live run lost", func(cr *Crash, o *Observed) {
			o.World.Markers[idRunning] = Marker{}
		}, []string{"marker"}},
		{"marker with a torn line", func(cr *Crash, o *Observed) {
			o.World.Markers[idStopped] = Marker{Content: "start\nsta"}
		}, []string{"marker"}},
		{"marker with garbage", func(cr *Crash, o *Observed) {
			o.World.Markers[idStopped] = Marker{Content: "start\n\x00\x00\n"}
		}, []string{"marker"}},
		{"marker unreadable", func(cr *Crash, o *Observed) {
			o.World.Markers[idStopped] = Marker{Err: "permission denied"}
		}, []string{"marker"}},
		{"mount of a stopped container left", func(cr *Crash, o *Observed) {
			o.World.Mounts = append(o.World.Mounts, layers(idStopped).Rootfs)
		}, []string{"leak"}},
		{"rootfs mounted twice", func(cr *Crash, o *Observed) {
			o.World.Mounts = append(o.World.Mounts, layers(idRunning).Rootfs)
		}, []string{"leak"}},
		{"running container's rootfs not mounted", func(cr *Crash, o *Observed) {
			o.World.Mounts = o.World.Mounts[1:]
		}, []string{"leak"}},
		{"cgroup of a removed container left", func(cr *Crash, o *Observed) {
			o.World.Cgroups["eeee"] = []string{"/sys/fs/cgroup/pids/p/eeee"}
		}, []string{"leak"}},
		{"process left in a stopped container's cgroup", func(cr *Crash, o *Observed) {
			o.World.Procs[600] = proc(600, 6000, "sleep 0.05", idStopped)
			o.World.Discovered = append(o.World.Discovered, 600)
		}, []string{"leak"}},
		{"process in the cgroup parent itself", func(cr *Crash, o *Observed) {
			o.World.Procs[600] = proc(600, 6000, "sh", "/")
			o.World.Discovered = append(o.World.Discovered, 600)
		}, []string{"leak"}},
		{"two standby shims", func(cr *Crash, o *Observed) {
			o.World.Procs[401] = shimProc(401, testExecDir)
			o.World.Discovered = append(o.World.Discovered, 401)
		}, []string{"leak"}},
		{"shim of no container", func(cr *Crash, o *Observed) {
			o.World.Procs[402] = shimProc(402, "/d/root/exec/containers/"+idStopped)
			o.World.Discovered = append(o.World.Discovered, 402)
		}, []string{"leak"}},
		{"running container without its shim", func(cr *Crash, o *Observed) {
			o.World.Procs[201] = Proc{PID: 201, Gone: true}
			o.World.Discovered = slices.DeleteFunc(o.World.Discovered, func(pid int) bool { return pid == 201 })
		}, []string{"leak"}},
		{"paused container whose shim is a zombie", func(cr *Crash, o *Observed) {
			p := o.World.Procs[301]
			p.Stat.State = 'Z'
			o.World.Procs[301] = p
		}, []string{"leak"}},
		{"unfinished transition after recovery", func(cr *Crash, o *Observed) {
			find(*o, idCreated).PendingEvent = "start"
		}, []string{"pending"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr, o := healthy()
			tc.break_(&cr, &o)
			vs := Check(cr, o)
			if got := invariants(vs); !slices.Equal(got, tc.want) {
				t.Fatalf("fired %v, want %v:\n%s", got, tc.want, lines(vs))
			}
			for _, v := range vs {
				if v.Cycle != 7 || v.Expected == "" || v.Seen == "" {
					t.Errorf("incomplete violation: %+v", v)
				}
			}
		})
	}
}

func TestCheck_WhatTheDrillCannotPredictIsNotAViolation(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*Crash, *Observed)
	}{
		{"a touched container changes", func(cr *Crash, o *Observed) {
			cr.Touched[idRunning] = true
			stopRunning(o, code(42), "")
		}},
		{"a signaled container dies", func(cr *Crash, o *Observed) {
			cr.Signaled[idRunning] = 200
			stopRunning(o, code(42), "")
		}},
		{"a container with a pending transition before the crash changes", func(cr *Crash, o *Observed) {
			find(*cr.observedBefore(), idRunning).PendingEvent = "stop"
			stopRunning(o, code(42), "")
		}},
		{"a short-lived command exits", func(cr *Crash, o *Observed) {
			find(*cr.observedBefore(), idRunning).Command = shortCommand
			stopRunning(o, code(3), "")
			find(*o, idRunning).Command = shortCommand
			o.History[idRunning] = append(o.History[idRunning], rec(done, "exit", "stopped", exit3))
		}},
		{"SIGKILLed process under a live shim exits 137", func(cr *Crash, o *Observed) {
			cr.KilledProc[idRunning] = true
			stopRunning(o, code(137), "")
		}},
		{"SIGKILLed shim and process leave the code unknown, with a reason", func(cr *Crash, o *Observed) {
			cr.KilledProc[idRunning], cr.KilledShim[idRunning], cr.ShimLost[idRunning] = true, true, true
			stopRunning(o, nil, "shim and process gone")
		}},
		{"SIGKILLed shim: the container runs on without one", func(cr *Crash, o *Observed) {
			cr.KilledShim[idRunning], cr.ShimLost[idRunning] = true, true
			o.World.Procs[201] = Proc{PID: 201, Gone: true}
		}},
		{"SIGKILLed shim: recovery kills the process, code unknown", func(cr *Crash, o *Observed) {
			cr.KilledShim[idRunning], cr.ShimLost[idRunning] = true, true
			stopRunning(o, nil, "shim gone")
		}},
		{"a run stopped before its echo leaves no line", func(cr *Crash, o *Observed) {
			o.History[idStopped] = append(o.History[idStopped], rec(done, "start", "running", ""), rec(done, "stop", "stopped", exit137))
			find(*cr.observedBefore(), idStopped).ExitCode = code(137)
			find(*o, idStopped).ExitCode = code(137)
		}},
		{"a process found, then gone", func(cr *Crash, o *Observed) {
			o.World.Procs[700] = Proc{PID: 700, Gone: true}
			o.World.Discovered = append(o.World.Discovered, 700)
		}},
		{"no list before the crash", func(cr *Crash, o *Observed) {
			cr.Before = nil
			stopRunning(o, code(42), "")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr, o := healthy()
			tc.setup(&cr, &o)
			if vs := Check(cr, o); len(vs) != 0 {
				t.Fatalf("violations:\n%s", lines(vs))
			}
		})
	}
}

// observedBefore gives a case access to the list before the crash as an
// Observed, so that find works on it.
func (cr *Crash) observedBefore() *Observed { return &Observed{Containers: cr.Before} }

func unknownExit(cr *Crash, o *Observed, id, reason string) {
	for _, c := range []*cairnv1.Container{find(*o, id), find(*cr.observedBefore(), id)} {
		c.ExitCode, c.ExitReason = nil, reason
	}
	o.History[id] = append(o.History[id], rec(done, "start", "running", ""), rec(reconciled, "exit", "stopped", exitLost))
}

func lines(vs []Violation) string {
	s := ""
	for _, v := range vs {
		s += v.String() + "\n"
	}
	return s
}

func TestProvenStarts(t *testing.T) {
	start := rec(done, "start", "running", "")
	cases := []struct {
		name           string
		records        []*cairnv1.JournalRecord
		live           bool
		starts, proven int
	}{
		{"never started", []*cairnv1.JournalRecord{rec(done, "create", "created", "")}, false, 0, 0},
		{"intent only", []*cairnv1.JournalRecord{rec(intent, "start", "running", "")}, true, 0, 0},
		{"live run", []*cairnv1.JournalRecord{start}, true, 1, 1},
		{"run frozen or dead", []*cairnv1.JournalRecord{start}, false, 1, 0},
		{"trapped stop proves", []*cairnv1.JournalRecord{start, rec(done, "stop", "stopped", exit42)}, false, 1, 1},
		{"exit 3 proves", []*cairnv1.JournalRecord{start, rec(done, "exit", "stopped", exit3)}, false, 1, 1},
		{"SIGKILL proves nothing", []*cairnv1.JournalRecord{start, rec(done, "stop", "stopped", exit137)}, false, 1, 0},
		{"unknown proves nothing", []*cairnv1.JournalRecord{start, rec(reconciled, "exit", "stopped", exitLost)}, false, 1, 0},
		{"restart ends one run and begins the next", []*cairnv1.JournalRecord{start, rec(done, "restart", "running", exit42)}, true, 2, 2},
		{"failed restart still ends the run", []*cairnv1.JournalRecord{start, rec(failed, "restart", "stopped", exit42)}, true, 1, 1},
		{"rolled-forward start counts", []*cairnv1.JournalRecord{rec(reconciled, "start", "running", "")}, true, 1, 1},
		{"failed start does not", []*cairnv1.JournalRecord{rec(failed, "start", "stopped", "")}, true, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			starts, proven := provenStarts(tc.records, tc.live)
			if starts != tc.starts || proven != tc.proven {
				t.Fatalf("starts %d proven %d, want %d %d", starts, proven, tc.starts, tc.proven)
			}
		})
	}
}

func TestParseMarker(t *testing.T) {
	cases := []struct {
		content   string
		lines     int
		malformed bool
	}{
		{"", 0, false},
		{"start\n", 1, false},
		{"start\nstart\nstart\n", 3, false},
		{"start", 1, true},
		{"start\n\n", 2, true},
		{"start\nStart\n", 2, true},
	}
	for _, tc := range cases {
		lines, malformed := parseMarker(tc.content)
		if lines != tc.lines || (malformed != "") != tc.malformed {
			t.Errorf("%q: %d lines, malformed %q; want %d, %v", tc.content, lines, malformed, tc.lines, tc.malformed)
		}
	}
}

func TestCrashSettled(t *testing.T) {
	running := &cairnv1.Container{Id: idRunning, State: stateRunning, Command: longCommand, Pid: 200}
	cases := []struct {
		name string
		cr   Crash
		c    *cairnv1.Container
		want bool
	}{
		{"untouched", Crash{}, running, true},
		{"touched", Crash{Touched: map[string]bool{idRunning: true}}, running, false},
		{"signaled this process", Crash{Signaled: map[string]int64{idRunning: 200}}, running, false},
		{"signaled, pid unknown", Crash{Signaled: map[string]int64{idRunning: 0}}, running, false},
		{"signaled an earlier process", Crash{Signaled: map[string]int64{idRunning: 150}}, running, true},
		{"pending", Crash{}, &cairnv1.Container{Id: idRunning, State: stateRunning, Command: longCommand, PendingEvent: "stop"}, false},
		{"short-lived and running", Crash{}, &cairnv1.Container{Id: idRunning, State: stateRunning, Command: shortCommand}, false},
		{"short-lived and stopped", Crash{}, &cairnv1.Container{Id: idRunning, State: stateStopped, Command: shortCommand}, true},
	}
	for _, tc := range cases {
		if got := tc.cr.Settled(tc.c); got != tc.want {
			t.Errorf("%s: Settled = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestViolationString_NamesCycleContainerAndBothSides(t *testing.T) {
	v := finding(3, idRunning, "exit-code", "137", "255")
	want := fmt.Sprintf("cycle 3 container %s: exit-code: expected 137; seen 255", idRunning[:12])
	if v.String() != want {
		t.Fatalf("%q, want %q", v.String(), want)
	}
}

func TestCheckNetwork(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Crash, *Observed)
		want   int
	}{
		{"healthy", func(*Crash, *Observed) {}, 0},
		{"IP changed across the crash", func(_ *Crash, o *Observed) { o.Containers[0].Network.IpAddress = "10.1.0.9" }, 1},
		{"running without an attachment", func(_ *Crash, o *Observed) { o.Containers[0].Network = nil; delete(o.World.NetNS, idRunning) }, 1},
		{"namespace not mounted", func(_ *Crash, o *Observed) { o.World.NetNS[idPaused] = false }, 1},
		{"attachment pending", func(_ *Crash, o *Observed) { o.Containers[1].Network.PendingEvent = "attach" }, 1},
		{"orphan namespace file", func(_ *Crash, o *Observed) { o.World.NetNS["feedbeef"] = true }, 1},
		{"touched: a new IP is fine", func(cr *Crash, o *Observed) {
			cr.Touched[idRunning] = true
			o.Containers[0].Network.IpAddress = "10.1.0.9"
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr, o := healthy()
			tc.change(&cr, &o)
			if got := checkNetwork(cr, o); len(got) != tc.want {
				t.Fatalf("got %d violations %v, want %d", len(got), got, tc.want)
			}
		})
	}
}
