//! WAN forwarding: a name of another datacenter is asked of that datacenter's control
//! nodes, one after the other, each with a short timeout (UDP; TCP again when the reply is
//! truncated). The first reply wins; when none answers the caller returns SERVFAIL.
//! Forwarded queries carry RD=0: the other side answers its own names authoritatively and
//! never forwards them again.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Asks `servers` in order for `query`; the first well-formed reply is returned.
pub async fn forward(
    servers: &[SocketAddr],
    query: &Query,
    timeout: Duration,
) -> anyhow::Result<Message> {
    let mut failures = Vec::new();
    for server in servers {
        match ask(*server, query, timeout).await {
            Ok(reply) => return Ok(reply),
            Err(error) => {
                tracing::warn!(%server, error = format!("{error:#}"), "WAN forward failed");
                failures.push(format!("{server}: {error:#}"));
            }
        }
    }
    if failures.is_empty() {
        bail!("no servers are configured for this datacenter");
    }
    bail!("no server answered: {}", failures.join("; "))
}

async fn ask(server: SocketAddr, query: &Query, timeout: Duration) -> anyhow::Result<Message> {
    let id: u16 = rand::random();
    let mut request = Message::new(id, MessageType::Query, OpCode::Query);
    request.metadata.recursion_desired = false;
    request.add_query(query.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    request.set_edns(edns);
    let bytes = request.to_vec().context("encoding the forwarded query")?;
    let reply = tokio::time::timeout(timeout, ask_udp(server, &bytes, id))
        .await
        .context("timed out")??;
    if !reply.metadata.truncation {
        return Ok(reply);
    }
    tokio::time::timeout(timeout, ask_tcp(server, &bytes, id))
        .await
        .context("timed out over TCP")?
}

fn check(reply: Message, id: u16) -> anyhow::Result<Message> {
    if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
        bail!("the reply does not match the query");
    }
    Ok(reply)
}

async fn ask_udp(server: SocketAddr, bytes: &[u8], id: u16) -> anyhow::Result<Message> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .context("binding a UDP socket")?;
    socket.connect(server).await.context("connecting")?;
    socket.send(bytes).await.context("sending")?;
    let mut buffer = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buffer).await.context("receiving")?;
        match Message::from_vec(&buffer[..n]) {
            Ok(reply) if reply.metadata.id == id => return check(reply, id),
            // A stray or late datagram: keep waiting for ours.
            _ => continue,
        }
    }
}

async fn ask_tcp(server: SocketAddr, bytes: &[u8], id: u16) -> anyhow::Result<Message> {
    let mut stream = TcpStream::connect(server)
        .await
        .context("connecting over TCP")?;
    let len = u16::try_from(bytes.len()).context("query too long")?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream
        .write_all(&framed)
        .await
        .context("sending over TCP")?;
    let reply_len = stream
        .read_u16()
        .await
        .context("reading the reply length")?;
    let mut reply = vec![0u8; usize::from(reply_len)];
    stream
        .read_exact(&mut reply)
        .await
        .context("reading the reply")?;
    check(Message::from_vec(&reply).context("decoding the reply")?, id)
}
