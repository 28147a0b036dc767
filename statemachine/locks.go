package statemachine

import (
	"context"
	"fmt"
	"syscall"
)

// slot serialises the transitions of one container. Waiting for it honours
// the caller's context, so a request whose client gave up never runs later;
// a transition whose intent is recorded always finishes.
type slot struct {
	// sem holds a token while a transition runs.
	sem chan struct{}
	// halting is set while a stop, restart or force-remove waits for the
	// container's process to end: a kill or a force-remove arriving then
	// hands it a signal instead of waiting out the grace period.
	halting *preemption
	// sharers hold a share of the slot (exec starts, see lockShared);
	// noSharers is closed when the last one lets go. Both under m.mu.
	sharers   int
	noSharers chan struct{}
}

// lock takes container id's slot, waiting at most as long as ctx allows,
// and then for its sharers to let go. Nothing has been done when it
// returns an error.
func (m *Machine) lock(ctx context.Context, id string) (func(), error) {
	s := m.slotOf(id)
	if err := m.takeToken(ctx, id, s); err != nil {
		return nil, err
	}
	for {
		m.mu.Lock()
		if s.sharers == 0 {
			m.mu.Unlock()
			return func() { <-s.sem }, nil
		}
		if s.noSharers == nil {
			s.noSharers = make(chan struct{})
		}
		idle := s.noSharers
		m.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			<-s.sem
			return nil, fmt.Errorf("waiting for the exec sessions starting in container %s: %w", id, ctx.Err())
		}
	}
}

// lockShared takes a share of container id's slot: shares are held side by
// side, never with the slot itself, which a transition waiting for it gets
// before any new share.
func (m *Machine) lockShared(ctx context.Context, id string) (func(), error) {
	s := m.slotOf(id)
	if err := m.takeToken(ctx, id, s); err != nil {
		return nil, err
	}
	m.mu.Lock()
	s.sharers++
	m.mu.Unlock()
	<-s.sem
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		s.sharers--
		if s.sharers == 0 && s.noSharers != nil {
			close(s.noSharers)
			s.noSharers = nil
		}
	}, nil
}

func (m *Machine) takeToken(ctx context.Context, id string, s *slot) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for container %s to finish its transition: %w", id, ctx.Err())
	}
}

func (m *Machine) slotOf(id string) *slot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.slots[id]
	if !ok {
		s = &slot{sem: make(chan struct{}, 1)}
		m.slots[id] = s
	}
	return s
}

// preemption lets a kill or force-remove reach a transition that is
// halting the container's process.
type preemption struct {
	requests chan preemptRequest
	done     chan struct{} // closed when the halting transition ends
}

type preemptRequest struct {
	sig       syscall.Signal
	delivered chan error // the halting transition answers exactly once
}

// startHalting registers a preemption for container id, to be ended (with
// the returned func) when the transition is over.
func (m *Machine) startHalting(id string) (*preemption, func()) {
	p := &preemption{requests: make(chan preemptRequest), done: make(chan struct{})}
	s := m.slotOf(id)
	m.mu.Lock()
	s.halting = p
	m.mu.Unlock()
	return p, func() {
		m.mu.Lock()
		if s.halting == p {
			s.halting = nil
		}
		m.mu.Unlock()
		close(p.done)
	}
}

// preempt hands sig to a transition that is halting container id, if
// there is one. ok is false when none took it: the caller then waits for
// the container like any other request.
func (m *Machine) preempt(ctx context.Context, id string, sig syscall.Signal) (ok bool, err error) {
	m.mu.Lock()
	var p *preemption
	if s, found := m.slots[id]; found {
		p = s.halting
	}
	m.mu.Unlock()
	if p == nil {
		return false, nil
	}
	req := preemptRequest{sig: sig, delivered: make(chan error, 1)}
	select {
	case p.requests <- req:
		return true, <-req.delivered
	case <-p.done:
		return false, nil
	case <-ctx.Done():
		return true, fmt.Errorf("waiting to signal container %s: %w", id, ctx.Err())
	}
}
