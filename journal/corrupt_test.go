package journal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/internal/storecheck"
)

// migratedFixture is v1.db after Open migrated it to the current schema.
func migratedFixture(t *testing.T) []byte {
	t.Helper()
	path := fixture(t, "v1.db")
	j, err := Open(path, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestOpen_RefusesWhateverTheOfflineCheckRejects flips one byte at a time at
// seeded random offsets of a real file, and holds Open to the verdict of
// CheckFile: every file the offline check rejects, Open refuses, and leaves
// byte for byte as it was.
func TestOpen_RefusesWhateverTheOfflineCheckRejects(t *testing.T) {
	v1, err := os.ReadFile(filepath.Join("testdata", "v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []struct {
		name string
		data []byte
	}{{"schema 2", migratedFixture(t)}, {"schema 1", v1}} {
		t.Run(base.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(20261201, uint64(len(base.name))))
			dir := t.TempDir()
			var rejected, accepted, openOnly int
			for i := range 512 {
				data := bytes.Clone(base.data)
				off := rng.IntN(len(data))
				data[off] ^= byte(1 + rng.IntN(255))
				path := filepath.Join(dir, "cairn.db")
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				_, checkErr := CheckFile(path, time.Second, storecheck.All()...)
				j, openErr := Open(path, Options{Checks: storecheck.All()})
				if openErr == nil {
					if err := j.Close(); err != nil {
						t.Fatalf("corruption %d at %d: close: %v", i, off, err)
					}
				}
				switch {
				case checkErr != nil && openErr == nil:
					t.Errorf("corruption %d at offset %d: the offline check rejects it (%v), Open served it", i, off, checkErr)
				case checkErr != nil:
					rejected++
					if !errors.Is(openErr, ErrCorrupt) && !errors.Is(openErr, schema.ErrNewerSchema) {
						t.Errorf("corruption %d at %d: refused with %v, want ErrCorrupt", i, off, openErr)
					}
					if !strings.Contains(openErr.Error(), path) {
						t.Errorf("corruption %d at %d: refusal does not name the file: %v", i, off, openErr)
					}
					after, err := os.ReadFile(path)
					if err != nil || !bytes.Equal(after, data) {
						t.Errorf("corruption %d at offset %d: Open refused the file (%v) but modified it", i, off, openErr)
					}
				case openErr != nil:
					openOnly++
					t.Logf("corruption %d at %d: only Open refuses it: %v", i, off, openErr)
				default:
					accepted++
				}
				_ = os.Remove(path)
			}
			t.Logf("%s: of 512 single-byte corruptions, %d rejected by both, %d accepted by both (bytes bbolt does not read or check), %d refused by Open only",
				base.name, rejected, accepted, openOnly)
			if rejected == 0 {
				t.Fatal("no corruption was detected: the test is not corrupting anything")
			}
		})
	}
}

func TestOpen_TruncatedFileIsRefusedByName(t *testing.T) {
	path := fixture(t, "v1.db")
	// A journal that spans many pages, then its tail cut off.
	j, err := Open(path, Options{Checks: storecheck.All()})
	if err != nil {
		t.Fatal(err)
	}
	randomWorkload(t, j, 8, 100, 3)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	fm, err := schema.ReadFileMeta(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int64{int64(fm.PageSize), int64(fm.Pgid) * int64(fm.PageSize) / 2, int64(fm.Pgid-1) * int64(fm.PageSize)} {
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		_, err := Open(path, Options{Checks: storecheck.All()})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Fatalf("truncated to %d bytes: got %v, want ErrCorrupt naming %s", cut, err, path)
		}
		if _, err := CheckFile(path, time.Second); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("offline check of a file truncated to %d: %v", cut, err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatalf("truncated file modified by the refusal")
		}
	}
}
