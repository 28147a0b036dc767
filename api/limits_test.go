package api

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestNewHTTPServer_RefusesOversizedHeaders(t *testing.T) {
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	if srv.HTTP2 == nil || srv.HTTP2.MaxConcurrentStreams == 0 || srv.HTTP2.MaxReadFrameSize == 0 || srv.MaxHeaderBytes != maxHeaderBytes {
		t.Fatalf("limits not set: %+v %+v", srv, srv.HTTP2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/"
	for _, tc := range []struct {
		header int
		want   int
	}{{100, http.StatusNoContent}, {2 * maxHeaderBytes, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Big", strings.Repeat("h", tc.header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("a %d-byte header: status %d, want %d", tc.header, resp.StatusCode, tc.want)
		}
	}
}
