//! `ToSocketAddrs`: the address types `utcp::net` accepts, tokio's set, with
//! host names resolved through the stack's name table (the in-memory
//! network's hosts), then as IP literals — never through system DNS.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use utcp_runtime::Stack;

/// Converts or resolves to one or more socket addresses, like
/// `tokio::net::ToSocketAddrs`, for the same types: [`SocketAddr`],
/// [`SocketAddrV4`], [`SocketAddrV6`], `(IpAddr, u16)`, `(Ipv4Addr, u16)`,
/// `(Ipv6Addr, u16)`, `&[SocketAddr]`, `&str` and `String` (`"host:port"`),
/// `(&str, u16)` and `(String, u16)`, and references to any of them.
///
/// A host name is looked up in the name table of the stack's device
/// ([`SimNetwork::add_host`](crate::sim::SimNetwork::add_host) registers
/// one), then parsed as an IP literal; utcp never asks system DNS, so code
/// under test cannot leave the simulated network.
///
/// Sealed: it cannot be implemented outside utcp.
///
/// # Examples
/// ```
/// use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
/// let net = SimNetwork::new(1);
/// let a = net.add_host("app", &["10.0.0.1".parse().unwrap()]);
/// let b = net.add_host("db", &["10.0.0.2".parse().unwrap()]);
/// net.link(&a, &b, LinkConfig::default());
/// let (app, db) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
/// let _listener = db.bind("0.0.0.0:5432")?;
/// let s = app.connect("db:5432").await?;
/// assert_eq!(s.peer_addr()?, "10.0.0.2:5432".parse().unwrap());
/// # Ok(()) }
/// ```
pub trait ToSocketAddrs: sealed::ToSocketAddrsPriv {}

pub(crate) mod sealed {
    use super::*;

    /// The resolution itself, hidden so that the trait stays sealed.
    pub trait ToSocketAddrsPriv {
        /// The addresses, in the order to try them.
        fn to_addrs(&self, stack: &Stack) -> io::Result<Vec<SocketAddr>>;
    }
}

use sealed::ToSocketAddrsPriv;

/// Resolves `addr` on `stack`: at least one address, or an error.
pub(crate) fn resolve<A: ToSocketAddrs + ?Sized>(
    stack: &Stack,
    addr: &A,
) -> io::Result<Vec<SocketAddr>> {
    let addrs = addr.to_addrs(stack)?;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// The stack to use: the one ambient at the call (`at_call`), else the one
/// ambient now (the first poll); and `addr` resolved on it.
pub(crate) fn ambient<A: ToSocketAddrs + ?Sized>(
    at_call: Option<Stack>,
    addr: &A,
) -> io::Result<(Stack, Vec<SocketAddr>)> {
    let stack = match at_call {
        Some(s) => s,
        None => Stack::current()?,
    };
    let addrs = resolve(&stack, addr)?;
    Ok((stack, addrs))
}

/// `host` through the name table, then as an IP literal (`[…]` allowed
/// around IPv6).
fn lookup(stack: &Stack, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Some(ips) = stack.lookup_host(host) {
        return Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect());
    }
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match literal.parse::<IpAddr>() {
        Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "host {host:?} is not in the stack's name table and not an IP address \
                 (utcp never uses system DNS; SimNetwork::add_host or add_name registers names)"
            ),
        )),
    }
}

fn one(a: SocketAddr) -> io::Result<Vec<SocketAddr>> {
    Ok(vec![a])
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrsPriv + ?Sized> ToSocketAddrsPriv for &T {
    fn to_addrs(&self, stack: &Stack) -> io::Result<Vec<SocketAddr>> {
        (**self).to_addrs(stack)
    }
}

impl ToSocketAddrs for SocketAddr {}
impl ToSocketAddrsPriv for SocketAddr {
    fn to_addrs(&self, _: &Stack) -> io::Result<Vec<SocketAddr>> {
        one(*self)
    }
}

impl ToSocketAddrs for SocketAddrV4 {}
impl ToSocketAddrsPriv for SocketAddrV4 {
    fn to_addrs(&self, _: &Stack) -> io::Result<Vec<SocketAddr>> {
        one((*self).into())
    }
}

impl ToSocketAddrs for SocketAddrV6 {}
impl ToSocketAddrsPriv for SocketAddrV6 {
    fn to_addrs(&self, _: &Stack) -> io::Result<Vec<SocketAddr>> {
        one((*self).into())
    }
}

impl ToSocketAddrs for (IpAddr, u16) {}
impl ToSocketAddrsPriv for (IpAddr, u16) {
    fn to_addrs(&self, _: &Stack) -> io::Result<Vec<SocketAddr>> {
        one((*self).into())
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {}
impl ToSocketAddrsPriv for (Ipv4Addr, u16) {
    fn to_addrs(&self, _: &Stack) -> io::Result<Vec<SocketAddr>> {
        one((*self).into())
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {}
impl ToSocketAddrsPriv for (Ipv6Addr, u16) {
    fn to_addrs(&self, _: &Stack) -> io::Result<Vec<SocketAddr>> {
        one((*self).into())
    }
}

impl ToSocketAddrs for &[SocketAddr] {}
impl ToSocketAddrsPriv for &[SocketAddr] {
    fn to_addrs(&self, _: &Stack) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl ToSocketAddrs for str {}
impl ToSocketAddrsPriv for str {
    fn to_addrs(&self, stack: &Stack) -> io::Result<Vec<SocketAddr>> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return one(a);
        }
        let Some((host, port)) = self.rsplit_once(':') else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid socket address: expected \"host:port\"",
            ));
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port value"))?;
        lookup(stack, host, port)
    }
}

impl ToSocketAddrs for String {}
impl ToSocketAddrsPriv for String {
    fn to_addrs(&self, stack: &Stack) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_addrs(stack)
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl ToSocketAddrsPriv for (&str, u16) {
    fn to_addrs(&self, stack: &Stack) -> io::Result<Vec<SocketAddr>> {
        lookup(stack, self.0, self.1)
    }
}

impl ToSocketAddrs for (String, u16) {}
impl ToSocketAddrsPriv for (String, u16) {
    fn to_addrs(&self, stack: &Stack) -> io::Result<Vec<SocketAddr>> {
        lookup(stack, &self.0, self.1)
    }
}
