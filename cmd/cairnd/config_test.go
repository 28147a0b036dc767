package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func flagsForTest() (*pflag.FlagSet, *string, *int, *bool) {
	fs := pflag.NewFlagSet("cairnd", pflag.ContinueOnError)
	root := fs.String("root", "/var/lib/cairn", "")
	retain := fs.Int("history-retain", 10000, "")
	live := fs.Bool("live-restore", true, "")
	fs.String("config", defaultConfigFile, "")
	return fs, root, retain, live
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cairnd.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFile_SetsFlagsTheCommandLineDidNotGive(t *testing.T) {
	fs, root, retain, live := flagsForTest()
	if err := fs.Parse([]string{"--root", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `{"root": "/from/file", "history-retain": 500, "live-restore": false}`)
	if err := applyConfigFile(fs, path, true); err != nil {
		t.Fatal(err)
	}
	if *root != "/from/flag" || *retain != 500 || *live {
		t.Fatalf("root %q retain %d live %v: want the flag's root and the file's others", *root, *retain, *live)
	}
}

func TestConfigFile_RefusesWhatItCannotUse(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"rooot": "/x"}`, `"rooot" is not a cairnd flag`},
		{`{"history-retain": "many"}`, "history-retain"},
		{`{"root": ["a"]}`, "want a string"},
		{`{"config": "/other"}`, "not a cairnd flag"},
		{`not json`, "invalid character"},
	} {
		fs, _, _, _ := flagsForTest()
		err := applyConfigFile(fs, writeConfig(t, tc.body), true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %s", tc.body, err, tc.want)
		}
	}
	fs, _, _, _ := flagsForTest()
	if err := applyConfigFile(fs, "/no/such/cairnd.json", false); err != nil {
		t.Errorf("a missing default file: %v", err)
	}
	if err := applyConfigFile(fs, "/no/such/cairnd.json", true); err == nil {
		t.Error("a missing --config file was accepted")
	}
}
