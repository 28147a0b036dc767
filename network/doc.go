// Package network gives containers their networks through CNI: the
// default bridge network ("bridge"), user networks (`cairn network
// create`), the host's namespace ("host") or none but loopback ("none").
//
// A container on a bridge or user network gets a network namespace of its
// own before its process exists: a file named after the container under
// the run directory (<run>/netns/<id>), bind-mounted from a fresh namespace
// made on a thrown-away OS thread (CreateNetNS), which libcontainer joins
// as an existing namespace. CNI ADD (libcni v1.3.1; the reference plugins
// bridge + host-local + portmap v1.10.0, configs generated here from the
// network's definition) gives it a veth on the network's bridge, an
// address and the kernel rules of its published ports: the daemon is not
// in the data path, so published ports answer while cairnd is stopped,
// killed or recovering. The namespace and the address live as long as the
// container (stop and start keep them) and are released by its removal.
//
// Every change is a transition of the network driver
// (statemachine.Nets): an attach's INTENT names the network, the netns
// path and the ports before the namespace is made; its DONE carries IP,
// MAC, gateway and ports; a detach's INTENT comes before CNI DEL. The CNI
// cache and host-local's address files live under the run directory, a
// tmpfs, so a reboot clears namespaces, caches and addresses together.
// After a start, Manager.Recover decides every attachment with
// recovery.DecideNetAttach (keep, or release: CNI DEL with the cached
// config, unmount, delete, a RECONCILED record), every unfinished network
// create or remove with recovery.DecideNetwork, runs CNI GC on every
// network with the live attachments and removes namespace files nobody
// names.
//
// Names: a user network's containers find each other through /etc/hosts,
// rewritten in every running member's rootfs when one joins or leaves (the
// default bridge, like Docker's, has no names). /etc/resolv.conf is the
// host's, without loopback servers (a local stub's upstream servers
// instead, else 8.8.8.8 and 8.8.4.4) unless --dns / --dns-search replace
// them; with host networking the host's file as it is.
//
// Ports: a host port another attachment publishes, or a host socket holds
// (probed by binding it for a moment), is refused with ErrAlreadyExists
// before anything is written; -P and -p without a host port take free
// ephemeral ports at attach time.
package network
