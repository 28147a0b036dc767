package layer

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/testenv"
)

// BenchmarkCreateMountMountUnmount measures the layer part of a container's
// start and removal: CreateMount + Mount + Unmount + RemoveMount of one
// mount on a small image, and reports each phase separately. The two bbolt
// commits per iteration (CreateMount, RemoveMount) dominate wherever fsync is
// real.
func BenchmarkCreateMountMountUnmount(b *testing.B) {
	testenv.RequireRoot(b)
	s := newTestStore(b)
	mustImport(b, s, "bb", busyboxTar(b))
	var create, mount, unmount, remove time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("%064x", i+1)
		t0 := time.Now()
		if _, err := s.CreateMount(b.Context(), id, "bb", InitConfig{Hostname: "bench"}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := s.Mount(id); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := s.Unmount(id); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if err := s.RemoveMount(id); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		create += t1.Sub(t0)
		mount += t2.Sub(t1)
		unmount += t3.Sub(t2)
		remove += t4.Sub(t3)
	}
	n := float64(b.N)
	b.ReportMetric(float64(create.Microseconds())/n, "create-µs/op")
	b.ReportMetric(float64(mount.Microseconds())/n, "mount-µs/op")
	b.ReportMetric(float64(unmount.Microseconds())/n, "unmount-µs/op")
	b.ReportMetric(float64(remove.Microseconds())/n, "remove-µs/op")
}
