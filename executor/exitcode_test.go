package executor

import (
	"syscall"
	"testing"
)

func TestExitFromWaitStatus(t *testing.T) {
	// Raw wait statuses as the kernel encodes them: exit status in bits
	// 8-15, terminating signal in bits 0-6, core dump flag 0x80.
	for _, tc := range []struct {
		name       string
		ws         syscall.WaitStatus
		wantCode   int
		wantSignal string
		wantOK     bool
	}{
		{"exit 0", 0, 0, "", true},
		{"exit 3", 3 << 8, 3, "", true},
		{"exit 255", 255 << 8, 255, "", true},
		{"SIGKILL", syscall.WaitStatus(syscall.SIGKILL), 137, "SIGKILL", true},
		{"SIGTERM", syscall.WaitStatus(syscall.SIGTERM), 143, "SIGTERM", true},
		{"SIGSEGV with core", syscall.WaitStatus(syscall.SIGSEGV) | 0x80, 139, "SIGSEGV", true},
		{"stopped is not an exit", 0x7f | syscall.WaitStatus(syscall.SIGSTOP)<<8, 0, "", false},
		{"continued is not an exit", 0xffff, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, sig, ok := exitFromWaitStatus(tc.ws)
			if code != tc.wantCode || sig != tc.wantSignal || ok != tc.wantOK {
				t.Fatalf("exitFromWaitStatus(%#x) = %d, %q, %v; want %d, %q, %v", uint32(tc.ws), code, sig, ok, tc.wantCode, tc.wantSignal, tc.wantOK)
			}
		})
	}
}
