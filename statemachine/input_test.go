package statemachine

import (
	"regexp"
	"strings"
	"testing"
)

// The loops check exactly what the patterns say.
func TestValidNameAndIDLike_AgreeWithTheirPatterns(t *testing.T) {
	name := regexp.MustCompile(`^` + namePattern + `$`)
	id := regexp.MustCompile(`^[0-9a-f]{4,64}$`)
	cases := []string{"", "a", "web", "Web-1.b_c", "-x", ".x", "_x", "a/b", "a b", "é", strings.Repeat("a", 128), strings.Repeat("a", 129),
		"abc", "abcd", "ABCD", "0123456789abcdef", strings.Repeat("f", 64), strings.Repeat("f", 65), "abcg"}
	for _, c := range cases {
		if got, want := validName(c), name.MatchString(c); got != want {
			t.Errorf("validName(%q) = %v, pattern says %v", c, got, want)
		}
		if got, want := idLike(c), id.MatchString(c); got != want {
			t.Errorf("idLike(%q) = %v, pattern says %v", c, got, want)
		}
	}
}
