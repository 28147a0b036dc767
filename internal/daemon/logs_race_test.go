package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

func TestLogs_RacingRemoveNeitherFailsNorLeaks(t *testing.T) {
	e := scratch.NewDaemon(t)
	for round := range 50 {
		c := create(t, e, "", "sh", "-c", "echo round")
		if round%2 == 1 { // half the containers have run and have a log
			start(t, e, c.Id)
			wait(t, e, c.Id)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 6 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(bg, 30*time.Second)
				defer cancel()
				stream, err := e.Containers.Logs(ctx, connect.NewRequest(&cairnv1.LogsRequest{Id: c.Id, Follow: i%2 == 0}))
				if err == nil {
					for stream.Receive() {
					}
					err = stream.Err()
				}
				if err != nil && codeOf(err) != connect.CodeNotFound {
					errs <- err
				}
			})
		}
		wg.Go(func() {
			if _, err := e.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: c.Id})); err != nil {
				errs <- err
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		dir := filepath.Join(e.Config.Root, "exec", "containers", c.Id)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("round %d: %s is left behind (%v)", round, dir, err)
		}
	}
}

func TestRun_QuickAutoRemoveContainersLoseNoOutput(t *testing.T) {
	e := scratch.NewDaemon(t)
	for round := range 30 {
		ctx, cancel := context.WithTimeout(bg, 30*time.Second)
		stream, err := e.Containers.Run(ctx, connect.NewRequest(&cairnv1.RunRequest{Create: &cairnv1.CreateRequest{
			Image: "busybox", Command: []string{"echo", "hello"}, AutoRemove: true}}))
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		var exit *cairnv1.WaitResponse
		for stream.Receive() {
			out = append(out, entriesData(stream.Msg().Entries)...)
			if stream.Msg().Exit != nil {
				exit = stream.Msg().Exit
			}
		}
		err = stream.Err()
		stream.Close()
		cancel()
		if err != nil || string(out) != "hello\n" || exit == nil || exit.ExitCode == nil || *exit.ExitCode != 0 {
			t.Fatalf("round %d: output %q, exit %v, %v", round, out, exit, err)
		}
	}
}
