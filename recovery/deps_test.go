package recovery

import (
	"os/exec"
	"strings"
	"testing"
)

// Recovery decides in the state machine's types; the adapters convert. Its
// decision table must not drag libcontainer (or the executor and layer
// store) into every test of it.
func TestRecovery_LinksNeitherLibcontainerNorTheAdapters(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/cairn-run/cairn/recovery").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "libcontainer") || dep == "github.com/cairn-run/cairn/executor" || dep == "github.com/cairn-run/cairn/layer" {
			t.Errorf("recovery depends on %s", dep)
		}
	}
}
