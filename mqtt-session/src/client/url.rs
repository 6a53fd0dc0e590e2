//! Broker URLs: `mqtt://`, `mqtts://`, `ws://`, `wss://` and `unix://`.

use std::fmt;

/// How a client reaches its broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// MQTT over TCP (`mqtt://`, also `tcp://`), default port 1883.
    Mqtt,
    /// MQTT over TLS (`mqtts://`, also `ssl://` and `tls://`), default port 8883.
    Mqtts,
    /// MQTT over WebSocket (`ws://`), default port 80.
    Ws,
    /// MQTT over WebSocket over TLS (`wss://`), default port 443.
    Wss,
    /// MQTT over a Unix domain socket (`unix:///run/mosquitto/mqtt.sock`; Unix only).
    Unix,
}

impl Scheme {
    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Mqtt => 1883,
            Self::Mqtts => 8883,
            Self::Ws => 80,
            Self::Wss => 443,
            Self::Unix => 0,
        }
    }

    /// Whether the transport runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Mqtts | Self::Wss)
    }

    /// Whether the transport is a WebSocket.
    pub fn is_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }

    /// The canonical scheme name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Mqtts => "mqtts",
            Self::Ws => "ws",
            Self::Wss => "wss",
            Self::Unix => "unix",
        }
    }
}

/// Why a broker URL was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` prefix.
    #[error("broker URL has no scheme (expected mqtt://, mqtts://, ws://, wss:// or unix://)")]
    MissingScheme,
    /// A scheme other than the supported ones.
    #[error("unsupported broker URL scheme {0:?} (expected mqtt, mqtts, ws, wss or unix)")]
    UnsupportedScheme(String),
    /// The host is empty.
    #[error("broker URL has no host")]
    MissingHost,
    /// The port is not a number from 1 to 65535.
    #[error("invalid port {0:?} in broker URL")]
    InvalidPort(String),
    /// An IPv6 address without its closing bracket.
    #[error("unterminated IPv6 address in broker URL")]
    UnterminatedIpv6,
    /// `user:password@` in the URL: credentials belong in the client options, where they
    /// are kept out of logs.
    #[error("credentials in the broker URL are not supported; set them in the client options")]
    CredentialsInUrl,
    /// A path on a plain MQTT URL, which has none.
    #[error("a path is only meaningful for ws:// and wss:// URLs")]
    UnexpectedPath,
    /// A `unix://` URL without an absolute socket path.
    #[error("a unix:// URL needs an absolute socket path, as in unix:///run/mosquitto/mqtt.sock")]
    MissingSocketPath,
}

/// A parsed broker address.
///
/// ```
/// use mqtt_session::client::{BrokerUrl, Scheme};
/// let url: BrokerUrl = "wss://broker.example:8443".parse().unwrap();
/// assert_eq!(url.scheme, Scheme::Wss);
/// assert_eq!(url.port, 8443);
/// assert_eq!(url.path, "/mqtt");
/// assert_eq!("mqtt://[::1]".parse::<BrokerUrl>().unwrap().port, 1883);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerUrl {
    /// The transport.
    pub scheme: Scheme,
    /// Host name or IP address, without the brackets of an IPv6 address; empty for `unix://`.
    pub host: String,
    /// TCP port; 0 for `unix://`.
    pub port: u16,
    /// For WebSocket URLs, the request path with any query (default `/mqtt`); for `unix://`,
    /// the socket's path; empty otherwise.
    pub path: String,
}

impl BrokerUrl {
    /// Parses `scheme://host[:port][/path]`, or `unix:///path/to/socket`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::MissingScheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => Scheme::Mqtt,
            "mqtts" | "ssl" | "tls" => Scheme::Mqtts,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            "unix" => return Self::unix(rest),
            _ => return Err(UrlError::UnsupportedScheme(scheme.to_owned())),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(UrlError::CredentialsInUrl);
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or(UrlError::UnterminatedIpv6)?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| UrlError::InvalidPort(p.into()))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(UrlError::InvalidPort(p.to_owned())),
            },
        };
        let path = if scheme.is_websocket() {
            match path {
                "" => "/mqtt".to_owned(),
                p if p.starts_with('?') => format!("/mqtt{p}"),
                p => p.to_owned(),
            }
        } else if path.is_empty() || path == "/" {
            String::new()
        } else {
            return Err(UrlError::UnexpectedPath);
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// A Unix socket address from what follows `unix://`.
    fn unix(path: &str) -> Result<Self, UrlError> {
        if !path.starts_with('/') || path.len() < 2 {
            return Err(UrlError::MissingSocketPath);
        }
        Ok(Self {
            scheme: Scheme::Unix,
            host: String::new(),
            port: 0,
            path: path.to_owned(),
        })
    }

    /// The host as written in a URL: IPv6 addresses in brackets.
    pub fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// For WebSocket URLs, the `ws://` or `wss://` address of the HTTP upgrade request.
    pub fn websocket_url(&self) -> String {
        format!(
            "{}://{}:{}{}",
            if self.scheme.is_tls() { "wss" } else { "ws" },
            self.host_for_url(),
            self.port,
            if self.path.is_empty() {
                "/"
            } else {
                &self.path
            }
        )
    }
}

impl std::str::FromStr for BrokerUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme == Scheme::Unix {
            return write!(f, "unix://{}", self.path);
        }
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme.as_str(),
            self.host_for_url(),
            self.port,
            self.path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> BrokerUrl {
        BrokerUrl::parse(s).unwrap()
    }

    #[test]
    fn default_ports_and_paths() {
        let cases = [
            ("mqtt://h", Scheme::Mqtt, 1883, ""),
            ("mqtts://h", Scheme::Mqtts, 8883, ""),
            ("ws://h", Scheme::Ws, 80, "/mqtt"),
            ("wss://h", Scheme::Wss, 443, "/mqtt"),
            ("tcp://h/", Scheme::Mqtt, 1883, ""),
            ("ssl://h:1", Scheme::Mqtts, 1, ""),
            ("WS://h:9001/", Scheme::Ws, 9001, "/"),
            ("ws://h:9001/ws?x=1", Scheme::Ws, 9001, "/ws?x=1"),
            ("ws://h?x=1", Scheme::Ws, 80, "/mqtt?x=1"),
        ];
        for (input, scheme, port, path) in cases {
            let u = url(input);
            assert_eq!(
                (u.scheme, u.port, u.path.as_str()),
                (scheme, port, path),
                "{input}"
            );
            assert_eq!(u.host, "h");
        }
    }

    #[test]
    fn unix_sockets() {
        let u = url("unix:///run/mosquitto/mqtt.sock");
        assert_eq!(u.scheme, Scheme::Unix);
        assert_eq!((u.host.as_str(), u.port), ("", 0));
        assert_eq!(u.path, "/run/mosquitto/mqtt.sock");
        assert!(!u.scheme.is_tls() && !u.scheme.is_websocket());
        assert_eq!(u.to_string(), "unix:///run/mosquitto/mqtt.sock");
    }

    #[test]
    fn ipv6_hosts() {
        let u = url("mqtt://[::1]:1884");
        assert_eq!((u.host.as_str(), u.port), ("::1", 1884));
        assert_eq!(u.to_string(), "mqtt://[::1]:1884");
        assert_eq!(
            url("wss://[fe80::1]").websocket_url(),
            "wss://[fe80::1]:443/mqtt"
        );
    }

    #[test]
    fn errors() {
        let cases = [
            ("localhost:1883", UrlError::MissingScheme),
            ("http://h", UrlError::UnsupportedScheme("http".into())),
            ("mqtt://", UrlError::MissingHost),
            ("mqtt://:1883", UrlError::MissingHost),
            ("mqtt://h:0", UrlError::InvalidPort("0".into())),
            ("mqtt://h:70000", UrlError::InvalidPort("70000".into())),
            ("mqtt://h:x", UrlError::InvalidPort("x".into())),
            ("mqtt://[::1", UrlError::UnterminatedIpv6),
            ("mqtt://[::1]x", UrlError::InvalidPort("x".into())),
            ("mqtt://u:p@h", UrlError::CredentialsInUrl),
            ("mqtt://h/path", UrlError::UnexpectedPath),
            ("unix://", UrlError::MissingSocketPath),
            ("unix://relative.sock", UrlError::MissingSocketPath),
        ];
        for (input, error) in cases {
            assert_eq!(BrokerUrl::parse(input), Err(error), "{input}");
        }
    }
}
