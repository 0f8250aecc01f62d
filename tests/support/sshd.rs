//! A real OpenSSH sshd for tests: its own temp dir, host keys made with ssh-keygen, an
//! authorized client key, listening on 127.0.0.1:<free port>, killed on drop.
//!
//! Use it from any integration test with
//! ```ignore
//! #[path = "support/sshd.rs"]
//! mod sshd;
//! let server = sshd::TestSshd::start();            // login as root with server.client_key_path
//! let spec = server.connect_spec("h1");            // known_hosts already holds the host key
//! ```
//! Needs /usr/sbin/sshd and ssh-keygen (Debian: openssh-server, openssh-client) and root
//! (sshd logs users in); panics with a clear message when they are missing.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// How to start a [`TestSshd`].
#[derive(Debug, Clone, Default)]
pub struct TestSshdBuilder {
    port: Option<u16>,
    host_key_types: Vec<String>,
    extra_config: Vec<String>,
    client_key: Option<PathBuf>,
}

impl TestSshdBuilder {
    /// Listen on this port (e.g. to replace a server with one that has other host keys).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Host key types to generate (`ed25519`, `ecdsa`, `rsa`); default `ed25519`.
    /// [`TestSshd::host_pubkey`] is the first one.
    pub fn host_key_types(mut self, types: &[&str]) -> Self {
        self.host_key_types = types.iter().map(|t| t.to_string()).collect();
        self
    }

    /// Authorize this existing private key (its `.pub` beside it) for root instead of a
    /// generated one; `client_key_path` is then this path.
    pub fn client_key(mut self, private_key: &Path) -> Self {
        self.client_key = Some(private_key.to_path_buf());
        self
    }

    /// An extra sshd_config line.
    pub fn config(mut self, line: &str) -> Self {
        self.extra_config.push(line.to_string());
        self
    }

    pub fn start(self) -> TestSshd {
        TestSshd::start_with(self)
    }
}

/// A running sshd. Root logs in with `client_key_path`; [`TestSshd::authorize`] lets other
/// users (and other keys) in.
pub struct TestSshd {
    pub port: u16,
    /// The private key (ed25519) authorized for `user`.
    pub client_key_path: PathBuf,
    /// The server's (first) host public key, OpenSSH format: `ssh-ed25519 AAAA...`.
    pub host_pubkey: String,
    /// The user `client_key_path` logs in as (`root`).
    pub user: String,
    /// A known_hosts file holding `known_hosts_line()`.
    pub known_hosts_path: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is openssh-client installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generates a key pair with ssh-keygen; returns the private key path.
pub fn keygen(dir: &Path, name: &str, key_type: &str) -> PathBuf {
    let path = dir.join(name);
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", key_type, "-N", "", "-C", name, "-f"])
        .arg(&path));
    path
}

/// The `.pub` text (one line, no newline) of a private key made by [`keygen`].
pub fn public_key_of(private_key: &Path) -> String {
    let mut p = private_key.as_os_str().to_owned();
    p.push(".pub");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {p:?}: {e}"))
        .trim()
        .to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

impl TestSshd {
    /// An sshd with an ed25519 host key on a free port.
    pub fn start() -> TestSshd {
        TestSshdBuilder::default().start()
    }

    pub fn builder() -> TestSshdBuilder {
        TestSshdBuilder::default()
    }

    fn start_with(b: TestSshdBuilder) -> TestSshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (apt-get install openssh-server)"
        );
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::Builder::new()
            .prefix("infra-sshd-")
            .tempdir()
            .expect("temp dir");
        set_mode(dir.path(), 0o755);
        let auth_dir = dir.path().join("authorized_keys");
        std::fs::create_dir(&auth_dir).expect("authorized_keys dir");
        set_mode(&auth_dir, 0o755);

        let types = if b.host_key_types.is_empty() {
            vec!["ed25519".to_string()]
        } else {
            b.host_key_types.clone()
        };
        let host_keys: Vec<PathBuf> = types
            .iter()
            .map(|t| keygen(dir.path(), &format!("ssh_host_{t}_key"), t))
            .collect();
        let host_pubkey = public_key_of(&host_keys[0]);
        let client_key_path = match &b.client_key {
            Some(k) => k.clone(),
            None => keygen(dir.path(), "client_ed25519", "ed25519"),
        };

        let port = b.port.unwrap_or_else(free_port);
        let mut config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             PidFile none\n\
             AuthorizedKeysFile {}/%u\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             UseDNS no\n\
             MaxStartups 100\n\
             LogLevel VERBOSE\n\
             Subsystem sftp internal-sftp\n",
            auth_dir.display()
        );
        for k in &host_keys {
            config.push_str(&format!("HostKey {}\n", k.display()));
        }
        for line in &b.extra_config {
            config.push_str(line);
            config.push('\n');
        }
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).expect("write sshd_config");

        let mut server = TestSshd {
            port,
            client_key_path: client_key_path.clone(),
            host_pubkey,
            user: "root".to_string(),
            known_hosts_path: dir.path().join("known_hosts"),
            dir,
            child: None,
        };
        server.authorize("root", &public_key_of(&server.client_key_path));
        std::fs::write(
            &server.known_hosts_path,
            format!("{}\n", server.known_hosts_line()),
        )
        .expect("write known_hosts");

        let log = std::fs::File::create(server.log_path()).expect("sshd log");
        let child = {
            Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"))
        };
        server.child = Some(child);
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("sshd exited ({status}) on start:\n{}", self.log());
                }
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8];
                if s.read_exact(&mut buf).is_ok() && &buf[..] == b"SSH-2.0-" {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "sshd did not come up on port {}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's temp dir (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...` for a known_hosts file.
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_pubkey.split_whitespace();
        let key_type = parts.next().unwrap_or_default();
        let key = parts.next().unwrap_or_default();
        format!("[127.0.0.1]:{} {key_type} {key}", self.port)
    }

    /// Lets `user` log in with the public key line `pubkey` (`ssh-ed25519 AAAA... comment`).
    pub fn authorize(&self, user: &str, pubkey: &str) {
        use std::io::Write;
        let path = self.dir.path().join("authorized_keys").join(user);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open authorized_keys");
        writeln!(f, "{pubkey}").expect("write authorized_keys");
        set_mode(&path, 0o644);
    }

    /// A new key pair of `key_type` (`ed25519`, `ecdsa`, `rsa`) authorized for `user`;
    /// returns the private key path.
    pub fn new_client_key(&self, user: &str, key_type: &str) -> PathBuf {
        let name = format!("client_{user}_{key_type}_{}", rand_suffix());
        let key = keygen(self.dir.path(), &name, key_type);
        self.authorize(user, &public_key_of(&key));
        key
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// What sshd logged so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A `ConnectSpec` for this server as root, trusting only `known_hosts_path`.
    pub fn connect_spec(&self, name: &str) -> infra::transport::ConnectSpec {
        infra::transport::ConnectSpec {
            name: name.to_string(),
            address: "127.0.0.1".to_string(),
            port: self.port,
            user: self.user.clone(),
            key_file: Some(self.client_key_path.clone()),
            local: false,
            known_hosts: vec![self.known_hosts_path.clone()],
            accept_new: false,
            connect_timeout: Duration::from_secs(5),
            retries: 1,
        }
    }

    /// Freezes (SIGSTOP) sshd and every connection it serves, like a host that vanished
    /// from the network: nothing answers, nothing is closed. [`TestSshd::thaw`] undoes it.
    pub fn freeze(&self) {
        self.signal_all(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal_all(libc::SIGCONT);
    }

    fn signal_all(&self, signal: i32) {
        if let Some(child) = &self.child {
            let pid = child.id() as i32;
            let mut victims = descendants(pid);
            victims.push(pid);
            for p in victims {
                // SAFETY: kill(2) on processes this harness started.
                unsafe {
                    libc::kill(p, signal);
                }
            }
        }
    }

    /// Stops sshd and every connection it serves.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // Connection processes call setsid(), so kill the whole tree by parentage.
            let mut victims = descendants(pid);
            victims.push(pid);
            for p in &victims {
                // SAFETY: kill(2) on processes this harness started (sshd and its children).
                unsafe {
                    libc::kill(*p, libc::SIGKILL);
                    // A frozen process dies only once continued.
                    libc::kill(*p, libc::SIGCONT);
                }
            }
            let _ = child.wait();
        }
    }
}

/// Every process below `pid`, from /proc.
fn descendants(pid: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|x| x.parse().ok()) {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (p, pp) in &parents {
            if *pp == parent && !out.contains(p) {
                out.push(*p);
                frontier.push(*p);
            }
        }
    }
    out
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
