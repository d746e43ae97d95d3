//! Who is on the other end of a loopback connection: the uid owning the
//! client's socket, as the kernel lists it in /proc/net/tcp{,6} (the
//! client's end has the connection's two addresses swapped). The app root
//! is root's alone (0700), so a server on loopback lets its own user read
//! without the token and asks everybody else for it, as it does on any
//! other address. Unknown (the client already gone, the table unreadable)
//! means "not ours": the token is asked for.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The uid of the socket whose local address is `client` and whose
/// remote address is `server`.
pub fn uid_of(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let table = match client {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    // The table of this process's network namespace: the one the
    // listening socket is in, so a client reaching it on loopback is too.
    let text = std::fs::read_to_string(table).ok()?;
    find(&text, client, server)
}

/// The uid column of the line for (`local`, `remote`) in a /proc/net/tcp
/// table's text.
pub fn find(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (l, r, uid) = (f.get(1)?, f.get(2)?, f.get(7)?);
        (parse_addr(l)? == local && parse_addr(r)? == remote)
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// "0100007F:1F90" (IPv4: one 32-bit word, IPv6: four, each as the host
/// stores it; the port in hex) as a socket address.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        // The kernel prints each word of the address as a native u32.
        Some(w.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_clients_end_of_a_real_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = l.local_addr().unwrap();
        let c = std::net::TcpStream::connect(server).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!(uid_of(peer, server), Some(me));
        // The server's own end is not the client's.
        assert_eq!(uid_of(server, peer), Some(me));
        let elsewhere: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(uid_of(peer, elsewhere), None);
    }

    #[test]
    fn ipv6_loopback_too() {
        let Ok(l) = std::net::TcpListener::bind("[::1]:0") else {
            return; // no IPv6 here
        };
        let server = l.local_addr().unwrap();
        let _c = std::net::TcpStream::connect(server).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(uid_of(peer, server), Some(nix::unistd::geteuid().as_raw()));
    }

    #[test]
    fn table_lines() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                 0: 0100007F:D431 0100007F:2654 01 00000000:00000000 00:00000000 00000000  1000        0 123 1\n";
        let local: SocketAddr = "127.0.0.1:54321".parse().unwrap();
        let remote: SocketAddr = "127.0.0.1:9812".parse().unwrap();
        assert_eq!(find(t, local, remote), Some(1000));
        assert_eq!(find(t, remote, local), None);
        assert_eq!(find("garbage\nmore garbage here\n", local, remote), None);
    }
}
