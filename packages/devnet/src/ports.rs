//! Loopback ports of every node, derived from the chain's port base.
//!
//! Validator `v` of a chain whose port base is `B` listens on `B + 10*v + s`, where `s` is
//! the service's offset: P2P 0, RPC 1, gRPC 2, REST API 3, pprof 4 (5 to 9 are spare).
//! A chain holds at most [`MAX_VALIDATORS`] validators, so it spans `B..B+100`, and the
//! chain at index `i` of the file defaults to `network.port_base + 100*i`. With the
//! example's base 26000: hospital-a validator 2's RPC is 26021, hospital-b validator 0's
//! P2P is 26100: below Linux's ephemeral range (32768-60999), where an outgoing
//! connection's local port (or one in TIME-WAIT) could hold a node's port. None of these
//! meets the ports of the old bash devnet ([`RESERVED`]).

/// Validators a chain may have (the port layout gives each chain 100 ports).
pub const MAX_VALIDATORS: usize = 10;

/// The services a node listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    P2p,
    Rpc,
    Grpc,
    Api,
    Pprof,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::P2p,
        Service::Rpc,
        Service::Grpc,
        Service::Api,
        Service::Pprof,
    ];
    /// The service with the highest offset.
    pub const LAST: Service = Service::Pprof;

    pub fn offset(self) -> u32 {
        match self {
            Service::P2p => 0,
            Service::Rpc => 1,
            Service::Grpc => 2,
            Service::Api => 3,
            Service::Pprof => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::P2p => "p2p",
            Service::Rpc => "rpc",
            Service::Grpc => "grpc",
            Service::Api => "api",
            Service::Pprof => "pprof",
        }
    }
}

/// The offset of validator `v`'s `service` from its chain's port base.
pub fn port_offset(v: u8, service: Service) -> u32 {
    10 * u32::from(v) + service.offset()
}

/// The ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePorts {
    pub p2p: u16,
    pub rpc: u16,
    pub grpc: u16,
    pub api: u16,
    pub pprof: u16,
}

impl NodePorts {
    /// Validator `v` of a chain with port base `base` (validated: no overflow).
    pub fn of(base: u16, v: u8) -> NodePorts {
        let p = |s: Service| (u32::from(base) + port_offset(v, s)) as u16;
        NodePorts {
            p2p: p(Service::P2p),
            rpc: p(Service::Rpc),
            grpc: p(Service::Grpc),
            api: p(Service::Api),
            pprof: p(Service::Pprof),
        }
    }

    pub fn all(&self) -> [(Service, u16); 5] {
        [
            (Service::P2p, self.p2p),
            (Service::Rpc, self.rpc),
            (Service::Grpc, self.grpc),
            (Service::Api, self.api),
            (Service::Pprof, self.pprof),
        ]
    }

    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc)
    }
}

/// The ports of `scripts/devnet.sh` (hospital-a, -b, -c: +100 each) and its Hermes, which
/// a devnet file may not use: both devnets can then run side by side.
pub const RESERVED: &[(u16, &str)] = &[
    (26656, "is scripts/devnet.sh's hospital-a P2P"),
    (26657, "is scripts/devnet.sh's hospital-a RPC"),
    (26756, "is scripts/devnet.sh's hospital-b P2P"),
    (26757, "is scripts/devnet.sh's hospital-b RPC"),
    (26856, "is scripts/devnet.sh's hospital-c P2P"),
    (26857, "is scripts/devnet.sh's hospital-c RPC"),
    (9090, "is scripts/devnet.sh's hospital-a gRPC"),
    (9190, "is scripts/devnet.sh's hospital-b gRPC"),
    (9290, "is scripts/devnet.sh's hospital-c gRPC"),
    (1317, "is scripts/devnet.sh's hospital-a REST API"),
    (1417, "is scripts/devnet.sh's hospital-b REST API"),
    (1517, "is scripts/devnet.sh's hospital-c REST API"),
    (6060, "is scripts/devnet.sh's hospital-a pprof"),
    (6160, "is scripts/devnet.sh's hospital-b pprof"),
    (6260, "is scripts/devnet.sh's hospital-c pprof"),
    (3700, "is scripts/devnet.sh's Hermes REST"),
    (3701, "is scripts/devnet.sh's Hermes telemetry"),
    (26658, "is CometBFT's default ABCI address"),
    (26660, "is CometBFT's default Prometheus address"),
];

/// Is something listening on 127.0.0.1:`port`? (A bind attempt, which would fail.)
pub fn in_use(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_the_example() {
        let v0 = NodePorts::of(26000, 0);
        assert_eq!(
            (v0.p2p, v0.rpc, v0.grpc, v0.api, v0.pprof),
            (26000, 26001, 26002, 26003, 26004)
        );
        let b3 = NodePorts::of(26100, 3);
        assert_eq!((b3.p2p, b3.rpc), (26130, 26131));
        assert_eq!(b3.rpc_url(), "http://127.0.0.1:26131");
    }

    #[test]
    fn ten_validators_fit_in_a_hundred_ports_without_overlap() {
        let mut seen = std::collections::BTreeSet::new();
        for v in 0..MAX_VALIDATORS as u8 {
            for (_, p) in NodePorts::of(26000, v).all() {
                assert!((26000..26100).contains(&p));
                assert!(seen.insert(p), "port {p} twice");
            }
        }
        assert_eq!(seen.len(), 50);
    }

    #[test]
    fn default_layout_misses_the_reserved_ports() {
        for base in [36000u16, 26100] {
            for v in 0..MAX_VALIDATORS as u8 {
                for (_, p) in NodePorts::of(base, v).all() {
                    assert!(RESERVED.iter().all(|r| r.0 != p));
                }
            }
        }
    }
}
