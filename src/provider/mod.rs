//! Creating hosts: the `docker` provider makes systemd containers with sshd on a private
//! Docker network (the `vagrant up` of this project), and builds their image.
//!
//! Owns: the host image, containers, networks, the cluster's state folder (SSH key,
//! known_hosts). May call: inventory (to read and fill in hosts). Talks to Docker through
//! its API (bollard).
