// Package apiclient dials cairnd's unix socket and returns Connect clients
// of its services; the CLI and the tests use it, so there is one way in.
package apiclient

import (
	"context"
	"net"
	"net/http"

	"connectrpc.com/connect"

	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
)

// Clients are the API clients of one daemon.
type Clients struct {
	Containers cairnv1connect.ContainerServiceClient
	Images     cairnv1connect.ImageServiceClient
	Journal    cairnv1connect.JournalServiceClient
	System     cairnv1connect.SystemServiceClient
	Restarts   cairnv1connect.RestartPolicyServiceClient
	HTTP       *http.Client
}

// BaseURL is the URL the clients use; the host is ignored, every request
// goes to the socket.
const BaseURL = "http://cairnd"

// New returns clients speaking over the unix socket at path, with HTTP/2
// without TLS. Options such as connect.WithGRPC() pick the protocol.
func New(socket string, opts ...connect.ClientOption) Clients {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{
		Protocols: protocols,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, unreachable(socket, err)
			}
			return conn, nil
		},
	}}
	return Clients{
		Containers: cairnv1connect.NewContainerServiceClient(hc, BaseURL, opts...),
		Images:     cairnv1connect.NewImageServiceClient(hc, BaseURL, opts...),
		Journal:    cairnv1connect.NewJournalServiceClient(hc, BaseURL, opts...),
		System:     cairnv1connect.NewSystemServiceClient(hc, BaseURL, opts...),
		Restarts:   cairnv1connect.NewRestartPolicyServiceClient(hc, BaseURL, opts...),
		HTTP:       hc,
	}
}
