//! Which proxy a connection to an API server goes through, as kubectl (Go's
//! `http.ProxyFromEnvironment`) decides it: the kubeconfig cluster's `proxy-url` when it has
//! one; else `HTTPS_PROXY` (or `HTTP_PROXY` for an `http://` server) unless `NO_PROXY` names the
//! server; never for localhost or a loopback address. Pure: the caller passes the variables.

use std::net::IpAddr;

/// The proxy environment, as read from `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy`
/// and `NO_PROXY`/`no_proxy` (the upper-case spelling first, as Go reads them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTPS_PROXY`.
    pub https: Option<String>,
    /// `HTTP_PROXY`.
    pub http: Option<String>,
    /// `NO_PROXY`.
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// Reads the process environment.
    pub fn from_process() -> ProxyEnv {
        let var = |upper: &str, lower: &str| {
            [upper, lower]
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        };
        ProxyEnv {
            https: var("HTTPS_PROXY", "https_proxy"),
            http: var("HTTP_PROXY", "http_proxy"),
            no_proxy: var("NO_PROXY", "no_proxy"),
        }
    }

    /// The proxy for a server at `scheme://host:port`, if any. A proxy written without a
    /// scheme is `http://` (as Go reads it).
    pub fn proxy_for(&self, scheme: &str, host: &str, port: u16) -> Option<String> {
        let proxy = match scheme {
            "https" => self.https.as_deref(),
            "http" => self.http.as_deref(),
            _ => None,
        }?;
        if is_local(host)
            || self
                .no_proxy
                .as_deref()
                .is_some_and(|n| bypass(n, host, port))
        {
            return None;
        }
        Some(if proxy.contains("://") {
            proxy.to_string()
        } else {
            format!("http://{proxy}")
        })
    }
}

/// `localhost` or a loopback address: Go never proxies them.
fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `NO_PROXY` names `host:port`: `*`; an IP address or CIDR block; a domain, matching
/// itself and its subdomains (`.example.com` and `*.example.com` only subdomains); each with an
/// optional `:port` that must then match too.
pub fn bypass(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    no_proxy
        .split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some((net, bits)) = entry.split_once('/') {
                return match (net.parse::<IpAddr>(), bits.parse::<u8>(), ip) {
                    (Ok(net), Ok(bits), Some(ip)) => in_cidr(ip, net, bits),
                    _ => false,
                };
            }
            let (name, want_port) = split_port(&entry);
            if want_port.is_some_and(|p| p != port) {
                return false;
            }
            if let Ok(entry_ip) = name.parse::<IpAddr>() {
                return ip == Some(entry_ip);
            }
            let name = name.trim_start_matches('*');
            match name.strip_prefix('.') {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => host == name || host.ends_with(&format!(".{name}")),
            }
        })
}

/// `host` and its port of a NO_PROXY entry (`[v6]:port`, `host:port`, `host`, bare IPv6).
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(p) => (h, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_proxy: &str) -> ProxyEnv {
        ProxyEnv {
            https: Some("http://proxy.corp:3128".into()),
            http: Some("proxy.corp:8080".into()),
            no_proxy: Some(no_proxy.into()),
        }
    }

    #[test]
    fn no_proxy_is_matched_against_the_server_not_the_proxy() {
        let e = env("10.0.0.0/8, .internal.example, api.example.com:6443");
        assert_eq!(e.proxy_for("https", "10.1.2.3", 6443), None);
        assert_eq!(e.proxy_for("https", "k8s.internal.example", 443), None);
        assert_eq!(
            e.proxy_for("https", "internal.example", 443).as_deref(),
            Some("http://proxy.corp:3128"),
            "a leading dot matches only subdomains"
        );
        assert_eq!(e.proxy_for("https", "api.example.com", 6443), None);
        assert!(
            e.proxy_for("https", "api.example.com", 443).is_some(),
            "the entry's port must match"
        );
        assert!(e.proxy_for("https", "192.168.1.1", 6443).is_some());
        assert_eq!(
            e.proxy_for("http", "192.168.1.1", 80).as_deref(),
            Some("http://proxy.corp:8080"),
            "HTTP_PROXY for http:// servers, http:// when written without a scheme"
        );
    }

    #[test]
    fn loopback_and_wildcards() {
        let e = env("");
        assert_eq!(e.proxy_for("https", "127.0.0.1", 6443), None);
        assert_eq!(e.proxy_for("https", "[::1]", 6443), None);
        assert_eq!(e.proxy_for("https", "localhost", 6443), None);
        assert!(e.proxy_for("https", "example.com", 443).is_some());
        assert_eq!(env("*").proxy_for("https", "example.com", 443), None);
        assert!(bypass("example.com", "a.b.example.com", 1));
        assert!(bypass("*.example.com", "a.example.com", 1));
        assert!(!bypass("*.example.com", "example.com", 1));
        assert!(!bypass("ample.com", "example.com", 1));
        assert!(bypass("fd00::/8", "[fd00::1]", 1));
        assert!(bypass("[fd00::1]:6443", "fd00::1", 6443));
        assert!(!bypass("10.0.0.0/33", "10.0.0.1", 1));
        let none = ProxyEnv::default();
        assert_eq!(none.proxy_for("https", "example.com", 443), None);
    }
}
