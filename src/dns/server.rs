//! The DNS server itself: hickory-server on one UDP socket and one TCP listener (same
//! port), with a request handler that answers this datacenter's names from the catalog,
//! forwards other datacenters' names to their control nodes, and refuses names outside
//! the zone (dnsmasq on the hosts sends us only the zone).

use std::iter;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::op::{MessageType, Query};
use hickory_proto::rr::{DNSClass, Name};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

use super::answer::{Answer, Zone};
use super::catalog::ServiceCatalog;
use super::config::DnsConfig;
use super::forward::forward;
use super::names::{classify, Target};

/// A running discovery DNS server. Dropping it stops it.
pub struct DnsServer {
    local_addr: SocketAddr,
    server: Server<Handler>,
}

impl DnsServer {
    /// Binds UDP and TCP on `addr` (port 0: a free port, the same for both) and starts
    /// answering. Fails with the address when it cannot bind or the config is invalid.
    pub async fn bind(
        addr: SocketAddr,
        config: DnsConfig,
        catalog: Arc<dyn ServiceCatalog>,
    ) -> anyhow::Result<DnsServer> {
        let origin = config.origin()?;
        let (udp, tcp) = bind_both(addr).await?;
        let local_addr = udp.local_addr().context("UDP socket address")?;
        let handler = Handler {
            zone: Zone {
                origin: origin.clone(),
                datacenter: config.datacenter.clone(),
                ttl: config.ttl_secs(),
            },
            origin,
            config,
            catalog,
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        tracing::info!(%local_addr, "discovery DNS listening (UDP and TCP)");
        Ok(DnsServer { local_addr, server })
    }

    /// Where it listens (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until the server's tasks end (they end only on shutdown or a socket error).
    pub async fn run(mut self) -> anyhow::Result<()> {
        self.server
            .block_until_done()
            .await
            .context("the discovery DNS server failed")
    }

    /// Stops accepting and waits for the requests in flight.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.server
            .shutdown_gracefully()
            .await
            .context("stopping the discovery DNS server")
    }
}

async fn bind_both(addr: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    // With port 0 the UDP port the OS picks may be taken for TCP; try a few.
    for _ in 0..if addr.port() == 0 { 10 } else { 1 } {
        let udp = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("cannot bind DNS (UDP) on {addr}"))?;
        let port = udp.local_addr().context("UDP socket address")?.port();
        let tcp_addr = SocketAddr::new(addr.ip(), port);
        match TcpListener::bind(tcp_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last_error = Some((tcp_addr, error)),
        }
    }
    let (tcp_addr, error) = last_error.context("no bind attempt")?;
    Err(error).with_context(|| format!("cannot bind DNS (TCP) on {tcp_addr}"))
}

struct Handler {
    zone: Zone,
    origin: Name,
    config: DnsConfig,
    catalog: Arc<dyn ServiceCatalog>,
}

impl Handler {
    async fn answer(&self, request: &Request) -> Answer {
        if request.metadata.message_type != MessageType::Query {
            return Answer::code(ResponseCode::FormErr);
        }
        if request.metadata.op_code != OpCode::Query {
            return Answer::code(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return Answer::code(ResponseCode::FormErr);
        };
        let query = info.query.original().clone();
        if query.query_class() != DNSClass::IN {
            return Answer::code(ResponseCode::Refused);
        }
        let qname = query.name().clone();
        match classify(&qname, &self.origin, &self.config) {
            Target::Outside => Answer::code(ResponseCode::Refused),
            // We forward without RD; a forwarded query is never forwarded again, so a
            // WAN map that points back at a forwarder cannot make a loop.
            Target::Forward { .. } if !request.metadata.recursion_desired => {
                tracing::warn!(name = %qname, "not forwarding a query that was forwarded to us");
                Answer::code(ResponseCode::Refused)
            }
            Target::Forward { datacenter } => self.forward(&datacenter, &query).await,
            target => {
                let snapshot = self.catalog.snapshot();
                self.zone
                    .answer(&target, &qname, query.query_type(), &snapshot)
            }
        }
    }

    async fn forward(&self, datacenter: &str, query: &Query) -> Answer {
        let servers = self
            .config
            .wan
            .get(datacenter)
            .map(Vec::as_slice)
            .unwrap_or_default();
        match forward(servers, query, self.config.forward_timeout).await {
            Ok(reply) => Answer {
                code: reply.metadata.response_code,
                authoritative: false,
                answers: reply.answers,
                authorities: reply.authorities,
                additionals: reply.additionals,
            },
            Err(error) => {
                tracing::warn!(%datacenter, name = %query.name(), error = format!("{error:#}"),
                    "no server of the datacenter answered; SERVFAIL");
                Answer::code(ResponseCode::ServFail)
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let answer = self.answer(request).await;
        let mut builder = MessageResponseBuilder::from_message_request(request);
        let edns = request.edns.as_ref().map(|theirs| {
            let mut ours = Edns::new();
            ours.set_max_payload(theirs.max_payload().max(512));
            ours
        });
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = answer.code;
        metadata.authoritative = answer.authoritative;
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authorities.iter(),
            iter::empty(),
            answer.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(%error, "cannot send a DNS response");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
