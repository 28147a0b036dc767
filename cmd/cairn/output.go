package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// output is how a listing command prints its items, from --format:
// "table" (the command's own columns), "json" (one object per line, see
// jsonView) or a Go template executed for each item on its JSON view
// (plus Docker's names for the table columns, so `{{.ID}}\t{{.Names}}`
// works as with docker). A template that starts with "table " prints a
// header line and aligns the columns.
type output struct {
	kind  string // "table", "json" or "template"
	tmpl  *template.Template
	table bool // a template with a header, aligned
}

// formatHelp is the --format flag's help.
const formatHelp = `table, json (one object per line), or a Go template such as '{{.id}} {{.state}}' ('table {{.ID}}\t{{.Status}}' for aligned columns with a header)`

func parseOutput(format string) (output, error) {
	switch format {
	case "", "table":
		return output{kind: "table"}, nil
	case "json":
		return output{kind: "json"}, nil
	}
	text, table := strings.CutPrefix(format, "table ")
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(text)
	t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return output{}, usageErrorf("bad --format template: %v", err)
	}
	return output{kind: "template", tmpl: t, table: table}, nil
}

// item is one thing a command lists: its message, and the Docker-style
// aliases a template may use besides the JSON keys.
type item struct {
	msg     protoreflect.ProtoMessage
	aliases map[string]any
}

// print prints items as o says; table prints the command's own table.
func (o output) print(w io.Writer, items []item, table func(io.Writer) error) error {
	switch o.kind {
	case "json":
		enc := json.NewEncoder(w)
		for _, it := range items {
			if err := writeJSONLine(enc, it.msg); err != nil {
				return err
			}
		}
		return nil
	case "template":
		out := w
		var tw *tabwriter.Writer
		if o.table {
			tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
			out = tw
			if len(items) > 0 {
				if err := o.execute(out, headerData(templateData(items[0]))); err != nil {
					return err
				}
			}
		}
		for _, it := range items {
			if err := o.execute(out, templateData(it)); err != nil {
				return err
			}
		}
		if tw != nil {
			return tw.Flush()
		}
		return nil
	default:
		return table(w)
	}
}

func (o output) execute(w io.Writer, data map[string]any) error {
	var b strings.Builder
	if err := o.tmpl.Execute(&b, data); err != nil {
		return usageErrorf("--format template: %v", err)
	}
	s := b.String()
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	_, err := io.WriteString(w, s)
	return err
}

func templateData(it item) map[string]any {
	data := jsonView(it.msg.ProtoReflect())
	for k, v := range it.aliases {
		data[k] = v
	}
	return data
}

// headerData maps every key to its column header: "exit_code" to "EXIT
// CODE", "RunningFor" to "RUNNING FOR".
func headerData(data map[string]any) map[string]any {
	h := make(map[string]any, len(data))
	for k := range data {
		h[k] = headerOf(k)
	}
	return h
}

func headerOf(key string) string {
	var b strings.Builder
	for i, r := range key {
		switch {
		case r == '_':
			b.WriteByte(' ')
			continue
		case i > 0 && r >= 'A' && r <= 'Z' && key[i-1] >= 'a' && key[i-1] <= 'z':
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join": func(v any, sep string) string {
		items, _ := v.([]any)
		parts := make([]string, len(items))
		for i, x := range items {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, sep)
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"split": strings.Split,
	// short is an id's 12 hex digits, as tables show them.
	"short": func(v any) string { return shortID(fmt.Sprint(v)) },
	"truncate": func(n int, v any) string {
		return truncate(fmt.Sprint(v), n)
	},
	// ago turns an RFC 3339 time into "3 minutes ago".
	"ago": func(v any) string {
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return agoTime(t)
	},
	// size turns a byte count into "2.12MB".
	"size": func(v any) string {
		switch n := v.(type) {
		case int64:
			return humanSize(n)
		case uint64:
			return humanSize(int64(n))
		}
		return fmt.Sprint(v)
	},
}

// shortID is the first 12 hex digits of an id, without "sha256:"; a header
// or a short name stays as it is.
func shortID(id string) string {
	h := strings.TrimPrefix(id, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}
