//! What a process listens on, read from `/proc`: so that a test can prove a broker it
//! started listens on loopback only, whatever its configuration says.

use std::collections::HashSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The TCP addresses process `pid` listens on (IPv4 and IPv6). `None` where `/proc` cannot
/// tell (not Linux, or not permitted).
pub fn listening_addresses(pid: u32) -> Option<Vec<SocketAddr>> {
    let inodes = socket_inodes(pid)?;
    let mut found = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(table) = fs::read_to_string(file) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            // 0A: TCP_LISTEN.
            if *state != "0A" || !inodes.contains(*inode) {
                continue;
            }
            if let Some(addr) = parse_address(local, v6) {
                found.push(addr);
            }
        }
    }
    Some(found)
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> Option<HashSet<String>> {
    let entries = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut inodes = HashSet::new();
    for entry in entries.flatten() {
        if let Ok(target) = fs::read_link(entry.path()) {
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
    }
    Some(inodes)
}

/// `0100007F:1F90` (IPv4, little-endian words) or the 32-digit IPv6 form.
fn parse_address(field: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if v6 {
        if ip.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (word, chunk) in bytes.chunks_mut(4).enumerate() {
            let hex = ip.get(word * 8..word * 8 + 8)?;
            let value = u32::from_str_radix(hex, 16).ok()?;
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        let value = u32::from_str_radix(ip, 16).ok()?;
        IpAddr::V4(Ipv4Addr::from(value.to_le_bytes()))
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether `addr` is a loopback address (127.0.0.0/8, ::1, or an IPv4-mapped loopback).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_addresses_parse() {
        let a = parse_address("0100007F:1F90", false).unwrap();
        assert_eq!(a, "127.0.0.1:8080".parse().unwrap());
        assert!(is_loopback(&a));
        let any = parse_address("00000000:0050", false).unwrap();
        assert!(!is_loopback(&any));
        let v6 = parse_address("00000000000000000000000001000000:0050", true).unwrap();
        assert_eq!(v6, "[::1]:80".parse().unwrap());
        assert!(is_loopback(&v6));
        let any6 = parse_address("00000000000000000000000000000000:0050", true).unwrap();
        assert!(!is_loopback(&any6));
    }

    #[test]
    fn this_process_listening_on_loopback_is_seen() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let Some(found) = listening_addresses(std::process::id()) else {
            return; // no /proc here
        };
        assert!(
            found.iter().any(|a| a.port() == port && is_loopback(a)),
            "{found:?}"
        );
    }
}
