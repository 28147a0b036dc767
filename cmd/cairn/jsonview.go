package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Every command that prints JSON prints the API's messages through one
// rule, so the same field reads the same in `ps`, `inspect`, `image ls`,
// `events` and the rest:
//   - keys are the proto field names (snake_case) and every field is
//     present: an unset message or optional field is null;
//   - enums are their value's name without the enum's prefix, lowercased
//     ("running", not "CONTAINER_STATE_RUNNING");
//   - integers are JSON numbers (protojson would quote 64-bit ones);
//   - a string field named *_json holding JSON is embedded as that JSON
//     under the name without the suffix (details_json -> details);
//   - times are RFC 3339 strings in UTC with nanoseconds, durations Go
//     duration strings ("1.5s"), bytes base64.
//
// The result is also what --format templates see: {{.state}}, {{.pid}}.

// jsonView turns m into that JSON form (maps, slices and scalars).
func jsonView(m protoreflect.Message) map[string]any {
	if !m.IsValid() {
		return nil
	}
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		key := string(fd.Name())
		switch {
		case fd.IsList():
			list := m.Get(fd).List()
			items := make([]any, 0, list.Len())
			for j := 0; j < list.Len(); j++ {
				items = append(items, fieldValue(fd, list.Get(j)))
			}
			out[key] = items
		case fd.IsMap():
			mp := m.Get(fd).Map()
			obj := make(map[string]any, mp.Len())
			mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				obj[k.String()] = fieldValue(fd.MapValue(), v)
				return true
			})
			out[key] = obj
		case fd.HasPresence() && !m.Has(fd):
			out[key] = nil
		case fd.Kind() == protoreflect.StringKind && strings.HasSuffix(key, "_json"):
			// JSON the daemon carries as a string is embedded as JSON
			// under the name without the suffix: details_json -> details.
			key = strings.TrimSuffix(key, "_json")
			raw := m.Get(fd).String()
			if raw == "" || !json.Valid([]byte(raw)) {
				out[key] = nil
				continue
			}
			out[key] = json.RawMessage(raw)
		default:
			out[key] = fieldValue(fd, m.Get(fd))
		}
	}
	return out
}

func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		return enumName(fd.Enum(), v.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		msg := v.Message()
		switch msg.Descriptor().FullName() {
		case "google.protobuf.Timestamp", "google.protobuf.Duration":
			return wellKnown(msg)
		}
		return jsonView(msg)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return v.Uint()
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	default: // bool, string, float, double
		return v.Interface()
	}
}

// wellKnown formats a Timestamp as RFC 3339 and a Duration as Go does.
func wellKnown(m protoreflect.Message) any {
	fields := m.Descriptor().Fields()
	secs := m.Get(fields.ByName("seconds")).Int()
	nanos := m.Get(fields.ByName("nanos")).Int()
	if m.Descriptor().FullName() == "google.protobuf.Duration" {
		return (time.Duration(secs)*time.Second + time.Duration(nanos)).String()
	}
	return time.Unix(secs, nanos).UTC().Format(time.RFC3339Nano)
}

// enumName is an enum value's name without its enum's prefix, lowercased:
// CONTAINER_STATE_RUNNING of ContainerState is "running". The prefix is
// that of the enum's zero value, "<PREFIX>_UNSPECIFIED", as every Cairn
// enum has; an enum without one keeps its names whole.
func enumName(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) any {
	v := ed.Values().ByNumber(n)
	if v == nil {
		return int64(n)
	}
	name := string(v.Name())
	if zero := ed.Values().ByNumber(0); zero != nil {
		if prefix, ok := strings.CutSuffix(string(zero.Name()), "UNSPECIFIED"); ok {
			name = strings.TrimPrefix(name, prefix)
		}
	}
	return strings.ToLower(name)
}

// writeJSONLine prints one view as a line of JSON.
func writeJSONLine(enc *json.Encoder, m protoreflect.ProtoMessage) error {
	return enc.Encode(jsonView(m.ProtoReflect()))
}
