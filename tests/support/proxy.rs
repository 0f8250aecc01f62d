//! Helpers for the proxy tests: a private nginx (its own prefix dir, pid, logs and temp
//! paths in a temp dir, listening only on free 127.0.0.1 ports; never the system nginx)
//! whose main config includes the file `infra proxy` generates, a reload wrapper that
//! counts reloads, and plain-TCP HTTP requests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const NGINX: &str = "/usr/sbin/nginx";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Nginx {
    pub dir: PathBuf,
    pub main_config: PathBuf,
    /// The generated config `infra proxy` writes (included by the main config).
    pub generated: PathBuf,
    /// A script that appends a line to `reloads` and reloads this nginx.
    pub reload_script: PathBuf,
    pub reloads: PathBuf,
    /// The port the generated server listens on.
    pub http_port: u16,
}

impl Nginx {
    /// Writes the main config and starts nginx (it must exist: a test needing it fails
    /// clearly when it does not).
    pub fn start(dir: &Path) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: apt-get install nginx"
        );
        let dir = dir.join("nginx");
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let d = dir.display();
        let status_port = free_port();
        let main_config = dir.join("nginx.conf");
        std::fs::write(
            &main_config,
            format!(
                "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n\
                 client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
                 fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
                 scgi_temp_path {d}/tmp/scgi;\n\
                 server {{ listen 127.0.0.1:{status_port}; return 204; }}\n\
                 include {d}/conf.d/*.conf;\n}}\n"
            ),
        )
        .unwrap();
        let reloads = dir.join("reloads");
        let reload_script = dir.join("reload.sh");
        std::fs::write(
            &reload_script,
            format!(
                "#!/bin/sh\necho reload >> {}\nexec {NGINX} -e {d}/error.log -c {} -s reload\n",
                reloads.display(),
                main_config.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&reload_script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new(NGINX)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&main_config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nginx did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Nginx {
            generated: dir.join("conf.d").join("infra-proxy.conf"),
            dir,
            main_config,
            reload_script,
            reloads,
            http_port: free_port(),
        }
    }

    pub fn reload_count(&self) -> usize {
        std::fs::read_to_string(&self.reloads)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// The arguments of `infra proxy` that drive this nginx (with the built-in template
    /// when `template` is `None`).
    pub fn proxy_args(&self, template: Option<&Path>) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "proxy".into(),
            "--nginx-config".into(),
            self.generated.display().to_string(),
            "--nginx-bin".into(),
            NGINX.into(),
            "--nginx-main-config".into(),
            self.main_config.display().to_string(),
            "--reload-cmd".into(),
            self.reload_script.display().to_string(),
            "--http-listen".into(),
            format!("127.0.0.1:{}", self.http_port),
            "--service-address".into(),
            "127.0.0.1".into(),
        ];
        if let Some(template) = template {
            args.extend(["--template".into(), template.display().to_string()]);
        }
        args
    }

    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("nginx.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            unsafe { libc::kill(pid, libc::SIGQUIT) };
        }
    }
}

/// The repository's template.
pub fn template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/nginx-proxy.conf.j2")
}

/// `GET path` on 127.0.0.1:port with a Host header: (status, body).
pub fn get(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
