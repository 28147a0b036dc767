package daemon_test

import (
	"os"
	"testing"

	"github.com/cairn-run/cairn/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
