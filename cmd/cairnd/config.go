package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"

	"github.com/spf13/pflag"
)

// defaultConfigFile is read when --config is not given; it may be absent.
const defaultConfigFile = "/etc/cairn/cairnd.json"

// maxConfigBytes bounds the config file: it holds a few flags.
const maxConfigBytes = 1 << 20

// applyConfigFile sets, from the JSON object in path, every flag of flags that
// was not given on the command line: the file's keys are the flags' names
// ("root", "metrics-addr", "live-restore", ...), its values strings,
// numbers or booleans. Flags given on the command line win. An unknown key
// is an error, so a typo does not silently fall back to a default. A
// missing file is an error unless it is the default one.
func applyConfigFile(flags *pflag.FlagSet, path string, explicit bool) error {
	if path == "" {
		return nil // --config "": no file
	}
	data, err := readConfig(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := flags.Lookup(k)
		if f == nil || k == "config" || k == "help" || k == "version" {
			return fmt.Errorf("config %s: %q is not a cairnd flag", path, k)
		}
		if f.Changed {
			continue // the command line wins
		}
		v, err := flagValue(values[k])
		if err != nil {
			return fmt.Errorf("config %s: %s: %w", path, k, err)
		}
		if err := flags.Set(k, v); err != nil {
			return fmt.Errorf("config %s: %s: %w", path, k, err)
		}
	}
	return nil
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxConfigBytes)
	}
	return data, nil
}

// flagValue writes a JSON value the way the flag reads it.
func flagValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("want a string, a number or a boolean, not %T", v)
}
