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
	Volumes    cairnv1connect.VolumeServiceClient
	System     cairnv1connect.SystemServiceClient
	Networks   cairnv1connect.NetworkServiceClient
	Resources  cairnv1connect.ResourceServiceClient
	Restarts   cairnv1connect.RestartPolicyServiceClient
	HTTP       *http.Client
}

// BaseURL is the URL the clients use; the host is ignored, every request
// goes to the socket.
const BaseURL = "http://cairnd"

// New returns clients speaking over the unix socket at path, with HTTP/2
// without TLS. Options such as connect.WithGRPC() pick the protocol. The
// daemon also serves calls without side effects over HTTP GET, but these
// clients POST, as daemons older than API 1.3 only accept that.
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
	// Nothing is compressed on a local socket: gzip of a container's output
	// (an attach, a log) cost more CPU than all the rest of the way.
	opts = append([]connect.ClientOption{connect.WithAcceptCompression("gzip", nil, nil)}, opts...)
	return Clients{
		Containers: cairnv1connect.NewContainerServiceClient(hc, BaseURL, opts...),
		Networks:   cairnv1connect.NewNetworkServiceClient(hc, BaseURL, opts...),
		Images:     cairnv1connect.NewImageServiceClient(hc, BaseURL, opts...),
		Journal:    cairnv1connect.NewJournalServiceClient(hc, BaseURL, opts...),
		Volumes:    cairnv1connect.NewVolumeServiceClient(hc, BaseURL, opts...),
		System:     cairnv1connect.NewSystemServiceClient(hc, BaseURL, opts...),
		Resources:  cairnv1connect.NewResourceServiceClient(hc, BaseURL, opts...),
		Restarts:   cairnv1connect.NewRestartPolicyServiceClient(hc, BaseURL, opts...),
		HTTP:       hc,
	}
}
