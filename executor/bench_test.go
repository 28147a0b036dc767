package executor

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkStartWaitCleanup is the executor's share of `run --rm /bin/true`:
// start a container under a new shim, wait for its exit code, tear it down.
func BenchmarkStartWaitCleanup(b *testing.B) {
	env := newTestEnv(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id := "bench-" + strconv.Itoa(i)
		p, err := env.ex.Start(ctx, env.spec(id, "/bin/true"))
		if err != nil {
			b.Fatal(err)
		}
		x, err := env.ex.Wait(ctx, id, p)
		if err != nil || x.Code == nil || *x.Code != 0 {
			b.Fatalf("Wait = %+v, %v\nshim.log: %s", x, err, env.ex.shimLogTail(id))
		}
		if err := env.ex.Cleanup(id, p); err != nil {
			b.Fatal(err)
		}
		if err := env.ex.Remove(id); err != nil {
			b.Fatal(err)
		}
	}
}
