//! Waiting until a host's sshd answers with an SSH banner (`SSH-2.0-...`), not just until
//! its port accepts connections, with an overall deadline.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Polls `ip:22` until it sends an SSH banner or `timeout` passes.
pub async fn wait_for_banner(ip: Ipv4Addr, timeout: Duration) -> anyhow::Result<String> {
    let addr = SocketAddr::from((ip, 22));
    let deadline = Instant::now() + timeout;
    loop {
        let last_error = match try_banner(addr).await {
            Ok(banner) => return Ok(banner),
            Err(err) => err.to_string(),
        };
        if Instant::now() >= deadline {
            bail!(
                "sshd did not answer on {addr} within {}s (last attempt: {last_error})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn try_banner(addr: SocketAddr) -> anyhow::Result<String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        while !buf.contains(&b'\n') && buf.len() < 1024 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(3), attempt).await??;
    let text = String::from_utf8_lossy(&buf);
    match text.lines().find(|l| l.starts_with("SSH-")) {
        Some(line) => Ok(line.trim_end().to_string()),
        None => bail!("connected, but no SSH banner"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn a_port_without_a_banner_times_out() {
        // A port that accepts connections but speaks another protocol is not ready.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n").await;
            }
        });
        let err = try_banner(addr).await.unwrap_err();
        assert!(err.to_string().contains("no SSH banner"), "{err}");
    }

    #[tokio::test]
    async fn a_banner_is_returned() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n").await;
            }
        });
        assert_eq!(
            try_banner(addr).await.unwrap(),
            "SSH-2.0-OpenSSH_9.2p1 Debian"
        );
    }
}
