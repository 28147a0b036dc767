package network

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

func TestParsePort(t *testing.T) {
	for in, want := range map[string]sm.PortMapping{
		"80":                    {ContainerPort: 80, Protocol: "tcp"},
		"8080:80":               {HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		"127.0.0.1:8080:80":     {HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		"127.0.0.1::80/udp":     {HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "udp"},
		"0.0.0.0:53:53/udp":     {HostPort: 53, ContainerPort: 53, Protocol: "udp"},
		"[192.0.2.1]:8080:8080": {HostIP: "192.0.2.1", HostPort: 8080, ContainerPort: 8080, Protocol: "tcp"},
	} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("%q: got %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "0", "65536", "80/sctp", "x:80:80", "::1:80:80", "99999:80", "-1:80", strings.Repeat("9", 500)} {
		if _, err := ParsePort(bad); !errors.Is(err, errdefs.ErrInvalidArgument) || len(err.Error()) > 400 {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestValidateSettings(t *testing.T) {
	known := func(n string) bool { return n == "mynet" }
	ok := []*sm.NetworkSettings{
		nil, {Mode: "none"}, {Mode: "host", DNS: []string{"1.1.1.1"}}, {Mode: "mynet"},
		{Mode: "bridge", Ports: []sm.PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 80, ContainerPort: 80, Protocol: "udp"}}},
		{Mode: "bridge", ExtraHosts: []string{"db:10.0.0.2", "v6:::1"}, DNSSearch: []string{"example.com", "."}},
	}
	for _, n := range ok {
		if err := ValidateSettings(n, "", known); err != nil {
			t.Errorf("%+v: %v", n, err)
		}
	}
	bad := []*sm.NetworkSettings{
		{Mode: "other"}, {Mode: "host", Ports: []sm.PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}}}, {Mode: "none", PublishAll: true},
		{Mode: "bridge", Ports: []sm.PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}, {HostIP: "127.0.0.1", HostPort: 80, ContainerPort: 81, Protocol: "tcp"}}},
		{Mode: "bridge", DNS: []string{"x"}}, {Mode: "bridge", DNSSearch: []string{"a b"}}, {Mode: "bridge", ExtraHosts: []string{"noip"}},
	}
	for _, n := range bad {
		if err := ValidateSettings(n, "", known); err == nil {
			t.Errorf("%+v accepted", n)
		}
	}
	if err := ValidateSettings(nil, "bad host\n", known); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("hostname: %v", err)
	}
}

func TestResolvConf(t *testing.T) {
	stub := []byte("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n")
	upstream := []byte("nameserver 192.0.2.53\nnameserver ::1\n")
	for _, tc := range []struct {
		name            string
		host, up        []byte
		hostNet         bool
		dns, search     []string
		want, wantNotIn string
	}{
		{"stub: upstream servers", stub, upstream, false, nil, nil, "nameserver 192.0.2.53\nsearch corp.example\noptions edns0 trust-ad\n", ""},
		{"stub, no upstream: fallback", stub, nil, false, nil, nil, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n", "127.0.0.53"},
		{"host network keeps the stub", stub, upstream, true, nil, nil, "nameserver 127.0.0.53\n", ""},
		{"real servers kept, loopback dropped", []byte("nameserver 10.0.0.1\nnameserver 127.0.0.1\n"), nil, false, nil, nil, "nameserver 10.0.0.1\n", "127.0.0.1"},
		{"--dns and --dns-search win", stub, upstream, false, []string{"9.9.9.9"}, []string{"a.test", "b.test"}, "nameserver 9.9.9.9\nsearch a.test b.test\n", "192.0.2.53"},
		{"--dns-search . clears", stub, upstream, false, nil, []string{"."}, "nameserver 192.0.2.53\noptions", "search"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(ResolvConf(tc.host, tc.up, tc.hostNet, tc.dns, tc.search))
			if !strings.HasPrefix(got, tc.want) || (tc.wantNotIn != "" && strings.Contains(got, tc.wantNotIn)) {
				t.Fatalf("got %q, want prefix %q without %q", got, tc.want, tc.wantNotIn)
			}
		})
	}
}

func TestHostsFile(t *testing.T) {
	got := string(HostsFile("web", "10.89.0.2", []HostEntry{{IP: "10.89.0.3", Names: []string{"db", "dbhost"}}, {IP: "10.89.0.4"}}, []string{"ext:192.0.2.9"}))
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.89.0.2\tweb\n", "10.89.0.3\tdb dbhost\n", "192.0.2.9\text\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	if strings.Contains(got, "10.89.0.4") {
		t.Errorf("a peer without names: %q", got)
	}
}
