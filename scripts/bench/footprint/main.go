// Command footprint sums the memory that a set of processes costs the
// machine, for scripts/bench/memory.sh:
//
//	go run ./scripts/bench/footprint [-memfd PID:SUBSTR] [-per N] [-json] [NAME=]PID[,PID...]...
//
// For every PID it reads /proc/PID/smaps_rollup (Pss, split into anonymous,
// file and shmem pages). PSS divides each page among the processes that map
// it, so the sum over a set of processes counts every page they map once.
// Arguments may name groups (shims=1,2,3 standby=4) to get subtotals.
//
// -memfd names a memfd held open by process PID (the first of its fds whose
// link contains SUBSTR, e.g. cairnd's sealed shim binary): a memfd's pages
// are unevictable shmem (there is no swap here) whether anyone maps them or
// not. The tool counts its resident pages (mincore) and those that none of
// the PIDs maps (their /proc/PID/pagemap): those are not in any PSS, so they
// are added to the total.
//
// It prints one line per process, the group subtotals and the total, in kB,
// and with -per N the total divided by N (the containers).
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rollup is the part of smaps_rollup the report uses, in kB.
type rollup struct {
	Group    string `json:"group"`
	PID      int    `json:"pid"`
	Comm     string `json:"comm"`
	RSS      int    `json:"rss_kb"`
	PSS      int    `json:"pss_kb"`
	PSSAnon  int    `json:"pss_anon_kb"`
	PSSFile  int    `json:"pss_file_kb"`
	PSSShmem int    `json:"pss_shmem_kb"`
}

type memfdReport struct {
	Holder     int    `json:"holder_pid"`
	Name       string `json:"name"`
	SizeKB     int    `json:"size_kb"`
	ResidentKB int    `json:"resident_kb"`
	MappedKB   int    `json:"mapped_by_pids_kb"`
	UnmappedKB int    `json:"unmapped_resident_kb"`
}

type report struct {
	Processes []rollup       `json:"processes"`
	Groups    map[string]int `json:"group_pss_kb"`
	PSSKB     int            `json:"pss_total_kb"`
	Memfd     *memfdReport   `json:"memfd,omitempty"`
	// TotalKB is the PSS total plus the memfd's resident pages that no
	// process of the set maps.
	TotalKB int `json:"total_kb"`
	// PerKB is TotalKB divided by -per.
	PerKB float64 `json:"per_kb,omitempty"`
}

func main() {
	memfd := flag.String("memfd", "", "PID:SUBSTR of a memfd held open by PID whose unmapped resident pages count too")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	per := flag.Int("per", 0, "also print the total divided by this (the number of containers)")
	flag.Parse()
	if err := run(*memfd, *per, *asJSON, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
}

func run(memfd string, per int, asJSON bool, args []string) error {
	r := report{Groups: map[string]int{}}
	var pids []int
	var groups []string
	for _, a := range args {
		group, list, named := strings.Cut(a, "=")
		if !named {
			group, list = "processes", a
		}
		if _, seen := r.Groups[group]; !seen {
			groups = append(groups, group)
			r.Groups[group] = 0
		}
		for _, p := range strings.Split(list, ",") {
			if p == "" {
				continue
			}
			pid, err := strconv.Atoi(p)
			if err != nil {
				return fmt.Errorf("pid %q: %w", p, err)
			}
			ro, err := readRollup(pid)
			if err != nil {
				return err
			}
			ro.Group = group
			pids = append(pids, pid)
			r.Processes = append(r.Processes, ro)
			r.Groups[group] += ro.PSS
			r.PSSKB += ro.PSS
		}
	}
	r.TotalKB = r.PSSKB
	if memfd != "" {
		m, err := measureMemfd(memfd, pids)
		if err != nil {
			return err
		}
		r.Memfd = &m
		r.TotalKB += m.UnmappedKB
	}
	if per > 0 {
		r.PerKB = float64(r.TotalKB) / float64(per)
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	for _, p := range r.Processes {
		fmt.Printf("%-10s pid %-8d %-16s rss %7d  pss %7d (anon %6d file %6d shmem %6d) kB\n",
			p.Group, p.PID, p.Comm, p.RSS, p.PSS, p.PSSAnon, p.PSSFile, p.PSSShmem)
	}
	for _, g := range groups {
		fmt.Printf("group %s: pss %d kB\n", g, r.Groups[g])
	}
	fmt.Printf("processes %d, pss total %d kB\n", len(r.Processes), r.PSSKB)
	if m := r.Memfd; m != nil {
		fmt.Printf("memfd %s of pid %d: size %d kB, resident %d kB, mapped by these processes %d kB, unmapped %d kB\n",
			m.Name, m.Holder, m.SizeKB, m.ResidentKB, m.MappedKB, m.UnmappedKB)
	}
	fmt.Printf("total %d kB\n", r.TotalKB)
	if per > 0 {
		fmt.Printf("per container (/%d) %.0f kB\n", per, r.PerKB)
	}
	return nil
}

func readRollup(pid int) (rollup, error) {
	r := rollup{PID: pid}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	r.Comm = strings.TrimSpace(string(comm))
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return r, err
	}
	defer f.Close()
	fields := map[string]*int{"Rss": &r.RSS, "Pss": &r.PSS, "Pss_Anon": &r.PSSAnon, "Pss_File": &r.PSSFile, "Pss_Shmem": &r.PSSShmem}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if dst, known := fields[k]; ok && known {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				return r, fmt.Errorf("smaps_rollup of %d: %q: %w", pid, sc.Text(), err)
			}
			*dst = n
		}
	}
	return r, sc.Err()
}

// measureMemfd finds the memfd, counts its resident pages and which of them
// the pids map.
func measureMemfd(spec string, pids []int) (memfdReport, error) {
	holderStr, substr, ok := strings.Cut(spec, ":")
	holder, err := strconv.Atoi(holderStr)
	if !ok || err != nil || substr == "" {
		return memfdReport{}, fmt.Errorf("-memfd %q: want PID:SUBSTR", spec)
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", holder)
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return memfdReport{}, err
	}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil || !strings.HasPrefix(link, "/memfd:") || !strings.Contains(link, substr) {
			continue
		}
		return measureMemfdAt(holder, filepath.Join(fdDir, e.Name()), link, pids)
	}
	return memfdReport{}, fmt.Errorf("process %d holds no memfd named like %q", holder, substr)
}

func measureMemfdAt(holder int, path, name string, pids []int) (memfdReport, error) {
	m := memfdReport{Holder: holder, Name: name}
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return m, err
	}
	page := int64(os.Getpagesize())
	pages := int((st.Size + page - 1) / page)
	m.SizeKB = int(st.Size / 1024)
	if pages == 0 {
		return m, nil
	}
	data, err := unix.Mmap(int(f.Fd()), 0, pages*int(page), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return m, fmt.Errorf("mmap %s: %w", name, err)
	}
	defer unix.Munmap(data)
	resident := make([]byte, pages)
	if err := mincore(data, resident); err != nil {
		return m, fmt.Errorf("mincore %s: %w", name, err)
	}
	mapped := make([]bool, pages)
	for _, pid := range pids {
		if err := markMapped(pid, st.Ino, mapped); err != nil {
			return m, err
		}
	}
	for i := range pages {
		if resident[i]&1 == 0 {
			continue
		}
		m.ResidentKB += int(page / 1024)
		if mapped[i] {
			m.MappedKB += int(page / 1024)
		} else {
			m.UnmappedKB += int(page / 1024)
		}
	}
	return m, nil
}

// mincore reports in vec which pages of the mapping b are resident.
func mincore(b, vec []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

// markMapped sets mapped[i] for every page i of the file with inode ino
// that process pid has present in its page tables.
func markMapped(pid int, ino uint64, mapped []bool) error {
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return err
	}
	defer maps.Close()
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return err
	}
	defer pm.Close()
	page := uint64(os.Getpagesize())
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[5], "/memfd:") {
			continue
		}
		if n, err := strconv.ParseUint(f[4], 10, 64); err != nil || n != ino {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("maps of %d: %q: %w", pid, sc.Text(), err)
		}
		n := (end - start) / page
		buf := make([]byte, 8*n)
		if _, err := pm.ReadAt(buf, int64(start/page*8)); err != nil {
			return fmt.Errorf("pagemap of %d: %w", pid, err)
		}
		for i := range n {
			const present = 1 << 63
			if binary.LittleEndian.Uint64(buf[8*i:])&present == 0 {
				continue
			}
			if idx := off/page + i; idx < uint64(len(mapped)) {
				mapped[idx] = true
			}
		}
	}
	return sc.Err()
}
