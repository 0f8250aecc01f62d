//! The controller itself as a host (`ansible_connection: local`, `delegate_to: localhost`):
//! commands through `/bin/sh -c`, files through std::fs. Same semantics as ssh.

/// Runs operations on the machine running infra.
pub struct LocalTransport {
    name: String,
}

impl LocalTransport {
    pub fn new(name: &str) -> Self {
        LocalTransport {
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}
