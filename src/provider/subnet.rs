//! IPv4 subnets for cluster networks: parsing `a.b.c.d/n`, overlap tests, and choosing a
//! free /24 that clashes with no existing Docker network. Pure logic, no Docker calls.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use anyhow::{bail, Context};

/// An IPv4 network in CIDR form; the address is normalised to the network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    addr: u32,
    prefix: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> anyhow::Result<Ipv4Net> {
        if prefix > 32 {
            bail!("prefix length {prefix} is larger than 32");
        }
        let addr = u32::from(addr) & Self::mask_of(prefix);
        Ok(Ipv4Net { addr, prefix })
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn last(&self) -> u32 {
        self.addr | !Self::mask_of(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask_of(self.prefix) == self.addr
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.addr <= other.last() && other.addr <= self.last()
    }

    /// The `n`-th address of the network (0 is the network address), if it is inside.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let ip = self.addr.checked_add(n)?;
        (ip <= self.last()).then(|| Ipv4Addr::from(ip))
    }

    /// Usable host addresses (without network and broadcast addresses).
    pub fn host_count(&self) -> u32 {
        let size = self.last() - self.addr;
        size.saturating_sub(1)
    }
}

impl FromStr for Ipv4Net {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Ipv4Net> {
        let (addr, prefix) = text.split_once('/').with_context(|| {
            format!("`{text}` is not a subnet in CIDR form (like 10.213.0.0/24)")
        })?;
        let addr: Ipv4Addr = addr
            .trim()
            .parse()
            .with_context(|| format!("`{text}`: `{addr}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .trim()
            .parse()
            .with_context(|| format!("`{text}`: `{prefix}` is not a prefix length"))?;
        Ipv4Net::new(addr, prefix).with_context(|| format!("`{text}`"))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

/// A subnet that is already taken, and by which network.
#[derive(Debug, Clone)]
pub struct TakenSubnet {
    pub network: String,
    pub subnet: Ipv4Net,
}

/// The first /24 among 10.213.0.0/16, then 172.30.0.0/16, that overlaps none of `taken`.
pub fn choose_free(taken: &[TakenSubnet]) -> anyhow::Result<Ipv4Net> {
    for (a, b) in [(10u8, 213u8), (172, 30)] {
        for c in 0..=255u8 {
            let candidate = Ipv4Net::new(Ipv4Addr::new(a, b, c, 0), 24)?;
            if taken.iter().all(|t| !t.subnet.overlaps(&candidate)) {
                return Ok(candidate);
            }
        }
    }
    bail!("no free /24 left in 10.213.0.0/16 or 172.30.0.0/16; set `infra_subnet` in the inventory")
}

/// Fails with the clashing network's name when `wanted` overlaps a taken subnet.
pub fn check_free(wanted: &Ipv4Net, taken: &[TakenSubnet]) -> anyhow::Result<()> {
    if let Some(clash) = taken.iter().find(|t| t.subnet.overlaps(wanted)) {
        bail!(
            "subnet {wanted} (infra_subnet) clashes with Docker network `{}` ({}); choose another \
             infra_subnet or remove that network",
            clash.network,
            clash.subnet
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(name: &str, net: &str) -> TakenSubnet {
        TakenSubnet {
            network: name.to_string(),
            subnet: net.parse().unwrap(),
        }
    }

    #[test]
    fn parses_and_normalises() {
        let net: Ipv4Net = "10.213.4.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "10.213.4.0/24");
        assert!(net.contains("10.213.4.200".parse().unwrap()));
        assert!(!net.contains("10.213.5.1".parse().unwrap()));
        assert_eq!(net.nth(10), Some("10.213.4.10".parse().unwrap()));
        assert_eq!(net.nth(256), None);
        assert_eq!(net.host_count(), 254);
    }

    #[test]
    fn rejects_bad_text() {
        assert!("10.0.0.0".parse::<Ipv4Net>().is_err());
        assert!("10.0.0/24".parse::<Ipv4Net>().is_err());
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err());
    }

    #[test]
    fn overlap_is_symmetric_and_exact() {
        let big: Ipv4Net = "172.16.0.0/12".parse().unwrap();
        let inside: Ipv4Net = "172.30.1.0/24".parse().unwrap();
        let beside: Ipv4Net = "172.32.0.0/24".parse().unwrap();
        assert!(big.overlaps(&inside) && inside.overlaps(&big));
        assert!(!big.overlaps(&beside) && !beside.overlaps(&big));
    }

    #[test]
    fn chooses_the_first_free_24() {
        let nets = [
            taken("a", "10.213.0.0/24"),
            taken("b", "10.213.1.0/24"),
            taken("c", "10.213.2.0/23"),
        ];
        assert_eq!(choose_free(&nets).unwrap().to_string(), "10.213.4.0/24");
    }

    #[test]
    fn falls_back_when_the_whole_range_is_taken() {
        let nets = [taken("wide", "10.0.0.0/8")];
        assert_eq!(choose_free(&nets).unwrap().to_string(), "172.30.0.0/24");
    }

    #[test]
    fn a_clash_names_the_other_network() {
        let nets = [taken("bridge", "172.17.0.0/16")];
        let err = check_free(&"172.17.5.0/24".parse().unwrap(), &nets).unwrap_err();
        assert!(err.to_string().contains("`bridge`"), "{err}");
        assert!(check_free(&"10.213.0.0/24".parse().unwrap(), &nets).is_ok());
    }
}
