package layer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestChainIDs(t *testing.T) {
	d1 := "sha256:" + strings.Repeat("1", 64)
	d2 := "sha256:" + strings.Repeat("2", 64)
	d3 := "sha256:" + strings.Repeat("3", 64)
	h := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	c2 := h(d1 + " " + d2)
	c3 := h(c2 + " " + d3)
	tests := []struct {
		diffIDs, want []string
	}{
		{nil, []string{}},
		{[]string{d1}, []string{d1}},
		{[]string{d1, d2}, []string{d1, c2}},
		{[]string{d1, d2, d3}, []string{d1, c2, c3}},
	}
	for _, tt := range tests {
		got := chainIDs(tt.diffIDs)
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("chainIDs(%v) = %v, want %v", tt.diffIDs, got, tt.want)
		}
	}
}

func TestFilterResolvConf(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"keeps remote", "nameserver 10.0.0.2\n", "nameserver 10.0.0.2\n"},
		{"drops 127/8", "nameserver 127.0.0.53\nnameserver 127.1.2.3\nnameserver 1.1.1.1\n", "nameserver 1.1.1.1\n"},
		{"drops ::1", "nameserver ::1\nnameserver 2001:db8::1\n", "nameserver 2001:db8::1\n"},
		{"drops mapped loopback", "nameserver ::ffff:127.0.0.1\nnameserver 9.9.9.9\n", "nameserver 9.9.9.9\n"},
		{"keeps link-local with zone", "nameserver fe80::1%eth0\n", "nameserver fe80::1%eth0\n"},
		{"keeps options and comments", "# gen\nsearch a.b\nnameserver 127.0.0.1\noptions ndots:2\n", "# gen\nsearch a.b\noptions ndots:2\n"},
		{"tabs", "nameserver\t127.0.0.1\nnameserver\t8.8.8.8\n", "nameserver\t8.8.8.8\n"},
		{"only loopback", "nameserver 127.0.0.53\n", ""},
		{"only comments left", "# systemd stub\n; x\n\nnameserver 127.0.0.53\n", ""},
		{"empty", "", ""},
		{"no final newline", "nameserver 8.8.4.4", "nameserver 8.8.4.4\n"},
	}
	for _, tt := range tests {
		if got := string(filterResolvConf([]byte(tt.in))); got != tt.want {
			t.Errorf("%s: filterResolvConf(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestValidateHostname(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "c0ffee123456", "a.b.c", strings.Repeat("a", 63), strings.Repeat("a.", 32)[:63]} {
		if err := validateHostname(ok); err != nil {
			t.Errorf("validateHostname(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "a..b", ".a", "a b", "a\nb", "a_b", "é", strings.Repeat("a", 64), strings.Repeat("a.", 33)} {
		if err := validateHostname(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("validateHostname(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestValidateMountID(t *testing.T) {
	if err := validateMountID(strings.Repeat("0a", 32)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", strings.Repeat("a", 63), strings.Repeat("a", 65), strings.Repeat("A", 64), strings.Repeat("g", 64), "../" + strings.Repeat("a", 61)} {
		if err := validateMountID(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("validateMountID(%q) = %v", bad, err)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestMountIDFromRootfs(t *testing.T) {
	prefix := "/var/lib/cairn/layer/mounts/"
	tests := []struct {
		point, id string
		ok        bool
	}{
		{prefix + hex64 + "/merged", hex64, true},
		{prefix + hex64 + "/upper", "", false},
		{prefix + hex64 + "/merged/proc", "", false},
		{prefix + "short/merged", "", false},
		{"/other/" + hex64 + "/merged", "", false},
	}
	for _, tt := range tests {
		id, ok := mountIDFromRootfs(prefix, tt.point)
		if id != tt.id || ok != tt.ok {
			t.Errorf("mountIDFromRootfs(%q) = %q, %v", tt.point, id, ok)
		}
	}
}
