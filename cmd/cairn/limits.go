package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

// limitFlags are the resource and security flags of create and run,
// parsed as the flags are read (so a bad value is a usage error) into the
// request's messages.
type limitFlags struct {
	res cairnv1.Resources
	sec cairnv1.SecurityOptions
}

func (l *limitFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.VarP(sizeFlag{&l.res.MemoryBytes, false}, "memory", "m", "memory limit (e.g. 256m, 1g)")
	f.Var(sizeFlag{&l.res.MemorySwapBytes, true}, "memory-swap", "memory plus swap limit; -1: unlimited swap (default: twice --memory)")
	f.Var(cpusFlag{&l.res.NanoCpus}, "cpus", "CPU quota in CPUs (e.g. 1.5)")
	f.Uint64Var(&l.res.CpuShares, "cpu-shares", 0, "relative CPU weight (default 1024)")
	f.StringVar(&l.res.CpusetCpus, "cpuset-cpus", "", "CPUs the container may use (0-2,4)")
	f.Int64Var(&l.res.PidsLimit, "pids-limit", 0, "task limit; -1: unlimited (default: the daemon's --default-pids-limit)")
	f.Var(ulimitFlag{&l.res.Ulimits}, "ulimit", "rlimit NAME=SOFT[:HARD], e.g. nofile=1024:2048 (repeatable)")
	f.StringArrayVar(&l.sec.CapAdd, "cap-add", nil, "add a capability (or ALL)")
	f.StringArrayVar(&l.sec.CapDrop, "cap-drop", nil, "drop a capability (or ALL)")
	f.BoolVar(&l.sec.Privileged, "privileged", false, "every capability, no seccomp, no masked paths, every device")
	f.Var(securityOptFlag{&l.sec}, "security-opt", "seccomp=unconfined|PROFILE.json, no-new-privileges (repeatable)")
	f.BoolVar(&l.sec.ReadOnly, "read-only", false, "mount the root filesystem read-only")
	f.Var(tmpfsFlag{&l.sec.Tmpfs}, "tmpfs", "mount a tmpfs: PATH[:OPTIONS] (repeatable)")
}

func (l *limitFlags) apply(req *cairnv1.CreateRequest) {
	res, sec := &l.res, &l.sec
	req.Resources = &cairnv1.Resources{MemoryBytes: res.MemoryBytes, MemorySwapBytes: res.MemorySwapBytes, NanoCpus: res.NanoCpus,
		CpuShares: res.CpuShares, CpusetCpus: res.CpusetCpus, PidsLimit: res.PidsLimit, Ulimits: res.Ulimits}
	req.Security = &cairnv1.SecurityOptions{CapAdd: sec.CapAdd, CapDrop: sec.CapDrop, Privileged: sec.Privileged,
		Seccomp: sec.Seccomp, NoNewPrivileges: sec.NoNewPrivileges, ReadOnly: sec.ReadOnly, Tmpfs: sec.Tmpfs}
}

// sizeFlag reads Docker's sizes (binary units: 256m, 1g); minusOne allows -1.
type sizeFlag struct {
	p        *int64
	minusOne bool
}

func (s sizeFlag) String() string {
	if s.p == nil || *s.p == 0 {
		return ""
	}
	return strconv.FormatInt(*s.p, 10)
}
func (s sizeFlag) Type() string { return "bytes" }
func (s sizeFlag) Set(v string) error {
	if s.minusOne && v == "-1" {
		*s.p = -1
		return nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("size %q must be positive", v)
	}
	*s.p = n
	return nil
}

// cpusFlag reads a decimal number of CPUs into nano-CPUs.
type cpusFlag struct{ p *int64 }

func (c cpusFlag) String() string {
	if c.p == nil || *c.p == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(*c.p)/1e9, 'f', -1, 64)
}
func (c cpusFlag) Type() string { return "decimal" }
func (c cpusFlag) Set(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f > 1e6 || math.IsNaN(f) {
		return fmt.Errorf("%q is not a positive number of CPUs", v)
	}
	*c.p = int64(math.Round(f * 1e9))
	return nil
}

// ulimitFlag reads NAME=SOFT[:HARD] with go-units, as Docker does.
type ulimitFlag struct{ p *[]*cairnv1.Ulimit }

func (u ulimitFlag) String() string { return "" }
func (u ulimitFlag) Type() string   { return "ulimit" }
func (u ulimitFlag) Set(v string) error {
	ul, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	*u.p = append(*u.p, &cairnv1.Ulimit{Name: ul.Name, Soft: ul.Soft, Hard: ul.Hard})
	return nil
}

// tmpfsFlag reads PATH[:OPTIONS].
type tmpfsFlag struct{ p *[]*cairnv1.Tmpfs }

func (t tmpfsFlag) String() string { return "" }
func (t tmpfsFlag) Type() string   { return "path[:options]" }
func (t tmpfsFlag) Set(v string) error {
	path, opts, _ := strings.Cut(v, ":")
	*t.p = append(*t.p, &cairnv1.Tmpfs{Path: path, Options: opts})
	return nil
}

// securityOptFlag reads Docker's --security-opt forms that cairn supports.
// A seccomp profile file is read here, by the client, as Docker's CLI does:
// the daemon journals its content with the create.
type securityOptFlag struct{ p *cairnv1.SecurityOptions }

func (s securityOptFlag) String() string { return "" }
func (s securityOptFlag) Type() string   { return "option" }
func (s securityOptFlag) Set(v string) error {
	key, val, hasVal := strings.Cut(v, "=")
	if !hasVal {
		key, val, hasVal = strings.Cut(v, ":")
	}
	switch key {
	case "no-new-privileges":
		b := true
		if hasVal {
			var err error
			if b, err = strconv.ParseBool(val); err != nil {
				return fmt.Errorf("no-new-privileges: %w", err)
			}
		}
		s.p.NoNewPrivileges = b
		return nil
	case "seccomp":
		if val == "unconfined" {
			s.p.Seccomp = val
			return nil
		}
		data, err := os.ReadFile(val)
		if err != nil {
			return fmt.Errorf("seccomp profile: %w", err)
		}
		s.p.Seccomp = string(data)
		return nil
	}
	return fmt.Errorf("unsupported security option %q: want seccomp=unconfined|FILE or no-new-privileges", v)
}

var _ = []pflag.Value{sizeFlag{}, cpusFlag{}, ulimitFlag{}, tmpfsFlag{}, securityOptFlag{}}
