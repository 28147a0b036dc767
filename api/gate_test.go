package api

import (
	"context"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
	"github.com/cairn-run/cairn/internal/buildinfo"
	"github.com/cairn-run/cairn/layer"
)

// noImages is an image service with nothing in it: the gate answers first.
type noImages struct{ ImageService }

func (noImages) List() ([]layer.Image, error) { return nil, nil }

func TestGate_RefusesUntilRecoveryIsDoneAndHealthSaysSo(t *testing.T) {
	gate := &Gate{}
	health := NewHealth()
	h := Handlers{Containers: &ContainerServer{}, Images: &ImageServer{Images: noImages{}}, Journal: &JournalServer{}, System: &SystemServer{Build: buildinfo.Read()}, Health: health, Gate: gate}
	srv := httptest.NewUnstartedServer(h.Mux())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	images := cairnv1connect.NewImageServiceClient(srv.Client(), srv.URL)
	checker := grpchealth.NewClient(srv.Client(), srv.URL)

	_, err := images.List(context.Background(), connect.NewRequest(&cairnv1.ImageServiceListRequest{}))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("during recovery: %v, want Unavailable", err)
	}
	system := cairnv1connect.NewSystemServiceClient(srv.Client(), srv.URL)
	if res, err := system.Version(context.Background(), connect.NewRequest(&cairnv1.VersionRequest{})); err != nil || res.Msg.ApiVersion != Version {
		t.Fatalf("version during recovery: %v %v", res, err)
	}
	if res, err := checker.Check(context.Background(), &grpchealth.CheckRequest{Service: cairnv1connect.SystemServiceName}); err != nil || res.Status != grpchealth.StatusServing {
		t.Fatalf("health of SystemService during recovery: %v %v", res, err)
	}
	for _, service := range append([]string{""}, ServiceNames...) {
		res, err := checker.Check(context.Background(), &grpchealth.CheckRequest{Service: service})
		if err != nil || res.Status != grpchealth.StatusNotServing {
			t.Fatalf("health of %q during recovery: %v %v", service, res, err)
		}
	}

	gate.Open()
	SetServing(health, true)
	if _, err := images.List(context.Background(), connect.NewRequest(&cairnv1.ImageServiceListRequest{})); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if res, err := checker.Check(context.Background(), &grpchealth.CheckRequest{}); err != nil || res.Status != grpchealth.StatusServing {
		t.Fatalf("health after recovery: %v %v", res, err)
	}
}
