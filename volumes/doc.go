// Package volumes is the volume service: named and anonymous volumes,
// directories under the daemon's root (<root>/volumes/<name>/_data) that
// containers mount and that outlive them. Every create and remove is a
// transition of the volume driver (statemachine.Volumes): the intent is
// durable before the directory is made or the data deleted, and recovery
// (recovery.DecideVolume) settles what a crash interrupted.
//
// A volume that any container's view names (in any state) cannot be
// removed, force or not, as Docker refuses: the service says which
// containers, and the journal's fold refuses the remove intent anyway, so
// a create that mounts the volume cannot slip in between the check and the
// record. The service also resolves a create's mounts (Prepare): named
// volumes that do not exist are created first, as Docker does, an image's
// VOLUMEs get anonymous ones, and bind sources are checked on the machine.
package volumes
