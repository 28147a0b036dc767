package api

import (
	"net/http"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/cairn-run/cairn/api/cairn/v1/cairnv1connect"
)

// ServiceNames are the services behind the recovery gate, for health and
// reflection; SystemService serves throughout and is always SERVING.
var ServiceNames = []string{
	cairnv1connect.ContainerServiceName,
	cairnv1connect.ImageServiceName,
	cairnv1connect.JournalServiceName,
	cairnv1connect.NetworkServiceName,
	cairnv1connect.ResourceServiceName,
	cairnv1connect.VolumeServiceName,
	cairnv1connect.RestartPolicyServiceName,
}

// Handlers bundles the service implementations.
type Handlers struct {
	Containers *ContainerServer
	Images     *ImageServer
	Journal    *JournalServer
	// Networks, if set, serves NetworkService.
	Networks *NetworkServer
	// Volumes, if set, serves VolumeService.
	Volumes *VolumeServer
	// Restarts, if set, serves RestartPolicyService.
	Restarts *RestartPolicyServer
	// System is not gated (see SystemServer).
	System *SystemServer
	// Health reports NOT_SERVING until recovery is done.
	Health *grpchealth.StaticChecker
	// Gate refuses calls until recovery is done.
	Gate *Gate
	// Resources serves limits updates and stats; nil: not served.
	Resources *ResourceServer
	// RPCs, if set, is told about every answered call.
	RPCs RPCObserver
}

// NewHealth returns a checker on which every gated Cairn service starts
// NOT_SERVING; SystemService is SERVING from the start.
func NewHealth() *grpchealth.StaticChecker {
	h := grpchealth.NewStaticChecker(append([]string{cairnv1connect.SystemServiceName}, ServiceNames...)...)
	SetServing(h, false)
	return h
}

// SetServing flips every Cairn service, and the server as a whole, between
// SERVING and NOT_SERVING.
func SetServing(h *grpchealth.StaticChecker, serving bool) {
	status := grpchealth.StatusNotServing
	if serving {
		status = grpchealth.StatusServing
	}
	h.SetStatus("", status)
	for _, name := range ServiceNames {
		h.SetStatus(name, status)
	}
}

// Mux routes the Connect, gRPC and gRPC-Web protocols of every service, plus
// health and reflection, on one handler.
func (h Handlers) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	gated := h.handlerOptions()
	ungated := h.ungatedOptions()
	mux.Handle(cairnv1connect.NewContainerServiceHandler(h.Containers, gated...))
	mux.Handle(cairnv1connect.NewImageServiceHandler(h.Images, gated...))
	mux.Handle(cairnv1connect.NewJournalServiceHandler(h.Journal, gated...))
	if h.Networks != nil {
		mux.Handle(cairnv1connect.NewNetworkServiceHandler(h.Networks, gated...))
	}
	if h.Resources != nil {
		mux.Handle(cairnv1connect.NewResourceServiceHandler(h.Resources, gated...))
	}
	if h.Volumes != nil {
		mux.Handle(cairnv1connect.NewVolumeServiceHandler(h.Volumes, gated...))
	}
	if h.Restarts != nil {
		mux.Handle(cairnv1connect.NewRestartPolicyServiceHandler(h.Restarts, gated...))
	}
	system := h.System
	if system == nil {
		system = &SystemServer{}
	}
	mux.Handle(cairnv1connect.NewSystemServiceHandler(system, ungated...))
	mux.Handle(grpchealth.NewHandler(h.Health, ungated...))
	reflector := grpcreflect.NewStaticReflector(append([]string{grpchealth.HealthV1ServiceName, cairnv1connect.SystemServiceName}, ServiceNames...)...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, ungated...))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, ungated...))
	return mux
}
