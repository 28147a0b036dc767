package sysinfo

import (
	"time"
)

// Info is the daemon as `cairn info` shows it.
type Info struct {
	Root, JournalPath            string
	JournalBytes, JournalRecords int64
	// Containers counts containers by state name, every state present.
	Containers           map[string]int64
	Images, Layers       int64
	LayerBytes           int64
	Shims                int64
	Host                 Host
	StartedAt            time.Time
	Recovering           bool
	LastRecovery         Recovery
	LastRecoveryFinished bool
}

// Recovery is what the startup recovery did.
type Recovery struct {
	CleanShutdown, Rebooted bool
	Duration                time.Duration
	Containers, Images      int64
	Actions                 map[string]int64
	UnknownExits            int64
	// Err is set when recovery left work for the next start.
	Err string
}
